#include "transport/gateway_context.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "transport/connection_setup.h"

namespace chat::gateway {

void SessionSet::Add(const std::string& id, const std::string& user, std::weak_ptr<ClientSession> s) {
  std::lock_guard lock(mu_);
  if (ShardOf(id).insert_or_assign(id, std::move(s)).second) ++size_;
  by_user_[user].insert(id);
}

void SessionSet::Remove(const std::string& id, const std::string& user) {
  std::lock_guard lock(mu_);
  size_ -= ShardOf(id).erase(id);
  auto it = by_user_.find(user);
  if (it != by_user_.end()) {
    it->second.erase(id);
    if (it->second.empty()) by_user_.erase(it);
  }
  auto r = reserved_.find(user);
  if (r != reserved_.end()) {
    if (--r->second == 0) reserved_.erase(r);
    --reserved_total_;
  }
}

bool SessionSet::Reserve(const std::string& user, size_t max_total, size_t max_per_user) {
  std::lock_guard lock(mu_);
  size_t& mine = reserved_[user];
  if (reserved_total_ >= max_total || mine >= max_per_user) {
    if (mine == 0) reserved_.erase(user);
    return false;
  }
  ++mine;
  ++reserved_total_;
  return true;
}

void SessionSet::Release(const std::string& user) {
  std::lock_guard lock(mu_);
  auto r = reserved_.find(user);
  if (r == reserved_.end()) return;
  if (--r->second == 0) reserved_.erase(r);
  --reserved_total_;
}

std::vector<std::shared_ptr<ClientSession>> SessionSet::All() const { return Share(0, 1); }

std::vector<std::shared_ptr<ClientSession>> SessionSet::Share(size_t part, size_t parts) const {
  std::vector<std::shared_ptr<ClientSession>> out;
  parts = std::clamp<size_t>(parts, 1, kShards);
  if (part >= parts) return out;
  std::lock_guard lock(mu_);
  for (size_t shard = part; shard < kShards; shard += parts) {
    for (const auto& [id, w] : sessions_[shard]) {
      if (auto s = w.lock()) out.push_back(std::move(s));
    }
  }
  return out;
}

std::vector<std::shared_ptr<ClientSession>> SessionSet::OfUser(const std::string& user) const {
  std::vector<std::shared_ptr<ClientSession>> out;
  std::lock_guard lock(mu_);
  auto it = by_user_.find(user);
  if (it == by_user_.end()) return out;
  for (const auto& id : it->second) {
    const Shard& shard = ShardOf(id);
    auto s = shard.find(id);
    if (s == shard.end()) continue;
    if (auto p = s->second.lock()) out.push_back(std::move(p));
  }
  return out;
}

size_t SessionSet::size() const {
  std::lock_guard lock(mu_);
  return size_;
}

size_t SessionSet::users() const {
  std::lock_guard lock(mu_);
  return by_user_.size();
}

GatewayContext::GatewayContext(const GatewayConfig& cfg, MetricsRegistry& m, MessagesBackend& msgs,
                               PresenceBackend& pres, RoomFanout& fan, RoomRegistry& rms,
                               const JwtVerifier& j)
    : config(cfg),
      metrics(m),
      messages(msgs),
      presence(pres),
      fanout(fan),
      rooms(rms),
      jwt(j),
      origins(cfg.allowed_origins),
      connection_metrics(m),
      rest(ConnectionLimitsFrom(cfg), msgs, connection_metrics),
      connections(m.GetGauge("chat_connections", "Open client connections (WebSocket and SSE)")),
      sse_streams(
          m.GetGauge("chat_sse_streams", "Open SSE fallback streams (counted in chat_connections too)")),
      connects(m.GetCounter("chat_connects_total", "Client connections accepted (WebSocket and SSE)")),
      slow_consumers(m.GetCounter("chat_slow_consumer_disconnects_total",
                                  "Connections closed because their outbound queue passed its byte limit")),
      frames_out(m.GetCounter("chat_frames_out_total", "Frames written to clients")),
      frames_deflated(
          m.GetCounter("chat_ws_frames_deflated_total", "Frames sent compressed (permessage-deflate)")),
      messages_inflated(m.GetCounter("chat_ws_messages_inflated_total",
                                     "Client messages received compressed (permessage-deflate)")),
      frames_held(m.GetCounter("chat_ws_frames_held_total",
                               "Room messages held to share a socket write (until the lane's flush)")),
      delayed_writes(m.GetCounter("chat_ws_delayed_writes_total",
                                  "Socket writes of held room messages started by the lane's flush")),
      own_messages_held(
          m.GetCounter("chat_ws_own_messages_held_total",
                       "A sender's own messages held to go out in one socket write with the ack")),
      http_requests(m.GetCounter("chat_http_requests_total", "HTTP requests served")),
      refused_upgrades(m.GetCounter("chat_upgrades_refused_total",
                                    "WebSocket upgrades and API requests refused (auth, origin, limits)")),
      tls_handshake_failures(
          m.GetCounter("chat_tls_handshake_failures_total", "TLS handshakes that failed on the HTTP port")) {}

Counter& GatewayContext::Disconnects(std::string_view reason) {
  return metrics.GetCounter("chat_disconnects_total", "WebSocket connections closed, by reason",
                            {{"reason", std::string(reason)}});
}

std::string GatewayContext::NewConnectionId() {
  return absl::StrFormat("%s-%d", config.instance_id, next_id_.fetch_add(1) + 1);
}

}  // namespace chat::gateway
