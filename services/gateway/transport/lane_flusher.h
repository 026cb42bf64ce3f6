#pragma once
// WS_WRITE_DELAY_MS: room messages for a connection wait up to that long, so that several go out in one
// socket write (Centrifugo's write_delay). Fan-out costs a syscall per delivered frame and, on a busy
// gateway, most of its CPU is that kernel work: with rooms busy enough to deliver a connection several
// messages per delay, one write carries them all. Off (0) by default: then every frame goes out at once.
//
// One LaneFlusher per io thread (lane) and one timer for all its connections, armed only while some
// connection holds frames; a connection holds no timer of its own. Only its lane's thread uses it.

#include <boost/asio/io_context.hpp>
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
  LaneFlusher(boost::asio::io_context& lane, std::chrono::milliseconds delay) : timer_(lane), delay_(delay) {}

  // `w` started holding frames: flushed at the latest `delay` from now. Called once per hold (until
  // its FlushHeld runs).
  void Add(std::weak_ptr<HeldWrites> w) {
    due_.push_back(std::move(w));
    if (armed_) return;
    armed_ = true;
    // Everything added before the timer fires goes out with it: the first waits the whole delay, the
    // later ones less.
    timer_.expires_after(delay_);
    timer_.async_wait([this](boost::system::error_code ec) {
      armed_ = false;
      if (ec) return;
      std::vector<std::weak_ptr<HeldWrites>> now;
      now.swap(due_);
      // armed_ is already false: a hold added from here on arms the timer again.
      for (auto& w : now) {
        if (auto held = w.lock()) held->FlushHeld();
      }
    });
  }

 private:
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds delay_;
  std::vector<std::weak_ptr<HeldWrites>> due_;
  bool armed_ = false;
};

}  // namespace chat::gateway
