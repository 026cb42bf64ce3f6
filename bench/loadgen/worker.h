#pragma once
// A worker: one thread, one epoll set and its share of the connections. It opens them with a bounded
// number of connects (and later joins) in flight, and paces its senders with one tick: each tick
// issues the sends that are due by then, round-robin over the joined senders (no per-connection
// timers). Threading: the Start*/Shutdown/ForceStop calls may come from any thread (they queue a
// command and wake the worker's thread through an eventfd); everything else runs on the worker's
// thread. Stats are read only after Run has returned.
//
// Why its own epoll loop and not Asio's: the load generator shares the machine with the servers it
// measures, so each of its syscalls is CPU the server does not get. Every socket is registered once,
// edge-triggered, and read only when epoll says so, until a read comes back short; Asio tries a read
// at once whenever one is started (a `recv` that finds nothing, a third of all reads at 100,000
// deliveries/s) or re-arms the registration with an `epoll_ctl` when waiting without a read.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "options.h"
#include "stats.h"

namespace chat::loadgen {

class Connection;

// What every worker shares, read-only (the Schedule's atomics aside).
struct RunContext {
  const Options& options;
  const std::vector<Target>& targets;
  Schedule& schedule;
  std::string run_id;                   // makes clientIds unique across runs (sends are idempotent)
  int64_t jwt_exp = 0;                  // unix seconds
  std::optional<uint32_t> source_base;  // first source address (host order), when binding
  size_t total_senders = 0;
};

class Worker {
 public:
  Worker(const RunContext& ctx, std::vector<ConnPlan> plans);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Run();  // the thread's body: returns after Shutdown (or ForceStop)
  void StartConnecting();
  void StartJoining();
  void StartSending();
  void Shutdown();   // closes every connection; Run returns once that is done
  void ForceStop();  // Run returns at its next wake

  const Live& live() const { return live_; }
  const Stats& stats() const { return stats_; }

  // For the connections, on this worker's thread.
  const RunContext& ctx() const { return ctx_; }
  Stats& mutable_stats() { return stats_; }
  Live& mutable_live() { return live_; }
  // Registers `fd` (edge-triggered, readable and writable) for `conn`, which must outlive the
  // registration (closing the fd ends it). Returns errno, 0 on success.
  int Watch(int fd, Connection* conn);
  // Calls conn->OnTimeout() at `at_ns` (NowNs clock) unless the worker stops first. Every caller
  // uses the same timeout, so deadlines arrive in order and a queue is enough.
  void AddDeadline(int64_t at_ns, Connection* conn);
  // Where a connection reads its socket into: shared, since each read is handled before the next.
  std::vector<char>& read_scratch() { return read_scratch_; }
  void OnConnectDone();
  void OnJoinDone();

 private:
  void Post(std::function<void()> command);
  void Wake();  // from any thread: the loop's wait returns
  void RunCommands();
  void RunDue(int64_t now);
  int64_t NextWake() const;  // NowNs of the next tick or deadline, Schedule::kNever for none
  void Wait(int64_t wake_at_ns);
  void LaunchConnects();
  void LaunchJoins();
  void Tick();

  const RunContext& ctx_;
  std::vector<ConnPlan> plans_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: commands queued, or stop
  std::mutex commands_mu_;
  std::vector<std::function<void()>> commands_;  // guarded by commands_mu_
  std::atomic<bool> force_stop_{false};
  bool done_ = false;

  std::vector<std::shared_ptr<Connection>> conns_;  // same order as plans_; kept until Run returns
  std::deque<std::pair<int64_t, Connection*>> deadlines_;

  bool launching_connects_ = false;
  bool launching_joins_ = false;
  size_t next_connect_ = 0;
  size_t connects_in_flight_ = 0;
  size_t connect_limit_ = 1;
  size_t next_join_ = 0;
  size_t joins_in_flight_ = 0;
  size_t join_limit_ = 1;

  std::vector<Connection*> senders_;
  size_t next_sender_ = 0;
  double rate_ = 0;  // this worker's share, messages per second
  uint64_t issued_ = 0;
  int64_t next_tick_ns_ = Schedule::kNever;

  Stats stats_;
  Live live_;
  std::vector<char> read_scratch_ = std::vector<char>(64 * 1024);
};

}  // namespace chat::loadgen
