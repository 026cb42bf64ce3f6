#pragma once
// Puts one room's messages in seq order for one receiver (a connection, or the gateway's room
// subscription): drops what was delivered already, holds what arrives ahead of a gap, asks for the gap
// to be fetched from storage, and asks again when a fetch fails or is overdue; a gap is never skipped.
// Plain logic with the time passed in; not thread-safe (one owner thread).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chat::gateway {

// Who sent a live message. Its sender's own connection holds its copy until the send's ack, so that
// the two go out in one socket write.
struct MessageOrigin {
  std::string sender;
  std::string client_id;
};

// One encoded `message` frame and its seq; `origin` is set for live messages, not for fetched ones.
struct SeqFrame {
  int64_t seq = 0;
  std::shared_ptr<const std::string> bytes;
  std::shared_ptr<const MessageOrigin> origin;
};

// Fetch the messages with seq > after_seq, at most `limit` of them.
struct GapFetch {
  int64_t after_seq = 0;
  uint32_t limit = 0;
};

class SeqOrderer {
 public:
  using Clock = std::chrono::steady_clock;

  struct Step {
    std::vector<SeqFrame> deliver;  // in seq order
    std::optional<GapFetch> fetch;  // issue this, then call OnFetched or OnFetchFailed
  };

  struct Options {
    // Without a known position, the first live frame sets it (a room subscription); otherwise frames
    // wait for Start (a connection between its subscribe and its join answer).
    bool start_on_first_frame = false;
    size_t max_held = 10000;
    uint32_t fetch_limit = 1000;
    std::chrono::milliseconds refetch_after{2000};
  };

  explicit SeqOrderer(Options options) : options_(options) {}

  // The receiver has everything up to and including `last`.
  Step Start(int64_t last, Clock::time_point now);
  bool started() const { return started_; }
  int64_t last() const { return last_; }
  size_t held() const { return held_.size(); }
  bool fetching() const { return fetching_; }
  uint64_t duplicates() const { return duplicates_; }

  Step OnLive(SeqFrame frame, Clock::time_point now);
  // The common case of OnLive without its allocations: when `seq` is the next one and nothing is held,
  // records it as delivered and returns true (the caller delivers it); otherwise changes nothing.
  bool TakeNext(int64_t seq);
  // The answer to the last fetch: consecutive frames after the asked seq (possibly fewer than asked).
  Step OnFetched(std::vector<SeqFrame> frames, Clock::time_point now);
  void OnFetchFailed(Clock::time_point now);
  // Fetches again when a gap has waited past refetch_after.
  Step OnTick(Clock::time_point now);
  // Fetches again now, for an owner that waited refetch_after with a timer of its own.
  Step Retry(Clock::time_point now);
  // Asks for anything after the last delivered seq (after a lost subscription came back).
  Step Probe(Clock::time_point now);

 private:
  void Drain(Step& step);
  void MaybeFetch(Step& step, Clock::time_point now, bool force);

  Options options_;
  bool started_ = false;
  int64_t last_ = 0;
  int64_t highest_seen_ = 0;  // the highest seq known to exist (held or dropped for memory)
  std::map<int64_t, SeqFrame> held_;
  bool fetching_ = false;
  uint32_t fetch_limit_asked_ = 0;
  Clock::time_point fetch_started_{};
  uint64_t duplicates_ = 0;
};

}  // namespace chat::gateway
