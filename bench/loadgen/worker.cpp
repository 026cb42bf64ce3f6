#include "worker.h"

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <exception>

#include "connection.h"

namespace chat::loadgen {

namespace asio = boost::asio;

Worker::Worker(const RunContext& ctx, std::vector<ConnPlan> plans)
    : ctx_(ctx), plans_(std::move(plans)), guard_(asio::make_work_guard(ioc_)), ticker_(ioc_) {
  const auto& o = ctx.options;
  stats_.Resize(static_cast<size_t>(o.rooms), ctx.targets.size());
  const auto threads = static_cast<size_t>(o.threads);
  connect_limit_ = std::max<size_t>(1, (static_cast<size_t>(o.connect_concurrency) + threads - 1) / threads);
  join_limit_ = std::max<size_t>(1, (static_cast<size_t>(o.join_concurrency) + threads - 1) / threads);
  size_t mine = 0;
  for (const auto& p : plans_) mine += p.sender ? 1 : 0;
  if (ctx.total_senders > 0) {
    rate_ = o.rate * static_cast<double>(mine) / static_cast<double>(ctx.total_senders);
  }
}

Worker::~Worker() = default;

void Worker::Run() {
  // A handler that throws would end the thread and the process: report it and carry on.
  for (;;) {
    try {
      ioc_.run();
      return;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "chat-loadgen: worker: unexpected exception: %s\n", e.what());
    }
  }
}

void Worker::StartConnecting() {
  asio::post(ioc_, [this] {
    conns_.reserve(plans_.size());
    LaunchConnects();
  });
}

void Worker::StartJoining() {
  asio::post(ioc_, [this] { LaunchJoins(); });
}

void Worker::StartSending() {
  asio::post(ioc_, [this] {
    for (const auto& c : conns_) {
      if (c->plan().sender) senders_.push_back(c.get());
    }
    if (rate_ > 0 && !senders_.empty()) ScheduleTick();
  });
}

void Worker::Shutdown() {
  asio::post(ioc_, [this] {
    ticker_.cancel();
    senders_.clear();
    for (const auto& c : conns_) c->Close();
    conns_.clear();
    guard_.reset();
  });
}

void Worker::ForceStop() { ioc_.stop(); }

// A connect that fails at once calls OnConnectDone from inside Start: the flag keeps that from
// recursing (thousands deep when, say, every socket() fails) while the loop below picks up the slot.
void Worker::LaunchConnects() {
  if (launching_connects_) return;
  launching_connects_ = true;
  const auto per_source = static_cast<uint32_t>(ctx_.options.conns_per_source);
  while (connects_in_flight_ < connect_limit_ && next_connect_ < plans_.size()) {
    const ConnPlan& plan = plans_[next_connect_++];
    auto conn = std::make_shared<Connection>(*this, plan);
    conns_.push_back(conn);
    ++connects_in_flight_;
    asio::ip::address source;
    if (ctx_.source_base) source = asio::ip::address_v4(*ctx_.source_base + plan.index / per_source);
    conn->Start(source);
  }
  launching_connects_ = false;
}

void Worker::OnConnectDone() {
  live_.last_connect_done_ns.store(NowNs(), std::memory_order_relaxed);
  --connects_in_flight_;
  LaunchConnects();
}

void Worker::LaunchJoins() {
  if (launching_joins_) return;
  launching_joins_ = true;
  while (joins_in_flight_ < join_limit_ && next_join_ < conns_.size()) {
    Connection& conn = *conns_[next_join_++];
    if (!conn.was_ready()) continue;  // never connected: counted as a connect failure already
    ++joins_in_flight_;
    conn.Join();
  }
  launching_joins_ = false;
}

void Worker::OnJoinDone() {
  live_.last_join_done_ns.store(NowNs(), std::memory_order_relaxed);
  --joins_in_flight_;
  LaunchJoins();
}

void Worker::ScheduleTick() {
  ticker_.expires_after(std::chrono::microseconds(ctx_.options.tick_us));
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Tick();
  });
}

void Worker::Tick() {
  const auto& schedule = ctx_.schedule;
  const int64_t start = schedule.send_start.load(std::memory_order_relaxed);
  int64_t now = NowNs();
  if (now >= schedule.measure_end.load(std::memory_order_relaxed)) return;  // done: no more ticks
  if (now >= start) {
    auto due = static_cast<uint64_t>(static_cast<double>(now - start) * rate_ / 1e9);
    // After a stall (the machine or this thread was busy), catch up at most one second's worth.
    const auto burst = std::max<uint64_t>(1, static_cast<uint64_t>(rate_));
    if (due > issued_ + burst) {
      stats_.send_skipped += due - issued_ - burst;
      issued_ = due - burst;
    }
    while (issued_ < due) {
      ++issued_;
      bool sent = false;
      // Round-robin; a sender that is not joined or whose queue is full passes its turn on.
      for (size_t tries = 0; tries < senders_.size() && !sent; ++tries) {
        Connection* c = senders_[next_sender_++ % senders_.size()];
        if (c->state() == Connection::State::kJoined) sent = c->SendMessage(NowNs());
      }
      if (!sent) ++stats_.send_skipped;
    }
  }
  ScheduleTick();
}

}  // namespace chat::loadgen
