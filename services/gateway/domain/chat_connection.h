#pragma once
// One client's conversation with the gateway, without sockets: parses frames, checks them, asks
// messages and presence over their streams, and answers. Runs on its connection's thread only; replies
// from backends come back through `post`, which drops them once the connection is gone.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/metrics.h"
#include "domain/backends.h"
#include "domain/frame_codec.h"
#include "domain/send_limiter.h"

namespace chat::gateway {

struct ConnectionLimits {
  size_t text_max_bytes = 4096;
  uint32_t heartbeat_seconds = 15;
  double send_rate_per_second = 10;
  double send_burst = 20;
  size_t max_rooms = 100;
};

struct ConnectionIdentity {
  std::string user;
  bool admin = false;
  std::string connection_id;
  std::string gateway_id;
};

// Counters the connection updates; owned by the gateway, shared by every connection.
struct ConnectionMetrics {
  explicit ConnectionMetrics(MetricsRegistry& m);
  Counter& FrameIn(chat::v1::ClientFrame::BodyCase type);
  Counter& Error(std::string_view code);

  MetricsRegistry& registry;
  Counter& frames_bad;
  Counter& rate_limited;
};

class ChatConnection {
 public:
  using Post = std::function<void(std::function<void()>)>;
  using Send = std::function<void(std::shared_ptr<const std::string>)>;

  ChatConnection(ConnectionIdentity identity, ConnectionLimits limits, MessagesBackend& messages,
                 PresenceBackend& presence, RoomFanout& fanout, ConnectionMetrics& metrics, Post post,
                 Send send, std::weak_ptr<RoomMember> self);

  // Reports the connection to presence and sends `welcome`.
  void Start();
  // One text frame from the client.
  void OnText(std::string_view text);
  // A binary frame: not part of the JSON protocol.
  void OnBinary();
  // Leaves every room and reports the disconnect. Idempotent.
  void Close();

  const ConnectionIdentity& identity() const { return identity_; }
  bool InRoom(const std::string& room) const;

 private:
  enum class RoomState { kJoining, kJoined };

  void Reply(std::optional<uint32_t> ref, chat::v1::ServerFrame frame);
  void ReplyError(std::optional<uint32_t> ref, const absl::Status& status, uint32_t retry_after_ms = 0);
  void HandleJoin(std::optional<uint32_t> ref, const chat::v1::JoinRoom& join);
  void HandleLeave(std::optional<uint32_t> ref, const chat::v1::LeaveRoom& leave);
  void HandleSend(std::optional<uint32_t> ref, const chat::v1::SendMessage& send);
  void HandleHistory(std::optional<uint32_t> ref, const chat::v1::GetHistory& history);
  void ExitRoom(const std::string& room);
  chat::v1::ConnectionRef Ref() const;

  ConnectionIdentity identity_;
  ConnectionLimits limits_;
  MessagesBackend& messages_;
  PresenceBackend& presence_;
  RoomFanout& fanout_;
  ConnectionMetrics& metrics_;
  Post post_;
  Send send_;
  std::weak_ptr<RoomMember> self_;
  SendLimiter limiter_;
  std::map<std::string, RoomState> rooms_;
  bool closed_ = false;
};

}  // namespace chat::gateway
