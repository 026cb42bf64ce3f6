// PresenceLogic against a real Redis: connection events that wait while a batch runs go to Redis
// together, in arrival order, each answered once under its own correlation id; queries still answer.
#include <gtest/gtest.h>

#include <algorithm>
#include <future>

#include "domain/presence_logic.h"
#include "storage/redis_presence_store.h"
#include "support/blocked_pool.h"
#include "support/test_env.h"

namespace chat::presence {
namespace {

using chat::testing::LoadTestServers;
using chat::testing::UniqueName;

class PresenceLogicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    servers_ = LoadTestServers();
    gw_ = UniqueName("gw");
    room_ = UniqueName("room");
  }

  std::unique_ptr<PresencePool> BlockedPool(std::shared_future<void> release) {
    return chat::testing::BlockedPool<PresenceStore>(Store(), std::move(release));
  }
  std::unique_ptr<RedisPresenceStore> Store() {
    return std::make_unique<RedisPresenceStore>(servers_.redis_host, servers_.redis_port, PresenceTimings{});
  }

  chat::v1::PresenceRequest Opened(uint64_t id, const std::string& conn, const std::string& user) {
    chat::v1::PresenceRequest r;
    r.set_correlation_id(id);
    auto* c = r.mutable_opened()->mutable_conn();
    c->set_gateway(gw_);
    c->set_connection(conn);
    c->set_user(user);
    return r;
  }
  chat::v1::PresenceRequest Entered(uint64_t id, const std::string& conn, const std::string& user) {
    chat::v1::PresenceRequest r;
    r.set_correlation_id(id);
    *r.mutable_entered()->mutable_conn() = Opened(id, conn, user).opened().conn();
    r.mutable_entered()->set_room(room_);
    return r;
  }

  chat::testing::TestServers servers_;
  std::string gw_, room_;
  MetricsRegistry metrics_;
  NowMs now_ = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
};

TEST_F(PresenceLogicTest, EventsThatWaitGoTogetherInOrderEachAnsweredOnce) {
  std::promise<void> release;
  auto pool = BlockedPool(release.get_future().share());
  PresenceLogic logic(*pool, now_, metrics_);
  constexpr int kUsers = 50;  // an opened and an entered each: 100 events
  std::vector<std::promise<absl::StatusOr<chat::v1::PresenceReply>>> replies(2 * kUsers);
  for (int u = 0; u < kUsers; ++u) {
    const std::string user = "user" + std::to_string(u), conn = "c" + std::to_string(u);
    for (int k : {2 * u, 2 * u + 1}) {
      auto req = k % 2 == 0 ? Opened(static_cast<uint64_t>(k), conn, user)
                            : Entered(static_cast<uint64_t>(k), conn, user);
      logic.Handle(req, [&replies, k](absl::StatusOr<chat::v1::PresenceReply> r) {
        replies[static_cast<size_t>(k)].set_value(std::move(r));
      });
    }
  }
  release.set_value();
  for (int k = 0; k < 2 * kUsers; ++k) {
    auto r = replies[static_cast<size_t>(k)].get_future().get();
    ASSERT_TRUE(r.ok()) << k << ": " << r.status();
    EXPECT_EQ(r->correlation_id(), static_cast<uint64_t>(k));
    if (k % 2 == 1) {
      // Everyone who entered before, in the same batch or an earlier one, and this user.
      const auto& users = r->online().users();
      EXPECT_EQ(r->online().room(), room_);
      EXPECT_EQ(users.size(), k / 2 + 1) << k;
      EXPECT_NE(std::find(users.begin(), users.end(), "user" + std::to_string(k / 2)), users.end()) << k;
    }
  }
  // Queries run on the pool as before, outside the batches.
  std::promise<absl::StatusOr<chat::v1::RoomOnline>> online;
  logic.RoomOnline(room_,
                   [&online](absl::StatusOr<chat::v1::RoomOnline> r) { online.set_value(std::move(r)); });
  auto all = online.get_future().get();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->users_size(), kUsers);
  pool->Stop();
  // 100 events waited behind the busy worker: batches of at most 32.
  EXPECT_EQ(metrics_.GetHistogram("chat_presence_event_batch_size", "", {}).Count(), 4u);
}

TEST_F(PresenceLogicTest, ALoneEventGoesAtOnceAndBadOnesAreRefusedUpFront) {
  std::vector<std::unique_ptr<PresenceStore>> stores;
  stores.push_back(Store());
  PresencePool pool(std::move(stores), 1000);
  pool.Start();
  PresenceLogic logic(pool, now_, metrics_);
  for (uint64_t id : {7u, 8u}) {
    std::promise<absl::StatusOr<chat::v1::PresenceReply>> p;
    logic.Handle(id == 7 ? Opened(id, "c", "alone") : Entered(id, "c", "alone"),
                 [&p](absl::StatusOr<chat::v1::PresenceReply> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->correlation_id(), id);
  }
  EXPECT_EQ(metrics_.GetHistogram("chat_presence_event_batch_size", "", {}).Count(), 2u);
  std::promise<absl::StatusOr<chat::v1::PresenceReply>> bad;
  logic.Handle(Opened(9, "c|x", "alone"),
               [&bad](absl::StatusOr<chat::v1::PresenceReply> r) { bad.set_value(std::move(r)); });
  EXPECT_EQ(bad.get_future().get().status().code(), absl::StatusCode::kInvalidArgument);
  pool.Stop();
}

TEST_F(PresenceLogicTest, AStoppedPoolRefusesEventsWithUnavailable) {
  std::vector<std::unique_ptr<PresenceStore>> stores;
  stores.push_back(Store());
  PresencePool pool(std::move(stores), 1000);
  pool.Start();
  pool.Stop();
  PresenceLogic logic(pool, now_, metrics_);
  std::promise<absl::StatusOr<chat::v1::PresenceReply>> p;
  logic.Handle(Opened(1, "c", "late"),
               [&p](absl::StatusOr<chat::v1::PresenceReply> r) { p.set_value(std::move(r)); });
  EXPECT_EQ(p.get_future().get().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace chat::presence
