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
#include <vector>

#include "common/metrics.h"
#include "domain/backends.h"
#include "domain/frame_codec.h"
#include "domain/send_limiter.h"
#include "domain/seq_orderer.h"

namespace chat::gateway {

struct SlashCommand;

struct ConnectionLimits {
  size_t text_max_bytes = 4096;
  uint32_t heartbeat_seconds = 15;
  double send_rate_per_second = 10;
  double send_burst = 20;
  size_t max_rooms = 100;
  uint32_t replay_max = 1000;
  // A resume replays at most this many bytes (half the outbound queue): the newest that fit.
  size_t replay_max_bytes = 512 * 1024;
  std::chrono::milliseconds refetch_after{2000};
  // Requests in a row that come back before their retryAfterMs, after which a flooding connection is
  // closed with 1008.
  uint32_t flood_close_after = 10;
  // Looser buckets for the other frames: joins (join, resume, openDm), typing, read, queries (history,
  // presence).
  double join_rate_per_second = 5, join_burst = 20;
  double typing_rate_per_second = 5, typing_burst = 10;
  double read_rate_per_second = 10, read_burst = 30;
  double query_rate_per_second = 10, query_burst = 30;
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
  Counter& FrameOut(chat::v1::ServerFrame::BodyCase type);
  Counter& Error(std::string_view code);

  MetricsRegistry& registry;
  // Made once per frame type, read without locks.
  std::map<int, Counter*> frames_in_by_type;
  std::map<int, Counter*> frames_out_by_type;
  Counter& frames_bad;
  Counter& rate_limited;
  Counter& duplicates_dropped;
  Counter& gap_fetches;
  Counter& resumes;
  Counter& replayed;
  Counter& sends_acked;
  Counter& flood_closes;
  Counter& admin_commands;
};

class ChatConnection {
 public:
  using Post = std::function<void(std::function<void()>)>;
  using PostAfter = std::function<void(std::chrono::milliseconds, std::function<void()>)>;
  using Send = std::function<void(std::shared_ptr<const std::string>)>;
  using CloseFn = std::function<void(uint16_t code, std::string reason)>;

  // How the connection reaches its socket; every function runs on the connection's thread.
  struct Io {
    Post post;             // later, unless the connection is gone
    PostAfter post_after;  // after a delay, unless the connection is gone
    Send send;             // queue a frame for the client
    CloseFn close;         // close with a WebSocket close code
    std::weak_ptr<RoomMember> self;
    // Queue a frame that waits for the next write instead of starting one: the sender's own copy of a
    // message whose ack is still to come, so that both go out in one socket write. Unset: `send`.
    Send send_with_next;
    // Queue the frame that ends this turn's output (the welcome, a send's ack), written at once on this
    // thread's stack together with whatever waits for it, instead of through an async write and its posted
    // completion. Not for a turn that sends more frames after it (they would each make a write).
    // Unset: `send`.
    Send send_last;
  };

  ChatConnection(ConnectionIdentity identity, ConnectionLimits limits, MessagesBackend& messages,
                 PresenceBackend& presence, RoomFanout& fanout, ConnectionMetrics& metrics, Io io);

  // Reports the connection to presence and sends `welcome`.
  void Start();
  // One text frame from the client.
  void OnText(std::string_view text);
  // A binary frame: not part of the JSON protocol.
  void OnBinary();
  // Joins a room the user was invited to (a DM someone opened); no-op if joined or joining.
  void JoinInvited(const std::string& room);
  // A frame fanned out to the rooms this connection is in.
  void OnDelivery(const Delivery& delivery);
  // Leaves every room and reports the disconnect. Idempotent.
  void Close();

  const ConnectionIdentity& identity() const { return identity_; }
  bool InRoom(const std::string& room) const;

 private:
  enum class RoomState { kJoining, kJoined };
  struct Room {
    RoomState state = RoomState::kJoining;
    SeqOrderer order;
    // This connection said it was typing here and has not cleared it: a send clears it at presence.
    bool typing = false;
  };

  // `last`: the turn's last frame (Io::send_last).
  void Reply(std::optional<uint32_t> ref, chat::v1::ServerFrame frame, bool last = false);
  void ReplyError(std::optional<uint32_t> ref, const absl::Status& status, uint32_t retry_after_ms = 0);
  // join and resume: subscribe, check access and read the last seq, replay (resume), answer, go live.
  void HandleJoin(std::optional<uint32_t> ref, const std::string& room, std::optional<int64_t> resume_after);
  void FinishJoin(std::optional<uint32_t> ref, const std::string& room, std::optional<int64_t> resume_after,
                  int64_t last_seq, int64_t start_after, uint32_t replayed, bool truncated);
  void Apply(const std::string& room, SeqOrderer::Step step);
  // Queues a room message: with the next write when it is this connection's own send, not acked yet.
  void SendMessageFrame(std::shared_ptr<const std::string> bytes, const MessageOrigin* origin);
  void FetchGap(const std::string& room, GapFetch gap);
  void HandleLeave(std::optional<uint32_t> ref, const chat::v1::LeaveRoom& leave);
  void HandleSend(std::optional<uint32_t> ref, const chat::v1::SendMessage& send);
  void HandleHistory(std::optional<uint32_t> ref, const chat::v1::GetHistory& history);
  void HandleTyping(std::optional<uint32_t> ref, const chat::v1::SetTyping& typing);
  void HandlePresence(std::optional<uint32_t> ref, const chat::v1::GetPresence& query);
  void ClearTyping(const std::string& room);
  void HandleRead(std::optional<uint32_t> ref, const chat::v1::MarkRead& read);
  void HandleOpenDm(std::optional<uint32_t> ref, const chat::v1::OpenDm& dm);
  void HandleCommand(std::optional<uint32_t> ref, const std::string& room, const SlashCommand& cmd);
  // Sends a request to messages and answers the ref with a notice on success, an error otherwise.
  void CallForNotice(std::optional<uint32_t> ref, chat::v1::GatewayRequest req, std::string notice);
  void Notice(std::optional<uint32_t> ref, std::string text);
  // Takes a token from the bucket, or answers rate_limited.
  bool Admit(SendLimiter& bucket, std::optional<uint32_t> ref);
  void ExitRoom(const std::string& room);
  chat::v1::ConnectionRef Ref() const;

  ConnectionIdentity identity_;
  ConnectionLimits limits_;
  MessagesBackend& messages_;
  PresenceBackend& presence_;
  RoomFanout& fanout_;
  ConnectionMetrics& metrics_;
  Post post_;
  PostAfter post_after_;
  Send send_;
  CloseFn close_;
  std::weak_ptr<RoomMember> self_;
  Send send_with_next_;
  Send send_last_;
  SendLimiter limiter_;
  SendLimiter join_limiter_;
  SendLimiter typing_limiter_;
  SendLimiter read_limiter_;
  SendLimiter query_limiter_;
  uint32_t refused_in_a_row_ = 0;
  SendLimiter::Clock::time_point retry_at_{};
  bool closed_by_server_ = false;
  std::map<std::string, Room> rooms_;
  // clientIds of this connection's sends that have no answer yet (a few at most).
  std::vector<std::string> sends_in_flight_;
  bool closed_ = false;
};

}  // namespace chat::gateway
