#include "domain/presence_logic.h"

#include <optional>

#include "common/log.h"
#include "common/text_rules.h"

namespace chat::presence {
namespace {

absl::Status Unavailable() { return absl::UnavailableError("presence service is overloaded or stopping"); }

absl::Status ValidateConn(const chat::v1::ConnectionRef& c) {
  if (c.gateway().empty() || c.connection().empty()) {
    return absl::InvalidArgumentError("connection ref is incomplete");
  }
  if (c.gateway().find('|') != std::string::npos || c.connection().find('|') != std::string::npos) {
    return absl::InvalidArgumentError("connection ref holds '|'");
  }
  return ValidateUserId(c.user());
}

absl::Status Validate(const chat::v1::PresenceRequest& req) {
  using R = chat::v1::PresenceRequest;
  switch (req.body_case()) {
    case R::kOpened:
      return ValidateConn(req.opened().conn());
    case R::kClosed:
      return ValidateConn(req.closed().conn());
    case R::kEntered:
      if (auto st = ValidateConn(req.entered().conn()); !st.ok()) return st;
      return ValidateRoomName(req.entered().room());
    case R::kExited:
      if (auto st = ValidateConn(req.exited().conn()); !st.ok()) return st;
      return ValidateRoomName(req.exited().room());
    case R::kHeartbeat:
      if (req.heartbeat().gateway().empty() || req.heartbeat().gateway().find('|') != std::string::npos) {
        return absl::InvalidArgumentError("bad heartbeat gateway");
      }
      return absl::OkStatus();
    case R::kTyping:
      if (auto st = ValidateConn(req.typing().conn()); !st.ok()) return st;
      return ValidateRoomName(req.typing().room());
    case R::kClusterStats:
      return absl::OkStatus();
    case R::kStatus:
      if (!req.status().room().empty()) {
        if (auto st = ValidateRoomName(req.status().room()); !st.ok()) return st;
      }
      if (req.status().users_size() > 100) return absl::InvalidArgumentError("at most 100 users per query");
      for (const auto& u : req.status().users()) {
        if (auto st = ValidateUserId(u); !st.ok()) return st;
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("request has no body");
  }
}

// Events in one Redis pipeline at most. Redis runs a client's pipelined commands back to back, so this
// bounds how long a storm's batch holds up other clients (~66 us a script: ~2 ms).
constexpr size_t kEventBatchMax = 32;
constexpr size_t kEventQueueMax = 100000;

// The connection event a request carries, if it is one.
std::optional<ConnectionEvent> EventOf(const chat::v1::PresenceRequest& req) {
  using R = chat::v1::PresenceRequest;
  switch (req.body_case()) {
    case R::kOpened:
      return ConnectionEvent::Open(req.opened().conn());
    case R::kClosed:
      return ConnectionEvent::Close(req.closed().conn());
    case R::kEntered:
      return ConnectionEvent::Enter(req.entered().conn(), req.entered().room());
    case R::kExited:
      return ConnectionEvent::Exit(req.exited().conn(), req.exited().room());
    case R::kHeartbeat:
      return ConnectionEvent::Heartbeat(req.heartbeat());
    default:
      return std::nullopt;
  }
}

}  // namespace

PresenceLogic::PresenceLogic(PresencePool& pool, NowMs now_ms, MetricsRegistry& metrics)
    : pool_(pool),
      now_ms_(std::move(now_ms)),
      online_events_(metrics.GetCounter("chat_presence_events_total", "Presence changes published",
                                        {{"kind", "presence"}})),
      typing_events_(metrics.GetCounter("chat_presence_events_total", "Presence changes published",
                                        {{"kind", "typing"}})),
      publish_failures_(
          metrics.GetCounter("chat_presence_publish_failures_total", "Failed publishes of presence changes")),
      events_(
          pool, kEventBatchMax, kEventQueueMax,
          [this](PresenceStore& store, std::vector<PendingEvent>& batch) { RunEvents(store, batch); },
          [](PendingEvent& p) { p.done(Unavailable()); },
          &metrics.GetHistogram("chat_presence_event_batch_size", "Connection events per Redis round trip",
                                {1, 2, 4, 8, 16, 32})) {}

void PresenceLogic::Publish(PresenceStore& store, const std::vector<PresenceChange>& changes) {
  if (changes.empty()) return;
  for (const auto& c : changes) (c.event.has_typing() ? typing_events_ : online_events_).Inc();
  if (auto st = store.Publish(changes); !st.ok()) {
    publish_failures_.Inc();
    log::Warn("presence publish failed", {{"error", st.ToString()}});
  }
}

void PresenceLogic::RunEvents(PresenceStore& store, std::vector<PendingEvent>& batch) {
  std::vector<ConnectionEvent> events;
  events.reserve(batch.size());
  for (auto& p : batch) events.push_back(std::move(p.event));
  auto results = store.Apply(events, now_ms_());
  // The batch's online announcements go out in one pipelined publish, before any reply, as they did
  // one request at a time.
  std::vector<PresenceChange> changes;
  for (auto& r : results) {
    for (auto& c : r.enter.changes) changes.push_back(std::move(c));
  }
  Publish(store, changes);
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& r = results[i];
    if (!r.status.ok()) {
      batch[i].done(r.status);
      continue;
    }
    if (events[i].kind == ConnectionEvent::Kind::kEnter) {
      auto* online = batch[i].reply.mutable_online();
      online->set_room(events[i].room);
      for (auto& u : r.enter.online) online->add_users(std::move(u));
    }
    batch[i].done(std::move(batch[i].reply));
  }
}

absl::StatusOr<chat::v1::PresenceReply> PresenceLogic::Run(PresenceStore& store,
                                                           const chat::v1::PresenceRequest& req) {
  using R = chat::v1::PresenceRequest;
  int64_t now = now_ms_();
  chat::v1::PresenceReply reply;
  reply.set_correlation_id(req.correlation_id());
  std::vector<PresenceChange> changes;
  switch (req.body_case()) {
    case R::kClusterStats: {
      auto stats = store.ClusterStats();
      if (!stats.ok()) return stats.status();
      *reply.mutable_stats() = std::move(*stats);
      break;
    }
    case R::kTyping: {
      auto r = store.Typing(req.typing(), now);
      if (!r.ok()) return r.status();
      changes = std::move(*r);
      break;
    }
    case R::kStatus: {
      auto* s = reply.mutable_status();
      s->set_room(req.status().room());
      if (!req.status().room().empty()) {
        auto online = store.RoomOnline(req.status().room());
        if (!online.ok()) return online.status();
        for (auto& u : *online) s->add_online(std::move(u));
      }
      std::vector<std::string> users(req.status().users().begin(), req.status().users().end());
      auto statuses = store.Users(users);
      if (!statuses.ok()) return statuses.status();
      for (auto& u : *statuses) *s->add_users() = std::move(u);
      break;
    }
    default:
      break;
  }
  Publish(store, changes);
  return reply;
}

void PresenceLogic::Handle(const chat::v1::PresenceRequest& req, Done<chat::v1::PresenceReply> done) {
  if (auto st = Validate(req); !st.ok()) return done(st);
  if (auto event = EventOf(req)) {
    PendingEvent p{std::move(*event), {}, std::move(done)};
    p.reply.set_correlation_id(req.correlation_id());
    return events_.Submit(std::move(p));
  }
  auto shared_done = std::make_shared<Done<chat::v1::PresenceReply>>(std::move(done));
  pool_.Post([this, req, shared_done](PresenceStore& store) { (*shared_done)(Run(store, req)); },
             [shared_done] { (*shared_done)(Unavailable()); });
}

void PresenceLogic::RoomOnline(const std::string& room, Done<chat::v1::RoomOnline> done) {
  if (auto st = ValidateRoomName(room); !st.ok()) return done(st);
  auto shared_done = std::make_shared<Done<chat::v1::RoomOnline>>(std::move(done));
  pool_.Post(
      [room, shared_done](PresenceStore& store) {
        auto users = store.RoomOnline(room);
        if (!users.ok()) return (*shared_done)(users.status());
        chat::v1::RoomOnline out;
        out.set_room(room);
        for (auto& u : *users) out.add_users(std::move(u));
        (*shared_done)(std::move(out));
      },
      [shared_done] { (*shared_done)(Unavailable()); });
}

void PresenceLogic::Users(const std::vector<std::string>& users, Done<chat::v1::GetUsersReply> done) {
  if (users.size() > 1000) return done(absl::InvalidArgumentError("at most 1000 users per call"));
  for (const auto& u : users) {
    if (auto st = ValidateUserId(u); !st.ok()) return done(st);
  }
  auto shared_done = std::make_shared<Done<chat::v1::GetUsersReply>>(std::move(done));
  pool_.Post(
      [users, shared_done](PresenceStore& store) {
        auto statuses = store.Users(users);
        if (!statuses.ok()) return (*shared_done)(statuses.status());
        chat::v1::GetUsersReply out;
        for (auto& s : *statuses) *out.add_users() = std::move(s);
        (*shared_done)(std::move(out));
      },
      [shared_done] { (*shared_done)(Unavailable()); });
}

}  // namespace chat::presence
