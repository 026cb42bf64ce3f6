#pragma once
// The two wire protocols the load generator speaks, as pure functions over strings:
//  - chat: our client protocol v1 (DESIGN.md), JSON text frames with an optional `ref` and one body;
//  - socketio: Socket.IO 4 over a raw Engine.IO v4 WebSocket (packet type digits before the JSON).
// Incoming frames are read with a small JSON scanner that finds members without building a tree: it
// is correct for any valid JSON (strings with escapes, nesting) but returns string contents raw, with
// escapes left in place, which is all the generator needs (our texts, rooms and ids need no escaping).
// Thread-safe: no state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chat::loadgen {

namespace json {

// Index just past the JSON value that starts at or after `pos` (leading whitespace skipped), or
// npos when the text there is not a complete value.
size_t SkipValue(std::string_view s, size_t pos);

// Calls fn(key, value) for each member of the object in `obj` (raw key without quotes, value as its
// JSON text) until fn returns false. False when `obj` is not a well-formed object.
template <typename Fn>
bool ForEachMember(std::string_view obj, Fn&& fn);

// Calls fn(element) for each element of the array in `arr` until fn returns false.
template <typename Fn>
bool ForEachElement(std::string_view arr, Fn&& fn);

// The value of member `key` of object `obj`, as JSON text.
std::optional<std::string_view> Member(std::string_view obj, std::string_view key);
// The contents of a JSON string value (escapes not decoded).
std::optional<std::string_view> StringContents(std::string_view value);
// A non-negative integer written as a number or, as proto3 JSON writes int64, as a string.
std::optional<uint64_t> Unsigned(std::string_view value);

size_t SkipSpace(std::string_view s, size_t pos);
size_t SkipString(std::string_view s, size_t pos);  // s[pos] == '"'; index past the closing quote

}  // namespace json

// The timestamped message text: "t=<ns>;" then 'x' up to `bytes` characters in all.
std::string StampedText(int64_t ns, size_t bytes);
// The <ns> of a text StampedText made; nullopt for any other text.
std::optional<int64_t> ParseStamp(std::string_view text);

// --- chat -----------------------------------------------------------------------------------------

std::string ChatJoinFrame(uint32_t ref, std::string_view room);
std::string ChatSendFrame(uint32_t ref, std::string_view room, std::string_view client_id,
                          std::string_view text);

struct ChatFrame {
  std::string_view kind;  // the body's key: "message", "ack", "joined", "error", "welcome", ...
  std::string_view body;  // its value, JSON text
  std::optional<uint32_t> ref;
};
std::optional<ChatFrame> ParseChatFrame(std::string_view text);

// --- socketio -------------------------------------------------------------------------------------

std::string SioConnectFrame(std::string_view token);  // 40{"token":"..."}
std::string SioJoinFrame(uint32_t ack_id, std::string_view room);
std::string SioSendFrame(uint32_t ack_id, std::string_view room, std::string_view client_id,
                         std::string_view text);

struct SioPacket {
  enum class Kind {
    kOpen,          // 0{...}      Engine.IO open
    kClose,         // 1
    kPing,          // 2           the client answers 3
    kPong,          // 3
    kNoop,          // 6
    kConnect,       // 40{...}     Socket.IO connected to the namespace
    kDisconnect,    // 41
    kEvent,         // 42[...]
    kAck,           // 43<id>[...]
    kConnectError,  // 44{...}
    kOther,
  };
  Kind kind = Kind::kOther;
  std::optional<uint32_t> ack_id;
  std::string_view payload;  // the JSON after the header
};
SioPacket ParseSio(std::string_view text);

// An event packet's name and first argument (empty when none).
struct SioEvent {
  std::string_view name;
  std::string_view data;
};
std::optional<SioEvent> ParseSioEvent(std::string_view payload);

// The error code of an ack's payload `[{"error":{"code":"..."}}]` (or `[{"error":"..."}]`); nullopt
// for a successful ack.
std::optional<std::string> SioAckError(std::string_view payload);

// --- template definitions -------------------------------------------------------------------------

namespace json {

template <typename Fn>
bool ForEachMember(std::string_view obj, Fn&& fn) {
  size_t i = SkipSpace(obj, 0);
  if (i >= obj.size() || obj[i] != '{') return false;
  i = SkipSpace(obj, i + 1);
  if (i < obj.size() && obj[i] == '}') return true;
  while (i < obj.size()) {
    if (obj[i] != '"') return false;
    size_t key_end = SkipString(obj, i);
    if (key_end == std::string_view::npos) return false;
    std::string_view key = obj.substr(i + 1, key_end - i - 2);
    i = SkipSpace(obj, key_end);
    if (i >= obj.size() || obj[i] != ':') return false;
    size_t value_start = SkipSpace(obj, i + 1);
    size_t value_end = SkipValue(obj, value_start);
    if (value_end == std::string_view::npos) return false;
    if (!fn(key, obj.substr(value_start, value_end - value_start))) return true;
    i = SkipSpace(obj, value_end);
    if (i >= obj.size()) return false;
    if (obj[i] == '}') return true;
    if (obj[i] != ',') return false;
    i = SkipSpace(obj, i + 1);
  }
  return false;
}

template <typename Fn>
bool ForEachElement(std::string_view arr, Fn&& fn) {
  size_t i = SkipSpace(arr, 0);
  if (i >= arr.size() || arr[i] != '[') return false;
  i = SkipSpace(arr, i + 1);
  if (i < arr.size() && arr[i] == ']') return true;
  while (i < arr.size()) {
    size_t end = SkipValue(arr, i);
    if (end == std::string_view::npos) return false;
    if (!fn(arr.substr(i, end - i))) return true;
    i = SkipSpace(arr, end);
    if (i >= arr.size()) return false;
    if (arr[i] == ']') return true;
    if (arr[i] != ',') return false;
    i = SkipSpace(arr, i + 1);
  }
  return false;
}

}  // namespace json

}  // namespace chat::loadgen
