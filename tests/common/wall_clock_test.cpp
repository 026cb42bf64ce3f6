// WallClockNow keeps the fraction of a second that protobuf 3.21's TimeUtil::GetCurrentTime drops.
#include "common/wall_clock.h"

#include <gtest/gtest.h>

#include <thread>

namespace chat {
namespace {

using google::protobuf::util::TimeUtil;

int64_t SystemMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(WallClockTest, AgreesWithTheSystemClockToTheMillisecond) {
  int64_t before = SystemMicros();
  int64_t now = TimeUtil::TimestampToMicroseconds(WallClockNow());
  int64_t after = SystemMicros();
  EXPECT_GE(now, before);
  EXPECT_LE(now, after);
}

TEST(WallClockTest, MeasuresLagsShorterThanASecond) {
  auto first = WallClockNow();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto lag = TimeUtil::DurationToMicroseconds(WallClockNow() - first);
  EXPECT_GE(lag, 5000);
  EXPECT_LT(lag, 1'000'000);
}

}  // namespace
}  // namespace chat
