#pragma once
// Runs the presence store's Sweep on its own thread every `interval` and publishes what it returns:
// offline announcements whose grace has passed (also for gateways that died), typing that expired.
// Every replica runs one; the store's atomic claims make each change go out once.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/metrics.h"
#include "domain/presence_logic.h"

namespace chat::presence {

class PresenceSweeper {
 public:
  PresenceSweeper(std::unique_ptr<PresenceStore> store, NowMs now_ms, std::chrono::milliseconds interval,
                  MetricsRegistry& metrics);
  ~PresenceSweeper();
  void Start();
  void Stop();
  // One pass, on the caller's thread (tests and the loop).
  absl::Status SweepOnce();

 private:
  std::unique_ptr<PresenceStore> store_;
  NowMs now_ms_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  Counter& changes_;
  Counter& failures_;
};

}  // namespace chat::presence
