// RoomHub on a real Redis, one io thread (GATEWAY_THREADS=1): the messages one read brings reach a lane
// as one batch, and a room's message is held for a shared socket write only while the batch has another
// message for that room after it; a message alone in its read is not held.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <future>
#include <mutex>
#include <thread>

#include "common/text_rules.h"
#include "recording_messages.h"
#include "running_subscriber.h"
#include "support/test_env.h"
#include "transport/room_hub.h"

namespace chat::gateway {
namespace {

using chat::testing::UniqueName;

struct Seen {
  std::string room;
  int64_t seq;
  bool held;
  bool operator==(const Seen&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << s.room << "#" << s.seq << (s.held ? " held" : " written");
}

// A connection on lane 0 that records each message and whether the lane held it.
class RecordingMember : public RoomMember {
 public:
  explicit RecordingMember(LaneFlusher& flusher) : flusher_(flusher) {}
  void Deliver(std::shared_ptr<const Delivery>) override { ADD_FAILURE() << "delivered off its lane"; }
  size_t lane() const override { return 0; }
  void DeliverOnLane(const Delivery& d) override {
    std::lock_guard lock(mu);
    seen.push_back({d.room, d.seq, flusher_.Holds()});
  }
  std::vector<Seen> Wait(size_t n) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(mu);
        if (seen.size() >= n) return seen;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard lock(mu);
    return seen;
  }
  std::mutex mu;
  std::vector<Seen> seen;

 private:
  LaneFlusher& flusher_;
};

class RoomHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(running_.Start(
        [this](const std::string& ch, const std::string& payload) { hub_.OnChannelMessage(ch, payload); },
        metrics_,
        [this](RedisSubscriber& sub) {
          sub.SetOnSubscribed([this](const std::string& ch, bool again) { hub_.OnSubscribed(ch, again); });
          hub_.Attach(&sub);
          hub_.SetLanes({&running_.ioc}, {&flusher_});
        }));
  }
  void TearDown() override { running_.Stop(); }

  void Enter(const std::string& room, const std::shared_ptr<RecordingMember>& m) {
    std::promise<absl::Status> ready;
    hub_.Enter(room, UniqueName("conn"), m, [&ready](absl::Status st) { ready.set_value(st); });
    auto f = ready.get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    ASSERT_TRUE(f.get().ok());
  }

  static std::vector<std::string> PublishCommand(const std::string& room, int64_t seq) {
    chat::v1::RoomEvent e;
    auto* m = e.mutable_message();
    m->set_room(room);
    m->set_seq(seq);
    m->set_text("text " + std::to_string(seq));
    return {"PUBLISH", RoomChannel(room), e.SerializeAsString()};
  }

  MetricsRegistry metrics_;
  RunningSubscriber running_;
  RoomRegistry registry_;
  RecordingMessages messages_;
  RoomHub hub_{registry_, messages_, std::chrono::milliseconds(250), metrics_};
  LaneFlusher flusher_{running_.ioc, std::chrono::milliseconds(0)};
};

TEST_F(RoomHubTest, AMessageIsHeldOnlyWhileItsReadHasAnotherForItsRoom) {
  const std::string a = UniqueName("hub-a"), b = UniqueName("hub-b");
  auto member = std::make_shared<RecordingMember>(flusher_);
  Enter(a, member);
  Enter(b, member);

  // One pipeline: Redis writes the four messages to the subscriber together, and one read brings them.
  ASSERT_TRUE(
      running_.pub
          ->Pipeline({PublishCommand(a, 1), PublishCommand(b, 1), PublishCommand(a, 2), PublishCommand(a, 3)})
          .ok());
  EXPECT_EQ(member->Wait(4), (std::vector<Seen>{{a, 1, true}, {b, 1, false}, {a, 2, true}, {a, 3, false}}));

  // Alone in its read: written at once.
  ASSERT_TRUE(running_.pub->Pipeline({PublishCommand(b, 2)}).ok());
  auto seen = member->Wait(5);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[4], (Seen{b, 2, false}));
}

}  // namespace
}  // namespace chat::gateway
