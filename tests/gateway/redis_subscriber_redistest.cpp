// RedisSubscriber (hiredis async on Asio) against a real Redis: confirmed subscriptions, delivery,
// unsubscribe, a burst bigger than one read (and the end of each read told after its messages), and a
// resubscribe that races an unsubscribe.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <future>
#include <optional>
#include <thread>

#include "running_subscriber.h"
#include "support/test_env.h"

namespace chat::gateway {
namespace {

using chat::testing::UniqueName;

class SubscriberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(running_.Start(
        [this](const std::string& ch, const std::string& payload) {
          std::lock_guard lock(mu_);
          received_.emplace_back(ch, payload);
          cv_.notify_all();
        },
        metrics_,
        [this](RedisSubscriber& sub) {
          sub.SetOnReadDone([this] {
            std::lock_guard lock(mu_);
            ++reads_done_;
            received_at_last_read_done_ = received_.size();
            cv_.notify_all();
          });
        }));
    sub_ = running_.sub.get();
    pub_ = running_.pub.get();
  }
  void TearDown() override { running_.Stop(); }

  absl::Status SubscribeAndWait(const std::string& ch) {
    std::promise<absl::Status> p;
    sub_->Subscribe(ch, [&p](absl::Status st) { p.set_value(st); });
    auto f = p.get_future();
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
      return absl::DeadlineExceededError("no answer");
    return f.get();
  }
  int64_t Publish(const std::string& ch, const std::string& payload) {
    auto r = pub_->Command({"PUBLISH", ch, payload});
    return r.ok() ? r->integer : -1;
  }
  bool WaitForCount(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return received_.size() >= n; });
  }

  MetricsRegistry metrics_;
  RunningSubscriber running_;
  RedisSubscriber* sub_ = nullptr;
  RedisConnection* pub_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> received_;
  int reads_done_ = 0;
  size_t received_at_last_read_done_ = 0;
};

TEST_F(SubscriberTest, ConfirmedSubscriptionReceivesInOrder) {
  std::string ch = UniqueName("chat:room:t");
  ASSERT_TRUE(SubscribeAndWait(ch).ok());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Publish(ch, "m" + std::to_string(i)), 1);
  ASSERT_TRUE(WaitForCount(100));
  std::lock_guard lock(mu_);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(received_[i].first, ch);
    EXPECT_EQ(received_[i].second, "m" + std::to_string(i));
  }
}

TEST_F(SubscriberTest, BinaryPayloadsArriveIntact) {
  std::string ch = UniqueName("chat:room:bin");
  ASSERT_TRUE(SubscribeAndWait(ch).ok());
  std::string payload("a\0b\xff\n", 5);
  EXPECT_EQ(Publish(ch, payload), 1);
  ASSERT_TRUE(WaitForCount(1));
  std::lock_guard lock(mu_);
  EXPECT_EQ(received_[0].second, payload);
}

// hiredis reads at most 16 KiB a call, and the socket only signals again when more data comes: a burst
// bigger than that must still arrive whole with nothing published after it.
TEST_F(SubscriberTest, ABurstLargerThanOneReadArrivesWholeWithNothingAfterIt) {
  std::string ch = UniqueName("chat:room:burst");
  ASSERT_TRUE(SubscribeAndWait(ch).ok());
  constexpr int kCount = 400;
  std::vector<std::vector<std::string>> publishes;
  for (int i = 0; i < kCount; ++i)
    publishes.push_back({"PUBLISH", ch, std::to_string(i) + std::string(2000, 'x')});
  int reads_before;
  {
    std::lock_guard lock(mu_);
    reads_before = reads_done_;
  }
  ASSERT_TRUE(pub_->Pipeline(publishes).ok());  // ~800 KB in one round trip
  EXPECT_TRUE(WaitForCount(kCount));
  std::unique_lock lock(mu_);
  // The end of a read is told after the last message it brought (RoomHub hands lanes its batch then),
  // and a read brings many messages of a burst, not one.
  EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10),
                           [&] { return received_at_last_read_done_ == static_cast<size_t>(kCount); }));
  EXPECT_LT(reads_done_ - reads_before, kCount / 4);
  ASSERT_EQ(received_.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(received_[i].second, std::to_string(i) + std::string(2000, 'x'));
}

TEST_F(SubscriberTest, UnsubscribeStopsDelivery) {
  std::string ch = UniqueName("chat:room:u");
  ASSERT_TRUE(SubscribeAndWait(ch).ok());
  sub_->Unsubscribe(ch);
  int64_t receivers = 1;
  for (int i = 0; i < 200 && receivers != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    receivers = Publish(UniqueName("chat:room:other"), "x") >= 0
                    ? pub_->Command({"PUBSUB", "NUMSUB", ch})->elements[1].integer
                    : -1;
  }
  EXPECT_EQ(receivers, 0);
}

TEST_F(SubscriberTest, ResubscribeRacingUnsubscribeEndsSubscribed) {
  std::string ch = UniqueName("chat:room:race");
  ASSERT_TRUE(SubscribeAndWait(ch).ok());
  sub_->Unsubscribe(ch);
  ASSERT_TRUE(SubscribeAndWait(ch).ok());
  // Delivery works after the dust settles.
  bool delivered = false;
  for (int i = 0; i < 100 && !delivered; ++i) {
    Publish(ch, "after");
    std::unique_lock lock(mu_);
    delivered = cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return !received_.empty(); });
  }
  EXPECT_TRUE(delivered);
}

// A subscriber whose io thread is gone before anyone calls Stop (a failed start, a test that ends)
// still lets go of Redis: its connection, and the subscriptions on it, do not outlive it.
TEST_F(SubscriberTest, DestroyedWithoutStopClosesItsConnection) {
  const std::string ch = UniqueName("chat:room:gone");
  auto subscribers = [&] {
    auto r = pub_->Command({"PUBSUB", "NUMSUB", ch});
    return r.ok() && r->elements.size() == 2 ? r->elements[1].integer : -1;
  };
  {
    boost::asio::io_context ioc;
    RedisSubscriber gone(
        ioc, running_.servers.redis_host, running_.servers.redis_port,
        [](const std::string&, const std::string&) {}, metrics_);
    gone.Start();
    for (int i = 0; i < 200 && !gone.connected(); ++i) ioc.run_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(gone.connected());
    std::optional<absl::Status> subscribed;
    gone.Subscribe(ch, [&](absl::Status st) { subscribed = st; });
    for (int i = 0; i < 200 && !subscribed; ++i) ioc.run_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(subscribed.has_value());
    ASSERT_TRUE(subscribed->ok()) << *subscribed;
    EXPECT_EQ(subscribers(), 1);
  }  // no Stop: the io_context is not running any more
  int64_t left = subscribers();
  for (int i = 0; i < 200 && left != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    left = subscribers();
  }
  EXPECT_EQ(left, 0);
}

TEST_F(SubscriberTest, UnreachableRedisAnswersUnavailable) {
  boost::asio::io_context ioc;
  RedisSubscriber down(
      ioc, "127.0.0.1", 1, [](const std::string&, const std::string&) {}, metrics_);
  down.Start();
  ioc.run_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(down.connected());
  absl::Status got = absl::OkStatus();
  down.SubscribeHere("x", [&](absl::Status st) { got = st; });
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace chat::gateway
