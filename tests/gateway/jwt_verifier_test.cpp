#include "domain/jwt_verifier.h"

#include <gtest/gtest.h>

namespace chat::gateway {
namespace {

constexpr int64_t kNow = 1'800'000'000;
const std::string kSecret = "test-secret-0123456789";

// base64url without padding, for hand-made tokens.
std::string B64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(t[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(t[((val << 8) >> (bits + 8)) & 0x3F]);
  return out;
}

TEST(Jwt, MintedTokenVerifies) {
  JwtVerifier v(kSecret, 30);
  auto token = v.Mint("alice", false, kNow, 3600);
  ASSERT_TRUE(token.ok());
  auto id = v.Verify(*token, kNow + 10);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->user, "alice");
  EXPECT_FALSE(id->admin);
  EXPECT_EQ(id->expires_at, kNow + 3600);
  auto admin = v.Verify(*v.Mint("root", true, kNow, 60), kNow);
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(admin->admin);
}

TEST(Jwt, ExpiredBeyondSkewIsRefused) {
  JwtVerifier v(kSecret, 30);
  auto token = *v.Mint("alice", false, kNow, 60);
  EXPECT_TRUE(v.Verify(token, kNow + 60 + 29).ok());
  EXPECT_EQ(v.Verify(token, kNow + 60 + 31).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(Jwt, WrongKeyIsRefused) {
  JwtVerifier mine(kSecret, 0);
  JwtVerifier theirs("another-secret-0123456789", 0);
  EXPECT_FALSE(mine.Verify(*theirs.Mint("alice", false, kNow, 60), kNow).ok());
}

TEST(Jwt, AlgNoneAndGarbageAreRefused) {
  JwtVerifier v(kSecret, 0);
  std::string none =
      B64(R"({"alg":"none","typ":"JWT"})") + "." + B64(R"({"sub":"alice","exp":1900000000})") + ".";
  EXPECT_FALSE(v.Verify(none, kNow).ok());
  EXPECT_FALSE(v.Verify("", kNow).ok());
  EXPECT_FALSE(v.Verify("not.a.token", kNow).ok());
  EXPECT_FALSE(v.Verify(std::string(10000, 'a'), kNow).ok());
}

TEST(Jwt, TamperedPayloadIsRefused) {
  JwtVerifier v(kSecret, 0);
  std::string token = *v.Mint("alice", false, kNow, 60);
  auto dot1 = token.find('.');
  auto dot2 = token.find('.', dot1 + 1);
  std::string forged = token.substr(0, dot1 + 1) + B64(R"({"sub":"admin","exp":1900000000,"admin":true})") +
                       token.substr(dot2);
  EXPECT_FALSE(v.Verify(forged, kNow).ok());
}

TEST(Jwt, BadSubIsRefused) {
  JwtVerifier v(kSecret, 0);
  EXPECT_FALSE(v.Mint("with space", false, kNow, 60).ok());
}

}  // namespace
}  // namespace chat::gateway
