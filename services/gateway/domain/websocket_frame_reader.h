#pragma once
// Reads the client side of a WebSocket connection (RFC 6455) from raw bytes: frame headers, unmasking,
// fragmented messages, interleaved control frames, size limit and UTF-8 of text. No sockets: the
// session feeds it whatever the socket gave and acts on the events.
//
// Why our own and not Beast's websocket::stream: Beast's per-stream state is ~2.7 KB (a 1.5 KB frame
// buffer among it) plus a prepared read buffer, on every idle connection; this reader keeps ~100 bytes
// and allocates only while a message is arriving (bench/README.md, scenario 3).
//
// Refusals carry the close code the RFC asks for: 1002 protocol error (unmasked frame, reserved bits
// or opcodes, bad control frames, continuation out of place, non-minimal or 64-bit-overflowing
// lengths, bad close payloads, corrupt compressed data), 1007 invalid UTF-8 in a text message or a
// close reason, 1009 a message past the limit (inflated size included).

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chat::gateway {

struct WebSocketEvent {
  enum class Kind { kText, kBinary, kPing, kPong, kClose, kError };
  Kind kind;
  std::string payload;  // the message, ping/pong data, the close reason, or what was wrong
  uint16_t code = 0;    // kClose: the peer's code (1005 when it sent none); kError: the code to close with
};

class WebSocketFrameReader {
 public:
  explicit WebSocketFrameReader(size_t max_message_bytes) : max_message_(max_message_bytes) {}

  // Consumes `bytes`, appending the events completed by them. After a kError event (the last one
  // appended) the reader ignores further input.
  void Feed(std::string_view bytes, std::vector<WebSocketEvent>& out);

  bool failed() const { return failed_; }

  // permessage-deflate was negotiated: a data message whose first frame has RSV1 set is compressed
  // (inflated when whole, its inflated size under the limit).
  void EnableDeflate() { deflate_ = true; }
  // Compressed messages read so far.
  uint64_t inflated() const { return inflated_; }

 private:
  void Fail(uint16_t code, std::string why, std::vector<WebSocketEvent>& out);
  // The header in head_ is whole: checks it and starts its payload. False after a failure.
  bool StartFrame(std::vector<WebSocketEvent>& out);
  void EndFrame(std::vector<WebSocketEvent>& out);
  size_t HeaderSize() const;

  size_t max_message_;
  std::array<uint8_t, 14> head_{};
  uint8_t head_len_ = 0;
  bool in_payload_ = false;
  bool fin_ = false;
  uint8_t opcode_ = 0;
  uint8_t mask_offset_ = 0;
  std::array<uint8_t, 4> mask_{};
  uint64_t remaining_ = 0;
  // The data message being assembled (0: none), and its bytes; control frames assemble in control_.
  uint8_t message_opcode_ = 0;
  std::string message_;
  std::string control_;
  bool failed_ = false;
  bool deflate_ = false;
  bool message_compressed_ = false;
  uint64_t inflated_ = 0;
};

}  // namespace chat::gateway
