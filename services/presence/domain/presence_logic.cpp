#include "domain/presence_logic.h"

#include "common/text_rules.h"

namespace chat::presence {
namespace {

absl::Status Unavailable() { return absl::UnavailableError("presence service is overloaded or stopping"); }

absl::Status ValidateConn(const chat::v1::ConnectionRef& c) {
  if (c.gateway().empty() || c.connection().empty())
    return absl::InvalidArgumentError("connection ref is incomplete");
  if (c.gateway().find('|') != std::string::npos || c.connection().find('|') != std::string::npos) {
    return absl::InvalidArgumentError("connection ref holds '|'");
  }
  return ValidateUserId(c.user());
}

}  // namespace

PresenceLogic::PresenceLogic(PresencePool& pool, MetricsRegistry& metrics)
    : pool_(pool),
      users_online_(
          metrics.GetCounter("chat_presence_users_online_total", "Users whose first connection opened")),
      users_offline_(
          metrics.GetCounter("chat_presence_users_offline_total", "Users whose last connection closed")) {}

void PresenceLogic::Handle(const chat::v1::PresenceRequest& req, Done<chat::v1::PresenceReply> done) {
  absl::Status valid;
  switch (req.body_case()) {
    case chat::v1::PresenceRequest::kOpened:
      valid = ValidateConn(req.opened().conn());
      break;
    case chat::v1::PresenceRequest::kClosed:
      valid = ValidateConn(req.closed().conn());
      break;
    case chat::v1::PresenceRequest::kEntered:
      valid = ValidateConn(req.entered().conn());
      if (valid.ok()) valid = ValidateRoomName(req.entered().room());
      break;
    case chat::v1::PresenceRequest::kExited:
      valid = ValidateConn(req.exited().conn());
      if (valid.ok()) valid = ValidateRoomName(req.exited().room());
      break;
    case chat::v1::PresenceRequest::kHeartbeat:
      if (req.heartbeat().gateway().empty()) valid = absl::InvalidArgumentError("heartbeat without gateway");
      break;
    default:
      valid = absl::InvalidArgumentError("request has no body");
  }
  if (!valid.ok()) return done(valid);
  auto shared_done = std::make_shared<Done<chat::v1::PresenceReply>>(std::move(done));
  pool_.Post(
      [this, req, shared_done](PresenceStore& store) {
        chat::v1::PresenceReply reply;
        reply.set_correlation_id(req.correlation_id());
        absl::Status st;
        switch (req.body_case()) {
          case chat::v1::PresenceRequest::kOpened: {
            auto first = store.Open(req.opened().conn());
            st = first.status();
            if (first.ok() && *first) users_online_.Inc();
            break;
          }
          case chat::v1::PresenceRequest::kClosed: {
            auto last = store.Close(req.closed().conn());
            st = last.status();
            if (last.ok() && *last) users_offline_.Inc();
            break;
          }
          case chat::v1::PresenceRequest::kEntered: {
            auto online = store.Enter(req.entered().conn(), req.entered().room());
            st = online.status();
            if (online.ok()) {
              reply.mutable_online()->set_room(req.entered().room());
              for (auto& u : *online) reply.mutable_online()->add_users(std::move(u));
            }
            break;
          }
          case chat::v1::PresenceRequest::kExited:
            st = store.Exit(req.exited().conn(), req.exited().room());
            break;
          case chat::v1::PresenceRequest::kHeartbeat:
            st = store.Heartbeat(req.heartbeat().gateway());
            break;
          default:
            break;
        }
        if (!st.ok()) return (*shared_done)(st);
        (*shared_done)(std::move(reply));
      },
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
