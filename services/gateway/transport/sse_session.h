#pragma once
// The SSE side of the fallback for clients that cannot hold a WebSocket: `GET /api/events` keeps the
// response open and writes every ServerFrame the client would get over WebSocket as one event, driven
// by the same ChatConnection (so joins, resume, ordering, dedup, presence and the outbound limit are
// the same). The rooms to follow come with the request (`room=R&after=S&ref=N`, repeated); `after`
// (or the `Last-Event-ID` header the browser sends on its own reconnects) resumes after that seq.
// Lives on one io_context thread, like WebSocketSession; a comment line every heartbeat keeps proxies
// from timing it out and tells a dead client apart.

#include <array>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/chat_connection.h"
#include "domain/sse_positions.h"
#include "transport/client_session.h"

namespace chat::gateway {

class GatewayContext;

struct SseRoomStart {
  std::string room;
  std::optional<int64_t> after;  // resume after this seq; none: a plain join
  std::optional<uint32_t> ref;   // echoed on the room's joined/resumed/error
};

template <typename Stream>
class SseSession : public ClientSession, public std::enable_shared_from_this<SseSession<Stream>> {
 public:
  SseSession(Stream stream, GatewayContext& ctx, ConnectionIdentity identity, std::vector<SseRoomStart> rooms,
             size_t lane);
  ~SseSession() override;

  // Writes the response head, then welcome and a join or resume per room.
  void Run();
  void Deliver(std::shared_ptr<const Delivery> delivery) override;
  size_t lane() const override { return lane_; }
  void DeliverOnLane(const Delivery& delivery) override;
  void JoinFromAnyThread(std::string room) override;
  void DeliverRaw(std::shared_ptr<const std::string> frame) override;
  void CloseFromAnyThread(uint16_t code, std::string reason) override;
  bool finished() const { return finished_; }

 private:
  void Start();
  void DoRead();
  void Send(const std::string& frame);
  void Append(std::string event);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec);
  void ArmHeartbeat();
  void Close(uint16_t code, std::string reason);
  void Finish(std::string_view reason);

  Stream stream_;
  GatewayContext& ctx_;
  ConnectionIdentity identity_;
  std::vector<SseRoomStart> start_rooms_;
  std::unique_ptr<ChatConnection> chat_;
  SsePositions positions_;
  std::string pending_;  // events waiting for the write in flight
  std::string writing_;  // the bytes of the write in flight: many events go out in one write
  bool write_in_flight_ = false;
  boost::asio::steady_timer heartbeat_;
  std::array<char, 256> read_buf_{};
  bool closing_ = false;
  bool finished_ = false;
  size_t lane_;
  uint16_t close_code_ = 0;
};

}  // namespace chat::gateway
