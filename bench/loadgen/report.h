#pragma once
// The end of a run: the one-line JSON report for stdout and the readable summary for stderr, from the
// merged Stats and what main measured itself (phase times, server RSS). Pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "options.h"
#include "stats.h"

namespace chat::loadgen {

struct RssReading {
  std::optional<int64_t> total_kib;  // the sum over --server-pid; nullopt when any could not be read
  std::vector<std::optional<int64_t>> per_pid_kib;
};

struct RunFacts {
  uint64_t connected = 0;
  uint64_t connect_failed = 0;
  uint64_t joined = 0;
  uint64_t join_failed = 0;
  uint64_t join_pending = 0;  // unanswered when the join phase timed out
  uint64_t senders = 0;       // planned
  double connect_total_ms = 0;
  double join_total_ms = 0;
  double measured_s = 0;  // the measurement window actually run (shorter when interrupted)
  bool interrupted = false;
  RssReading rss_before;
  RssReading rss_after_connect;  // after every join
  std::optional<RssReading> rss_after_idle;
  RssReading rss_end;
};

// Sum over rooms of (sent - rejected) x members (less the sender with --exclude-self): every message
// the server accepted, or did not answer, should reach every member of its room.
uint64_t ExpectedDeliveries(const Options& options, const Stats& stats);

std::string ReportJson(const Options& options, const std::vector<Target>& targets, const RunFacts& facts,
                       const Stats& stats);
std::string ReportText(const Options& options, const std::vector<Target>& targets, const RunFacts& facts,
                       const Stats& stats);

}  // namespace chat::loadgen
