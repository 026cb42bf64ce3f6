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
  joins_.Submit(RoomJoin{req.room(), req.user()},
                [done = std::move(done)](absl::StatusOr<chat::v1::RoomInfo> info) {
                  if (!info.ok()) return done(info.status());
                  chat::v1::JoinReply reply;
                  *reply.mutable_room() = std::move(*info);
                  done(std::move(reply));
                });
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

namespace chat::messages {
namespace {

uint64_t Fnv1a(std::string_view s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Runs fn(store) on the pool; fn returns StatusOr<T>.
template <typename T, typename Fn>
void OnPool(QueryPool& pool, std::function<void(absl::StatusOr<T>)> done, Fn fn) {
  auto shared_done = std::make_shared<std::function<void(absl::StatusOr<T>)>>(std::move(done));
  pool.Post([fn = std::move(fn), shared_done](MessageStore& store) { (*shared_done)(fn(store)); },
            [shared_done] {
              (*shared_done)(absl::UnavailableError("messages service is overloaded or stopping"));
            });
}

}  // namespace

std::string DmRoomId(const std::string& a, const std::string& b) {
  const std::string& lo = a < b ? a : b;
  const std::string& hi = a < b ? b : a;
  std::string key = lo + '\n' + hi;
  return absl::StrFormat("dm:%016x%016x", Fnv1a(key, 14695981039346656037ULL),
                         Fnv1a(key, 1099511628211ULL * 31));
}

void MessagesLogic::AddMember(const chat::v1::MemberRequest& req, Done<chat::v1::RoomInfo> done) {
  if (auto st = ValidateRoomName(req.room()); !st.ok()) return done(st);
  if (auto st = ValidateUserId(req.user()); !st.ok()) return done(st);
  OnPool<chat::v1::RoomInfo>(queries_, std::move(done),
                             [req](MessageStore& s) { return s.AddMember(req.room(), req.user()); });
}

void MessagesLogic::RemoveMember(const chat::v1::MemberRequest& req, Done<chat::v1::RoomInfo> done) {
  if (auto st = ValidateRoomName(req.room()); !st.ok()) return done(st);
  if (auto st = ValidateUserId(req.user()); !st.ok()) return done(st);
  OnPool<chat::v1::RoomInfo>(queries_, std::move(done),
                             [req](MessageStore& s) { return s.RemoveMember(req.room(), req.user()); });
}

void MessagesLogic::OpenDm(const chat::v1::OpenDmRequest& req, Done<chat::v1::RoomInfo> done) {
  if (auto st = ValidateUserId(req.user()); !st.ok()) return done(st);
  if (auto st = ValidateUserId(req.peer()); !st.ok()) return done(st);
  if (req.user() == req.peer()) return done(absl::InvalidArgumentError("a DM needs another user"));
  std::string room = DmRoomId(req.user(), req.peer());
  OnPool<chat::v1::RoomInfo>(
      queries_, std::move(done), [req, room, this](MessageStore& s) -> absl::StatusOr<chat::v1::RoomInfo> {
        auto created = s.CreateRoom(room, chat::v1::ROOM_KIND_DM, {req.user(), req.peer()});
        if (!created.ok()) return created;
        auto joined = s.Join(room, req.user());
        if (!joined.ok()) return joined;
        // The peer's open connections join too, so the first message reaches them.
        chat::v1::ControlEvent invite;
        invite.mutable_invite()->set_user(req.peer());
        invite.mutable_invite()->set_room(room);
        (void)events_.PublishControl(invite);
        return joined;
      });
}

void MessagesLogic::MarkRead(const chat::v1::ReadRequest& req, Done<chat::v1::ReadReply> done) {
  if (auto st = ValidateRoomName(req.room()); !st.ok()) return done(st);
  if (auto st = ValidateUserId(req.user()); !st.ok()) return done(st);
  if (req.seq() < 0) return done(absl::InvalidArgumentError("negative seq"));
  OnPool<chat::v1::ReadReply>(
      queries_, std::move(done), [req, this](MessageStore& s) -> absl::StatusOr<chat::v1::ReadReply> {
        auto moved = s.MarkRead(req.room(), req.user(), req.seq());
        if (!moved.ok()) return moved.status();
        chat::v1::ReadReply reply;
        reply.set_room(req.room());
        reply.set_seq(moved->first);
        if (moved->second) {
          chat::v1::RoomEvent ev;
          auto* r = ev.mutable_read();
          r->set_room(req.room());
          r->set_user(req.user());
          r->set_seq(moved->first);
          (void)events_.PublishEvent(req.room(), ev);  // a lost read receipt is not worth failing the request
        }
        return reply;
      });
}

void MessagesLogic::Mute(const chat::v1::MuteRequest& req, Done<chat::v1::Empty> done) {
  std::string room = req.room().empty() ? "*" : req.room();
  if (room != "*") {
    if (auto st = ValidateRoomName(room); !st.ok()) return done(st);
  }
  if (auto st = ValidateUserId(req.user()); !st.ok()) return done(st);
  if (req.seconds() < 0) return done(absl::InvalidArgumentError("negative seconds"));
  OnPool<chat::v1::Empty>(queries_, std::move(done),
                          [req, room](MessageStore& s) -> absl::StatusOr<chat::v1::Empty> {
                            if (auto st = s.Mute(room, req.user(), req.seconds(), req.by()); !st.ok())
                              return st;
                            return chat::v1::Empty();
                          });
}

void MessagesLogic::Unmute(const chat::v1::MuteRequest& req, Done<chat::v1::Empty> done) {
  std::string room = req.room().empty() ? "*" : req.room();
  if (room != "*") {
    if (auto st = ValidateRoomName(room); !st.ok()) return done(st);
  }
  if (auto st = ValidateUserId(req.user()); !st.ok()) return done(st);
  OnPool<chat::v1::Empty>(queries_, std::move(done),
                          [req, room](MessageStore& s) -> absl::StatusOr<chat::v1::Empty> {
                            if (auto st = s.Unmute(room, req.user()); !st.ok()) return st;
                            return chat::v1::Empty();
                          });
}

void MessagesLogic::Clear(const chat::v1::ClearRequest& req, Done<chat::v1::ClearReply> done) {
  if (auto st = ValidateRoomName(req.room()); !st.ok()) return done(st);
  OnPool<chat::v1::ClearReply>(queries_, std::move(done),
                               [req, this](MessageStore& s) -> absl::StatusOr<chat::v1::ClearReply> {
                                 auto seq = s.Clear(req.room());
                                 if (!seq.ok()) return seq.status();
                                 chat::v1::ClearReply reply;
                                 reply.set_room(req.room());
                                 reply.set_cleared_seq(*seq);
                                 chat::v1::RoomEvent ev;
                                 ev.mutable_cleared()->set_room(req.room());
                                 ev.mutable_cleared()->set_seq(*seq);
                                 (void)events_.PublishEvent(req.room(), ev);
                                 return reply;
                               });
}

void MessagesLogic::PublishControl(const chat::v1::ControlEvent& event, Done<chat::v1::Empty> done) {
  if (event.body_case() == chat::v1::ControlEvent::BODY_NOT_SET) {
    return done(absl::InvalidArgumentError("control event has no body"));
  }
  OnPool<chat::v1::Empty>(queries_, std::move(done),
                          [event, this](MessageStore&) -> absl::StatusOr<chat::v1::Empty> {
                            if (auto st = events_.PublishControl(event); !st.ok())
                              return absl::UnavailableError(st.message());
                            return chat::v1::Empty();
                          });
}

}  // namespace chat::messages
