#include "transport/connection_setup.h"

namespace chat::gateway {

ConnectionLimits ConnectionLimitsFrom(const GatewayConfig& config) {
  ConnectionLimits limits;
  limits.text_max_bytes = static_cast<size_t>(config.text_limit_bytes);
  limits.heartbeat_seconds = static_cast<uint32_t>(config.heartbeat_seconds);
  limits.send_rate_per_second = static_cast<double>(config.send_rate_per_second);
  limits.send_burst = static_cast<double>(config.send_burst);
  limits.max_rooms = static_cast<size_t>(config.max_rooms_per_connection);
  limits.replay_max = static_cast<uint32_t>(config.resume_replay_max);
  limits.refetch_after = std::chrono::milliseconds(config.gap_refetch_ms);
  limits.flood_close_after = static_cast<uint32_t>(config.flood_close_after);
  limits.replay_max_bytes = static_cast<size_t>(config.outbound_queue_bytes / 2);
  return limits;
}

std::string_view DisconnectLabel(bool closed_by_server, uint16_t close_code, std::string_view reason) {
  if (closed_by_server) {
    switch (close_code) {
      case 1013:
        return "slow_consumer";
      case 1008:
        return "flooding";
      case 4003:
        return "kicked";
      case 1001:
        return "shutdown";
      default:
        return "server";
    }
  }
  return reason == "client closed" ? std::string_view("client") : std::string_view("error");
}

}  // namespace chat::gateway
