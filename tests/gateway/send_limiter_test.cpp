#include "domain/send_limiter.h"

#include <gtest/gtest.h>

namespace chat::gateway {
namespace {

TEST(SendLimiter, BurstThenRate) {
  SendLimiter l(10, 20);
  auto t = SendLimiter::Clock::time_point{} + std::chrono::hours(1);
  uint32_t retry = 0;
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(l.TryAcquire(t, retry)) << i;
  EXPECT_FALSE(l.TryAcquire(t, retry));
  EXPECT_GT(retry, 0u);
  EXPECT_LE(retry, 100u);
  t += std::chrono::milliseconds(100);  // one token at 10/s
  EXPECT_TRUE(l.TryAcquire(t, retry));
  EXPECT_FALSE(l.TryAcquire(t, retry));
  t += std::chrono::seconds(10);  // refills to the burst, not beyond
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(l.TryAcquire(t, retry));
  EXPECT_FALSE(l.TryAcquire(t, retry));
}

}  // namespace
}  // namespace chat::gateway
