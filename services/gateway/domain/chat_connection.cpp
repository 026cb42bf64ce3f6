#include "domain/chat_connection.h"

#include "absl/strings/str_cat.h"
#include "common/error_codes.h"
#include "common/log.h"
#include "common/text_rules.h"

namespace chat::gateway {
namespace {

using chat::v1::ClientFrame;
using chat::v1::ServerFrame;

absl::Status ReplyStatus(const chat::v1::Error& e) { return StatusFromErrorCode(e.code(), e.message()); }

std::string_view FrameTypeName(ClientFrame::BodyCase c) {
  switch (c) {
    case ClientFrame::kJoin:
      return "join";
    case ClientFrame::kSend:
      return "send";
    case ClientFrame::kTyping:
      return "typing";
    case ClientFrame::kHistory:
      return "history";
    case ClientFrame::kResume:
      return "resume";
    case ClientFrame::kRead:
      return "read";
    case ClientFrame::kOpenDm:
      return "open_dm";
    case ClientFrame::kLeave:
      return "leave";
    case ClientFrame::kPing:
      return "ping";
    default:
      return "none";
  }
}

}  // namespace

ConnectionMetrics::ConnectionMetrics(MetricsRegistry& m)
    : registry(m),
      frames_bad(m.GetCounter("chat_frames_invalid_total", "Client frames refused as malformed")),
      rate_limited(
          m.GetCounter("chat_send_rate_limited_total", "Sends refused by the per-connection rate limit")) {}

Counter& ConnectionMetrics::FrameIn(ClientFrame::BodyCase type) {
  return registry.GetCounter("chat_frames_in_total", "Client frames received by type",
                             {{"type", std::string(FrameTypeName(type))}});
}

Counter& ConnectionMetrics::Error(std::string_view code) {
  return registry.GetCounter("chat_errors_total", "Error frames sent by code", {{"code", std::string(code)}});
}

ChatConnection::ChatConnection(ConnectionIdentity identity, ConnectionLimits limits,
                               MessagesBackend& messages, PresenceBackend& presence, RoomFanout& fanout,
                               ConnectionMetrics& metrics, Post post, Send send,
                               std::weak_ptr<RoomMember> self)
    : identity_(std::move(identity)),
      limits_(limits),
      messages_(messages),
      presence_(presence),
      fanout_(fanout),
      metrics_(metrics),
      post_(std::move(post)),
      send_(std::move(send)),
      self_(std::move(self)),
      limiter_(limits.send_rate_per_second, limits.send_burst) {}

chat::v1::ConnectionRef ChatConnection::Ref() const {
  chat::v1::ConnectionRef r;
  r.set_gateway(identity_.gateway_id);
  r.set_connection(identity_.connection_id);
  r.set_user(identity_.user);
  return r;
}

void ChatConnection::Start() {
  chat::v1::PresenceRequest req;
  *req.mutable_opened()->mutable_conn() = Ref();
  presence_.Call(std::move(req), [conn = identity_.connection_id](absl::StatusOr<chat::v1::PresenceReply> r) {
    if (!r.ok() || r->has_error()) {
      log::Warn("presence open failed",
                {{"conn", conn}, {"error", r.ok() ? r->error().message() : r.status().ToString()}});
    }
  });
  ServerFrame f;
  auto* w = f.mutable_welcome();
  w->set_user(identity_.user);
  w->set_connection_id(identity_.connection_id);
  w->set_heartbeat_seconds(limits_.heartbeat_seconds);
  Reply(std::nullopt, std::move(f));
}

void ChatConnection::Reply(std::optional<uint32_t> ref, ServerFrame frame) {
  if (ref) frame.set_ref(*ref);
  send_(std::make_shared<const std::string>(EncodeServerFrame(frame)));
}

void ChatConnection::ReplyError(std::optional<uint32_t> ref, const absl::Status& status,
                                uint32_t retry_after_ms) {
  std::string_view code = ErrorCodeFor(status);
  metrics_.Error(code).Inc();
  send_(std::make_shared<const std::string>(
      EncodeServerFrame(ErrorFrame(ref, code, std::string(status.message()), retry_after_ms))));
}

bool ChatConnection::InRoom(const std::string& room) const {
  auto it = rooms_.find(room);
  return it != rooms_.end() && it->second == RoomState::kJoined;
}

void ChatConnection::OnBinary() {
  metrics_.frames_bad.Inc();
  ReplyError(std::nullopt, absl::InvalidArgumentError("binary frames are not part of the JSON protocol"));
}

void ChatConnection::OnText(std::string_view text) {
  if (closed_) return;
  ParsedFrame parsed = ParseClientFrame(text);
  if (!parsed.frame.ok()) {
    metrics_.frames_bad.Inc();
    return ReplyError(parsed.ref, parsed.frame.status());
  }
  const ClientFrame& f = *parsed.frame;
  metrics_.FrameIn(f.body_case()).Inc();
  switch (f.body_case()) {
    case ClientFrame::kJoin:
      return HandleJoin(parsed.ref, f.join());
    case ClientFrame::kLeave:
      return HandleLeave(parsed.ref, f.leave());
    case ClientFrame::kSend:
      return HandleSend(parsed.ref, f.send());
    case ClientFrame::kHistory:
      return HandleHistory(parsed.ref, f.history());
    case ClientFrame::kPing: {
      ServerFrame pong;
      pong.mutable_pong();
      return Reply(parsed.ref, std::move(pong));
    }
    default:
      // typing, resume, read and openDm are part of protocol v1 but not served by this version yet.
      return ReplyError(parsed.ref, absl::InvalidArgumentError(
                                        absl::StrCat("'", std::string(FrameTypeName(f.body_case())),
                                                     "' is not supported by this gateway version yet")));
  }
}

void ChatConnection::HandleJoin(std::optional<uint32_t> ref, const chat::v1::JoinRoom& join) {
  const std::string room = join.room();
  if (auto st = ValidateRoomName(room); !st.ok()) return ReplyError(ref, st);
  auto it = rooms_.find(room);
  if (it != rooms_.end() && it->second == RoomState::kJoining) {
    return ReplyError(ref, absl::InvalidArgumentError("a join of this room is in progress"));
  }
  if (it == rooms_.end() && rooms_.size() >= limits_.max_rooms) {
    return ReplyError(ref, absl::InvalidArgumentError(
                               absl::StrCat("at most ", limits_.max_rooms, " rooms per connection")));
  }
  bool rejoin = it != rooms_.end();
  if (!rejoin) rooms_[room] = RoomState::kJoining;

  chat::v1::GatewayRequest req;
  req.mutable_join()->set_room(room);
  req.mutable_join()->set_user(identity_.user);
  messages_.Call(std::move(req), [this, post = post_, ref, room,
                                  rejoin](absl::StatusOr<chat::v1::GatewayReply> r) {
    post([this, ref, room, rejoin, r = std::move(r)]() mutable {
      if (!rooms_.count(room)) return;  // left meanwhile
      absl::Status st = r.ok() ? (r->has_error() ? ReplyStatus(r->error()) : absl::OkStatus()) : r.status();
      if (!st.ok()) {
        if (!rejoin) rooms_.erase(room);
        return ReplyError(ref, st);
      }
      chat::v1::RoomInfo info = r->joined().room();
      // Subscribe (or join the subscription) before answering, so every message committed after the
      // answer reaches this connection.
      fanout_.Enter(
          room, identity_.connection_id, self_, [this, post = post_, ref, room, info](absl::Status ready) {
            post([this, ref, room, info, ready] {
              if (!rooms_.count(room)) return;
              if (!ready.ok()) {
                ExitRoom(room);
                return ReplyError(ref, absl::UnavailableError("cannot subscribe to the room now, retry"));
              }
              chat::v1::PresenceRequest preq;
              *preq.mutable_entered()->mutable_conn() = Ref();
              preq.mutable_entered()->set_room(room);
              presence_.Call(std::move(preq), [this, post = post_, ref, room,
                                               info](absl::StatusOr<chat::v1::PresenceReply> pr) {
                post([this, ref, room, info, pr = std::move(pr)] {
                  if (!rooms_.count(room)) return;
                  rooms_[room] = RoomState::kJoined;
                  ServerFrame f;
                  auto* j = f.mutable_joined();
                  j->set_room(room);
                  j->set_last_seq(info.last_seq());
                  if (pr.ok() && !pr->has_error()) {
                    for (const auto& u : pr->online().users()) j->add_online(u);
                  } else {
                    // Presence being down must not stop chat: the list is just empty.
                    log::Warn("presence enter failed", {{"conn", identity_.connection_id}, {"room", room}});
                  }
                  Reply(ref, std::move(f));
                });
              });
            });
          });
    });
  });
}

void ChatConnection::ExitRoom(const std::string& room) {
  if (rooms_.erase(room) == 0) return;
  fanout_.Exit(room, identity_.connection_id);
  chat::v1::PresenceRequest req;
  *req.mutable_exited()->mutable_conn() = Ref();
  req.mutable_exited()->set_room(room);
  presence_.Call(std::move(req), [](absl::StatusOr<chat::v1::PresenceReply>) {});
}

void ChatConnection::HandleLeave(std::optional<uint32_t> ref, const chat::v1::LeaveRoom& leave) {
  if (auto st = ValidateRoomName(leave.room()); !st.ok()) return ReplyError(ref, st);
  if (!rooms_.count(leave.room())) return ReplyError(ref, absl::NotFoundError("not in this room"));
  ExitRoom(leave.room());
  ServerFrame f;
  f.mutable_left()->set_room(leave.room());
  Reply(ref, std::move(f));
}

void ChatConnection::HandleSend(std::optional<uint32_t> ref, const chat::v1::SendMessage& send) {
  if (auto st = ValidateRoomName(send.room()); !st.ok()) return ReplyError(ref, st);
  if (!InRoom(send.room()))
    return ReplyError(ref, absl::PermissionDeniedError("join the room before sending"));
  if (auto st = ValidateClientId(send.client_id()); !st.ok()) return ReplyError(ref, st);
  if (send.text().empty()) return ReplyError(ref, absl::InvalidArgumentError("text is empty"));
  if (send.text().size() > limits_.text_max_bytes) {
    return ReplyError(ref,
                      absl::OutOfRangeError(absl::StrCat("text is over ", limits_.text_max_bytes, " bytes")));
  }
  if (!IsValidUtf8(send.text()))
    return ReplyError(ref, absl::InvalidArgumentError("text is not valid UTF-8"));
  uint32_t retry_ms = 0;
  if (!limiter_.TryAcquire(SendLimiter::Clock::now(), retry_ms)) {
    metrics_.rate_limited.Inc();
    return ReplyError(ref, absl::ResourceExhaustedError("too many messages, slow down"), retry_ms);
  }
  chat::v1::GatewayRequest req;
  auto* s = req.mutable_send();
  s->set_room(send.room());
  s->set_sender(identity_.user);
  s->set_client_id(send.client_id());
  s->set_text(send.text());
  messages_.Call(std::move(req), [this, post = post_, ref](absl::StatusOr<chat::v1::GatewayReply> r) {
    post([this, ref, r = std::move(r)] {
      absl::Status st = r.ok() ? (r->has_error() ? ReplyStatus(r->error()) : absl::OkStatus()) : r.status();
      if (!st.ok()) return ReplyError(ref, st);
      const auto& m = r->sent().message();
      ServerFrame f;
      auto* a = f.mutable_ack();
      a->set_room(m.room());
      a->set_seq(m.seq());
      a->set_id(m.id());
      *a->mutable_ts() = m.ts();
      a->set_duplicate(r->sent().duplicate());
      Reply(ref, std::move(f));
    });
  });
}

void ChatConnection::HandleHistory(std::optional<uint32_t> ref, const chat::v1::GetHistory& history) {
  if (auto st = ValidateRoomName(history.room()); !st.ok()) return ReplyError(ref, st);
  if (history.before_seq() < 0) return ReplyError(ref, absl::InvalidArgumentError("beforeSeq is negative"));
  chat::v1::GatewayRequest req;
  auto* h = req.mutable_history();
  h->set_room(history.room());
  h->set_user(identity_.user);
  h->set_before_seq(history.before_seq());
  h->set_limit(history.limit());
  messages_.Call(std::move(req), [this, post = post_, ref](absl::StatusOr<chat::v1::GatewayReply> r) {
    post([this, ref, r = std::move(r)]() mutable {
      absl::Status st = r.ok() ? (r->has_error() ? ReplyStatus(r->error()) : absl::OkStatus()) : r.status();
      if (!st.ok()) return ReplyError(ref, st);
      ServerFrame f;
      *f.mutable_history() = std::move(*r->mutable_history()->mutable_page());
      Reply(ref, std::move(f));
    });
  });
}

void ChatConnection::Close() {
  if (closed_) return;
  closed_ = true;
  std::vector<std::string> rooms;
  for (const auto& [room, state] : rooms_) rooms.push_back(room);
  for (const auto& room : rooms) ExitRoom(room);
  chat::v1::PresenceRequest req;
  *req.mutable_closed()->mutable_conn() = Ref();
  presence_.Call(std::move(req), [](absl::StatusOr<chat::v1::PresenceReply>) {});
}

}  // namespace chat::gateway
