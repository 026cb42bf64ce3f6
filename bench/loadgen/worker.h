#pragma once
// A worker: one thread, one io_context and its share of the connections. It opens them with a bounded
// number of connects (and later joins) in flight, and paces its senders with one steady timer: each
// tick issues the sends that are due by then, round-robin over the joined senders (no per-connection
// timers). Threading: the Start*/Shutdown calls may come from any thread (they post to the worker's
// own); everything else runs on the worker's thread. Stats are read only after Run has returned.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
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

  void Run();  // the thread's body: returns after Shutdown (or ForceStop)
  void StartConnecting();
  void StartJoining();
  void StartSending();
  void Shutdown();   // closes every connection; Run returns once their handlers have finished
  void ForceStop();  // stops the io_context at once

  const Live& live() const { return live_; }
  const Stats& stats() const { return stats_; }

  // For the connections, on this worker's thread.
  const RunContext& ctx() const { return ctx_; }
  boost::asio::io_context& io() { return ioc_; }
  Stats& mutable_stats() { return stats_; }
  Live& mutable_live() { return live_; }
  // Where a connection reads a socket into: shared, since each read is handled before the next.
  std::vector<char>& read_scratch() { return read_scratch_; }
  void OnConnectDone();
  void OnJoinDone();

 private:
  void LaunchConnects();
  void LaunchJoins();
  void ScheduleTick();
  void Tick();

  const RunContext& ctx_;
  std::vector<ConnPlan> plans_;
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  boost::asio::steady_timer ticker_;
  std::vector<std::shared_ptr<Connection>> conns_;  // same order as plans_

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

  Stats stats_;
  Live live_;
  std::vector<char> read_scratch_ = std::vector<char>(64 * 1024);
};

}  // namespace chat::loadgen
