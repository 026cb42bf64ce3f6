#pragma once
// The gateway's settings, from environment variables (README has the table).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/env_config.h"

namespace chat::gateway {

struct GatewayConfig {
  std::string http_addr = "0.0.0.0:8080";
  std::string grpc_addr = "0.0.0.0:9090";
  std::string gateway_id;  // default: hostname-pid
  // gateway_id plus a random id of this process: what presence and connection ids use, so a gateway
  // restarted under the same GATEWAY_ID is never taken for the one that died.
  std::string instance_id;
  int64_t threads = 0;  // 0: one io_context per core
  std::string messages_addr = "127.0.0.1:50051";
  std::string presence_addr = "127.0.0.1:50052";
  std::string redis_addr = "127.0.0.1:6379";
  std::string jwt_secret;
  std::string jwt_algorithm = "HS256";  // HS256 (JWT_SECRET) or RS256/ES256 (JWT_PUBLIC_KEY_FILE)
  std::string jwt_public_key_file;
  int64_t jwt_clock_skew_seconds = 30;
  bool dev_login = false;
  int64_t dev_token_ttl_seconds = 86400;
  int64_t text_limit_bytes = 4096;
  int64_t frame_limit_bytes = 65536;
  int64_t outbound_queue_bytes = 1 << 20;
  int64_t heartbeat_seconds = 15;
  // permessage-deflate (RFC 7692), both sides without context takeover: off by default.
  bool ws_deflate = false;
  int64_t ws_deflate_window_bits = 11;
  int64_t ws_deflate_min_bytes = 256;  // smaller frames go out uncompressed
  // Room messages wait up to this long so that several go out in one socket write. 0 (the default): no
  // added wait; a room's messages from one Redis read share a write (transport/lane_flusher.h).
  int64_t ws_write_delay_ms = 0;
  int64_t send_rate_per_second = 10;
  int64_t send_burst = 20;
  int64_t max_rooms_per_connection = 100;
  int64_t flood_close_after = 10;
  int64_t max_connections = 100000;
  int64_t max_connections_per_user = 20;
  std::vector<std::string> allowed_origins;  // empty: own origin and localhost
  int64_t presence_ttl_seconds = 30;
  int64_t resume_replay_max = 1000;
  int64_t gap_refetch_ms = 2000;
  // TLS on the HTTP/WebSocket port (https, wss) when both are set: PEM certificate chain and key.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string web_root = "services/gateway/web";
  std::string log_level = "info";

  static absl::StatusOr<GatewayConfig> FromEnv(EnvLookup lookup);
};

}  // namespace chat::gateway
