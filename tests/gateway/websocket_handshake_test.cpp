#include "domain/websocket_handshake.h"

#include <gtest/gtest.h>

namespace chat::gateway {
namespace {

UpgradeHeaders Good() {
  UpgradeHeaders h;
  h.method = "GET";
  h.version = 11;
  h.upgrade = "websocket";
  h.connection = "keep-alive, Upgrade";
  h.key = "dGhlIHNhbXBsZSBub25jZQ==";
  h.websocket_version = "13";
  return h;
}

TEST(WebSocketHandshake, AcceptKeyOfTheRfcExample) {
  EXPECT_EQ(WebSocketAcceptFor("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  auto a = CheckUpgrade(Good());
  EXPECT_EQ(a.status, 101);
  EXPECT_EQ(a.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshake, RefusesWhatTheRfcRefuses) {
  auto h = Good();
  h.websocket_version = "8";
  EXPECT_EQ(CheckUpgrade(h).status, 426);
  h = Good();
  h.key = "";
  EXPECT_EQ(CheckUpgrade(h).status, 400);
  h.key = "c2hvcnQ=";  // 5 bytes, not 16
  EXPECT_EQ(CheckUpgrade(h).status, 400);
  h = Good();
  h.connection = "keep-alive";
  EXPECT_EQ(CheckUpgrade(h).status, 400);
  h = Good();
  h.upgrade = "h2c";
  EXPECT_EQ(CheckUpgrade(h).status, 400);
  h = Good();
  h.method = "POST";
  EXPECT_EQ(CheckUpgrade(h).status, 400);
}

TEST(WebSocketHandshake, AnswersWithTheSubprotocol) {
  EXPECT_EQ(SwitchingProtocolsResponse("abc=", "chat.v1"),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Server: chat-gateway\r\nSec-WebSocket-Accept: abc=\r\nSec-WebSocket-Protocol: chat.v1\r\n\r\n");
  EXPECT_EQ(SwitchingProtocolsResponse("abc=", "").find("Sec-WebSocket-Protocol"), std::string::npos);
}

}  // namespace
}  // namespace chat::gateway
