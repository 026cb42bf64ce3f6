#include "domain/presence_sweeper.h"

#include "common/log.h"

namespace chat::presence {

PresenceSweeper::PresenceSweeper(std::unique_ptr<PresenceStore> store, NowMs now_ms,
                                 std::chrono::milliseconds interval, MetricsRegistry& metrics)
    : store_(std::move(store)),
      now_ms_(std::move(now_ms)),
      interval_(interval),
      changes_(metrics.GetCounter("chat_presence_sweep_changes_total",
                                  "Offline and typing-end changes from sweeps")),
      failures_(metrics.GetCounter("chat_presence_sweep_failures_total", "Sweeps that failed")) {}

PresenceSweeper::~PresenceSweeper() { Stop(); }

void PresenceSweeper::Start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      if (auto st = SweepOnce(); !st.ok()) {
        failures_.Inc();
        log::Warn("presence sweep failed", {{"error", st.ToString()}});
      }
      lock.lock();
      cv_.wait_for(lock, interval_, [&] { return stopping_; });
    }
  });
}

void PresenceSweeper::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status PresenceSweeper::SweepOnce() {
  auto changes = store_->Sweep(now_ms_());
  if (!changes.ok()) return changes.status();
  if (changes->empty()) return absl::OkStatus();
  changes_.Inc(changes->size());
  return store_->Publish(*changes);
}

}  // namespace chat::presence
