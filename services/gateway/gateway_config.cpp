#include "gateway_config.h"

#include <unistd.h>

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace chat::gateway {

absl::StatusOr<GatewayConfig> GatewayConfig::FromEnv(EnvLookup lookup) {
  GatewayConfig c;
  EnvReader env(std::move(lookup));
  c.http_addr = env.String("GATEWAY_HTTP_ADDR", c.http_addr);
  c.grpc_addr = env.String("GATEWAY_GRPC_ADDR", c.grpc_addr);
  char host[256] = "gateway";
  gethostname(host, sizeof(host) - 1);
  c.gateway_id = env.String("GATEWAY_ID", absl::StrCat(host, "-", getpid()));
  c.threads = env.Int("GATEWAY_THREADS", c.threads, 0, 256);
  c.messages_addr = env.String("MESSAGES_ADDR", c.messages_addr);
  c.presence_addr = env.String("PRESENCE_ADDR", c.presence_addr);
  c.redis_addr = env.String("REDIS_ADDR", c.redis_addr);
  c.jwt_secret = env.String("JWT_SECRET", "");
  c.jwt_algorithm = env.String("JWT_ALGORITHM", c.jwt_algorithm);
  c.jwt_public_key_file = env.String("JWT_PUBLIC_KEY_FILE", "");
  c.flood_close_after = env.Int("FLOOD_CLOSE_AFTER", c.flood_close_after, 1, 1000000);
  c.max_connections = env.Int("MAX_CONNECTIONS", c.max_connections, 1, 100000000);
  c.max_connections_per_user = env.Int("MAX_CONNECTIONS_PER_USER", c.max_connections_per_user, 1, 1000000);
  for (auto o : absl::StrSplit(env.String("ALLOWED_ORIGINS", ""), ',', absl::SkipWhitespace())) {
    c.allowed_origins.emplace_back(absl::StripAsciiWhitespace(o));
  }
  c.jwt_clock_skew_seconds = env.Int("JWT_CLOCK_SKEW_SECONDS", c.jwt_clock_skew_seconds, 0, 3600);
  c.dev_login = env.Bool("DEV_LOGIN", c.dev_login);
  c.dev_token_ttl_seconds = env.Int("DEV_TOKEN_TTL_SECONDS", c.dev_token_ttl_seconds, 60, 86400 * 30);
  c.text_limit_bytes = env.Int("TEXT_LIMIT_BYTES", c.text_limit_bytes, 1, 1 << 20);
  c.frame_limit_bytes = env.Int("FRAME_LIMIT_BYTES", c.frame_limit_bytes, 1024, 16 << 20);
  c.outbound_queue_bytes = env.Int("OUTBOUND_QUEUE_BYTES", c.outbound_queue_bytes, 4096, 1LL << 32);
  c.heartbeat_seconds = env.Int("HEARTBEAT_SECONDS", c.heartbeat_seconds, 1, 3600);
  c.ws_deflate = env.Bool("WS_DEFLATE", c.ws_deflate);
  c.ws_deflate_window_bits = env.Int("WS_DEFLATE_WINDOW_BITS", c.ws_deflate_window_bits, 9, 15);
  c.ws_deflate_min_bytes = env.Int("WS_DEFLATE_MIN_BYTES", c.ws_deflate_min_bytes, 0, 16 << 20);
  c.ws_write_delay_ms = env.Int("WS_WRITE_DELAY_MS", c.ws_write_delay_ms, 0, 1000);
  c.send_rate_per_second = env.Int("SEND_RATE_PER_SECOND", c.send_rate_per_second, 1, 1000000);
  c.send_burst = env.Int("SEND_BURST", c.send_burst, 1, 1000000);
  c.max_rooms_per_connection = env.Int("MAX_ROOMS_PER_CONNECTION", c.max_rooms_per_connection, 1, 100000);
  c.presence_ttl_seconds = env.Int("PRESENCE_TTL_SECONDS", c.presence_ttl_seconds, 2, 3600);
  c.resume_replay_max = env.Int("RESUME_REPLAY_MAX", c.resume_replay_max, 1, 100000);
  c.gap_refetch_ms = env.Int("GAP_REFETCH_MS", c.gap_refetch_ms, 10, 600000);
  c.web_root = env.String("WEB_ROOT", c.web_root);
  c.tls_cert_file = env.String("TLS_CERT_FILE", "");
  c.tls_key_file = env.String("TLS_KEY_FILE", "");
  c.log_level = env.String("LOG_LEVEL", c.log_level);
  if (!env.status().ok()) return env.status();
  if (c.jwt_algorithm == "HS256") {
    if (c.jwt_secret.size() < 16) {
      return absl::InvalidArgumentError("JWT_SECRET must be set, at least 16 characters");
    }
  } else if (c.jwt_algorithm == "RS256" || c.jwt_algorithm == "ES256") {
    if (c.jwt_public_key_file.empty()) {
      return absl::InvalidArgumentError("JWT_PUBLIC_KEY_FILE must be set for " + c.jwt_algorithm);
    }
    if (c.dev_login)
      return absl::InvalidArgumentError("DEV_LOGIN mints HS256 tokens: use JWT_ALGORITHM=HS256");
  } else {
    return absl::InvalidArgumentError("JWT_ALGORITHM must be HS256, RS256 or ES256");
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS_CERT_FILE and TLS_KEY_FILE go together");
  }
  if (c.gateway_id.find('|') != std::string::npos)
    return absl::InvalidArgumentError("GATEWAY_ID may not hold '|'");
  if (c.text_limit_bytes > c.frame_limit_bytes) {
    return absl::InvalidArgumentError("TEXT_LIMIT_BYTES must not exceed FRAME_LIMIT_BYTES");
  }
  std::random_device rd;
  c.instance_id = absl::StrFormat("%s.%08x", c.gateway_id, rd());
  for (const auto* a : {&c.http_addr, &c.grpc_addr, &c.redis_addr}) {
    if (auto hp = ParseHostPort(*a); !hp.ok()) return hp.status();
  }
  return c;
}

}  // namespace chat::gateway
