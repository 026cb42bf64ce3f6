#include "domain/chat_connection.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/error_codes.h"
#include "common/log.h"
#include "common/text_rules.h"
#include "common/wall_clock.h"
#include "domain/slash_command.h"

namespace chat::gateway {
namespace {

using chat::v1::ClientFrame;
using chat::v1::ServerFrame;

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
    case ClientFrame::kPresence:
      return "presence";
    default:
      return "none";
  }
}

}  // namespace

ConnectionMetrics::ConnectionMetrics(MetricsRegistry& m)
    : registry(m),
      frames_bad(m.GetCounter("chat_frames_invalid_total", "Client frames refused as malformed")),
      rate_limited(
          m.GetCounter("chat_send_rate_limited_total", "Sends refused by the per-connection rate limit")),
      duplicates_dropped(m.GetCounter("chat_delivery_duplicates_dropped_total",
                                      "Messages not sent to a connection because it had them already")),
      gap_fetches(m.GetCounter("chat_gap_fetches_total", "Fetches of missing messages from storage",
                               {{"level", "connection"}})),
      resumes(m.GetCounter("chat_resumes_total", "Resume requests served")),
      replayed(m.GetCounter("chat_resume_replayed_messages_total", "Messages replayed by resume")),
      sends_acked(m.GetCounter("chat_sends_acked_total", "Sends answered with an ack")),
      flood_closes(m.GetCounter("chat_flood_disconnects_total", "Connections closed with 1008 for flooding")),
      admin_commands(m.GetCounter("chat_admin_commands_total", "Admin slash commands run")) {
  const auto* in = chat::v1::ClientFrame::descriptor()->FindOneofByName("body");
  for (int i = 0; i < in->field_count(); ++i) {
    frames_in_by_type[in->field(i)->number()] = &m.GetCounter(
        "chat_frames_in_total", "Client frames received by type", {{"type", in->field(i)->json_name()}});
  }
  const auto* out = chat::v1::ServerFrame::descriptor()->FindOneofByName("body");
  for (int i = 0; i < out->field_count(); ++i) {
    frames_out_by_type[out->field(i)->number()] =
        &m.GetCounter("chat_frames_out_by_type_total", "Frames queued for clients by type",
                      {{"type", out->field(i)->json_name()}});
  }
}

Counter& ConnectionMetrics::FrameIn(ClientFrame::BodyCase type) {
  auto it = frames_in_by_type.find(static_cast<int>(type));
  if (it != frames_in_by_type.end()) return *it->second;
  return registry.GetCounter("chat_frames_in_total", "Client frames received by type",
                             {{"type", std::string(FrameTypeName(type))}});
}

Counter& ConnectionMetrics::FrameOut(ServerFrame::BodyCase type) {
  auto it = frames_out_by_type.find(static_cast<int>(type));
  if (it != frames_out_by_type.end()) return *it->second;
  return registry.GetCounter("chat_frames_out_by_type_total", "Frames queued for clients by type",
                             {{"type", "none"}});
}

Counter& ConnectionMetrics::Error(std::string_view code) {
  return registry.GetCounter("chat_errors_total", "Error frames sent by code", {{"code", std::string(code)}});
}

ChatConnection::ChatConnection(ConnectionIdentity identity, ConnectionLimits limits,
                               MessagesBackend& messages, PresenceBackend& presence, RoomFanout& fanout,
                               ConnectionMetrics& metrics, Io io)
    : identity_(std::move(identity)),
      limits_(limits),
      messages_(messages),
      presence_(presence),
      fanout_(fanout),
      metrics_(metrics),
      post_(std::move(io.post)),
      post_after_(std::move(io.post_after)),
      send_(std::move(io.send)),
      close_(std::move(io.close)),
      self_(std::move(io.self)),
      send_with_next_(std::move(io.send_with_next)),
      send_last_(std::move(io.send_last)),
      limiter_(limits.send_rate_per_second, limits.send_burst),
      join_limiter_(limits.join_rate_per_second, limits.join_burst),
      typing_limiter_(limits.typing_rate_per_second, limits.typing_burst),
      read_limiter_(limits.read_rate_per_second, limits.read_burst),
      query_limiter_(limits.query_rate_per_second, limits.query_burst) {}

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
  Reply(std::nullopt, std::move(f), /*last=*/true);
}

void ChatConnection::Reply(std::optional<uint32_t> ref, ServerFrame frame, bool last) {
  if (ref) frame.set_ref(*ref);
  metrics_.FrameOut(frame.body_case()).Inc();
  auto bytes = std::make_shared<const std::string>(EncodeServerFrame(frame));
  if (last && send_last_) return send_last_(std::move(bytes));
  send_(std::move(bytes));
}

void ChatConnection::ReplyError(std::optional<uint32_t> ref, const absl::Status& status,
                                uint32_t retry_after_ms) {
  std::string_view code = ErrorCodeFor(status);
  metrics_.Error(code).Inc();
  metrics_.FrameOut(ServerFrame::kError).Inc();
  // Messages may quote input (the JSON parser's do): keep them valid UTF-8.
  send_(std::make_shared<const std::string>(
      EncodeServerFrame(ErrorFrame(ref, code, SanitizeUtf8(std::string(status.message())), retry_after_ms))));
}

bool ChatConnection::InRoom(const std::string& room) const {
  auto it = rooms_.find(room);
  return it != rooms_.end() && it->second.state == RoomState::kJoined;
}

void ChatConnection::OnBinary() {
  metrics_.frames_bad.Inc();
  ReplyError(std::nullopt, absl::InvalidArgumentError("binary frames are not part of the JSON protocol"));
}

void ChatConnection::OnText(std::string_view text) {
  if (closed_ || closed_by_server_) return;
  // The WebSocket layer closes with 1007 on invalid UTF-8 already; this keeps the logic safe on its own.
  if (!IsValidUtf8(text)) {
    metrics_.frames_bad.Inc();
    return ReplyError(std::nullopt, absl::InvalidArgumentError("frame is not valid UTF-8"));
  }
  ParsedFrame parsed = ParseClientFrame(text);
  if (!parsed.frame.ok()) {
    metrics_.frames_bad.Inc();
    return ReplyError(parsed.ref, parsed.frame.status());
  }
  const ClientFrame& f = *parsed.frame;
  metrics_.FrameIn(f.body_case()).Inc();
  switch (f.body_case()) {
    case ClientFrame::kJoin:
      if (!Admit(join_limiter_, parsed.ref)) return;
      return HandleJoin(parsed.ref, f.join().room(), std::nullopt);
    case ClientFrame::kResume:
      if (!Admit(join_limiter_, parsed.ref)) return;
      if (f.resume().after_seq() < 0) {
        return ReplyError(parsed.ref, absl::InvalidArgumentError("afterSeq is negative"));
      }
      metrics_.resumes.Inc();
      return HandleJoin(parsed.ref, f.resume().room(), f.resume().after_seq());
    case ClientFrame::kOpenDm:
      if (!Admit(join_limiter_, parsed.ref)) return;
      return HandleOpenDm(parsed.ref, f.open_dm());
    case ClientFrame::kRead:
      if (!Admit(read_limiter_, parsed.ref)) return;
      return HandleRead(parsed.ref, f.read());
    case ClientFrame::kLeave:
      return HandleLeave(parsed.ref, f.leave());
    case ClientFrame::kSend:
      return HandleSend(parsed.ref, f.send());
    case ClientFrame::kHistory:
      if (!Admit(query_limiter_, parsed.ref)) return;
      return HandleHistory(parsed.ref, f.history());
    case ClientFrame::kTyping:
      if (!Admit(typing_limiter_, parsed.ref)) return;
      return HandleTyping(parsed.ref, f.typing());
    case ClientFrame::kPresence:
      if (!Admit(query_limiter_, parsed.ref)) return;
      return HandlePresence(parsed.ref, f.presence());
    case ClientFrame::kPing: {
      ServerFrame pong;
      pong.mutable_pong();
      return Reply(parsed.ref, std::move(pong));
    }
    default:
      // read and openDm are part of protocol v1 but not served by this version yet.
      return ReplyError(parsed.ref, absl::InvalidArgumentError(
                                        absl::StrCat("'", std::string(FrameTypeName(f.body_case())),
                                                     "' is not supported by this gateway version yet")));
  }
}

namespace {

std::vector<SeqFrame> EncodeMessages(const chat::v1::HistoryPage& page) {
  std::vector<SeqFrame> frames;
  frames.reserve(page.messages_size());
  for (const auto& m : page.messages()) {
    ServerFrame f;
    *f.mutable_message() = m;
    frames.push_back(SeqFrame{m.seq(), std::make_shared<const std::string>(EncodeServerFrame(f)), nullptr});
  }
  return frames;
}

SeqOrderer::Options ConnectionOrderOptions(const ConnectionLimits& limits) {
  SeqOrderer::Options o;
  o.start_on_first_frame = false;  // live frames wait for the join answer
  o.fetch_limit = limits.replay_max;
  o.refetch_after = limits.refetch_after;
  return o;
}

}  // namespace

void ChatConnection::HandleJoin(std::optional<uint32_t> ref, const std::string& room,
                                std::optional<int64_t> resume_after) {
  if (auto st = ValidateRoomName(room); !st.ok()) return ReplyError(ref, st);
  auto it = rooms_.find(room);
  if (it != rooms_.end() && it->second.state == RoomState::kJoining) {
    return ReplyError(ref, absl::InvalidArgumentError("a join of this room is in progress"));
  }
  if (it != rooms_.end()) {
    // Joined already: start over, so the answer and the replay describe one consistent seam.
    ExitRoom(room);
  } else if (rooms_.size() >= limits_.max_rooms) {
    return ReplyError(ref, absl::InvalidArgumentError(
                               absl::StrCat("at most ", limits_.max_rooms, " rooms per connection")));
  }
  rooms_.emplace(room, Room{RoomState::kJoining, SeqOrderer(ConnectionOrderOptions(limits_))});

  // 1. Subscribe first: from the confirmation on, every committed message reaches this connection (held
  //    until the answer). 2. Then read access and the last seq, so nothing falls between the two.
  fanout_.Enter(
      room, identity_.connection_id, self_,
      [this, post = post_, ref, room, resume_after](absl::Status ready) {
        post([this, ref, room, resume_after, ready] {
          if (!rooms_.count(room)) return;  // left meanwhile
          if (!ready.ok()) {
            ExitRoom(room);
            return ReplyError(ref, absl::UnavailableError("cannot subscribe to the room now, retry"));
          }
          chat::v1::GatewayRequest req;
          req.mutable_join()->set_room(room);
          req.mutable_join()->set_user(identity_.user);
          messages_.Call(std::move(req), [this, post = post_, ref, room,
                                          resume_after](absl::StatusOr<chat::v1::GatewayReply> r) {
            post([this, ref, room, resume_after, r = std::move(r)] {
              if (!rooms_.count(room)) return;
              absl::Status st = Outcome(r);
              if (!st.ok()) {
                ExitRoom(room);
                return ReplyError(ref, st);
              }
              int64_t last_seq = r->joined().room().last_seq();
              if (!resume_after) return FinishJoin(ref, room, std::nullopt, last_seq, last_seq, 0, false);
              // Resume: replay what the client missed, the newest replay_max at most.
              int64_t after = std::min(*resume_after, last_seq);
              bool truncated = last_seq - after > static_cast<int64_t>(limits_.replay_max);
              chat::v1::GatewayRequest hreq;
              auto* h = hreq.mutable_history();
              h->set_room(room);
              h->set_user(identity_.user);
              h->set_replay(true);
              h->set_limit(limits_.replay_max);
              if (truncated) {
                h->set_before_seq(last_seq + 1);
              } else {
                h->set_after_seq(after);
              }
              messages_.Call(std::move(hreq), [this, post = post_, ref, room, resume_after, last_seq, after,
                                               truncated](absl::StatusOr<chat::v1::GatewayReply> hr) {
                post([this, ref, room, resume_after, last_seq, after, truncated, hr = std::move(hr)] {
                  if (!rooms_.count(room)) return;
                  absl::Status hst = Outcome(hr);
                  if (!hst.ok()) {
                    ExitRoom(room);
                    return ReplyError(ref, hst);
                  }
                  int64_t start_after = truncated ? last_seq - limits_.replay_max : after;
                  std::vector<SeqFrame> frames;
                  for (auto& f : EncodeMessages(hr->history().page())) {
                    if (f.seq > start_after) frames.push_back(std::move(f));
                  }
                  // The replay must fit the outbound queue with room to spare, or the client would be
                  // cut off (1013) on every resume: keep the newest that fit, and say truncated.
                  size_t bytes = 0, keep_from = frames.size();
                  while (keep_from > 0 &&
                         bytes + frames[keep_from - 1].bytes->size() <= limits_.replay_max_bytes) {
                    bytes += frames[--keep_from].bytes->size();
                  }
                  bool cut = keep_from > 0;
                  uint32_t replayed = 0;
                  for (size_t i = keep_from; i < frames.size(); ++i) {
                    send_(frames[i].bytes);
                    ++replayed;
                  }
                  if (!frames.empty()) start_after = frames.back().seq;
                  metrics_.replayed.Inc(replayed);
                  FinishJoin(ref, room, resume_after, std::max(last_seq, start_after), start_after, replayed,
                             truncated || cut);
                });
              });
            });
          });
        });
      });
}

void ChatConnection::FinishJoin(std::optional<uint32_t> ref, const std::string& room,
                                std::optional<int64_t> resume_after, int64_t last_seq, int64_t start_after,
                                uint32_t replayed, bool truncated) {
  chat::v1::PresenceRequest preq;
  *preq.mutable_entered()->mutable_conn() = Ref();
  preq.mutable_entered()->set_room(room);
  presence_.Call(std::move(preq), [this, post = post_, ref, room, resume_after, last_seq, start_after,
                                   replayed, truncated](absl::StatusOr<chat::v1::PresenceReply> pr) {
    post([this, ref, room, resume_after, last_seq, start_after, replayed, truncated, pr = std::move(pr)] {
      auto it = rooms_.find(room);
      if (it == rooms_.end()) return;
      std::vector<std::string> online;
      if (pr.ok() && !pr->has_error()) {
        online.assign(pr->online().users().begin(), pr->online().users().end());
      } else {
        // Presence being down must not stop chat: the list is just empty.
        log::Warn("presence enter failed", {{"conn", identity_.connection_id}, {"room", room}});
      }
      ServerFrame f;
      if (resume_after) {
        auto* r = f.mutable_resumed();
        r->set_room(room);
        r->set_last_seq(last_seq);
        r->set_replayed(replayed);
        r->set_truncated(truncated);
        for (auto& u : online) r->add_online(u);
      } else {
        auto* j = f.mutable_joined();
        j->set_room(room);
        j->set_last_seq(last_seq);
        for (auto& u : online) j->add_online(u);
      }
      Reply(ref, std::move(f));
      it->second.state = RoomState::kJoined;
      // Live frames held since the subscription: what the client has is dropped, the rest follows.
      Apply(room, it->second.order.Start(start_after, SeqOrderer::Clock::now()));
    });
  });
}

void ChatConnection::JoinInvited(const std::string& room) {
  if (closed_ || closed_by_server_ || rooms_.count(room)) return;
  HandleJoin(std::nullopt, room, std::nullopt);
}

void ChatConnection::OnDelivery(const Delivery& d) {
  if (closed_) return;
  auto it = rooms_.find(d.room);
  if (it == rooms_.end()) return;
  if (d.seq == 0) {
    if (it->second.state == RoomState::kJoined) send_(d.bytes);
    return;
  }
  if (it->second.order.TakeNext(d.seq)) {
    metrics_.FrameOut(ServerFrame::kMessage).Inc();
    return SendMessageFrame(d.bytes, d.origin.get());
  }
  uint64_t dups = it->second.order.duplicates();
  auto step = it->second.order.OnLive(SeqFrame{d.seq, d.bytes, d.origin}, SeqOrderer::Clock::now());
  if (it->second.order.duplicates() != dups) metrics_.duplicates_dropped.Inc();
  Apply(d.room, std::move(step));
}

void ChatConnection::Apply(const std::string& room, SeqOrderer::Step step) {
  if (!step.deliver.empty()) metrics_.FrameOut(ServerFrame::kMessage).Inc(step.deliver.size());
  for (auto& f : step.deliver) SendMessageFrame(std::move(f.bytes), f.origin.get());
  if (step.fetch) FetchGap(room, *step.fetch);
}

// The sender's copy of its message arrives from Redis (after the commit and the publish) a moment
// before the ack (the reply sent after the publish): held, it goes out in the ack's write, one send
// and one wake-up of the client fewer. Any other write flushes it too, so it never waits past the
// next frame for this connection.
void ChatConnection::SendMessageFrame(std::shared_ptr<const std::string> bytes, const MessageOrigin* origin) {
  if (origin != nullptr && send_with_next_ && !sends_in_flight_.empty() && origin->sender == identity_.user &&
      std::find(sends_in_flight_.begin(), sends_in_flight_.end(), origin->client_id) !=
          sends_in_flight_.end()) {
    return send_with_next_(std::move(bytes));
  }
  send_(std::move(bytes));
}

void ChatConnection::FetchGap(const std::string& room, GapFetch gap) {
  metrics_.gap_fetches.Inc();
  chat::v1::GatewayRequest req;
  auto* h = req.mutable_history();
  h->set_room(room);
  h->set_user(identity_.user);
  h->set_after_seq(gap.after_seq);
  h->set_limit(gap.limit);
  h->set_replay(true);
  messages_.Call(std::move(req), [this, post = post_, room](absl::StatusOr<chat::v1::GatewayReply> r) {
    post([this, room, r = std::move(r)] {
      auto it = rooms_.find(room);
      if (it == rooms_.end()) return;
      auto now = SeqOrderer::Clock::now();
      if (!r.ok() || r->has_error()) {
        it->second.order.OnFetchFailed(now);
        post_after_(limits_.refetch_after, [this, room] {
          auto again = rooms_.find(room);
          if (again == rooms_.end()) return;
          Apply(room, again->second.order.Retry(SeqOrderer::Clock::now()));
        });
        return;
      }
      Apply(room, it->second.order.OnFetched(EncodeMessages(r->history().page()), now));
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
  if (!Admit(limiter_, ref)) return;
  if (auto cmd = ParseSlashCommand(send.text())) {
    if (!identity_.admin)
      return ReplyError(ref, absl::PermissionDeniedError("slash commands are for admins"));
    if (!cmd->ok()) return ReplyError(ref, cmd->status());
    return HandleCommand(ref, send.room(), **cmd);
  }
  chat::v1::GatewayRequest req;
  auto* s = req.mutable_send();
  s->set_room(send.room());
  s->set_sender(identity_.user);
  s->set_client_id(send.client_id());
  s->set_text(send.text());
  sends_in_flight_.push_back(send.client_id());
  messages_.Call(std::move(req), [this, post = post_, ref,
                                  client_id = send.client_id()](absl::StatusOr<chat::v1::GatewayReply> r) {
    post([this, ref, client_id, r = std::move(r)] {
      if (auto at = std::find(sends_in_flight_.begin(), sends_in_flight_.end(), client_id);
          at != sends_in_flight_.end()) {
        sends_in_flight_.erase(at);
      }
      absl::Status st = Outcome(r);
      if (!st.ok()) return ReplyError(ref, st);
      metrics_.sends_acked.Inc();
      Reply(ref, AckFrame(r->sent()), /*last=*/true);
      if (!r->sent().duplicate()) ClearTyping(r->sent().message().room());
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
      absl::Status st = Outcome(r);
      if (!st.ok()) return ReplyError(ref, st);
      ServerFrame f;
      *f.mutable_history() = std::move(*r->mutable_history()->mutable_page());
      Reply(ref, std::move(f));
    });
  });
}

void ChatConnection::HandleTyping(std::optional<uint32_t> ref, const chat::v1::SetTyping& typing) {
  if (auto st = ValidateRoomName(typing.room()); !st.ok()) return ReplyError(ref, st);
  if (!InRoom(typing.room()))
    return ReplyError(ref, absl::PermissionDeniedError("join the room before typing"));
  chat::v1::PresenceRequest req;
  auto* t = req.mutable_typing();
  *t->mutable_conn() = Ref();
  t->set_room(typing.room());
  t->set_active(typing.active());
  rooms_.find(typing.room())->second.typing = typing.active();
  // Presence throttles and publishes; typing is best effort, so there is no answer unless it fails.
  presence_.Call(std::move(req), [this, post = post_, ref](absl::StatusOr<chat::v1::PresenceReply> r) {
    absl::Status st = Outcome(r);
    if (st.ok()) return;
    post([this, ref, st] { ReplyError(ref, st); });
  });
}

void ChatConnection::ClearTyping(const std::string& room) {
  // Only a connection that typed has anything to clear: no presence call per message otherwise.
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !it->second.typing) return;
  it->second.typing = false;
  chat::v1::PresenceRequest req;
  auto* t = req.mutable_typing();
  *t->mutable_conn() = Ref();
  t->set_room(room);
  t->set_clear(true);
  presence_.Call(std::move(req), [](absl::StatusOr<chat::v1::PresenceReply>) {});
}

void ChatConnection::HandlePresence(std::optional<uint32_t> ref, const chat::v1::GetPresence& query) {
  if (!query.room().empty()) {
    if (auto st = ValidateRoomName(query.room()); !st.ok()) return ReplyError(ref, st);
  }
  if (query.users_size() > 100)
    return ReplyError(ref, absl::InvalidArgumentError("at most 100 users per query"));
  chat::v1::PresenceRequest req;
  *req.mutable_status() = query;
  presence_.Call(std::move(req), [this, post = post_, ref](absl::StatusOr<chat::v1::PresenceReply> r) {
    post([this, ref, r = std::move(r)]() mutable {
      absl::Status st = Outcome(r);
      if (!st.ok()) return ReplyError(ref, st);
      ServerFrame f;
      *f.mutable_presence_status() = std::move(*r->mutable_status());
      Reply(ref, std::move(f));
    });
  });
}

bool ChatConnection::Admit(SendLimiter& bucket, std::optional<uint32_t> ref) {
  uint32_t retry_ms = 0;
  auto now = SendLimiter::Clock::now();
  if (bucket.TryAcquire(now, retry_ms)) {
    refused_in_a_row_ = 0;
    return true;
  }
  metrics_.rate_limited.Inc();
  // A client that waits the retryAfterMs it was given is not flooding, even if it is refused again (a
  // few requests in flight compete for one token). One that comes back before that time is warned, and
  // after flood_close_after such strikes in a row it is cut off.
  bool ignored_advice = now + std::chrono::milliseconds(5) < retry_at_;
  retry_at_ = now + std::chrono::milliseconds(retry_ms);
  refused_in_a_row_ = ignored_advice ? refused_in_a_row_ + 1 : 0;
  if (refused_in_a_row_ >= limits_.flood_close_after) {
    // Warned and still flooding: cut off (policy violation).
    metrics_.flood_closes.Inc();
    log::Warn("flooding connection closed", {{"conn", identity_.connection_id}, {"user", identity_.user}});
    close_(1008, "flooding");
    closed_by_server_ = true;
    return false;
  }
  ReplyError(ref, absl::ResourceExhaustedError("too many requests, slow down"), retry_ms);
  return false;
}

void ChatConnection::HandleRead(std::optional<uint32_t> ref, const chat::v1::MarkRead& read) {
  if (auto st = ValidateRoomName(read.room()); !st.ok()) return ReplyError(ref, st);
  if (!InRoom(read.room())) return ReplyError(ref, absl::PermissionDeniedError("join the room first"));
  if (read.seq() <= 0) return ReplyError(ref, absl::InvalidArgumentError("seq must be positive"));
  chat::v1::GatewayRequest req;
  auto* r = req.mutable_read();
  r->set_room(read.room());
  r->set_user(identity_.user);
  r->set_seq(read.seq());
  // Everyone in the room (this connection too) hears of it as a `read` event; no answer otherwise.
  messages_.Call(std::move(req), [this, post = post_, ref](absl::StatusOr<chat::v1::GatewayReply> reply) {
    absl::Status st = Outcome(reply);
    if (st.ok()) return;
    post([this, ref, st] { ReplyError(ref, st); });
  });
}

void ChatConnection::HandleOpenDm(std::optional<uint32_t> ref, const chat::v1::OpenDm& dm) {
  if (auto st = ValidateUserId(dm.user()); !st.ok()) return ReplyError(ref, st);
  if (dm.user() == identity_.user)
    return ReplyError(ref, absl::InvalidArgumentError("a DM needs another user"));
  chat::v1::GatewayRequest req;
  req.mutable_open_dm()->set_user(identity_.user);
  req.mutable_open_dm()->set_peer(dm.user());
  messages_.Call(std::move(req), [this, post = post_, ref](absl::StatusOr<chat::v1::GatewayReply> r) {
    post([this, ref, r = std::move(r)] {
      absl::Status st = Outcome(r);
      if (!st.ok()) return ReplyError(ref, st);
      // The room exists and we are a member: the usual join gives the answer.
      HandleJoin(ref, r->room().room(), std::nullopt);
    });
  });
}

void ChatConnection::Notice(std::optional<uint32_t> ref, std::string text) {
  ServerFrame f;
  f.mutable_notice()->set_text(std::move(text));
  *f.mutable_notice()->mutable_ts() = WallClockNow();
  Reply(ref, std::move(f));
}

void ChatConnection::CallForNotice(std::optional<uint32_t> ref, chat::v1::GatewayRequest req,
                                   std::string notice) {
  messages_.Call(std::move(req), [this, post = post_, ref, notice](absl::StatusOr<chat::v1::GatewayReply> r) {
    post([this, ref, notice, r = std::move(r)] {
      absl::Status st = Outcome(r);
      if (!st.ok()) return ReplyError(ref, st);
      Notice(ref, notice);
    });
  });
}

void ChatConnection::HandleCommand(std::optional<uint32_t> ref, const std::string& room,
                                   const SlashCommand& cmd) {
  metrics_.admin_commands.Inc();
  log::Info("admin command", {{"admin", identity_.user}, {"room", room}, {"target", cmd.user}});
  chat::v1::GatewayRequest req;
  switch (cmd.kind) {
    case SlashCommand::Kind::kKick:
      req.mutable_control()->set_kick_user(cmd.user);
      return CallForNotice(ref, std::move(req), "kicked " + cmd.user);
    case SlashCommand::Kind::kMute: {
      auto* m = req.mutable_mute();
      m->set_room("*");
      m->set_user(cmd.user);
      m->set_seconds(cmd.seconds);
      m->set_by(identity_.user);
      return CallForNotice(ref, std::move(req),
                           cmd.seconds > 0 ? absl::StrCat("muted ", cmd.user, " for ", cmd.seconds, " s")
                                           : "muted " + cmd.user);
    }
    case SlashCommand::Kind::kUnmute:
      req.mutable_unmute()->set_room("*");
      req.mutable_unmute()->set_user(cmd.user);
      return CallForNotice(ref, std::move(req), "unmuted " + cmd.user);
    case SlashCommand::Kind::kClear:
      req.mutable_clear()->set_room(room);
      req.mutable_clear()->set_by(identity_.user);
      return CallForNotice(ref, std::move(req), "cleared " + room);
    case SlashCommand::Kind::kBroadcast: {
      auto* n = req.mutable_control()->mutable_broadcast();
      n->set_text(cmd.text);
      n->set_from(identity_.user);
      *n->mutable_ts() = WallClockNow();
      return CallForNotice(ref, std::move(req), "broadcast sent");
    }
    case SlashCommand::Kind::kStats: {
      chat::v1::PresenceRequest preq;
      preq.mutable_cluster_stats();
      presence_.Call(std::move(preq), [this, post = post_, ref](absl::StatusOr<chat::v1::PresenceReply> r) {
        post([this, ref, r = std::move(r)] {
          absl::Status st = Outcome(r);
          if (!st.ok()) return ReplyError(ref, st);
          ServerFrame f;
          *f.mutable_stats() = r->stats();
          Reply(ref, std::move(f));
        });
      });
      return;
    }
  }
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
