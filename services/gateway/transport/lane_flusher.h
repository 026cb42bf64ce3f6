#pragma once
// Room messages for a connection are held briefly so that several go out in one socket write. Fan-out
// costs a syscall per delivered frame and, on a busy gateway, most of its CPU is that kernel work.
// - By default (WS_WRITE_DELAY_MS=0) nothing waits for time: the flush is posted to the lane, so it
//   runs once the deliveries already queued there have run. An idle gateway writes each frame right
//   after its delivery; a busy one, with a burst of messages queued, writes each connection's share of
//   the burst at once (natural batching: the more it is behind, the more each write carries).
// - WS_WRITE_DELAY_MS > 0 (Centrifugo's write_delay): frames wait up to that long, so rooms busy enough
//   to deliver a connection several messages per delay share one write, at that much latency.
//
// One LaneFlusher per io thread (lane) and one timer (or one posted flush) for all its connections,
// armed only while some connection holds frames; a connection holds no timer of its own. Only its
// lane's thread uses it.

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <vector>

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
  LaneFlusher(boost::asio::io_context& lane, std::chrono::milliseconds delay)
      : lane_(lane), timer_(lane), delay_(delay) {}

  // `w` started holding frames: flushed at the latest `delay` from now. Called once per hold (until
  // its FlushHeld runs).
  void Add(std::weak_ptr<HeldWrites> w) {
    due_.push_back(std::move(w));
    if (armed_) return;
    armed_ = true;
    if (delay_.count() == 0) {
      boost::asio::post(lane_, [this] { Flush(); });
      return;
    }
    // Everything added before the timer fires goes out with it: the first waits the whole delay, the
    // later ones less.
    timer_.expires_after(delay_);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) {
        armed_ = false;
        return;
      }
      Flush();
    });
  }

 private:
  void Flush() {
    armed_ = false;
    std::vector<std::weak_ptr<HeldWrites>> now;
    now.swap(due_);
    // armed_ is already false: a hold added from here on arms the flush again.
    for (auto& w : now) {
      if (auto held = w.lock()) held->FlushHeld();
    }
  }

  boost::asio::io_context& lane_;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds delay_;
  std::vector<std::weak_ptr<HeldWrites>> due_;
  bool armed_ = false;
};

}  // namespace chat::gateway
