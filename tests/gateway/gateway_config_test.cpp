#include "gateway_config.h"

#include <gtest/gtest.h>

#include <map>

#include "support/test_env.h"

namespace chat::gateway {
namespace {

using chat::testing::MapEnv;

TEST(GatewayConfig, DefaultsOfDesign) {
  auto c = GatewayConfig::FromEnv(MapEnv({{"JWT_SECRET", "0123456789abcdef"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->http_addr, "0.0.0.0:8080");
  EXPECT_EQ(c->grpc_addr, "0.0.0.0:9090");
  EXPECT_EQ(c->text_limit_bytes, 4096);
  EXPECT_EQ(c->frame_limit_bytes, 65536);
  EXPECT_EQ(c->outbound_queue_bytes, 1 << 20);
  EXPECT_EQ(c->heartbeat_seconds, 15);
  EXPECT_EQ(c->send_rate_per_second, 10);
  EXPECT_EQ(c->send_burst, 20);
  EXPECT_FALSE(c->dev_login);
  EXPECT_FALSE(c->gateway_id.empty());
  EXPECT_FALSE(c->ws_deflate);
  EXPECT_EQ(c->ws_write_delay_ms, 0);
}

TEST(GatewayConfig, WriteDelayIsOptInAndBounded) {
  auto c = GatewayConfig::FromEnv(MapEnv({{"JWT_SECRET", "0123456789abcdef"}, {"WS_WRITE_DELAY_MS", "20"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ws_write_delay_ms, 20);
  for (const char* bad : {"-1", "1001", "soon"}) {
    EXPECT_FALSE(
        GatewayConfig::FromEnv(MapEnv({{"JWT_SECRET", "0123456789abcdef"}, {"WS_WRITE_DELAY_MS", bad}})).ok())
        << bad;
  }
}

TEST(GatewayConfig, PermessageDeflateIsOptIn) {
  auto c = GatewayConfig::FromEnv(
      MapEnv({{"JWT_SECRET", "0123456789abcdef"}, {"WS_DEFLATE", "1"}, {"WS_DEFLATE_WINDOW_BITS", "9"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->ws_deflate);
  EXPECT_EQ(c->ws_deflate_window_bits, 9);
  EXPECT_EQ(c->ws_deflate_min_bytes, 256);
  EXPECT_FALSE(
      GatewayConfig::FromEnv(MapEnv({{"JWT_SECRET", "0123456789abcdef"}, {"WS_DEFLATE_WINDOW_BITS", "8"}}))
          .ok());
}

TEST(GatewayConfig, RequiresASecretAndSaneLimits) {
  EXPECT_FALSE(GatewayConfig::FromEnv(MapEnv({})).ok());
  EXPECT_FALSE(GatewayConfig::FromEnv(MapEnv({{"JWT_SECRET", "short"}})).ok());
  EXPECT_FALSE(
      GatewayConfig::FromEnv(MapEnv({{"JWT_SECRET", "0123456789abcdef"}, {"TEXT_LIMIT_BYTES", "100000"}}))
          .ok());
  EXPECT_FALSE(
      GatewayConfig::FromEnv(MapEnv({{"JWT_SECRET", "0123456789abcdef"}, {"GATEWAY_ID", "a|b"}})).ok());
  auto c = GatewayConfig::FromEnv(MapEnv({{"JWT_SECRET", "0123456789abcdef"}, {"DEV_LOGIN", "1"}}));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->dev_login);
}

}  // namespace
}  // namespace chat::gateway
