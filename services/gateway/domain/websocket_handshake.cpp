#include "domain/websocket_handshake.h"

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace chat::gateway {
namespace {

// True when the comma-separated header value holds `token` (case-insensitive).
bool HasToken(std::string_view value, std::string_view token) {
  for (absl::string_view part : absl::StrSplit(absl::string_view(value.data(), value.size()), ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(part),
                               absl::string_view(token.data(), token.size())))
      return true;
  }
  return false;
}

}  // namespace

HandshakeAnswer CheckUpgrade(const UpgradeHeaders& h) {
  HandshakeAnswer a;
  auto fail = [&](int status, std::string why) {
    a.status = status;
    a.reason = std::move(why);
    return a;
  };
  if (h.method != "GET") return fail(400, "WebSocket upgrade needs GET");
  if (h.version < 11) return fail(400, "WebSocket upgrade needs HTTP/1.1");
  if (!HasToken(h.connection, "upgrade")) return fail(400, "no Connection: upgrade");
  if (!HasToken(h.upgrade, "websocket")) return fail(400, "no Upgrade: websocket");
  if (h.websocket_version != "13") return fail(426, "unsupported Sec-WebSocket-Version");
  std::string raw;
  if (!absl::Base64Unescape(absl::string_view(h.key.data(), h.key.size()), &raw) || raw.size() != 16)
    return fail(400, "bad Sec-WebSocket-Key");
  a.accept = WebSocketAcceptFor(h.key);
  return a;
}

std::string WebSocketAcceptFor(std::string_view key) {
  std::string input(key);
  input += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string SwitchingProtocolsResponse(std::string_view accept, std::string_view subprotocol,
                                       std::string_view extensions) {
  std::string r =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Server: chat-gateway\r\nSec-WebSocket-Accept: ";
  r += accept;
  r += "\r\n";
  if (!subprotocol.empty()) {
    r += "Sec-WebSocket-Protocol: ";
    r += subprotocol;
    r += "\r\n";
  }
  if (!extensions.empty()) {
    r += "Sec-WebSocket-Extensions: ";
    r += extensions;
    r += "\r\n";
  }
  r += "\r\n";
  return r;
}

}  // namespace chat::gateway
