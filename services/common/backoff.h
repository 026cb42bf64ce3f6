#pragma once
// Exponential backoff with full jitter for reconnect loops. Not thread-safe: one owner.

#include <algorithm>
#include <chrono>
#include <random>

namespace chat {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max), rng_(std::random_device{}()) {}

  // The delay before the next attempt: grows 2x per failure up to max, jittered into [d/2, d].
  std::chrono::milliseconds Next() {
    auto d = std::min<std::chrono::milliseconds>(max_, initial_ * (1LL << std::min(attempt_, 20)));
    ++attempt_;
    std::uniform_int_distribution<int64_t> dist(d.count() / 2, d.count());
    return std::chrono::milliseconds(dist(rng_));
  }
  void Reset() { attempt_ = 0; }
  int attempts() const { return attempt_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace chat
