#pragma once
// What a run measures. Each worker thread owns one Stats (plain fields, touched only by that thread,
// read by main after the thread has ended) and one Live (atomics main reads for progress lines and
// to know when a phase is done). Schedule holds the phase boundaries main publishes to the workers.

#include <time.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "histogram.h"

namespace chat::loadgen {

// CLOCK_MONOTONIC in nanoseconds: the clock of the send stamps in message texts.
inline int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Phase boundaries on the NowNs clock. Senders send in [send_start, measure_end); a message counts
// when it was sent in [measure_start, measure_end) and its ack or delivery arrived by record_end.
struct Schedule {
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> send_start{kNever};
  std::atomic<int64_t> measure_start{kNever};
  std::atomic<int64_t> measure_end{kNever};
  std::atomic<int64_t> record_end{kNever};

  bool InWindow(int64_t sent_ns) const {
    return sent_ns >= measure_start.load(std::memory_order_relaxed) &&
           sent_ns < measure_end.load(std::memory_order_relaxed);
  }
  bool Recording(int64_t now_ns) const { return now_ns <= record_end.load(std::memory_order_relaxed); }
};

// Counters main polls while the workers run. One writer each (the worker's thread).
struct Live {
  std::atomic<uint64_t> connected{0};       // ready: handshake done (socketio: namespace connected)
  std::atomic<uint64_t> connect_failed{0};  // failed before ready
  std::atomic<uint64_t> joined{0};
  std::atomic<uint64_t> join_failed{0};          // error reply, or closed before joined
  std::atomic<uint64_t> disconnected{0};         // closed by the server or the network after ready
  std::atomic<uint64_t> sent{0};                 // in the window
  std::atomic<uint64_t> acked{0};                // in the window
  std::atomic<uint64_t> delivered{0};            // in the window
  std::atomic<int64_t> last_connect_done_ns{0};  // NowNs of the latest connect outcome
  std::atomic<int64_t> last_join_done_ns{0};

  void Add(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

struct Stats {
  Histogram connect_ns;  // SYN to WebSocket handshake done
  Histogram ready_ns;    // SYN to ready (chat: handshake; socketio: the namespace's 40)
  Histogram join_ns;     // join sent to joined
  Histogram ack_ns;      // send to ack, window messages
  Histogram latency_ns;  // send to delivery, window messages, every receiver
  std::vector<Histogram> latency_by_url_ns;

  uint64_t sent = 0;              // window
  uint64_t acked = 0;             // window
  uint64_t send_errors = 0;       // window: error replies to sends
  uint64_t deliveries = 0;        // window
  uint64_t deliveries_other = 0;  // stamped deliveries of messages sent outside the window or after it
  uint64_t send_skipped = 0;      // due but not sent: the sender's queue was full or no sender was joined
  uint64_t welcomes = 0;
  uint64_t unparsed_frames = 0;
  std::map<std::string, uint64_t> errors;          // send error replies by code, window
  std::map<std::string, uint64_t> join_errors;     // by code or reason
  std::map<std::string, uint64_t> connect_errors;  // by reason
  std::map<std::string, uint64_t> disconnects;     // by reason (close code, EOF, reset...)
  std::vector<uint64_t> sent_per_room;             // window
  std::vector<uint64_t> rejected_per_room;         // window: sends answered with an error
  std::vector<uint64_t> members_per_room;          // joined connections

  void Resize(size_t rooms, size_t urls) {
    sent_per_room.assign(rooms, 0);
    rejected_per_room.assign(rooms, 0);
    members_per_room.assign(rooms, 0);
    latency_by_url_ns.resize(urls);
  }

  void Merge(const Stats& o) {
    connect_ns.Merge(o.connect_ns);
    ready_ns.Merge(o.ready_ns);
    join_ns.Merge(o.join_ns);
    ack_ns.Merge(o.ack_ns);
    latency_ns.Merge(o.latency_ns);
    for (size_t i = 0; i < latency_by_url_ns.size() && i < o.latency_by_url_ns.size(); ++i) {
      latency_by_url_ns[i].Merge(o.latency_by_url_ns[i]);
    }
    sent += o.sent;
    acked += o.acked;
    send_errors += o.send_errors;
    deliveries += o.deliveries;
    deliveries_other += o.deliveries_other;
    send_skipped += o.send_skipped;
    welcomes += o.welcomes;
    unparsed_frames += o.unparsed_frames;
    for (const auto& [k, v] : o.errors) errors[k] += v;
    for (const auto& [k, v] : o.join_errors) join_errors[k] += v;
    for (const auto& [k, v] : o.connect_errors) connect_errors[k] += v;
    for (const auto& [k, v] : o.disconnects) disconnects[k] += v;
    for (size_t i = 0; i < sent_per_room.size() && i < o.sent_per_room.size(); ++i) {
      sent_per_room[i] += o.sent_per_room[i];
      rejected_per_room[i] += o.rejected_per_room[i];
      members_per_room[i] += o.members_per_room[i];
    }
  }
};

}  // namespace chat::loadgen
