#include "worker.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "connection.h"

namespace chat::loadgen {

namespace {

constexpr int kEventsPerWait = 256;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "chat-loadgen: worker: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// A handler that throws would end the thread and the process: report it and carry on. Each event and
// command on its own: an edge-triggered event skipped would not come again.
template <typename Step>
void Guarded(Step&& step) {
  try {
    step();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chat-loadgen: worker: unexpected exception: %s\n", e.what());
  }
}

}  // namespace

Worker::Worker(const RunContext& ctx, std::vector<ConnPlan> plans) : ctx_(ctx), plans_(std::move(plans)) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) Die("epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) Die("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake fd; every other entry is a Connection
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) Die("epoll_ctl(eventfd)");

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

Worker::~Worker() {
  conns_.clear();  // closes their sockets before the epoll set goes
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void Worker::Run() {
  std::array<epoll_event, kEventsPerWait> events{};
  while (!done_ && !force_stop_.load(std::memory_order_relaxed)) {
    // Sockets are polled on every turn; a tick or deadline already due only makes the wait zero.
    const int64_t wake_at = NextWake();
    timespec timeout{};
    timespec* timeout_ptr = nullptr;
    if (wake_at != Schedule::kNever) {
      const int64_t wait = std::max<int64_t>(0, wake_at - NowNs());
      timeout.tv_sec = static_cast<time_t>(wait / 1'000'000'000);
      timeout.tv_nsec = static_cast<long>(wait % 1'000'000'000);
      timeout_ptr = &timeout;
    }
    const int n = ::epoll_pwait2(epoll_fd_, events.data(), kEventsPerWait, timeout_ptr, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      Die("epoll_pwait2");
    }
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      const epoll_event& ev = events[i];
      Guarded([&] {
        if (ev.data.ptr == nullptr) {
          RunCommands();
        } else {
          static_cast<Connection*>(ev.data.ptr)->OnEvents(ev.events);
        }
      });
    }
    Guarded([&] { RunDue(NowNs()); });
  }
  // The connections go only now: an event already returned for one closed during the last batch
  // still pointed at it.
  conns_.clear();
  senders_.clear();
  deadlines_.clear();
}

void Worker::Post(std::function<void()> command) {
  {
    std::lock_guard lock(commands_mu_);
    commands_.push_back(std::move(command));
  }
  Wake();
}

void Worker::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void Worker::RunCommands() {
  uint64_t count = 0;
  (void)!::read(wake_fd_, &count, sizeof count);
  std::vector<std::function<void()>> todo;
  {
    std::lock_guard lock(commands_mu_);
    todo.swap(commands_);
  }
  for (auto& command : todo) Guarded(command);
}

int Worker::Watch(int fd, Connection* conn) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = conn;
  return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

void Worker::AddDeadline(int64_t at_ns, Connection* conn) { deadlines_.emplace_back(at_ns, conn); }

int64_t Worker::NextWake() const {
  int64_t at = next_tick_ns_;
  if (!deadlines_.empty()) at = std::min(at, deadlines_.front().first);
  return at;
}

void Worker::RunDue(int64_t now) {
  while (!deadlines_.empty() && deadlines_.front().first <= now) {
    Connection* conn = deadlines_.front().second;
    deadlines_.pop_front();
    conn->OnTimeout();
  }
  if (next_tick_ns_ <= now) Tick();
}

void Worker::StartConnecting() {
  Post([this] {
    conns_.reserve(plans_.size());
    LaunchConnects();
  });
}

void Worker::StartJoining() {
  Post([this] { LaunchJoins(); });
}

void Worker::StartSending() {
  Post([this] {
    for (const auto& c : conns_) {
      if (c->plan().sender) senders_.push_back(c.get());
    }
    if (rate_ > 0 && !senders_.empty()) next_tick_ns_ = NowNs() + int64_t{ctx_.options.tick_us} * 1000;
  });
}

void Worker::Shutdown() {
  Post([this] {
    next_tick_ns_ = Schedule::kNever;
    senders_.clear();
    deadlines_.clear();
    for (const auto& c : conns_) c->Close();
    done_ = true;
  });
}

void Worker::ForceStop() {
  force_stop_.store(true, std::memory_order_relaxed);
  Wake();
}

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
    std::optional<uint32_t> source;
    if (ctx_.source_base) source = *ctx_.source_base + plan.index / per_source;
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

void Worker::Tick() {
  const auto& schedule = ctx_.schedule;
  const int64_t start = schedule.send_start.load(std::memory_order_relaxed);
  int64_t now = NowNs();
  if (now >= schedule.measure_end.load(std::memory_order_relaxed)) {  // done: no more ticks
    next_tick_ns_ = Schedule::kNever;
    return;
  }
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
  next_tick_ns_ = NowNs() + int64_t{ctx_.options.tick_us} * 1000;
}

}  // namespace chat::loadgen
