// JoinBatcher against a real PostgreSQL: joins that wait while a batch runs go together in one
// statement, each answered once with its own outcome; a full queue and a stopped pool refuse at once.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "domain/join_batcher.h"
#include "storage/pg_message_store.h"
#include "support/blocked_pool.h"
#include "support/test_env.h"

namespace chat::messages {
namespace {

using chat::testing::LoadTestServers;
using chat::testing::UniqueName;

class JoinBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = LoadTestServers().database_url;
    ASSERT_TRUE(ApplyMigrations(url_).ok());
    room_ = UniqueName("joins");
    private_ = UniqueName("private");
    PgMessageStore setup(url_);
    ASSERT_TRUE(setup.CreateRoom(room_, chat::v1::ROOM_KIND_PUBLIC, {}).ok());
    ASSERT_TRUE(setup.CreateRoom(private_, chat::v1::ROOM_KIND_PRIVATE, {"owner"}).ok());
  }

  // A pool of one worker, held busy until `release` is set: what is submitted meanwhile waits.
  std::unique_ptr<QueryPool> BlockedPool(std::shared_future<void> release) {
    return chat::testing::BlockedPool<MessageStore>(std::make_unique<PgMessageStore>(url_),
                                                    std::move(release));
  }

  std::string url_, room_, private_;
  MetricsRegistry metrics_;
};

TEST_F(JoinBatcherTest, JoinsThatWaitGoTogetherEachWithItsOwnOutcome) {
  std::promise<void> release;
  auto pool = BlockedPool(release.get_future().share());
  JoinBatcher joins(*pool, 64, 1000, metrics_);
  constexpr int kThreads = 3, kPerThread = 100;
  std::vector<std::promise<absl::StatusOr<chat::v1::RoomInfo>>> results(kThreads * kPerThread);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int k = t * kPerThread + i;
        // Every tenth asks for the private room it is not a member of; the rest join the public one.
        RoomJoin j{k % 10 == 0 ? private_ : room_, "user" + std::to_string(k)};
        joins.Submit(std::move(j), [&results, k](absl::StatusOr<chat::v1::RoomInfo> r) {
          results[static_cast<size_t>(k)].set_value(std::move(r));
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  release.set_value();
  for (int k = 0; k < kThreads * kPerThread; ++k) {
    auto r = results[static_cast<size_t>(k)].get_future().get();
    if (k % 10 == 0) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << k;
    } else {
      ASSERT_TRUE(r.ok()) << k << ": " << r.status();
      EXPECT_EQ(r->room(), room_);
    }
  }
  pool->Stop();
  // 300 joins waited behind the busy worker: batches of at most 64.
  auto& sizes = metrics_.GetHistogram("chat_join_batch_size", "", {});
  EXPECT_EQ(sizes.Count(), 5u);
  PgMessageStore check(url_);
  EXPECT_EQ(check.Join(room_, "someone else")->member_count(), 271);  // 270 joined + this one
}

TEST_F(JoinBatcherTest, ALoneJoinGoesAtOnce) {
  std::vector<std::unique_ptr<MessageStore>> stores;
  stores.push_back(std::make_unique<PgMessageStore>(url_));
  QueryPool pool(std::move(stores), 1000);
  pool.Start();
  JoinBatcher joins(pool, 64, 1000, metrics_);
  for (int i = 0; i < 3; ++i) {
    std::promise<absl::StatusOr<chat::v1::RoomInfo>> p;
    joins.Submit({room_, "alone"}, [&p](absl::StatusOr<chat::v1::RoomInfo> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status();
  }
  EXPECT_EQ(metrics_.GetHistogram("chat_join_batch_size", "", {}).Count(), 3u);
  std::promise<absl::StatusOr<chat::v1::RoomInfo>> missing;
  joins.Submit({UniqueName("missing"), "alone"},
               [&missing](absl::StatusOr<chat::v1::RoomInfo> r) { missing.set_value(std::move(r)); });
  EXPECT_EQ(missing.get_future().get().status().code(), absl::StatusCode::kNotFound);
  pool.Stop();
}

TEST_F(JoinBatcherTest, FullQueueAndStoppedPoolRefuseAtOnce) {
  std::promise<void> release;
  auto pool = BlockedPool(release.get_future().share());
  JoinBatcher joins(*pool, 64, 2, metrics_);
  std::vector<absl::StatusCode> codes;
  auto record = [&codes](absl::StatusOr<chat::v1::RoomInfo> r) { codes.push_back(r.status().code()); };
  joins.Submit({room_, "a"}, record);
  joins.Submit({room_, "b"}, record);
  joins.Submit({room_, "c"}, record);  // a third waiting join: over queue_max
  ASSERT_EQ(codes.size(), 1u);
  EXPECT_EQ(codes[0], absl::StatusCode::kUnavailable);
  release.set_value();
  pool->Stop();  // runs the drain: a and b are answered
  ASSERT_EQ(codes.size(), 3u);
  EXPECT_EQ(codes[1], absl::StatusCode::kOk);
  EXPECT_EQ(codes[2], absl::StatusCode::kOk);
  joins.Submit({room_, "d"}, record);  // the pool refuses work once stopped
  ASSERT_EQ(codes.size(), 4u);
  EXPECT_EQ(codes[3], absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace chat::messages
