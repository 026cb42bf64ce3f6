#pragma once
// Token bucket for one connection's sends: `rate` per second, bursts up to `burst`. Not thread-safe:
// the connection's thread owns it. Time is passed in, so tests need no clock.

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace chat::gateway {

class SendLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  SendLimiter(double rate_per_second, double burst) : rate_(rate_per_second), burst_(burst), tokens_(burst) {}

  // Takes a token; on refusal returns false and sets retry_after_ms to when the next one is due.
  bool TryAcquire(Clock::time_point now, uint32_t& retry_after_ms) {
    if (!started_) {
      last_ = now;
      started_ = true;
    }
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed) * rate_);
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return true;
    }
    retry_after_ms = static_cast<uint32_t>(std::max(1.0, (1.0 - tokens_) / rate_ * 1000.0));
    return false;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  bool started_ = false;
  Clock::time_point last_{};
};

}  // namespace chat::gateway
