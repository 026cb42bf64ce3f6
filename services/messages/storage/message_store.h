#pragma once
// The messages service's storage: rooms, membership and messages. One instance per database
// connection, used by one thread at a time.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chat/v1/messages.pb.h"

namespace chat::messages {

// One message to store, after validation.
struct NewMessage {
  std::string room;
  std::string sender;  // empty: system message
  std::string client_id;
  std::string text;
};

// One join to check (and, for a public room, to record).
struct RoomJoin {
  std::string room;
  std::string user;
};

struct AppendOutcome {
  chat::v1::ChatMessage message;
  bool duplicate = false;
};

class MessageStore {
 public:
  virtual ~MessageStore() = default;

  // Stores the messages in ONE transaction, in order, each getting its room's next seq. A message whose
  // (sender, client_id) exists is not stored again: its outcome is the first message, duplicate=true.
  // The outer status fails when the transaction did not commit (nothing stored); inner statuses are
  // per-message refusals (NotFound room, PermissionDenied non-member) that do not affect the others.
  // Callers pass keys that are unique within the batch.
  virtual absl::StatusOr<std::vector<absl::StatusOr<AppendOutcome>>> AppendBatch(
      const std::vector<NewMessage>& batch) = 0;

  // Checks that `user` may join; joining a public room makes the user a member.
  virtual absl::StatusOr<chat::v1::RoomInfo> Join(const std::string& room, const std::string& user) = 0;
  // Join for many at once, in one statement: one result per join, in order, the same refusals as Join
  // (NotFound, PermissionDenied); member_count is not filled. The outer status fails when the statement
  // did not run (no join was recorded).
  virtual absl::StatusOr<std::vector<absl::StatusOr<chat::v1::RoomInfo>>> JoinBatch(
      const std::vector<RoomJoin>& joins) = 0;

  // A page of messages, ascending by seq. Empty user skips the membership check (internal callers).
  virtual absl::StatusOr<chat::v1::HistoryPage> History(const chat::v1::HistoryRequest& req) = 0;

  virtual absl::StatusOr<chat::v1::RoomInfo> GetRoom(const std::string& room) = 0;

  // Creates the room if missing (kind and members are applied only on creation; members are added).
  virtual absl::StatusOr<chat::v1::RoomInfo> CreateRoom(const std::string& room, chat::v1::RoomKind kind,
                                                        const std::vector<std::string>& members) = 0;

  // NotFound for an unknown room.
  virtual absl::StatusOr<chat::v1::RoomInfo> AddMember(const std::string& room, const std::string& user) = 0;
  virtual absl::StatusOr<chat::v1::RoomInfo> RemoveMember(const std::string& room,
                                                          const std::string& user) = 0;

  // room "*" mutes in every room; seconds 0 mutes until unmuted.
  virtual absl::Status Mute(const std::string& room, const std::string& user, int64_t seconds,
                            const std::string& by) = 0;
  // room "*" lifts every mute of the user.
  virtual absl::Status Unmute(const std::string& room, const std::string& user) = 0;

  // Hides everything up to the room's last seq from history and resume; returns that seq.
  virtual absl::StatusOr<int64_t> Clear(const std::string& room) = 0;

  // Moves the member's read position forward (never back, never past the last seq). Returns the new
  // position and whether it moved. PermissionDenied for a non-member.
  virtual absl::StatusOr<std::pair<int64_t, bool>> MarkRead(const std::string& room, const std::string& user,
                                                            int64_t seq) = 0;
};

}  // namespace chat::messages
