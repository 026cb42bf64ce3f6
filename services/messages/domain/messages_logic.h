#pragma once
// The messages service's requests, validated and routed: sends to the group-commit writer, queries to
// the query pool. Thread-safe; every method returns at once and calls `done` exactly once, on a
// storage thread (or on the caller's thread when the request is refused up front).

#include <functional>

#include "chat/v1/messages.pb.h"
#include "domain/commit_batcher.h"
#include "domain/join_batcher.h"
#include "domain/query_pool.h"

namespace chat::messages {

// The id of the DM room of two users: the same whichever opens it.
std::string DmRoomId(const std::string& a, const std::string& b);

struct MessagesLimits {
  size_t text_max_bytes = 4096;
  uint32_t history_default = 50;
  uint32_t history_max = 200;
  uint32_t replay_max = 1000;
};

class MessagesLogic {
 public:
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;

  MessagesLogic(CommitBatcher& batcher, JoinBatcher& joins, QueryPool& queries, EventPublisher& events,
                MessagesLimits limits)
      : batcher_(batcher), joins_(joins), queries_(queries), events_(events), limits_(limits) {}

  void Join(const chat::v1::JoinRequest& req, Done<chat::v1::JoinReply> done);
  void Post(const chat::v1::PostMessageRequest& req, Done<chat::v1::PostMessageReply> done);
  void History(const chat::v1::HistoryRequest& req, Done<chat::v1::HistoryReply> done);
  void GetRoom(const chat::v1::GetRoomRequest& req, Done<chat::v1::RoomInfo> done);
  void CreateRoom(const chat::v1::CreateRoomRequest& req, Done<chat::v1::RoomInfo> done);
  void AddMember(const chat::v1::MemberRequest& req, Done<chat::v1::RoomInfo> done);
  void RemoveMember(const chat::v1::MemberRequest& req, Done<chat::v1::RoomInfo> done);
  // Creates or reuses the two-member DM room of user and peer, and joins it.
  void OpenDm(const chat::v1::OpenDmRequest& req, Done<chat::v1::RoomInfo> done);
  // Publishes a read event when the position moved.
  void MarkRead(const chat::v1::ReadRequest& req, Done<chat::v1::ReadReply> done);
  void Mute(const chat::v1::MuteRequest& req, Done<chat::v1::Empty> done);
  void Unmute(const chat::v1::MuteRequest& req, Done<chat::v1::Empty> done);
  // Publishes a cleared event.
  void Clear(const chat::v1::ClearRequest& req, Done<chat::v1::ClearReply> done);
  void PublishControl(const chat::v1::ControlEvent& event, Done<chat::v1::Empty> done);

  // Validation on its own, for tests and callers that check before queueing.
  absl::Status ValidatePost(const chat::v1::PostMessageRequest& req) const;

 private:
  CommitBatcher& batcher_;
  JoinBatcher& joins_;
  QueryPool& queries_;
  EventPublisher& events_;
  MessagesLimits limits_;
};

}  // namespace chat::messages
