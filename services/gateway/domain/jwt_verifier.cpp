#include "domain/jwt_verifier.h"

#include <errno.h>
#include <jwt.h>

#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/text_rules.h"

namespace chat::gateway {
namespace {

struct JwtDeleter {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtDeleter>;

}  // namespace

JwtVerifier::JwtVerifier(std::string secret, int64_t clock_skew_seconds)
    : JwtVerifier(Algorithm::kHS256, std::move(secret), clock_skew_seconds) {}

JwtVerifier::JwtVerifier(Algorithm algorithm, std::string key, int64_t clock_skew_seconds)
    : algorithm_(algorithm), secret_(std::move(key)), skew_(clock_skew_seconds) {}

absl::StatusOr<Identity> JwtVerifier::Verify(std::string_view token, int64_t now_unix) const {
  if (token.empty()) return absl::UnauthenticatedError("missing token");
  if (token.size() > 8192) return absl::UnauthenticatedError("token too long");
  std::string t(token);
  jwt_t* raw = nullptr;
  // libjwt checks the signature with the key; it would accept alg "none" only without a key, and we
  // always pass one, then insist on HS256 below as well.
  int rc = jwt_decode(&raw, t.c_str(), reinterpret_cast<const unsigned char*>(secret_.data()),
                      static_cast<int>(secret_.size()));
  JwtPtr jwt(raw);
  if (rc != 0 || !jwt) return absl::UnauthenticatedError("invalid token");
  // The configured algorithm only: a token signed HS256 with an RS256 public key as the secret (the
  // classic confusion attack) is refused here.
  jwt_alg_t expected = algorithm_ == Algorithm::kHS256   ? JWT_ALG_HS256
                       : algorithm_ == Algorithm::kRS256 ? JWT_ALG_RS256
                                                         : JWT_ALG_ES256;
  if (jwt_get_alg(jwt.get()) != expected)
    return absl::UnauthenticatedError("token algorithm is not accepted");

  Identity id;
  const char* sub = jwt_get_grant(jwt.get(), "sub");
  if (sub == nullptr) return absl::UnauthenticatedError("token has no sub");
  id.user = sub;
  if (!ValidateUserId(id.user).ok()) return absl::UnauthenticatedError("token sub is not a valid user id");

  errno = 0;
  long exp = jwt_get_grant_int(jwt.get(), "exp");
  if (errno == ENOENT || exp <= 0) return absl::UnauthenticatedError("token has no exp");
  if (now_unix > exp + skew_) return absl::UnauthenticatedError("token expired");
  id.expires_at = exp;

  errno = 0;
  long nbf = jwt_get_grant_int(jwt.get(), "nbf");
  if (errno != ENOENT && nbf > 0 && now_unix + skew_ < nbf)
    return absl::UnauthenticatedError("token not valid yet");

  errno = 0;
  int admin = jwt_get_grant_bool(jwt.get(), "admin");
  id.admin = errno != ENOENT && admin == 1;
  return id;
}

absl::StatusOr<std::string> JwtVerifier::Mint(const std::string& user, bool admin, int64_t now_unix,
                                              int64_t ttl_seconds) const {
  if (auto st = ValidateUserId(user); !st.ok()) return st;
  if (algorithm_ != Algorithm::kHS256) return absl::FailedPreconditionError("minting needs HS256");
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return absl::InternalError("jwt_new failed");
  JwtPtr jwt(raw);
  if (jwt_add_grant(jwt.get(), "sub", user.c_str()) != 0 ||
      jwt_add_grant_int(jwt.get(), "iat", static_cast<long>(now_unix)) != 0 ||
      jwt_add_grant_int(jwt.get(), "exp", static_cast<long>(now_unix + ttl_seconds)) != 0 ||
      (admin && jwt_add_grant_bool(jwt.get(), "admin", 1) != 0) ||
      jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret_.data()),
                  static_cast<int>(secret_.size())) != 0) {
    return absl::InternalError("cannot build token");
  }
  char* encoded = jwt_encode_str(jwt.get());
  if (encoded == nullptr) return absl::InternalError("cannot encode token");
  std::string out(encoded);
  free(encoded);  // libjwt 1.10 allocates with malloc and has no jwt_free_str
  return out;
}

}  // namespace chat::gateway
