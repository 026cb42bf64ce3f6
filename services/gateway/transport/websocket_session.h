#pragma once
// One WebSocket connection: owns its stream, its read loop and its outbound queue, and drives a
// ChatConnection. Lives on one io_context thread (each io_context runs on one thread), so only that
// thread touches it; other threads reach it through Deliver and the *FromAnyThread methods, which post
// to it. Outgoing frames queue in the CoalescingStream under Beast (batched socket writes); the queue is
// bounded in bytes, past the bound the client is closed with 1013. `Stream` is beast::tcp_stream, or
// beast::ssl_stream of one when TLS is on.

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <memory>
#include <string>

#include "domain/chat_connection.h"
#include "transport/client_session.h"
#include "transport/coalescing_stream.h"
#include "transport/stepped_read_buffer.h"

namespace chat::gateway {

class GatewayContext;

template <typename Stream>
class WebSocketSession : public ClientSession, public std::enable_shared_from_this<WebSocketSession<Stream>> {
 public:
  WebSocketSession(Stream stream, GatewayContext& ctx, ConnectionIdentity identity, size_t lane);
  ~WebSocketSession() override;

  // Completes the upgrade of `req` (already authenticated), answering with `subprotocol` if not empty,
  // then starts reading.
  void Run(boost::beast::http::request<boost::beast::http::string_body> req, std::string subprotocol);
  void Deliver(std::shared_ptr<const Delivery> delivery) override;
  size_t lane() const override { return lane_; }
  void DeliverOnLane(const Delivery& delivery) override;
  void JoinFromAnyThread(std::string room) override;
  void DeliverRaw(std::shared_ptr<const std::string> frame) override;
  void CloseFromAnyThread(uint16_t code, std::string reason) override;
  bool finished() const { return finished_; }

 private:
  void OnAccept(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  void Send(std::shared_ptr<const std::string> frame);
  void Close(boost::beast::websocket::close_code code, std::string reason);
  void Finish(std::string_view reason);

  // Frames queued while a write is in flight go out together (CoalescingStream).
  boost::beast::websocket::stream<CoalescingStream<Stream>> ws_;
  SteppedReadBuffer buffer_;
  GatewayContext& ctx_;
  std::unique_ptr<ChatConnection> chat_;
  ConnectionIdentity identity_;
  boost::beast::websocket::close_reason close_reason_;
  bool closing_ = false;
  bool finished_ = false;
  size_t lane_;
};

}  // namespace chat::gateway
