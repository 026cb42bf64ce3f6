#include "common/env_config.h"

#include <gtest/gtest.h>

#include <map>

#include "support/test_env.h"

namespace chat {
namespace {

using chat::testing::MapEnv;

TEST(EnvReader, DefaultsAndValues) {
  EnvReader env(MapEnv({{"A", "12"}, {"B", "yes"}, {"S", "x"}}));
  EXPECT_EQ(env.Int("A", 1, 0, 100), 12);
  EXPECT_EQ(env.Int("MISSING", 5, 0, 100), 5);
  EXPECT_TRUE(env.Bool("B", false));
  EXPECT_EQ(env.String("S", "d"), "x");
  EXPECT_TRUE(env.status().ok());
}

TEST(EnvReader, BadValuesAreReported) {
  EnvReader env(MapEnv({{"A", "twelve"}, {"R", "1000"}}));
  env.Int("A", 1, 0, 100);
  EXPECT_FALSE(env.status().ok());
  EnvReader env2(MapEnv({{"R", "1000"}}));
  EXPECT_EQ(env2.Int("R", 1, 0, 100), 1);
  EXPECT_EQ(env2.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HostPort, Parses) {
  auto hp = ParseHostPort("127.0.0.1:6379");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 6379);
  EXPECT_EQ(ParseHostPort(":80")->host, "0.0.0.0");
  EXPECT_EQ(ParseHostPort("[::1]:80")->host, "::1");
  EXPECT_FALSE(ParseHostPort("nohost").ok());
  EXPECT_FALSE(ParseHostPort("h:99999").ok());
}

}  // namespace
}  // namespace chat
