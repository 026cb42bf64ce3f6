#pragma once
// Room messages for a connection are held and written together at its lane's flush, so that several
// share one socket write. Fan-out costs a syscall per write and, on a busy gateway, most of its CPU is
// that kernel work.
//
// By default (WS_WRITE_DELAY_MS=0) nothing waits: RoomHub hands a lane everything one read from Redis
// brought as one batch, and a room's message is held only while the same batch has another message for
// that room after it; the room's last one in the batch takes the held ones along in one write. On a
// quiet gateway (one message a read) nothing is held; a gateway that falls behind reads several
// messages a wake and writes each connection's share of a room's messages together, catching up with
// fewer syscalls instead of one per frame. What is still held when the batch ends (a member skipped a
// later message) is written then.
//
// A lane that falls behind (its thread short of CPU) finds several batches posted and waiting. A batch
// that ends while another waits behind it leaves what it holds to the one after (at most kMaxCarried
// batches or kMaxCarry): those frames are due already, and the next batch queues its own without a
// syscall, so one write per connection carries both. Nothing waits when the lane keeps up.
//
// WS_WRITE_DELAY_MS > 0 (Centrifugo's write_delay) holds them up to that long instead: with rooms busy
// enough to deliver a connection several messages per delay, one write carries them all, at that much
// more latency.
//
// One LaneFlusher per io thread (lane) and, with a delay, one timer for all its connections, armed only
// while some connection holds frames; a connection holds no timer of its own. Only its lane's thread
// uses it, but for BatchPosted.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <vector>

#include "common/metrics.h"

namespace chat::gateway {

// What holds frames back until its lane's flush.
class HeldWrites {
 public:
  virtual ~HeldWrites() = default;
  // Writes whatever is held (if no write is in flight; else it goes out with the next one).
  virtual void FlushHeld() = 0;
};

class LaneFlusher {
 public:
  // Batches in a row, and time from the first, that may leave their held frames to the next.
  static constexpr int kMaxCarried = 8;
  static constexpr std::chrono::milliseconds kMaxCarry{2};

  // `carried`: counts the batches that left their held frames to the next.
  LaneFlusher(boost::asio::io_context& lane, std::chrono::milliseconds delay, Counter* carried = nullptr)
      : lane_(lane), timer_(lane), delay_(delay), carried_total_(carried) {}

  // From any thread, before posting a batch to the lane that will run between BeginPostedBatch and
  // EndBatch.
  void BatchPosted() { posted_.fetch_add(1, std::memory_order_relaxed); }
  // A batch of room deliveries runs between these; without a delay, EndBatch writes what is still held
  // (unless a posted batch waits behind this one).
  void BeginBatch() { ++batch_depth_; }
  void BeginPostedBatch() {
    posted_.fetch_sub(1, std::memory_order_relaxed);
    BeginBatch();
  }
  void EndBatch() {
    more_for_room_ = false;
    if (--batch_depth_ != 0 || delay_.count() != 0 || due_.empty()) return;
    if (Behind()) {
      auto now = std::chrono::steady_clock::now();
      if (carried_ == 0) carry_since_ = now;
      if (carried_ < kMaxCarried && now - carry_since_ < kMaxCarry) {
        // The batch waiting behind this one ends with a flush (or carries again): it is already posted.
        ++carried_;
        if (carried_total_ != nullptr) carried_total_->Inc();
        return;
      }
    }
    FlushAll();
  }
  // Inside a batch, before each room message: whether the batch holds another message for its room.
  void SetMoreForRoom(bool more) { more_for_room_ = more; }
  // Whether a room message being delivered now is held: with a delay always; without, while the batch
  // has another message for its room or another batch waits behind it.
  bool Holds() const { return delay_.count() > 0 || (batch_depth_ > 0 && (more_for_room_ || Behind())); }

  // `w` started holding frames: flushed when the batch ends (no delay) or at the latest `delay` from
  // now. Called once per hold (until its FlushHeld runs).
  void Add(std::weak_ptr<HeldWrites> w) {
    due_.push_back(std::move(w));
    if (delay_.count() == 0) {
      // A delivery outside any batch: flushed once the handlers already queued on the lane have run.
      if (batch_depth_ == 0 && !armed_) {
        armed_ = true;
        boost::asio::post(lane_, [this] { FlushAll(); });
      }
      return;
    }
    if (armed_) return;
    armed_ = true;
    // Everything added before the timer fires goes out with it: the first waits the whole delay, the
    // later ones less.
    timer_.expires_after(delay_);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) {
        armed_ = false;
        return;
      }
      FlushAll();
    });
  }

 private:
  bool Behind() const { return posted_.load(std::memory_order_relaxed) > 0; }

  void FlushAll() {
    armed_ = false;
    carried_ = 0;
    std::vector<std::weak_ptr<HeldWrites>> now;
    now.swap(due_);
    // armed_ is already false: a hold added from here on arms the next flush.
    for (auto& w : now) {
      if (auto held = w.lock()) held->FlushHeld();
    }
  }

  boost::asio::io_context& lane_;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds delay_;
  std::vector<std::weak_ptr<HeldWrites>> due_;
  bool armed_ = false;
  int batch_depth_ = 0;
  bool more_for_room_ = false;
  std::atomic<int> posted_{0};  // batches posted and not begun
  int carried_ = 0;             // batches in a row whose held frames wait for the next
  std::chrono::steady_clock::time_point carry_since_;
  Counter* carried_total_;
};

}  // namespace chat::gateway
