// LaneFlusher on a real io_context: without a delay, held writes go out as the batch of deliveries
// ends (or the last of the batches waiting behind it, within bounds), or, held outside a batch, once the
// handlers already queued on the lane have run; one flush per holder; with a delay, on its timer,
// whatever the batches; a connection gone meanwhile is skipped.
#include "transport/lane_flusher.h"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <functional>
#include <string>
#include <vector>

namespace chat::gateway {
namespace {

namespace asio = boost::asio;

// A connection's held writes, recording when they are flushed into a shared log.
class RecordingHolder : public HeldWrites {
 public:
  RecordingHolder(std::string name, std::vector<std::string>& log) : name_(std::move(name)), log_(log) {}
  void FlushHeld() override { log_.push_back("flush " + name_); }

 private:
  std::string name_;
  std::vector<std::string>& log_;
};

// A lane, the log its holders write to, and holders by name.
class LaneFlusherTest : public ::testing::Test {
 protected:
  std::shared_ptr<RecordingHolder> Holder(const std::string& name) {
    return std::make_shared<RecordingHolder>(name, log);
  }
  asio::io_context lane{1};
  std::vector<std::string> log;
};

TEST_F(LaneFlusherTest, WithoutADelayHeldWritesGoOutAsTheBatchEnds) {
  LaneFlusher flusher(lane, std::chrono::milliseconds(0));
  auto a = Holder("a");
  auto b = Holder("b");
  asio::post(lane, [&] {
    flusher.BeginBatch();
    log.push_back("deliver 1");
    flusher.Add(a);
    flusher.Add(b);
    log.push_back("deliver 2");
    flusher.EndBatch();
    log.push_back("after the batch");
  });
  asio::post(lane, [&] { log.push_back("next handler"); });
  lane.run();
  EXPECT_EQ(log, (std::vector<std::string>{"deliver 1", "deliver 2", "flush a", "flush b", "after the batch",
                                           "next handler"}));
}

TEST_F(LaneFlusherTest, WithoutADelayHeldWritesOutsideABatchGoOutAfterTheHandlersAlreadyQueued) {
  LaneFlusher flusher(lane, std::chrono::milliseconds(0));
  auto a = Holder("a");
  auto b = Holder("b");
  // One Redis read's worth of room messages, posted to the lane together (as RoomHub::FanOut does):
  // a and b start holding at the first, then hold more without asking for another flush.
  for (int i = 1; i <= 3; ++i) {
    asio::post(lane, [&, i] {
      log.push_back("deliver " + std::to_string(i));
      if (i == 1) {
        flusher.Add(a);
        flusher.Add(b);
      }
    });
  }
  lane.run();
  EXPECT_EQ(log, (std::vector<std::string>{"deliver 1", "deliver 2", "deliver 3", "flush a", "flush b"}));

  // The next hold arms the next flush.
  log.clear();
  lane.restart();
  asio::post(lane, [&] {
    log.push_back("deliver 4");
    flusher.Add(a);
  });
  lane.run();
  EXPECT_EQ(log, (std::vector<std::string>{"deliver 4", "flush a"}));
}

// Posts a batch the way RoomHub does: announced first, then run between BeginPostedBatch and EndBatch.
void PostBatch(asio::io_context& lane, LaneFlusher& flusher, std::function<void()> body) {
  flusher.BatchPosted();
  asio::post(lane, [&flusher, body = std::move(body)] {
    flusher.BeginPostedBatch();
    body();
    flusher.EndBatch();
  });
}

TEST_F(LaneFlusherTest, ABatchWithAnotherWaitingBehindItLeavesItsHeldWritesToThatOne) {
  LaneFlusher flusher(lane, std::chrono::milliseconds(0));
  auto a = Holder("a");
  auto b = Holder("b");
  PostBatch(lane, flusher, [&] {
    log.push_back("batch 1");
    EXPECT_TRUE(flusher.Holds());  // batch 2 is waiting: even a room's last message is held
    flusher.Add(a);
  });
  asio::post(lane, [&] { log.push_back("a client's read"); });
  PostBatch(lane, flusher, [&] {
    log.push_back("batch 2");
    EXPECT_FALSE(flusher.Holds());  // nothing waits behind it
    flusher.Add(b);
  });
  lane.run();
  EXPECT_EQ(log, (std::vector<std::string>{"batch 1", "a client's read", "batch 2", "flush a", "flush b"}));

  // A lone batch flushes as it ends.
  log.clear();
  lane.restart();
  PostBatch(lane, flusher, [&] { flusher.Add(a); });
  asio::post(lane, [&] { log.push_back("next handler"); });
  lane.run();
  EXPECT_EQ(log, (std::vector<std::string>{"flush a", "next handler"}));
}

TEST_F(LaneFlusherTest, HeldWritesAreCarriedOverAtMostkMaxCarriedBatches) {
  LaneFlusher flusher(lane, std::chrono::milliseconds(0));
  // Like a session: it asks for a flush once per hold, and holds again after its flush.
  class Session : public HeldWrites {
   public:
    explicit Session(std::vector<std::string>& log) : log_(log) {}
    void FlushHeld() override {
      log_.push_back("flush a");
      due = false;
    }
    bool due = false;

   private:
    std::vector<std::string>& log_;
  };
  auto a = std::make_shared<Session>(log);
  const int batches = 2 * LaneFlusher::kMaxCarried + 2;
  for (int i = 1; i <= batches; ++i) {
    PostBatch(lane, flusher, [&, i] {
      log.push_back("batch " + std::to_string(i));
      if (!a->due) {
        a->due = true;
        flusher.Add(a);
      }
    });
  }
  lane.run();
  // A lane that stays behind still writes: after kMaxCarried batches in a row (or kMaxCarry, which a
  // descheduled test thread may reach sooner), the next one flushes although more are waiting.
  int since_flush = 0;
  int flushes = 0;
  for (const auto& line : log) {
    if (line == "flush a") {
      ++flushes;
      since_flush = 0;
    } else {
      ++since_flush;
      EXPECT_LE(since_flush, LaneFlusher::kMaxCarried + 1) << "at " << line;
    }
  }
  EXPECT_EQ(log.back(), "flush a");
  EXPECT_GE(flushes, 2);
}

TEST_F(LaneFlusherTest, AConnectionGoneBeforeTheFlushIsSkipped) {
  LaneFlusher flusher(lane, std::chrono::milliseconds(0));
  auto a = Holder("a");
  auto gone = Holder("gone");
  asio::post(lane, [&] {
    flusher.Add(gone);
    flusher.Add(a);
  });
  asio::post(lane, [&] { gone.reset(); });
  lane.run();
  EXPECT_EQ(log, (std::vector<std::string>{"flush a"}));
}

TEST_F(LaneFlusherTest, WithADelayHeldWritesWaitForTheTimer) {
  const auto delay = std::chrono::milliseconds(30);
  LaneFlusher flusher(lane, delay);
  auto a = Holder("a");
  const auto start = std::chrono::steady_clock::now();
  asio::post(lane, [&] {
    flusher.BeginBatch();
    flusher.Add(a);
    flusher.EndBatch();  // with a delay, the end of a batch writes nothing
  });
  asio::post(lane, [&] { log.push_back("later handler"); });
  lane.run();
  EXPECT_EQ(log, (std::vector<std::string>{"later handler", "flush a"}));
  EXPECT_GE(std::chrono::steady_clock::now() - start, delay);
}

}  // namespace
}  // namespace chat::gateway
