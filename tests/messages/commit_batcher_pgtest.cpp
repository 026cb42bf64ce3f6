// Group commit against a real PostgreSQL: gap-free seqs under concurrent senders, also with two
// writers (two messages replicas) on one room, idempotent sends racing each other, publish before
// completion while the next batch is already being stored, the writer's linger under load, and which
// thread finishes a batch.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "domain/commit_batcher.h"
#include "storage/pg_message_store.h"
#include "support/test_env.h"

namespace chat::messages {
namespace {

using chat::testing::LoadTestServers;
using chat::testing::UniqueName;

// Records what would go to pub/sub, in order.
class RecordingPublisher : public EventPublisher {
 public:
  absl::Status Publish(const std::vector<chat::v1::ChatMessage>& messages) override {
    std::lock_guard lock(mu);
    for (const auto& m : messages) published.push_back(m);
    threads.push_back(std::this_thread::get_id());
    return absl::OkStatus();
  }
  absl::Status PublishControl(const chat::v1::ControlEvent&) override { return absl::OkStatus(); }
  absl::Status PublishEvent(const std::string&, const chat::v1::RoomEvent&) override {
    return absl::OkStatus();
  }
  std::mutex mu;
  std::vector<chat::v1::ChatMessage> published;
  std::vector<std::thread::id> threads;  // per Publish: the thread that made it
};

// The real store, holding its first commit until `release` so a test can line sends up behind it; it
// records how many messages each commit stored.
class GatedStore : public PgMessageStore {
 public:
  GatedStore(const std::string& url, std::shared_future<void> release)
      : PgMessageStore(url), release_(std::move(release)) {}

  absl::StatusOr<std::vector<absl::StatusOr<AppendOutcome>>> AppendBatch(
      const std::vector<NewMessage>& batch) override {
    {
      std::lock_guard lock(mu_);
      sizes_.push_back(batch.size());
      writer_ = std::this_thread::get_id();
    }
    if (!first_entered_.exchange(true)) {
      entered_.set_value();
      release_.wait();
    }
    return PgMessageStore::AppendBatch(batch);
  }

  std::vector<size_t> BatchSizes() {
    std::lock_guard lock(mu_);
    return sizes_;
  }
  std::future<void> Entered() { return entered_.get_future(); }
  std::thread::id Writer() {
    std::lock_guard lock(mu_);
    return writer_;
  }

 private:
  std::shared_future<void> release_;
  std::atomic<bool> first_entered_{false};
  std::promise<void> entered_;
  std::mutex mu_;
  std::vector<size_t> sizes_;
  std::thread::id writer_;
};

class CommitBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = LoadTestServers().database_url;
    ASSERT_TRUE(ApplyMigrations(url_).ok());
    room_ = UniqueName("batch");
    PgMessageStore setup(url_);
    ASSERT_TRUE(setup.CreateRoom(room_, chat::v1::ROOM_KIND_PUBLIC, {}).ok());
  }

  std::unique_ptr<CommitBatcher> MakeBatcher(RecordingPublisher& pub) {
    auto b = std::make_unique<CommitBatcher>(std::make_unique<PgMessageStore>(url_), pub, 64, 100000,
                                             std::chrono::microseconds(1000), 2, metrics_);
    b->Start();
    return b;
  }

  // Sends one message; its outcome arrives on the returned future.
  std::future<absl::StatusOr<AppendOutcome>> SendOne(CommitBatcher& b, const std::string& client_id) {
    auto p = std::make_shared<std::promise<absl::StatusOr<AppendOutcome>>>();
    auto f = p->get_future();
    b.Submit({room_, "alice", room_ + "-" + client_id, "x"},
             [p](absl::StatusOr<AppendOutcome> o) { p->set_value(std::move(o)); });
    return f;
  }

  // A started batcher over a GatedStore. Unless `released`, the store holds its first commit until
  // `release` is set.
  struct Gated {
    RecordingPublisher pub;
    std::promise<void> release;
    GatedStore* store = nullptr;
    std::unique_ptr<CommitBatcher> batcher;
  };
  std::unique_ptr<Gated> MakeGated(size_t batch_max, std::chrono::microseconds linger, bool released = false,
                                   size_t linger_after = 2) {
    auto g = std::make_unique<Gated>();
    if (released) g->release.set_value();
    auto store = std::make_unique<GatedStore>(url_, g->release.get_future().share());
    g->store = store.get();
    g->batcher = std::make_unique<CommitBatcher>(std::move(store), g->pub, batch_max, 1000, linger,
                                                 linger_after, metrics_);
    g->batcher->Start();
    return g;
  }

  // Gets the writer lingering: a first commit held open while two sends queue behind it, so the second
  // commit stores two and the writer then waits for more. Returns the store's batch sizes so far.
  std::vector<size_t> StartLingering(Gated& g) {
    auto entered = g.store->Entered();
    auto m1 = SendOne(*g.batcher, "m1");
    entered.wait();
    auto m2 = SendOne(*g.batcher, "m2");
    auto m3 = SendOne(*g.batcher, "m3");
    g.release.set_value();
    for (auto* f : {&m1, &m2, &m3}) EXPECT_TRUE(f->get().ok());
    return g.store->BatchSizes();
  }

  // Sends `per_thread` messages from each of `threads` threads, spread over the batchers; waits for all.
  std::vector<absl::StatusOr<AppendOutcome>> SendConcurrently(std::vector<CommitBatcher*> batchers,
                                                              int threads, int per_thread) {
    std::vector<std::promise<absl::StatusOr<AppendOutcome>>> promises(threads * per_thread);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          int k = t * per_thread + i;
          batchers[k % batchers.size()]->Submit(
              {room_, room_ + "-user" + std::to_string(t), "c" + std::to_string(i),
               "text " + std::to_string(k)},
              [&promises, k](absl::StatusOr<AppendOutcome> o) { promises[k].set_value(std::move(o)); });
        }
      });
    }
    for (auto& t : ts) t.join();
    std::vector<absl::StatusOr<AppendOutcome>> out;
    for (auto& p : promises) out.push_back(p.get_future().get());
    return out;
  }

  std::string url_;
  std::string room_;
  MetricsRegistry metrics_;
};

void ExpectGapFree(const std::vector<absl::StatusOr<AppendOutcome>>& outcomes) {
  std::set<int64_t> seqs;
  for (const auto& o : outcomes) {
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_FALSE(o->duplicate);
    EXPECT_TRUE(seqs.insert(o->message.seq()).second) << "seq " << o->message.seq() << " given twice";
  }
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), static_cast<int64_t>(outcomes.size()));
}

TEST_F(CommitBatcherTest, ConcurrentSendersGetGapFreeSeqs) {
  RecordingPublisher pub;
  auto batcher = MakeBatcher(pub);
  auto outcomes = SendConcurrently({batcher.get()}, 8, 50);
  ExpectGapFree(outcomes);
  batcher->Stop();
  // Published after commit, each once, in seq order.
  ASSERT_EQ(pub.published.size(), outcomes.size());
  for (size_t i = 0; i < pub.published.size(); ++i)
    EXPECT_EQ(pub.published[i].seq(), static_cast<int64_t>(i + 1));
  auto& sizes = metrics_.GetHistogram("chat_commit_batch_size", "", {});
  EXPECT_LE(sizes.Count(), outcomes.size());
}

TEST_F(CommitBatcherTest, EachSendCompletesOnlyAfterItsMessageWasPublished) {
  // The writer stores the next batch while the previous one is published and completed; a send's
  // completion must still see its own message published (ack after broadcast, DESIGN.md).
  RecordingPublisher pub;
  auto batcher = MakeBatcher(pub);
  std::atomic<int> unpublished_at_ack{0};
  std::vector<std::promise<void>> done(300);
  for (int i = 0; i < 300; ++i) {
    batcher->Submit({room_, room_ + "-acker", "a" + std::to_string(i), "t"},
                    [&, i](absl::StatusOr<AppendOutcome> o) {
                      if (!o.ok()) {
                        ADD_FAILURE() << o.status();
                        return done[static_cast<size_t>(i)].set_value();
                      }
                      std::lock_guard lock(pub.mu);
                      bool seen = false;
                      for (const auto& m : pub.published) seen = seen || m.seq() == o->message.seq();
                      if (!seen) ++unpublished_at_ack;
                      done[static_cast<size_t>(i)].set_value();
                    });
  }
  for (auto& d : done) d.get_future().wait();
  EXPECT_EQ(unpublished_at_ack.load(), 0);
}

TEST_F(CommitBatcherTest, TwoWritersOnOneRoomStayGapFree) {
  RecordingPublisher pub_a, pub_b;
  auto a = MakeBatcher(pub_a);
  auto b = MakeBatcher(pub_b);
  ExpectGapFree(SendConcurrently({a.get(), b.get()}, 6, 40));
}

TEST_F(CommitBatcherTest, RacingDuplicatesStoreOneMessage) {
  RecordingPublisher pub_a, pub_b;
  auto a = MakeBatcher(pub_a);
  auto b = MakeBatcher(pub_b);
  constexpr int kSends = 20;
  std::vector<std::promise<absl::StatusOr<AppendOutcome>>> promises(kSends);
  for (int i = 0; i < kSends; ++i) {
    (i % 2 ? a : b)
        ->Submit({room_, "alice", room_ + "-same-client-id", "hello"},
                 [&promises, i](absl::StatusOr<AppendOutcome> o) { promises[i].set_value(std::move(o)); });
  }
  int firsts = 0;
  std::set<std::string> ids;
  for (auto& p : promises) {
    auto o = p.get_future().get();
    ASSERT_TRUE(o.ok()) << o.status();
    if (!o->duplicate) ++firsts;
    ids.insert(o->message.id());
    EXPECT_EQ(o->message.seq(), 1);
  }
  EXPECT_EQ(firsts, 1);
  EXPECT_EQ(ids.size(), 1u);
  PgMessageStore check(url_);
  EXPECT_EQ(check.GetRoom(room_)->last_seq(), 1);
}

TEST_F(CommitBatcherTest, StopFinishesQueuedSends) {
  RecordingPublisher pub;
  auto batcher = MakeBatcher(pub);
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) {
    batcher->Submit({room_, "alice", room_ + "-stop-" + std::to_string(i), "x"},
                    [&](absl::StatusOr<AppendOutcome> o) {
                      EXPECT_TRUE(o.ok()) << o.status();
                      ++done;
                    });
  }
  batcher->Stop();
  EXPECT_EQ(done.load(), 100);
  bool refused = false;
  batcher->Submit({room_, "alice", "late", "x"},
                  [&](absl::StatusOr<AppendOutcome> o) { refused = absl::IsUnavailable(o.status()); });
  EXPECT_TRUE(refused);
}

TEST_F(CommitBatcherTest, DatabaseDownAnswersUnavailable) {
  RecordingPublisher pub;
  CommitBatcher down(std::make_unique<PgMessageStore>("postgresql://chat@127.0.0.1:1/chat?connect_timeout=1"),
                     pub, 64, 100, std::chrono::microseconds(1000), 2, metrics_);
  down.Start();
  std::promise<absl::Status> p;
  down.Submit({room_, "alice", "x", "y"}, [&](absl::StatusOr<AppendOutcome> o) { p.set_value(o.status()); });
  EXPECT_EQ(p.get_future().get().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(pub.published.empty());
}

TEST_F(CommitBatcherTest, UnderLoadSendsArrivingDuringTheLingerShareOneCommit) {
  auto g = MakeGated(64, std::chrono::seconds(2));
  CommitBatcher& b = *g->batcher;
  ASSERT_EQ(StartLingering(*g), (std::vector<size_t>{1, 2}));
  auto m4 = SendOne(b, "m4");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto m5 = SendOne(b, "m5");
  auto o4 = m4.get();
  auto o5 = m5.get();
  ASSERT_TRUE(o4.ok()) << o4.status();
  ASSERT_TRUE(o5.ok()) << o5.status();
  EXPECT_EQ(g->store->BatchSizes(), (std::vector<size_t>{1, 2, 2}));
  EXPECT_EQ(o4->message.seq(), 4);
  EXPECT_EQ(o5->message.seq(), 5);
}

TEST_F(CommitBatcherTest, OnlyABatchOfLingerAfterOrMoreMakesTheWriterLinger) {
  // A linger far longer than the test's timeout, after batches of four or more.
  auto g = MakeGated(64, std::chrono::hours(1), /*released=*/false, /*linger_after=*/4);
  CommitBatcher& b = *g->batcher;
  // A batch of two (sends waited on one commit, but only just): the next send is stored at once.
  ASSERT_EQ(StartLingering(*g), (std::vector<size_t>{1, 2}));
  auto m4 = SendOne(b, "m4");
  ASSERT_EQ(m4.wait_for(std::chrono::seconds(20)), std::future_status::ready) << "the writer lingered";
  EXPECT_TRUE(m4.get().ok());
  EXPECT_EQ(g->store->BatchSizes(), (std::vector<size_t>{1, 2, 1}));

  // A batch of four: the writer lingers, so a send after it waits until Stop ends the linger.
  auto again = MakeGated(64, std::chrono::hours(1), /*released=*/false, /*linger_after=*/4);
  auto entered = again->store->Entered();
  auto first = SendOne(*again->batcher, "a1");
  entered.wait();
  std::vector<std::future<absl::StatusOr<AppendOutcome>>> queued;
  for (int i = 2; i <= 5; ++i) queued.push_back(SendOne(*again->batcher, "a" + std::to_string(i)));
  again->release.set_value();
  EXPECT_TRUE(first.get().ok());
  for (auto& f : queued) EXPECT_TRUE(f.get().ok());
  ASSERT_EQ(again->store->BatchSizes(), (std::vector<size_t>{1, 4}));
  auto late = SendOne(*again->batcher, "a6");
  EXPECT_EQ(late.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  again->batcher->Stop();
  EXPECT_TRUE(late.get().ok());
  EXPECT_EQ(again->store->BatchSizes(), (std::vector<size_t>{1, 4, 1}));
}

TEST_F(CommitBatcherTest, AFullBatchEndsTheLingerAndStopDoesNotWaitItOut) {
  // A linger far longer than the test's timeout: only a full batch or Stop can end it.
  auto g = MakeGated(3, std::chrono::hours(1));
  CommitBatcher& b = *g->batcher;
  ASSERT_EQ(StartLingering(*g), (std::vector<size_t>{1, 2}));
  auto m4 = SendOne(b, "m4");
  auto m5 = SendOne(b, "m5");
  auto m6 = SendOne(b, "m6");
  for (auto* f : {&m4, &m5, &m6}) EXPECT_TRUE(f->get().ok());
  EXPECT_EQ(g->store->BatchSizes(), (std::vector<size_t>{1, 2, 3}));
  auto m7 = SendOne(b, "m7");  // waits in the queue: the writer lingers after a batch of three
  b.Stop();
  EXPECT_TRUE(m7.get().ok());
  EXPECT_EQ(g->store->BatchSizes(), (std::vector<size_t>{1, 2, 3, 1}));
}

TEST_F(CommitBatcherTest, OnAQuietServerALoneSendIsStoredWithoutLingering) {
  auto g = MakeGated(64, std::chrono::hours(1), /*released=*/true);
  CommitBatcher& b = *g->batcher;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(SendOne(b, "q" + std::to_string(i)).get().ok());
  EXPECT_EQ(g->store->BatchSizes(), (std::vector<size_t>(5, 1)));
}

TEST_F(CommitBatcherTest, TheWriterFinishesABatchItselfOnlyWhenNoSendWaits) {
  // Lone sends on a quiet batcher: the writer publishes each itself (the next is stored only after it
  // has, on the same thread).
  auto quiet = MakeGated(64, std::chrono::microseconds(0), /*released=*/true);
  ASSERT_TRUE(SendOne(*quiet->batcher, "q1").get().ok());
  ASSERT_TRUE(SendOne(*quiet->batcher, "q2").get().ok());
  {
    std::lock_guard lock(quiet->pub.mu);
    ASSERT_EQ(quiet->pub.threads.size(), 2u);
    EXPECT_EQ(quiet->pub.threads[0], quiet->store->Writer()) << "q1: a lone send";
    EXPECT_EQ(quiet->pub.threads[1], quiet->store->Writer()) << "q2: a lone send";
  }
  // m2 queues while m1's commit is held: m1's batch goes to the finishing thread, and the writer stores
  // m2 meanwhile (who publishes m2 depends on whether the finisher is done with m1 by then).
  auto busy = MakeGated(64, std::chrono::microseconds(0));
  auto entered = busy->store->Entered();
  auto m1 = SendOne(*busy->batcher, "m1");
  entered.wait();
  auto m2 = SendOne(*busy->batcher, "m2");
  busy->release.set_value();
  ASSERT_TRUE(m1.get().ok());
  ASSERT_TRUE(m2.get().ok());
  std::lock_guard lock(busy->pub.mu);
  ASSERT_EQ(busy->pub.threads.size(), 2u);
  EXPECT_NE(busy->pub.threads[0], busy->store->Writer()) << "m1: m2 was waiting, the finisher publishes";
  ASSERT_EQ(busy->pub.published.size(), 2u);
  EXPECT_LT(busy->pub.published[0].seq(), busy->pub.published[1].seq()) << "published in commit order";
}

}  // namespace
}  // namespace chat::messages
