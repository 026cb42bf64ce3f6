#pragma once
// PresenceStore on Redis. Keys:
//   chat:presence:gw:{gateway}    "1" with a TTL, refreshed by the gateway's heartbeats
//   chat:presence:user:{user}     set of "{gateway}|{connection}"
//   chat:presence:room:{room}     set of "{user}|{gateway}|{connection}"
//   chat:presence:lastseen        hash user -> unix milliseconds
// A connection counts while its gateway's key lives, so a killed gateway's users expire by TTL with no
// per-connection refresh. Every change is one Lua script, atomic against other gateways.

#include <chrono>

#include "common/redis_connection.h"
#include "storage/presence_store.h"

namespace chat::presence {

class RedisPresenceStore : public PresenceStore {
 public:
  RedisPresenceStore(std::string host, int port, std::chrono::seconds ttl);

  absl::StatusOr<bool> Open(const chat::v1::ConnectionRef& conn) override;
  absl::StatusOr<bool> Close(const chat::v1::ConnectionRef& conn) override;
  absl::StatusOr<std::vector<std::string>> Enter(const chat::v1::ConnectionRef& conn,
                                                 const std::string& room) override;
  absl::Status Exit(const chat::v1::ConnectionRef& conn, const std::string& room) override;
  absl::Status Heartbeat(const std::string& gateway) override;
  absl::StatusOr<std::vector<std::string>> RoomOnline(const std::string& room) override;
  absl::StatusOr<std::vector<chat::v1::UserStatus>> Users(const std::vector<std::string>& users) override;

 private:
  absl::StatusOr<RedisValue> Eval(const std::string& script, const std::vector<std::string>& keys,
                                  const std::vector<std::string>& args);

  RedisConnection redis_;
  std::chrono::seconds ttl_;
};

}  // namespace chat::presence
