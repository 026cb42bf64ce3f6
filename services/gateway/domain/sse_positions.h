#pragma once
// Where an SSE stream stands in each room, carried in the events' `id:` so that an EventSource that
// reconnects on its own (sending `Last-Event-ID`) resumes every room where it left off. The id is
// `room=seq,room=seq` (room names hold no '=' or ','). Not thread-safe: one per stream.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace chat::gateway {

class SsePositions {
 public:
  // Reads the room and seq of a `message`, `joined` or `resumed` frame as EncodeServerFrame writes it
  // (room first, then seq or lastSeq); returns true when a position moved forward.
  bool Observe(std::string_view frame);
  void Forget(const std::string& room) { seqs_.erase(room); }
  std::string Id() const;
  const std::map<std::string, int64_t>& seqs() const { return seqs_; }

  // The positions in a Last-Event-ID header; malformed entries are skipped.
  static std::map<std::string, int64_t> Parse(std::string_view id);

 private:
  std::map<std::string, int64_t> seqs_;
};

// One SSE event: `id:` when given, then the data line (frames are single-line JSON).
std::string SseEvent(std::string_view data, std::string_view id = {}, std::string_view event = {});

}  // namespace chat::gateway
