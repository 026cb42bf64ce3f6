#include "env_config.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chat {

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

std::string EnvReader::String(const std::string& name, const std::string& fallback) {
  return lookup_(name).value_or(fallback);
}

int64_t EnvReader::Int(const std::string& name, int64_t fallback, int64_t min, int64_t max) {
  auto v = lookup_(name);
  if (!v) return fallback;
  int64_t out = 0;
  if (!absl::SimpleAtoi(*v, &out) || out < min || out > max) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat(name, "=", *v, ": expected an integer in [", min, ", ", max, "]"));
    }
    return fallback;
  }
  return out;
}

bool EnvReader::Bool(const std::string& name, bool fallback) {
  auto v = lookup_(name);
  if (!v) return fallback;
  std::string s = absl::AsciiStrToLower(*v);
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  if (status_.ok()) status_ = absl::InvalidArgumentError(absl::StrCat(name, "=", *v, ": expected a boolean"));
  return fallback;
}

absl::StatusOr<HostPort> ParseHostPort(const std::string& addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon + 1 == addr.size()) {
    return absl::InvalidArgumentError(absl::StrCat("address '", addr, "' is not host:port"));
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(addr.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("address '", addr, "' has a bad port"));
  }
  HostPort hp;
  hp.host = addr.substr(0, colon);
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  if (hp.host.empty()) hp.host = "0.0.0.0";
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

}  // namespace chat
