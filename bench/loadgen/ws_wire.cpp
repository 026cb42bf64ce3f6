#include "ws_wire.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace chat::loadgen::ws {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

std::string Base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string UpgradeRequest(std::string_view host, std::string_view target, std::string_view key,
                           std::string_view subprotocol, bool offer_deflate) {
  std::string r;
  r.reserve(256 + target.size() + subprotocol.size());
  r.append("GET ").append(target).append(" HTTP/1.1\r\nHost: ").append(host);
  r.append(
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
  r.append(key);
  if (!subprotocol.empty()) r.append("\r\nSec-WebSocket-Protocol: ").append(subprotocol);
  if (offer_deflate) r.append("\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits");
  r.append("\r\nUser-Agent: chat-loadgen\r\n\r\n");
  return r;
}

std::string AcceptFor(std::string_view key) {
  std::string in(key);
  in.append(kGuid);
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest.data());
  return Base64(digest.data(), digest.size());
}

std::string KeyFrom(uint64_t seed) {
  std::array<unsigned char, 16> bytes{};
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& b : bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<unsigned char>(x >> 24);
  }
  return Base64(bytes.data(), bytes.size());
}

std::optional<UpgradeReply> ParseUpgradeReply(std::string_view in) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  UpgradeReply reply;
  reply.size = end + 4;
  std::string_view head = in.substr(0, end + 2);  // every line ends with \r\n
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 101 Switching Protocols"
  if (status_line.size() >= 12 && status_line.substr(0, 5) == "HTTP/" && status_line[8] == ' ') {
    int status = 0;
    for (size_t i = 9; i < 12; ++i) {
      char c = status_line[i];
      if (c < '0' || c > '9') {
        status = 0;
        break;
      }
      status = status * 10 + (c - '0');
    }
    reply.status = status;
  }
  for (size_t pos = eol + 2; pos < head.size();) {
    size_t next = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = Trim(line.substr(colon + 1));
    if (IEquals(name, "Sec-WebSocket-Accept")) {
      reply.accept = value;
    } else if (IEquals(name, "Sec-WebSocket-Extensions") && reply.extensions.empty()) {
      reply.extensions = value;
    }
  }
  return reply;
}

bool AcceptsDeflate(std::string_view extensions) {
  // The first extension, up to its parameters: "permessage-deflate; server_no_context_takeover; ..."
  std::string_view first = extensions.substr(0, extensions.find(','));
  return IEquals(Trim(first.substr(0, first.find(';'))), "permessage-deflate");
}

void AppendClientFrame(std::string& out, uint8_t opcode, std::string_view payload, uint32_t mask) {
  const size_t n = payload.size();
  out.push_back(static_cast<char>(0x80 | opcode));
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((uint64_t{n} >> shift) & 0xff));
  }
  const std::array<char, 4> key{static_cast<char>(mask >> 24), static_cast<char>(mask >> 16),
                                static_cast<char>(mask >> 8), static_cast<char>(mask)};
  out.append(key.data(), key.size());
  size_t at = out.size();
  out.append(payload);
  for (size_t i = 0; i < n; ++i) out[at + i] = static_cast<char>(out[at + i] ^ key[i & 3]);
}

Parse ParseServerFrame(std::string_view in, uint64_t max_payload, Frame& frame, size_t& used,
                       std::string& why) {
  if (in.size() < 2) return Parse::kNeedMore;
  const auto b0 = static_cast<uint8_t>(in[0]);
  const auto b1 = static_cast<uint8_t>(in[1]);
  if (b1 & 0x80) {
    why = "masked frame from the server";
    return Parse::kBad;
  }
  if (b0 & 0x30) {
    why = "RSV2/RSV3 set";
    return Parse::kBad;
  }
  const uint8_t opcode = b0 & 0x0f;
  const bool fin = (b0 & 0x80) != 0;
  const bool control = (opcode & 0x8) != 0;
  if ((opcode > kBinary && opcode < kClose) || opcode > kPong) {
    why = "unknown opcode " + std::to_string(opcode);
    return Parse::kBad;
  }
  size_t header = 2;
  uint64_t length = b1 & 0x7f;
  if (length == 126) {
    if (in.size() < 4) return Parse::kNeedMore;
    length = (uint64_t{static_cast<uint8_t>(in[2])} << 8) | static_cast<uint8_t>(in[3]);
    header = 4;
  } else if (length == 127) {
    if (in.size() < 10) return Parse::kNeedMore;
    length = 0;
    for (size_t i = 2; i < 10; ++i) length = (length << 8) | static_cast<uint8_t>(in[i]);
    header = 10;
  }
  if (control && (!fin || length > 125)) {
    why = "fragmented or long control frame";
    return Parse::kBad;
  }
  if (length > max_payload) {
    why = "frame of " + std::to_string(length) + " bytes";
    return Parse::kBad;
  }
  if (in.size() - header < length) return Parse::kNeedMore;
  frame.opcode = opcode;
  frame.fin = fin;
  frame.compressed = (b0 & 0x40) != 0;
  frame.payload = in.substr(header, static_cast<size_t>(length));
  used = header + static_cast<size_t>(length);
  return Parse::kFrame;
}

void MessageAssembler::EnableDeflate() {
  deflate_ = true;
  // A 32 KiB window decodes what any smaller window made; and messages a server compressed without
  // context takeover are still one valid raw deflate stream (each ends on a flushed, non-final
  // block), so neither negotiated parameter needs handling here.
  inflater_.emplace();
  inflater_->reset(15);
}

MessageAssembler::Step MessageAssembler::Add(const Frame& frame, std::string& why) {
  if (frame.opcode == kContinuation) {
    if (!in_message_) {
      why = "continuation frame without a message";
      return Step::kBad;
    }
  } else {
    if (in_message_) {
      why = "new message inside a fragmented one";
      return Step::kBad;
    }
    if (frame.compressed && !deflate_) {
      why = "RSV1 set without permessage-deflate";
      return Step::kBad;
    }
    text_ = frame.opcode == kText;
    compressed_ = frame.compressed;
    if (frame.fin && !compressed_) {
      view_ = frame.payload;  // the common case: no copy
      return Step::kMessage;
    }
    parts_.clear();
  }
  if (parts_.size() + frame.payload.size() > max_message_) {
    why = "message over " + std::to_string(max_message_) + " bytes";
    return Step::kBad;
  }
  parts_.append(frame.payload);
  in_message_ = !frame.fin;
  if (in_message_) return Step::kPending;
  if (compressed_) {
    if (!Inflate(parts_, why)) return Step::kBad;
    view_ = message_;
  } else {
    message_.swap(parts_);
    view_ = message_;
  }
  return Step::kMessage;
}

bool MessageAssembler::Inflate(std::string_view compressed, std::string& why) {
  // RFC 7692 7.2.2: the sender removed the final empty stored block's 00 00 ff ff; append it back.
  std::string in(compressed);
  in.append("\x00\x00\xff\xff", 4);
  message_.clear();
  boost::beast::zlib::z_params zs;
  zs.next_in = in.data();
  zs.avail_in = in.size();
  for (;;) {
    const size_t have = message_.size();
    const size_t room = std::max<size_t>(4096, in.size() * 4);
    message_.resize(have + room);
    zs.next_out = message_.data() + have;
    zs.avail_out = room;
    boost::beast::error_code ec;
    inflater_->write(zs, boost::beast::zlib::Flush::sync, ec);
    message_.resize(have + room - zs.avail_out);
    if (ec && ec != boost::beast::zlib::error::need_buffers) {
      why = "inflate: " + ec.message();
      return false;
    }
    if (message_.size() > max_message_) {
      why = "message over " + std::to_string(max_message_) + " bytes";
      return false;
    }
    if (zs.avail_in == 0 && zs.avail_out > 0) return true;
    if (ec == boost::beast::zlib::error::need_buffers && zs.avail_out > 0) {
      why = "inflate: truncated data";
      return false;
    }
  }
}

}  // namespace chat::loadgen::ws
