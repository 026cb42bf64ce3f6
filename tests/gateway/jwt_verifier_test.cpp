#include "domain/jwt_verifier.h"

#include <gtest/gtest.h>
#include <jwt.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

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

std::string ReadFile(const std::string& name) {
  std::ifstream in(std::string(CHAT_TESTDATA_DIR) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Signs with libjwt directly, as an external token issuer would.
std::string Sign(jwt_alg_t alg, const std::string& key, const std::string& sub, long exp) {
  jwt_t* j = nullptr;
  jwt_new(&j);
  jwt_add_grant(j, "sub", sub.c_str());
  jwt_add_grant_int(j, "exp", exp);
  jwt_set_alg(j, alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size()));
  char* s = jwt_encode_str(j);
  std::string out = s ? s : "";
  free(s);
  jwt_free(j);
  return out;
}

TEST(Jwt, Rs256AndEs256WithPublicKeys) {
  std::string rs_pub = ReadFile("rs256_public.pem"), rs_priv = ReadFile("rs256_private.pem");
  std::string es_pub = ReadFile("es256_public.pem"), es_priv = ReadFile("es256_private.pem");
  ASSERT_FALSE(rs_pub.empty());
  JwtVerifier rs(JwtVerifier::Algorithm::kRS256, rs_pub, 0);
  JwtVerifier es(JwtVerifier::Algorithm::kES256, es_pub, 0);
  auto ok = rs.Verify(Sign(JWT_ALG_RS256, rs_priv, "alice", kNow + 60), kNow);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->user, "alice");
  EXPECT_TRUE(es.Verify(Sign(JWT_ALG_ES256, es_priv, "bob", kNow + 60), kNow).ok());
  // Wrong key, wrong algorithm, expired.
  EXPECT_FALSE(rs.Verify(Sign(JWT_ALG_ES256, es_priv, "bob", kNow + 60), kNow).ok());
  EXPECT_FALSE(es.Verify(Sign(JWT_ALG_RS256, rs_priv, "bob", kNow + 60), kNow).ok());
  EXPECT_FALSE(rs.Verify(Sign(JWT_ALG_RS256, rs_priv, "alice", kNow - 1), kNow).ok());
  // The confusion attack: HS256 signed with the RS256 public key as the secret.
  EXPECT_FALSE(rs.Verify(Sign(JWT_ALG_HS256, rs_pub, "admin", kNow + 60), kNow).ok());
  EXPECT_FALSE(rs.Mint("alice", false, kNow, 60).ok());  // no minting without the secret
}

TEST(Jwt, NotYetValidIsRefused) {
  JwtVerifier v(kSecret, 5);
  jwt_t* j = nullptr;
  jwt_new(&j);
  jwt_add_grant(j, "sub", "alice");
  jwt_add_grant_int(j, "exp", kNow + 600);
  jwt_add_grant_int(j, "nbf", kNow + 60);
  jwt_set_alg(j, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(kSecret.data()),
              static_cast<int>(kSecret.size()));
  char* s = jwt_encode_str(j);
  std::string token = s;
  free(s);
  jwt_free(j);
  EXPECT_FALSE(v.Verify(token, kNow).ok());
  EXPECT_TRUE(v.Verify(token, kNow + 58).ok());  // within the skew
}

TEST(Jwt, BadSubIsRefused) {
  JwtVerifier v(kSecret, 0);
  EXPECT_FALSE(v.Mint("with space", false, kNow, 60).ok());
}

}  // namespace
}  // namespace chat::gateway
