#pragma once
// MessageStore on PostgreSQL through libpqxx 6. Owns one connection; not thread-safe: one thread uses
// an instance at a time (the commit writer, or one worker of the query pool). A broken connection is
// reopened on the next call.

#include <memory>
#include <string>

#include "storage/message_store.h"

namespace chat::messages {

class PgMessageStore : public MessageStore {
 public:
  explicit PgMessageStore(std::string conninfo);
  ~PgMessageStore() override;

  // Opens the connection and prepares the statements.
  absl::Status Connect();

  absl::StatusOr<std::vector<absl::StatusOr<AppendOutcome>>> AppendBatch(
      const std::vector<NewMessage>& batch) override;
  absl::StatusOr<chat::v1::RoomInfo> Join(const std::string& room, const std::string& user) override;
  absl::StatusOr<std::vector<absl::StatusOr<chat::v1::RoomInfo>>> JoinBatch(
      const std::vector<RoomJoin>& joins) override;
  absl::StatusOr<chat::v1::HistoryPage> History(const chat::v1::HistoryRequest& req) override;
  absl::StatusOr<chat::v1::RoomInfo> GetRoom(const std::string& room) override;
  absl::StatusOr<chat::v1::RoomInfo> CreateRoom(const std::string& room, chat::v1::RoomKind kind,
                                                const std::vector<std::string>& members) override;
  absl::StatusOr<chat::v1::RoomInfo> AddMember(const std::string& room, const std::string& user) override;
  absl::StatusOr<chat::v1::RoomInfo> RemoveMember(const std::string& room, const std::string& user) override;
  absl::Status Mute(const std::string& room, const std::string& user, int64_t seconds,
                    const std::string& by) override;
  absl::Status Unmute(const std::string& room, const std::string& user) override;
  absl::StatusOr<int64_t> Clear(const std::string& room) override;
  absl::StatusOr<std::pair<int64_t, bool>> MarkRead(const std::string& room, const std::string& user,
                                                    int64_t seq) override;

 private:
  absl::Status EnsureConnected();
  template <typename Fn>
  auto Guarded(const char* what, Fn&& fn) -> decltype(fn());

  // libpqxx 6's connection_base has no virtual destructor: hold the concrete connection, behind a pimpl
  // so this header needs no libpqxx.
  struct Connection;
  std::string conninfo_;
  std::unique_ptr<Connection> conn_;
};

// Applies the versioned migrations that are not applied yet, under an advisory lock so replicas
// starting together do not race. Blocking; call from main before serving.
absl::Status ApplyMigrations(const std::string& conninfo);

}  // namespace chat::messages
