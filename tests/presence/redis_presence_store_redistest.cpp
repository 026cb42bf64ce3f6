// RedisPresenceStore against a real Redis (started by the ctest fixture).
#include <gtest/gtest.h>

#include "common/redis_connection.h"
#include "storage/redis_presence_store.h"
#include "support/test_env.h"

namespace chat::presence {
namespace {

using chat::testing::LoadTestServers;
using chat::testing::UniqueName;

chat::v1::ConnectionRef Conn(const std::string& gw, const std::string& conn, const std::string& user) {
  chat::v1::ConnectionRef r;
  r.set_gateway(gw);
  r.set_connection(conn);
  r.set_user(user);
  return r;
}

class PresenceStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = LoadTestServers();
    store_ = std::make_unique<RedisPresenceStore>(s.redis_host, s.redis_port, std::chrono::seconds(30));
    redis_ = std::make_unique<RedisConnection>(s.redis_host, s.redis_port, std::chrono::milliseconds(2000));
    gw_a_ = UniqueName("gwA");
    gw_b_ = UniqueName("gwB");
    alice_ = UniqueName("alice");
    bob_ = UniqueName("bob");
    room_ = UniqueName("room");
  }
  std::unique_ptr<RedisPresenceStore> store_;
  std::unique_ptr<RedisConnection> redis_;
  std::string gw_a_, gw_b_, alice_, bob_, room_;
};

TEST_F(PresenceStoreTest, OnlineWhileAnyConnectionLives) {
  EXPECT_TRUE(*store_->Open(Conn(gw_a_, "1", alice_)));
  EXPECT_FALSE(*store_->Open(Conn(gw_b_, "2", alice_)));  // second tab, other replica
  EXPECT_FALSE(*store_->Close(Conn(gw_a_, "1", alice_)));
  auto users = store_->Users({alice_});
  ASSERT_TRUE(users.ok());
  EXPECT_TRUE((*users)[0].online());
  EXPECT_TRUE(*store_->Close(Conn(gw_b_, "2", alice_)));
  users = store_->Users({alice_});
  EXPECT_FALSE((*users)[0].online());
  EXPECT_GT((*users)[0].last_seen().seconds(), 0);
}

TEST_F(PresenceStoreTest, RoomOnlineListsUsersOnce) {
  ASSERT_TRUE(store_->Open(Conn(gw_a_, "1", alice_)).ok());
  ASSERT_TRUE(store_->Open(Conn(gw_a_, "2", alice_)).ok());
  ASSERT_TRUE(store_->Open(Conn(gw_b_, "3", bob_)).ok());
  auto online = store_->Enter(Conn(gw_a_, "1", alice_), room_);
  ASSERT_TRUE(online.ok());
  EXPECT_EQ(*online, std::vector<std::string>{alice_});
  ASSERT_TRUE(store_->Enter(Conn(gw_a_, "2", alice_), room_).ok());
  online = store_->Enter(Conn(gw_b_, "3", bob_), room_);
  ASSERT_TRUE(online.ok());
  std::vector<std::string> both = {alice_, bob_};
  std::sort(both.begin(), both.end());
  EXPECT_EQ(*online, both);
  ASSERT_TRUE(store_->Exit(Conn(gw_b_, "3", bob_), room_).ok());
  EXPECT_EQ(*store_->RoomOnline(room_), std::vector<std::string>{alice_});
}

TEST_F(PresenceStoreTest, DeadGatewaysConnectionsDropOut) {
  ASSERT_TRUE(store_->Open(Conn(gw_a_, "1", alice_)).ok());
  ASSERT_TRUE(store_->Open(Conn(gw_b_, "2", bob_)).ok());
  ASSERT_TRUE(store_->Enter(Conn(gw_a_, "1", alice_), room_).ok());
  ASSERT_TRUE(store_->Enter(Conn(gw_b_, "2", bob_), room_).ok());
  // Gateway B stops heartbeating: its key expires (here: removed, as the TTL would).
  ASSERT_TRUE(redis_->Command({"DEL", "chat:presence:gw:" + gw_b_}).ok());
  EXPECT_EQ(*store_->RoomOnline(room_), std::vector<std::string>{alice_});
  auto users = store_->Users({bob_});
  EXPECT_FALSE((*users)[0].online());
  // A heartbeat brings a gateway's key back with its TTL.
  ASSERT_TRUE(store_->Heartbeat(gw_b_).ok());
  auto ttl = redis_->Command({"TTL", "chat:presence:gw:" + gw_b_});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 30);
}

TEST_F(PresenceStoreTest, EnteringCountsAsAHeartbeat) {
  // The first connection of a new gateway may enter a room before its open or heartbeat is seen.
  auto online = store_->Enter(Conn(gw_a_, "1", alice_), room_);
  ASSERT_TRUE(online.ok());
  EXPECT_EQ(*online, std::vector<std::string>{alice_});
}

TEST_F(PresenceStoreTest, RedisDownIsUnavailable) {
  RedisPresenceStore down("127.0.0.1", 1, std::chrono::seconds(30));
  EXPECT_EQ(down.Open(Conn(gw_a_, "1", alice_)).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace chat::presence
