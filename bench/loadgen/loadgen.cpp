// chat-loadgen: the load generator of the benchmark harness (issue #8). One process opens N WebSocket
// connections to our gateway, a Node `ws` peer or a Socket.IO peer, joins them to rooms, sends stamped
// messages at a steady aggregate rate and reports delivery and ack latency, throughput, losses,
// connect times and the servers' memory per connection. `chat-loadgen --help` lists the options.
//
// main runs the phases (connect, join, idle, warmup, measure, drain) and prints the report; the
// workers (worker.h) do all I/O, each on its own thread and epoll set.

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "options.h"
#include "report.h"
#include "stats.h"
#include "worker.h"

namespace chat::loadgen {
namespace {

std::atomic<bool> g_interrupted{false};

void OnSignal(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C kills
  std::signal(SIGTERM, SIG_DFL);
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void Say(const Options& o, const std::string& line) {
  if (!o.quiet) std::fprintf(stderr, "%s\n", line.c_str());
}

void RaiseFileLimit(const Options& o) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur != RLIM_INFINITY && static_cast<rlim_t>(o.connections) + 64 > lim.rlim_cur) {
    std::fprintf(stderr, "warning: the open-file limit is %llu, less than --connections %d plus some\n",
                 static_cast<unsigned long long>(lim.rlim_cur), o.connections);
  }
}

std::optional<int64_t> ReadRssKib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    // "VmRSS:     1234 kB"
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return std::nullopt;
}

RssReading ReadRss(const Options& o) {
  RssReading r;
  int64_t total = 0;
  bool all = !o.server_pids.empty();
  for (int pid : o.server_pids) {
    auto kib = ReadRssKib(pid);
    r.per_pid_kib.push_back(kib);
    if (kib) {
      total += *kib;
    } else {
      all = false;
    }
  }
  if (all) r.total_kib = total;
  return r;
}

std::optional<uint32_t> SourceBase(const Options& o, const std::vector<Target>& targets) {
  if (o.bind_source == "none") return std::nullopt;
  boost::asio::ip::address_v4 base;
  if (o.bind_source == "auto") {
    for (const auto& t : targets) {
      if (!t.endpoint.address().is_loopback()) return std::nullopt;
    }
    base = boost::asio::ip::make_address_v4("127.0.0.2");
  } else {
    boost::system::error_code ec;
    base = boost::asio::ip::make_address_v4(o.bind_source, ec);
    if (ec) {
      std::fprintf(stderr, "chat-loadgen: --bind-source: not an IPv4 address: %s\n", o.bind_source.c_str());
      std::exit(2);
    }
  }
  // Connection i binds base + i / conns_per_source: keep the last one inside 127.0.0.0/8.
  const uint64_t last = uint64_t{base.to_uint()} +
                        static_cast<uint64_t>(o.connections - 1) / static_cast<uint64_t>(o.conns_per_source);
  if (base.is_loopback() && last > 0x7fffffffu) {
    std::fprintf(stderr,
                 "chat-loadgen: --bind-source %s with --conns-per-source %d runs past 127.255.255.255\n",
                 base.to_string().c_str(), o.conns_per_source);
    std::exit(2);
  }
  return base.to_uint();
}

std::string RunId() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", rd() ^ static_cast<unsigned>(getpid()));
  return buf;
}

class Run {
 public:
  Run(const Options& o, const std::vector<Target>& targets) : o_(o), targets_(targets) {}

  int Execute();

 private:
  uint64_t Sum(std::atomic<uint64_t> Live::*field) const {
    uint64_t total = 0;
    for (const auto& w : workers_) total += (w->live().*field).load(std::memory_order_relaxed);
    return total;
  }
  // The latest of the workers' `field` times, at least `floor`.
  int64_t LastDone(std::atomic<int64_t> Live::*field, int64_t floor) const {
    int64_t last = floor;
    for (const auto& w : workers_) last = std::max(last, (w->live().*field).load(std::memory_order_relaxed));
    return last;
  }
  // Polls `done` every 20 ms until it holds, `deadline_ns` passes or a signal arrives; calls
  // `progress` once a second. False when interrupted.
  bool WaitFor(const std::function<bool()>& done, int64_t deadline_ns,
               const std::function<void()>& progress) {
    int64_t next_progress = NowNs() + 1'000'000'000;
    while (!done()) {
      if (g_interrupted.load()) return false;
      int64_t now = NowNs();
      if (now >= deadline_ns) return true;
      if (now >= next_progress) {
        progress();
        next_progress += 1'000'000'000;
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min<int64_t>(20, (deadline_ns - now) / 1'000'000 + 1)));
    }
    return true;
  }
  bool Sleep(double seconds, const std::function<void()>& progress) {
    return WaitFor([] { return false; }, NowNs() + static_cast<int64_t>(seconds * 1e9), progress);
  }
  void StopWorkers();

  const Options& o_;
  const std::vector<Target>& targets_;
  Schedule schedule_;
  std::unique_ptr<RunContext> ctx_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<std::atomic<bool>>> finished_;
};

int Run::Execute() {
  const auto plans = MakePlans(o_);
  RunFacts facts;
  for (const auto& p : plans) facts.senders += p.sender ? 1 : 0;
  ctx_ = std::make_unique<RunContext>(RunContext{
      o_, targets_, schedule_, RunId(),
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
              .count() +
          o_.jwt_ttl_s,
      SourceBase(o_, targets_), facts.senders});

  std::vector<std::vector<ConnPlan>> shares(static_cast<size_t>(o_.threads));
  for (const auto& p : plans) shares[p.index % static_cast<uint32_t>(o_.threads)].push_back(p);
  for (auto& share : shares) workers_.push_back(std::make_unique<Worker>(*ctx_, std::move(share)));

  // Before anything connects: the servers' baseline.
  facts.rss_before = ReadRss(o_);
  if (o_.baseline_rss_kib) facts.rss_before.total_kib = *o_.baseline_rss_kib;

  for (size_t i = 0; i < workers_.size(); ++i) {
    finished_.push_back(std::make_unique<std::atomic<bool>>(false));
    threads_.emplace_back([this, i] {
      workers_[i]->Run();
      finished_[i]->store(true);
    });
  }

  const auto n = static_cast<uint64_t>(o_.connections);
  Say(o_, "connecting " + std::to_string(n) + " to " + std::to_string(targets_.size()) + " URL(s), " +
              std::to_string(o_.connect_concurrency) + " in flight");
  int64_t t0 = NowNs();
  for (auto& w : workers_) w->StartConnecting();
  bool ok = WaitFor([&] { return Sum(&Live::connected) + Sum(&Live::connect_failed) >= n; }, Schedule::kNever,
                    [&] {
                      Say(o_, "  connect: " + std::to_string(Sum(&Live::connected)) + " ready, " +
                                  std::to_string(Sum(&Live::connect_failed)) + " failed");
                    });
  facts.connect_total_ms = static_cast<double>(LastDone(&Live::last_connect_done_ns, t0) - t0) / 1e6;
  Say(o_, "connected " + std::to_string(Sum(&Live::connected)) + ", failed " +
              std::to_string(Sum(&Live::connect_failed)) + " in " +
              std::to_string(static_cast<int64_t>(facts.connect_total_ms)) + " ms");

  const uint64_t ready = Sum(&Live::connected);
  if (ok && ready > 0) {
    t0 = NowNs();
    for (auto& w : workers_) w->StartJoining();
    ok = WaitFor([&] { return Sum(&Live::joined) + Sum(&Live::join_failed) >= ready; },
                 t0 + static_cast<int64_t>(o_.join_timeout_s * 1e9),
                 [&] {
                   Say(o_, "  join: " + std::to_string(Sum(&Live::joined)) + " joined, " +
                               std::to_string(Sum(&Live::join_failed)) + " failed");
                 });
    facts.join_total_ms = static_cast<double>(LastDone(&Live::last_join_done_ns, t0) - t0) / 1e6;
    const uint64_t answered = Sum(&Live::joined) + Sum(&Live::join_failed);
    if (ok && answered < ready) {
      facts.join_pending = ready - answered;
      Say(o_, "join timed out after " + Num(o_.join_timeout_s) + " s: " + std::to_string(facts.join_pending) +
                  " joins unanswered");
    }
    Say(o_, "joined " + std::to_string(Sum(&Live::joined)) + ", failed " +
                std::to_string(Sum(&Live::join_failed)) + " in " +
                std::to_string(static_cast<int64_t>(facts.join_total_ms)) + " ms");
  }
  facts.rss_after_connect = ReadRss(o_);

  if (ok && ready > 0 && o_.idle_s > 0) {
    Say(o_, "idle for " + Num(o_.idle_s) + " s");
    ok = Sleep(o_.idle_s,
               [&] { Say(o_, "  idle: " + std::to_string(Sum(&Live::disconnected)) + " disconnected"); });
    facts.rss_after_idle = ReadRss(o_);
  }

  if (ok && ready > 0) {
    const int64_t start = NowNs() + 20'000'000;  // a moment for every worker to see the schedule
    const auto warmup = static_cast<int64_t>(o_.warmup_s * 1e9);
    const auto duration = static_cast<int64_t>(o_.duration_s * 1e9);
    schedule_.send_start.store(start);
    schedule_.measure_start.store(start + warmup);
    schedule_.measure_end.store(start + warmup + duration);
    schedule_.record_end.store(start + warmup + duration + static_cast<int64_t>(o_.drain_s * 1e9));
    for (auto& w : workers_) w->StartSending();
    Say(o_, "sending " + Num(o_.rate) + " msg/s from " + std::to_string(facts.senders) + " senders: warmup " +
                Num(o_.warmup_s) + " s, measure " + Num(o_.duration_s) + " s, drain " + Num(o_.drain_s) +
                " s");
    ok = WaitFor([] { return false; }, schedule_.record_end.load(),
                 [&] {
                   const int64_t now = NowNs();
                   const char* phase = now < schedule_.measure_start.load() ? "warmup"
                                       : now < schedule_.measure_end.load() ? "measure"
                                                                            : "drain";
                   Say(o_, std::string("  ") + phase + ": sent " + std::to_string(Sum(&Live::sent)) +
                               ", acked " + std::to_string(Sum(&Live::acked)) + ", delivered " +
                               std::to_string(Sum(&Live::delivered)) + ", disconnected " +
                               std::to_string(Sum(&Live::disconnected)));
                 });
    const int64_t now = NowNs();
    if (!ok) {
      // Interrupted: close the window here so the rates are over what actually ran.
      schedule_.measure_end.store(std::min(now, schedule_.measure_end.load()));
      schedule_.record_end.store(now);
    }
    facts.measured_s = static_cast<double>(std::max<int64_t>(
                           0, schedule_.measure_end.load() - schedule_.measure_start.load())) /
                       1e9;
  }
  facts.interrupted = !ok;
  facts.rss_end = ReadRss(o_);
  facts.connected = Sum(&Live::connected);
  facts.connect_failed = Sum(&Live::connect_failed);
  facts.joined = Sum(&Live::joined);
  facts.join_failed = Sum(&Live::join_failed);

  StopWorkers();
  Stats total;
  total.Resize(static_cast<size_t>(o_.rooms), targets_.size());
  for (const auto& w : workers_) total.Merge(w->stats());

  std::fputs(ReportText(o_, targets_, facts, total).c_str(), stderr);
  std::printf("%s\n", ReportJson(o_, targets_, facts, total).c_str());
  std::fflush(stdout);
  return facts.connected > 0 ? 0 : 1;
}

void Run::StopWorkers() {
  for (auto& w : workers_) w->Shutdown();
  const int64_t deadline = NowNs() + 5'000'000'000;
  for (size_t i = 0; i < workers_.size(); ++i) {
    while (!finished_[i]->load() && NowNs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!finished_[i]->load()) workers_[i]->ForceStop();
  }
  for (auto& t : threads_) t.join();
}

}  // namespace
}  // namespace chat::loadgen

int main(int argc, char** argv) {
  using namespace chat::loadgen;
  Options options = ParseOptions(argc, argv);
  RaiseFileLimit(options);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  const auto targets = ResolveTargets(options);
  Run run(options, targets);
  return run.Execute();
}
