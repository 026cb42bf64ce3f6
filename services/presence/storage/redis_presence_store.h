#pragma once
// PresenceStore on Redis. Keys (prefix chat:presence:):
//   gw:{gateway}            "1" with the TTL, refreshed by the gateway's heartbeats
//   gws                     zset gateway -> heartbeat deadline, to find gateways that died
//   conns:{gateway}         set "{user}|{conn}" of the gateway's connections
//   user:{user}             set "{gateway}|{conn}"
//   connrooms:{gw}|{conn}   set of rooms the connection is in
//   room:{room}             set "{user}|{gateway}|{conn}"
//   uroom:{room}|{user}     set "{gateway}|{conn}": the user's connections in the room
//   announced:{room}        set of users announced online in the room
//   pending                 zset "{room}|{user}" -> when to announce offline (grace)
//   typing                  zset "{room}|{user}" -> when typing expires
//   typing_pub:{room}|{user} throttle of typing events
//   lastseen                hash user -> unix ms
// A connection counts while its gateway's key lives, so a killed gateway's users expire by TTL with no
// per-connection refresh. Every change is one Lua script, atomic against other gateways and replicas.
// (The scripts name keys in ARGV: fine for one Redis; Redis Cluster needs hash tags, a later change.)

#include <unordered_map>

#include "common/redis_connection.h"
#include "storage/presence_store.h"

namespace chat::presence {

class RedisPresenceStore : public PresenceStore {
 public:
  RedisPresenceStore(std::string host, int port, PresenceTimings timings);

  std::vector<ConnectionEventResult> Apply(const std::vector<ConnectionEvent>& events,
                                           int64_t now_ms) override;
  absl::StatusOr<chat::v1::ClusterStats> ClusterStats() override;
  absl::StatusOr<std::vector<PresenceChange>> Typing(const chat::v1::TypingUpdate& update,
                                                     int64_t now_ms) override;
  absl::StatusOr<std::vector<PresenceChange>> Sweep(int64_t now_ms) override;
  absl::StatusOr<std::vector<std::string>> RoomOnline(const std::string& room) override;
  absl::StatusOr<std::vector<chat::v1::UserPresence>> Users(const std::vector<std::string>& users) override;
  absl::Status Publish(const std::vector<PresenceChange>& changes) override;

 private:
  // One of the scripts (kPrelude + body) and its arguments after the key prefix.
  struct ScriptCall {
    const char* body;
    std::vector<std::string> args;
  };

  // Runs the scripts by their digests, in order, in one round trip; one result per call.
  std::vector<absl::StatusOr<RedisValue>> RunAll(const std::vector<ScriptCall>& calls);
  absl::StatusOr<RedisValue> Run(const char* body, std::vector<std::string> args);
  ScriptCall CallFor(const ConnectionEvent& event, int64_t now_ms) const;
  static ConnectionEventResult ResultOf(const ConnectionEvent& event, absl::StatusOr<RedisValue> reply,
                                        int64_t now_ms);

  RedisConnection redis_;
  PresenceTimings timings_;
  // Script body -> its SHA1 in Redis's script cache.
  std::unordered_map<const char*, std::string> script_shas_;
};

}  // namespace chat::presence
