#pragma once
// The client side of the WebSocket wire format (RFC 6455, RFC 7692), as pure functions and two small
// stateful parsers, so that a connection reads straight from its socket: one recv per readable wake
// into its worker's scratch buffer, every whole frame in it handled in place, only a partial frame's
// tail kept by the connection. Beast's websocket::stream costs a composed operation and a speculative
// recv (usually EAGAIN) per frame read: at 100,000 deliveries/s that was a third of the generator's
// CPU, taken from the server it shares the machine with.
// Thread-safe: no shared state (each parser belongs to one connection).

#include <boost/beast/zlib/inflate_stream.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chat::loadgen::ws {

inline constexpr uint8_t kContinuation = 0x0;
inline constexpr uint8_t kText = 0x1;
inline constexpr uint8_t kBinary = 0x2;
inline constexpr uint8_t kClose = 0x8;
inline constexpr uint8_t kPing = 0x9;
inline constexpr uint8_t kPong = 0xa;

// --- handshake -------------------------------------------------------------------------------------

// The upgrade request. `subprotocol` empty: no Sec-WebSocket-Protocol; `offer_deflate`: offers
// permessage-deflate (client_max_window_bits, as Beast's client does).
std::string UpgradeRequest(std::string_view host, std::string_view target, std::string_view key,
                           std::string_view subprotocol, bool offer_deflate);
// base64(SHA-1(key + the RFC's GUID)): the Sec-WebSocket-Accept a server must answer `key` with.
std::string AcceptFor(std::string_view key);
// 16 bytes of `seed`-derived noise, base64: a Sec-WebSocket-Key.
std::string KeyFrom(uint64_t seed);

struct UpgradeReply {
  int status = 0;  // 0: no parsable status line
  std::string_view accept;
  std::string_view extensions;
  size_t size = 0;  // bytes of the header block, its blank line included
};
// The reply's status and headers, or nullopt while `in` does not hold the whole header block yet.
// The views point into `in`.
std::optional<UpgradeReply> ParseUpgradeReply(std::string_view in);
// Whether the Sec-WebSocket-Extensions value accepts permessage-deflate.
bool AcceptsDeflate(std::string_view extensions);

// --- frames --------------------------------------------------------------------------------------------

// Appends one masked client frame (fin set, no RSV bits) carrying `payload`, masked with `mask`.
void AppendClientFrame(std::string& out, uint8_t opcode, std::string_view payload, uint32_t mask);

struct Frame {
  uint8_t opcode = 0;
  bool fin = false;
  bool compressed = false;  // RSV1
  std::string_view payload;
};
enum class Parse { kFrame, kNeedMore, kBad };
// The frame at the start of `in`: kFrame sets `frame` (payload viewing `in`) and `used` (its bytes on
// the wire); kBad sets `why` (a masked server frame, RSV2/3, an unknown opcode, a fragmented or long
// control frame, a payload over `max_payload`).
Parse ParseServerFrame(std::string_view in, uint64_t max_payload, Frame& frame, size_t& used,
                       std::string& why);

// Turns a server's frames into messages: joins continuation frames and, once permessage-deflate is
// on, inflates compressed messages. One per connection.
class MessageAssembler {
 public:
  explicit MessageAssembler(uint64_t max_message) : max_message_(max_message) {}
  void EnableDeflate();

  enum class Step { kMessage, kPending, kBad };
  // Feeds one data frame (text, binary or continuation). kMessage: `message()` holds a whole message
  // (viewing the frame's payload when it came whole and plain, else a copy) and `text()` says whether
  // it is text, both valid until the next Add and as long as the frame's bytes. kBad sets `why`.
  Step Add(const Frame& frame, std::string& why);
  std::string_view message() const { return view_; }
  bool text() const { return text_; }

 private:
  bool Inflate(std::string_view compressed, std::string& why);

  const uint64_t max_message_;
  bool deflate_ = false;
  bool in_message_ = false;  // between a first frame without fin and the last one
  bool text_ = false;
  bool compressed_ = false;
  std::string parts_;  // a fragmented message's frames so far
  std::string message_;
  std::string_view view_;  // the finished message: the frame's own payload when whole and plain
  std::optional<boost::beast::zlib::inflate_stream> inflater_;
};

}  // namespace chat::loadgen::ws
