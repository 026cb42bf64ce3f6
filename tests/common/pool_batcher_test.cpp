// PoolBatcher on a real WorkerPool: items that wait while the worker is busy go in batches of at most
// batch_max, in the order they were submitted; other work given to the pool runs between batches; a
// full queue and a stopped pool refuse.
#include "common/pool_batcher.h"

#include <gtest/gtest.h>

#include <future>
#include <string>

namespace chat {
namespace {

// The worker's resource: what ran on it, in order (one worker, so no lock is needed while it runs).
struct Journal {
  std::vector<std::string> entries;
};

using Pool = WorkerPool<Journal>;
using Batcher = PoolBatcher<Journal, int>;

struct Fixture {
  Fixture(size_t batch_max, size_t queue_max) {
    std::vector<std::unique_ptr<Journal>> journals;
    journals.push_back(std::make_unique<Journal>());
    journal = journals.front().get();
    pool = std::make_unique<Pool>(std::move(journals), 1000);
    pool->Start();
    // The worker is busy until `release`: what is submitted meanwhile waits.
    pool->Post([f = release.get_future().share()](Journal&) { f.wait(); }, [] {});
    batcher = std::make_unique<Batcher>(
        *pool, batch_max, queue_max,
        [this](Journal& j, std::vector<int>& items) {
          std::string e = "batch";
          for (int i : items) e += " " + std::to_string(i);
          j.entries.push_back(e);
          if (items.back() == last) last_done.set_value();
        },
        [this](int& i) { refused.push_back(i); });
  }

  std::promise<void> release;
  int last = -1;  // the item whose batch sets last_done
  std::promise<void> last_done;
  Journal* journal = nullptr;
  std::unique_ptr<Pool> pool;
  std::unique_ptr<Batcher> batcher;
  std::vector<int> refused;
};

TEST(PoolBatcher, WaitingItemsGoInOrderedBatchesWithOtherWorkBetween) {
  Fixture f(3, 100);
  for (int i = 1; i <= 7; ++i) f.batcher->Submit(i);
  f.pool->Post([](Journal& j) { j.entries.push_back("query"); }, [] {});
  f.last = 7;
  f.release.set_value();
  f.last_done.get_future().wait();
  f.pool->Stop();
  // The query was queued behind the first drain, so it runs after the first batch, not after all.
  EXPECT_EQ(f.journal->entries, (std::vector<std::string>{"batch 1 2 3", "query", "batch 4 5 6", "batch 7"}));
  EXPECT_TRUE(f.refused.empty());
}

TEST(PoolBatcher, StoppingThePoolStillRunsWhatWasAccepted) {
  Fixture f(3, 100);
  for (int i = 1; i <= 7; ++i) f.batcher->Submit(i);
  f.release.set_value();
  f.pool->Stop();  // the next batches cannot be queued any more: they run on the draining worker
  EXPECT_EQ(f.journal->entries, (std::vector<std::string>{"batch 1 2 3", "batch 4 5 6", "batch 7"}));
  EXPECT_TRUE(f.refused.empty());
}

TEST(PoolBatcher, ALoneItemGoesAtOnce) {
  Fixture f(3, 100);
  f.release.set_value();
  for (int i = 1; i <= 2; ++i) {
    std::promise<void> ran;
    f.pool->Post([&ran](Journal&) { ran.set_value(); }, [] {});
    ran.get_future().wait();  // the worker is idle again
    f.batcher->Submit(i);
  }
  f.pool->Stop();
  EXPECT_EQ(f.journal->entries, (std::vector<std::string>{"batch 1", "batch 2"}));
}

TEST(PoolBatcher, AFullQueueAndAStoppedPoolRefuse) {
  Fixture f(3, 2);
  f.batcher->Submit(1);
  f.batcher->Submit(2);
  f.batcher->Submit(3);  // a third waiting item: over queue_max, refused on this thread
  EXPECT_EQ(f.refused, std::vector<int>{3});
  f.release.set_value();
  f.pool->Stop();
  EXPECT_EQ(f.journal->entries, std::vector<std::string>{"batch 1 2"});
  f.batcher->Submit(4);  // the pool takes no work once stopped
  EXPECT_EQ(f.refused, (std::vector<int>{3, 4}));
}

}  // namespace
}  // namespace chat
