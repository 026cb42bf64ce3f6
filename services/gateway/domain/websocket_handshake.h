#pragma once
// The server side of the WebSocket opening handshake (RFC 6455 4.2): checks an upgrade request's
// headers and writes the 101 answer, or says which HTTP error to answer instead.

#include <string>
#include <string_view>

namespace chat::gateway {

struct UpgradeHeaders {
  std::string_view method;  // "GET"
  unsigned version = 11;    // HTTP/1.1 -> 11
  std::string_view upgrade;
  std::string_view connection;
  std::string_view key;                // Sec-WebSocket-Key
  std::string_view websocket_version;  // Sec-WebSocket-Version
};

struct HandshakeAnswer {
  int status = 101;    // 101, or 400 (bad request) / 426 (unsupported version)
  std::string reason;  // for an error: what was wrong
  std::string accept;  // for 101: Sec-WebSocket-Accept
};

HandshakeAnswer CheckUpgrade(const UpgradeHeaders& h);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
std::string WebSocketAcceptFor(std::string_view key);

// The whole 101 response, with `subprotocol` and `extensions` when not empty.
std::string SwitchingProtocolsResponse(std::string_view accept, std::string_view subprotocol,
                                       std::string_view extensions = {});

}  // namespace chat::gateway
