#include "domain/sse_positions.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/text_rules.h"

namespace chat::gateway {

namespace {

// The string value of the first `"key":"` after `from`, or empty.
std::string_view StringAfter(std::string_view s, std::string_view key, size_t& from) {
  auto at = s.find(key, from);
  if (at == std::string_view::npos) return {};
  size_t begin = at + key.size();
  size_t end = s.find('"', begin);
  if (end == std::string_view::npos) return {};
  from = end;
  return s.substr(begin, end - begin);
}

}  // namespace

bool SsePositions::Observe(std::string_view frame) {
  std::string_view seq_key;
  size_t body;
  if (frame.rfind(R"({"message":{)", 0) == 0) {
    seq_key = R"("seq":")";
    body = 11;
  } else if (frame.rfind(R"({"joined":{)", 0) == 0 || frame.rfind(R"({"resumed":{)", 0) == 0) {
    seq_key = R"("lastSeq":")";
    body = frame.find('{', 1);
  } else {
    // Replies carry a ref first: {"ref":1,"joined":{…}}.
    auto joined = frame.find(R"("joined":{)");
    auto resumed = frame.find(R"("resumed":{)");
    if (frame.rfind(R"({"ref":)", 0) != 0 ||
        (joined == std::string_view::npos && resumed == std::string_view::npos))
      return false;
    seq_key = R"("lastSeq":")";
    body = std::min(joined, resumed);
  }
  size_t from = body;
  std::string room(StringAfter(frame, R"("room":")", from));
  std::string_view seq_text = StringAfter(frame, seq_key, from);
  int64_t seq = 0;
  if (!ValidateRoomName(room).ok() ||
      !absl::SimpleAtoi(absl::string_view(seq_text.data(), seq_text.size()), &seq))
    return false;
  auto [it, inserted] = seqs_.try_emplace(room, seq);
  if (inserted) return true;
  if (seq <= it->second) return false;
  it->second = seq;
  return true;
}

std::string SsePositions::Id() const {
  std::string out;
  for (const auto& [room, seq] : seqs_) {
    if (!out.empty()) out.push_back(',');
    absl::StrAppend(&out, room, "=", seq);
  }
  return out;
}

std::map<std::string, int64_t> SsePositions::Parse(std::string_view id) {
  std::map<std::string, int64_t> out;
  while (!id.empty()) {
    auto comma = id.find(',');
    std::string_view entry = id.substr(0, comma);
    auto eq = entry.find('=');
    int64_t seq = 0;
    if (eq != std::string_view::npos && ValidateRoomName(entry.substr(0, eq)).ok() &&
        absl::SimpleAtoi(absl::string_view(entry.data() + eq + 1, entry.size() - eq - 1), &seq) && seq >= 0) {
      out[std::string(entry.substr(0, eq))] = seq;
    }
    if (comma == std::string_view::npos) break;
    id.remove_prefix(comma + 1);
  }
  return out;
}

std::string SseEvent(std::string_view data, std::string_view id, std::string_view event) {
  std::string out;
  out.reserve(data.size() + id.size() + event.size() + 24);
  if (!event.empty()) out.append("event: ").append(event).append("\n");
  if (!id.empty()) out.append("id: ").append(id).append("\n");
  out.append("data: ").append(data).append("\n\n");
  return out;
}

}  // namespace chat::gateway
