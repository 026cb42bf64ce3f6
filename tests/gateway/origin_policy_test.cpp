#include "domain/origin_policy.h"

#include <gtest/gtest.h>

#include "transport/http_session.h"

namespace chat::gateway {
namespace {

TEST(OriginPolicy, DefaultAllowsOwnOriginAndLocalhost) {
  OriginPolicy p({});
  EXPECT_TRUE(p.Allows("", "chat.example.com"));  // not a browser
  EXPECT_TRUE(p.Allows("https://chat.example.com", "chat.example.com"));
  EXPECT_TRUE(p.Allows("http://localhost:5173", "chat.example.com"));
  EXPECT_TRUE(p.Allows("http://127.0.0.1:8080", "10.0.0.5:8080"));
  EXPECT_FALSE(p.Allows("https://evil.example", "chat.example.com"));
  EXPECT_FALSE(p.Allows("https://localhost.evil.example", "chat.example.com"));
  EXPECT_FALSE(p.Allows("null", "chat.example.com"));
}

TEST(OriginPolicy, ListIsExact) {
  OriginPolicy p({"https://app.example.com"});
  EXPECT_TRUE(p.Allows("https://app.example.com", "gw.internal"));
  EXPECT_FALSE(p.Allows("http://app.example.com", "gw.internal"));
  EXPECT_FALSE(p.Allows("http://localhost:3000", "gw.internal"));
  EXPECT_TRUE(OriginPolicy({"*"}).Allows("https://anything", "x"));
}

TEST(Subprotocols, TokenFromABearerEntryAndChatSelected) {
  auto o = ParseSubprotocols("chat.v1, bearer.eyJ.abc.def");
  EXPECT_EQ(o.token, "eyJ.abc.def");
  EXPECT_EQ(o.selected, "chat.v1");
  auto only_token = ParseSubprotocols("bearer.tok");
  EXPECT_EQ(only_token.token, "tok");
  EXPECT_EQ(only_token.selected, "");  // never echo the token
  EXPECT_EQ(ParseSubprotocols("").token, "");
}

TEST(Token, QueryThenBearer) {
  EXPECT_EQ(ExtractToken("/ws?x=1&token=abc%2Ed", ""), "abc.d");
  EXPECT_EQ(ExtractToken("/ws", "Bearer xyz"), "xyz");
  EXPECT_EQ(ExtractToken("/ws", "Basic xyz"), "");
}

}  // namespace
}  // namespace chat::gateway
