#include "domain/websocket_frame_reader.h"

#include <algorithm>

#include "common/text_rules.h"
#include "domain/permessage_deflate.h"

namespace chat::gateway {
namespace {

constexpr uint8_t kContinuation = 0x0;
constexpr uint8_t kText = 0x1;
constexpr uint8_t kBinary = 0x2;
constexpr uint8_t kClose = 0x8;
constexpr uint8_t kPing = 0x9;
constexpr uint8_t kPong = 0xa;

bool IsControl(uint8_t opcode) { return (opcode & 0x8) != 0; }

// Codes a peer may send in a close frame (RFC 6455 7.4, IANA registry; 1005, 1006 and 1015 are never
// sent on the wire).
bool IsSendableCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

}  // namespace

size_t WebSocketFrameReader::HeaderSize() const {
  const uint8_t len7 = head_[1] & 0x7f;
  const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  return 2 + ext + ((head_[1] & 0x80) ? 4 : 0);
}

void WebSocketFrameReader::Fail(uint16_t code, std::string why, std::vector<WebSocketEvent>& out) {
  failed_ = true;
  std::string().swap(message_);
  std::string().swap(control_);
  out.push_back(WebSocketEvent{WebSocketEvent::Kind::kError, std::move(why), code});
}

bool WebSocketFrameReader::StartFrame(std::vector<WebSocketEvent>& out) {
  fin_ = (head_[0] & 0x80) != 0;
  opcode_ = head_[0] & 0x0f;
  // RSV1 marks a compressed message (permessage-deflate), on its first frame only.
  const bool rsv1 = (head_[0] & 0x40) != 0;
  if ((head_[0] & 0x30) != 0 || (rsv1 && (!deflate_ || (opcode_ != kText && opcode_ != kBinary))))
    return Fail(1002, "reserved bits set", out), false;
  if ((head_[1] & 0x80) == 0) return Fail(1002, "unmasked client frame", out), false;
  const uint8_t len7 = head_[1] & 0x7f;
  uint64_t len = len7;
  size_t at = 2;
  if (len7 == 126) {
    len = (uint64_t{head_[2]} << 8) | head_[3];
    at = 4;
    if (len < 126) return Fail(1002, "non-minimal frame length", out), false;
  } else if (len7 == 127) {
    len = 0;
    for (size_t i = 0; i < 8; ++i) len = (len << 8) | head_[2 + i];
    at = 10;
    if (len >> 63) return Fail(1002, "frame length out of range", out), false;
    if (len <= 0xffff) return Fail(1002, "non-minimal frame length", out), false;
  }
  std::copy_n(head_.begin() + static_cast<std::ptrdiff_t>(at), 4, mask_.begin());
  mask_offset_ = 0;
  remaining_ = len;
  switch (opcode_) {
    case kContinuation:
      if (message_opcode_ == 0) return Fail(1002, "continuation without a message", out), false;
      break;
    case kText:
    case kBinary:
      if (message_opcode_ != 0) return Fail(1002, "new message inside a fragmented one", out), false;
      message_opcode_ = opcode_;
      message_compressed_ = rsv1;
      break;
    case kClose:
    case kPing:
    case kPong:
      if (!fin_) return Fail(1002, "fragmented control frame", out), false;
      if (len > 125) return Fail(1002, "control frame over 125 bytes", out), false;
      control_.clear();
      break;
    default:
      return Fail(1002, "reserved opcode", out), false;
  }
  if (!IsControl(opcode_) && len > max_message_ - std::min<uint64_t>(message_.size(), max_message_)) {
    return Fail(1009, "message too big", out), false;
  }
  if (!IsControl(opcode_)) message_.reserve(message_.size() + static_cast<size_t>(len));
  in_payload_ = true;
  return true;
}

void WebSocketFrameReader::EndFrame(std::vector<WebSocketEvent>& out) {
  in_payload_ = false;
  head_len_ = 0;
  if (IsControl(opcode_)) {
    if (opcode_ == kPing) {
      out.push_back(WebSocketEvent{WebSocketEvent::Kind::kPing, std::move(control_), 0});
    } else if (opcode_ == kPong) {
      out.push_back(WebSocketEvent{WebSocketEvent::Kind::kPong, std::move(control_), 0});
    } else {
      uint16_t code = 1005;
      std::string reason;
      if (control_.size() == 1) return Fail(1002, "close frame with a 1-byte payload", out);
      if (control_.size() >= 2) {
        code = static_cast<uint16_t>((static_cast<uint8_t>(control_[0]) << 8) |
                                     static_cast<uint8_t>(control_[1]));
        if (!IsSendableCloseCode(code)) return Fail(1002, "invalid close code", out);
        reason = control_.substr(2);
        if (!IsValidUtf8(reason)) return Fail(1007, "close reason is not UTF-8", out);
      }
      out.push_back(WebSocketEvent{WebSocketEvent::Kind::kClose, std::move(reason), code});
    }
    control_.clear();
    return;
  }
  if (!fin_) return;
  const bool text = message_opcode_ == kText;
  message_opcode_ = 0;
  if (message_compressed_) {
    message_compressed_ = false;
    auto inflated = InflateMessage(message_, max_message_);
    if (!inflated.ok()) {
      return absl::IsResourceExhausted(inflated.status())
                 ? Fail(1009, "message too big", out)
                 : Fail(1002, std::string(inflated.status().message()), out);
    }
    message_ = std::move(*inflated);
    ++inflated_;
  }
  if (text && !IsValidUtf8(message_)) return Fail(1007, "text message is not UTF-8", out);
  out.push_back(WebSocketEvent{text ? WebSocketEvent::Kind::kText : WebSocketEvent::Kind::kBinary,
                               std::move(message_), 0});
  message_ = std::string();
}

void WebSocketFrameReader::Feed(std::string_view bytes, std::vector<WebSocketEvent>& out) {
  size_t i = 0;
  while (!failed_ && i < bytes.size()) {
    if (!in_payload_) {
      // The 2-byte start says how long the header is; take bytes up to that.
      const size_t want = head_len_ < 2 ? 2 : HeaderSize();
      const size_t take = std::min(want - head_len_, bytes.size() - i);
      std::copy_n(bytes.data() + i, take, head_.begin() + head_len_);
      head_len_ = static_cast<uint8_t>(head_len_ + take);
      i += take;
      if (head_len_ < 2 || head_len_ < HeaderSize()) continue;
      if (!StartFrame(out)) return;
      if (remaining_ == 0) EndFrame(out);
      continue;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size() - i));
    std::string& into = IsControl(opcode_) ? control_ : message_;
    const size_t from = into.size();
    into.append(bytes.data() + i, take);
    for (size_t k = from; k < into.size(); ++k) {
      into[k] = static_cast<char>(into[k] ^ static_cast<char>(mask_[mask_offset_]));
      mask_offset_ = (mask_offset_ + 1) & 3;
    }
    i += take;
    remaining_ -= take;
    if (remaining_ == 0) EndFrame(out);
  }
}

}  // namespace chat::gateway
