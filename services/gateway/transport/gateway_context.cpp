#include "transport/gateway_context.h"

#include "absl/strings/str_format.h"

namespace chat::gateway {

void SessionSet::Add(const std::string& id, std::weak_ptr<WebSocketSession> s) {
  std::lock_guard lock(mu_);
  sessions_[id] = std::move(s);
}

void SessionSet::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  sessions_.erase(id);
}

std::vector<std::shared_ptr<WebSocketSession>> SessionSet::All() const {
  std::vector<std::shared_ptr<WebSocketSession>> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, w] : sessions_) {
    if (auto s = w.lock()) out.push_back(std::move(s));
  }
  return out;
}

size_t SessionSet::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
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
      connection_metrics(m),
      connections(m.GetGauge("chat_connections", "Open WebSocket connections")),
      connects(m.GetCounter("chat_connects_total", "WebSocket connections accepted")),
      slow_consumers(m.GetCounter("chat_slow_consumer_disconnects_total",
                                  "Connections closed because their outbound queue passed its byte limit")),
      frames_out(m.GetCounter("chat_frames_out_total", "Frames written to clients")),
      http_requests(m.GetCounter("chat_http_requests_total", "HTTP requests served")) {}

std::string GatewayContext::NewConnectionId() {
  return absl::StrFormat("%s-%d", config.gateway_id, next_id_.fetch_add(1) + 1);
}

}  // namespace chat::gateway
