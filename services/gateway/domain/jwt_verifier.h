#pragma once
// HS256 JSON Web Tokens through libjwt: verifies client tokens (claims sub, exp, optional admin) and
// mints dev-login tokens. Thread-safe: immutable after construction.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace chat::gateway {

struct Identity {
  std::string user;
  bool admin = false;
  int64_t expires_at = 0;  // unix seconds
};

class JwtVerifier {
 public:
  enum class Algorithm { kHS256, kRS256, kES256 };

  // HS256 with a shared secret. clock_skew_seconds: how far past exp a token is still accepted.
  JwtVerifier(std::string secret, int64_t clock_skew_seconds);
  // Any algorithm: `key` is the secret for HS256, the PEM public key for RS256 and ES256.
  JwtVerifier(Algorithm algorithm, std::string key, int64_t clock_skew_seconds);

  // Unauthenticated for a bad signature, a wrong algorithm (alg none included), a missing or bad sub,
  // or a token expired at now_unix (beyond the skew) or not valid yet (nbf).
  absl::StatusOr<Identity> Verify(std::string_view token, int64_t now_unix) const;

  // A token for `user` valid for ttl_seconds from now_unix (HS256 only: dev login and tests).
  absl::StatusOr<std::string> Mint(const std::string& user, bool admin, int64_t now_unix,
                                   int64_t ttl_seconds) const;

 private:
  Algorithm algorithm_;
  std::string secret_;
  int64_t skew_;
};

}  // namespace chat::gateway
