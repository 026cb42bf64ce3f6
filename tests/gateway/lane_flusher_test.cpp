// LaneFlusher on a real io_context: without a delay, held writes go out as the batch of deliveries
// ends, or, held outside a batch, once the handlers already queued on the lane have run; one flush per
// holder; with a delay, on its timer, whatever the batches; a connection gone meanwhile is skipped.
#include "transport/lane_flusher.h"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
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
