#pragma once
// One WebSocket connection: owns its socket, its read loop and its outbound queue, and drives a
// ChatConnection. Lives on one io_context thread (each io_context runs on one thread), so only that
// thread touches it; other threads reach it through Deliver and the *FromAnyThread methods, which post
// to it. Incoming bytes go through a WebSocketFrameReader; outgoing frames queue in a CoalescingStream
// (batched socket writes), bounded in bytes: past the bound the client is closed with 1013.
//
// Idle, a connection holds no read buffer (a TLS one a small array), no timer (the IdleSweep pings quiet
// clients) and no framing state beyond the reader's few bytes: bench/README.md, scenario 3.
// `Stream` is what the HTTP session had: beast::tcp_stream (its socket is kept, not its timers), or
// beast::ssl_stream of one when TLS is on.

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "domain/chat_connection.h"
#include "domain/websocket_frame_reader.h"
#include "transport/client_session.h"
#include "transport/coalescing_stream.h"
#include "transport/lane_flusher.h"

namespace chat::gateway {

class GatewayContext;

// What a WebSocket session keeps of the HTTP session's stream.
template <typename Stream>
struct WebSocketTransport {
  using type = Stream;
  static type From(Stream s) { return s; }
};
template <>
struct WebSocketTransport<boost::beast::tcp_stream> {
  using type = boost::asio::ip::tcp::socket;
  static type From(boost::beast::tcp_stream s) { return s.release_socket(); }
};

template <typename Stream>
class WebSocketSession : public ClientSession,
                         public HeldWrites,
                         public std::enable_shared_from_this<WebSocketSession<Stream>> {
 public:
  using Transport = typename WebSocketTransport<Stream>::type;

  WebSocketSession(Stream stream, GatewayContext& ctx, ConnectionIdentity identity, size_t lane);
  ~WebSocketSession() override;

  // Completes the upgrade of `req` (already authenticated), answering with `subprotocol` if not empty,
  // then starts reading.
  void Run(const boost::beast::http::request<boost::beast::http::string_body>& req,
           const std::string& subprotocol);
  void Deliver(std::shared_ptr<const Delivery> delivery) override;
  size_t lane() const override { return lane_; }
  void DeliverOnLane(const Delivery& delivery) override;
  void JoinFromAnyThread(std::string room) override;
  void DeliverRaw(std::shared_ptr<const std::string> frame) override;
  void CloseFromAnyThread(uint16_t code, std::string reason) override;
  void CheckIdleFromAnyThread(std::chrono::steady_clock::time_point now) override;
  void CheckIdleOnLane(std::chrono::steady_clock::time_point now) override;
  void FlushHeld() override;
  bool finished() const { return finished_; }

 private:
  static constexpr bool kTls = !std::is_same_v<Transport, boost::asio::ip::tcp::socket>;
  static constexpr size_t kReadChunk = 128;  // TLS: what one read of the stream takes
  struct NoReadBuffer {};

  void Accepted();
  void DoRead();
  // TLS: `bytes` read into read_buf_; plain: the socket is readable (`bytes` unused).
  void OnRead(boost::beast::error_code ec, size_t bytes);
  // Feeds bytes to the reader and acts on its events; false once the session is done reading.
  bool Consume(std::string_view bytes);
  // `with_next`: the frame waits for the next write (ChatConnection::Io::send_with_next); `now`: a write
  // it starts is made on this stack (Io::send_last).
  void Send(std::shared_ptr<const std::string> frame, bool with_next = false, bool now = false);
  // Server-initiated close with `code`; the peer's close (or EOF, or a timeout) ends it.
  void Close(uint16_t code, std::string reason);
  void SendClose(uint16_t code, std::string_view reason);
  void ShutdownAfterFlush(std::string reason);
  void Finish(std::string_view reason);
  void CloseSocket();

  CoalescingStream<Transport> out_;
  WebSocketFrameReader reader_;
  GatewayContext& ctx_;
  std::unique_ptr<ChatConnection> chat_;
  ConnectionIdentity identity_;
  std::chrono::steady_clock::time_point last_read_;
  std::unique_ptr<boost::asio::steady_timer> linger_;  // only while closing
  [[no_unique_address]] std::conditional_t<kTls, std::array<char, kReadChunk>, NoReadBuffer> read_buf_;
  size_t lane_;
  int deflate_window_ = 0;       // permessage-deflate negotiated: the window to compress with
  uint16_t close_code_ = 0;      // what the server closed with
  bool closing_ = false;         // the server started the close
  bool close_sent_ = false;      // a close frame is queued or out
  bool close_received_ = false;  // the peer's close frame arrived
  bool ping_sent_ = false;       // since the last bytes from the peer
  bool finished_ = false;
  bool delivering_ = false;  // frames sent now are a room's fan-out (may be held)
  bool flush_due_ = false;   // held frames wait for the lane's flusher
};

}  // namespace chat::gateway
