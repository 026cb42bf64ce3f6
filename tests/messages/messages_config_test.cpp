#include "messages_config.h"

#include <gtest/gtest.h>

#include <map>

#include "support/test_env.h"

namespace chat::messages {
namespace {

using chat::testing::MapEnv;

TEST(MessagesConfig, Defaults) {
  auto c = MessagesConfig::FromEnv(MapEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->grpc_addr, "0.0.0.0:50051");
  EXPECT_EQ(c->db_pool_size, 4);
  EXPECT_EQ(c->commit_batch_max, 256);
  EXPECT_EQ(c->commit_linger_us, 1000);
  EXPECT_EQ(c->commit_linger_after, 2);
  EXPECT_EQ(c->seed_public_rooms, (std::vector<std::string>{"general", "random"}));
}

TEST(MessagesConfig, ReadsAndValidates) {
  auto c = MessagesConfig::FromEnv(MapEnv({{"DB_POOL_SIZE", "8"}, {"SEED_PUBLIC_ROOMS", "a, b"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->db_pool_size, 8);
  EXPECT_EQ(c->seed_public_rooms, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(MessagesConfig::FromEnv(MapEnv({{"DB_POOL_SIZE", "0"}})).ok());
  EXPECT_EQ(MessagesConfig::FromEnv(MapEnv({{"COMMIT_LINGER_US", "0"}})).value().commit_linger_us, 0);
  EXPECT_FALSE(MessagesConfig::FromEnv(MapEnv({{"COMMIT_LINGER_US", "-1"}})).ok());
  EXPECT_EQ(MessagesConfig::FromEnv(MapEnv({{"COMMIT_LINGER_AFTER", "8"}})).value().commit_linger_after, 8);
  EXPECT_FALSE(MessagesConfig::FromEnv(MapEnv({{"COMMIT_LINGER_AFTER", "1"}})).ok());
  EXPECT_FALSE(MessagesConfig::FromEnv(MapEnv({{"SEED_PUBLIC_ROOMS", "bad room"}})).ok());
  EXPECT_FALSE(MessagesConfig::FromEnv(MapEnv({{"REDIS_ADDR", "nohost"}})).ok());
}

}  // namespace
}  // namespace chat::messages
