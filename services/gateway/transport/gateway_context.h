#pragma once
// What every session of the gateway shares: configuration, backends, rooms, metrics. Built by main;
// its members are thread-safe.

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "domain/backends.h"
#include "domain/chat_connection.h"
#include "domain/jwt_verifier.h"
#include "domain/origin_policy.h"
#include "domain/rest_api.h"
#include "domain/room_registry.h"
#include "gateway_config.h"
#include "transport/client_session.h"
#include "transport/deflate_cache.h"
#include "transport/lane_flusher.h"

namespace chat::gateway {

// Every open client session (WebSocket or SSE), for stats and for closing them all on shutdown.
class SessionSet {
 public:
  // Sessions are kept in kShards maps by a hash of the id, so that a share is walked without the rest.
  static constexpr size_t kShards = 16;

  void Add(const std::string& id, const std::string& user, std::weak_ptr<ClientSession> s);
  void Remove(const std::string& id, const std::string& user);
  std::vector<std::shared_ptr<ClientSession>> All() const;
  // The sessions of one of `parts` fixed shares (1 <= parts <= kShards; shard i is in share i % parts):
  // the IdleSweep's turn, which walks only its own shards.
  std::vector<std::shared_ptr<ClientSession>> Share(size_t part, size_t parts) const;
  std::vector<std::shared_ptr<ClientSession>> OfUser(const std::string& user) const;
  size_t size() const;
  size_t users() const;
  // Reserves a connection slot for the user before the upgrade; false past a limit. Released by
  // Remove (after Add) or Release (if the upgrade fails).
  bool Reserve(const std::string& user, size_t max_total, size_t max_per_user);
  void Release(const std::string& user);

 private:
  using Shard = std::map<std::string, std::weak_ptr<ClientSession>>;
  Shard& ShardOf(const std::string& id) { return sessions_[std::hash<std::string>()(id) % kShards]; }
  const Shard& ShardOf(const std::string& id) const {
    return sessions_[std::hash<std::string>()(id) % kShards];
  }

  mutable std::mutex mu_;
  std::array<Shard, kShards> sessions_;
  size_t size_ = 0;
  std::map<std::string, std::set<std::string>> by_user_;
  std::map<std::string, size_t> reserved_;  // per user, including established ones
  size_t reserved_total_ = 0;
};

class GatewayContext {
 public:
  GatewayContext(const GatewayConfig& config, MetricsRegistry& metrics, MessagesBackend& messages,
                 PresenceBackend& presence, RoomFanout& fanout, RoomRegistry& rooms, const JwtVerifier& jwt);

  const GatewayConfig& config;
  MetricsRegistry& metrics;
  MessagesBackend& messages;
  PresenceBackend& presence;
  RoomFanout& fanout;
  RoomRegistry& rooms;
  const JwtVerifier& jwt;
  OriginPolicy origins;
  ConnectionMetrics connection_metrics;
  RestApi rest;
  SessionSet sessions;
  std::atomic<bool> draining{false};
  std::function<bool()> ready;  // set by main: backends and Redis are up

  Gauge& connections;  // WebSocket and SSE
  Gauge& sse_streams;
  Counter& connects;
  Counter& slow_consumers;
  Counter& frames_out;
  Counter& frames_deflated;    // sent compressed (permessage-deflate)
  Counter& messages_inflated;  // received compressed
  Counter& frames_held;        // room messages held for a delayed write (WS_WRITE_DELAY_MS)
  Counter& delayed_writes;     // socket writes the lane flushers started
  Counter& own_messages_held;  // a sender's own messages held for the send's ack
  // One per io thread (lane), made by main when WS_DEFLATE is on; only that lane's thread uses it.
  std::vector<std::unique_ptr<DeflateCache>> deflate_by_lane;
  // Each lane's flusher of held room messages (transport/lane_flusher.h); empty: nothing is held.
  std::vector<std::unique_ptr<LaneFlusher>> flush_by_lane;
  Counter& http_requests;
  Counter& refused_upgrades;
  Counter& tls_handshake_failures;

  std::string NewConnectionId();
  Counter& Disconnects(std::string_view reason);

 private:
  std::atomic<uint64_t> next_id_{0};
};

}  // namespace chat::gateway
