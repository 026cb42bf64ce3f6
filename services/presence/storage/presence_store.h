#pragma once
// Presence state: which connections are alive, on which gateway, in which rooms; last seen per user.
// One instance per Redis connection, used by one thread at a time.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chat/v1/presence.pb.h"

namespace chat::presence {

class PresenceStore {
 public:
  virtual ~PresenceStore() = default;

  // Records a live connection; also counts as a heartbeat of its gateway. Returns true when this is the
  // user's first live connection.
  virtual absl::StatusOr<bool> Open(const chat::v1::ConnectionRef& conn) = 0;
  // Forgets a connection; returns true when the user has no live connection left (last seen recorded).
  virtual absl::StatusOr<bool> Close(const chat::v1::ConnectionRef& conn) = 0;
  // Records the connection in the room; returns who is online in the room afterwards.
  virtual absl::StatusOr<std::vector<std::string>> Enter(const chat::v1::ConnectionRef& conn,
                                                         const std::string& room) = 0;
  virtual absl::Status Exit(const chat::v1::ConnectionRef& conn, const std::string& room) = 0;
  // Keeps a gateway's connections alive for another TTL.
  virtual absl::Status Heartbeat(const std::string& gateway) = 0;
  // Users with a live connection in the room, sorted. Entries of dead gateways are dropped.
  virtual absl::StatusOr<std::vector<std::string>> RoomOnline(const std::string& room) = 0;
  virtual absl::StatusOr<std::vector<chat::v1::UserStatus>> Users(const std::vector<std::string>& users) = 0;
};

}  // namespace chat::presence
