#include "domain/messages_logic.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/text_rules.h"

namespace chat::messages {
namespace {

absl::Status Unavailable() { return absl::UnavailableError("messages service is overloaded or stopping"); }

// A client id for system messages, which come without one.
std::string RandomClientId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrFormat("sys-%016x%016x", rng(), rng());
}

}  // namespace

absl::Status MessagesLogic::ValidatePost(const chat::v1::PostMessageRequest& req) const {
  if (auto st = ValidateRoomName(req.room()); !st.ok()) return st;
  if (!req.sender().empty()) {
    if (auto st = ValidateUserId(req.sender()); !st.ok()) return st;
    if (auto st = ValidateClientId(req.client_id()); !st.ok()) return st;
  } else if (!req.client_id().empty()) {
    if (auto st = ValidateClientId(req.client_id()); !st.ok()) return st;
  }
  if (req.text().empty()) return absl::InvalidArgumentError("text is empty");
  if (req.text().size() > limits_.text_max_bytes) {
    return absl::OutOfRangeError(absl::StrCat("text is over ", limits_.text_max_bytes, " bytes"));
  }
  if (!IsValidUtf8(req.text())) return absl::InvalidArgumentError("text is not valid UTF-8");
  return absl::OkStatus();
}

void MessagesLogic::Join(const chat::v1::JoinRequest& req, Done<chat::v1::JoinReply> done) {
  if (auto st = ValidateRoomName(req.room()); !st.ok()) return done(st);
  if (auto st = ValidateUserId(req.user()); !st.ok()) return done(st);
  auto shared_done = std::make_shared<Done<chat::v1::JoinReply>>(std::move(done));
  queries_.Post(
      [req, shared_done](MessageStore& store) {
        auto info = store.Join(req.room(), req.user());
        if (!info.ok()) return (*shared_done)(info.status());
        chat::v1::JoinReply reply;
        *reply.mutable_room() = std::move(*info);
        (*shared_done)(std::move(reply));
      },
      [shared_done] { (*shared_done)(Unavailable()); });
}

void MessagesLogic::Post(const chat::v1::PostMessageRequest& req, Done<chat::v1::PostMessageReply> done) {
  if (auto st = ValidatePost(req); !st.ok()) return done(st);
  NewMessage m{req.room(), req.sender(), req.client_id().empty() ? RandomClientId() : req.client_id(),
               req.text()};
  batcher_.Submit(std::move(m), [done = std::move(done)](absl::StatusOr<AppendOutcome> outcome) {
    if (!outcome.ok()) return done(outcome.status());
    chat::v1::PostMessageReply reply;
    *reply.mutable_message() = std::move(outcome->message);
    reply.set_duplicate(outcome->duplicate);
    done(std::move(reply));
  });
}

void MessagesLogic::History(const chat::v1::HistoryRequest& req, Done<chat::v1::HistoryReply> done) {
  if (auto st = ValidateRoomName(req.room()); !st.ok()) return done(st);
  if (req.before_seq() < 0 || req.after_seq() < 0) return done(absl::InvalidArgumentError("negative seq"));
  chat::v1::HistoryRequest clamped = req;
  uint32_t limit = req.limit() == 0 ? limits_.history_default : req.limit();
  clamped.set_limit(std::min(limit, req.replay() ? limits_.replay_max : limits_.history_max));
  auto shared_done = std::make_shared<Done<chat::v1::HistoryReply>>(std::move(done));
  queries_.Post(
      [clamped, shared_done](MessageStore& store) {
        auto page = store.History(clamped);
        if (!page.ok()) return (*shared_done)(page.status());
        chat::v1::HistoryReply reply;
        *reply.mutable_page() = std::move(*page);
        (*shared_done)(std::move(reply));
      },
      [shared_done] { (*shared_done)(Unavailable()); });
}

void MessagesLogic::GetRoom(const chat::v1::GetRoomRequest& req, Done<chat::v1::RoomInfo> done) {
  if (auto st = ValidateRoomName(req.room()); !st.ok()) return done(st);
  auto shared_done = std::make_shared<Done<chat::v1::RoomInfo>>(std::move(done));
  queries_.Post([req, shared_done](MessageStore& store) { (*shared_done)(store.GetRoom(req.room())); },
                [shared_done] { (*shared_done)(Unavailable()); });
}

void MessagesLogic::CreateRoom(const chat::v1::CreateRoomRequest& req, Done<chat::v1::RoomInfo> done) {
  if (auto st = ValidateRoomName(req.room()); !st.ok()) return done(st);
  for (const auto& u : req.members()) {
    if (auto st = ValidateUserId(u); !st.ok()) return done(st);
  }
  if (req.kind() == chat::v1::ROOM_KIND_DM && req.members_size() != 2) {
    return done(absl::InvalidArgumentError("a DM room has exactly two members"));
  }
  auto shared_done = std::make_shared<Done<chat::v1::RoomInfo>>(std::move(done));
  queries_.Post(
      [req, shared_done](MessageStore& store) {
        std::vector<std::string> members(req.members().begin(), req.members().end());
        auto kind = req.kind() == chat::v1::ROOM_KIND_UNSPECIFIED ? chat::v1::ROOM_KIND_PUBLIC : req.kind();
        (*shared_done)(store.CreateRoom(req.room(), kind, members));
      },
      [shared_done] { (*shared_done)(Unavailable()); });
}

}  // namespace chat::messages
