#pragma once
// Reading configuration from environment variables (12-factor), with defaults in code. Pure functions
// over an injectable lookup so tests need not touch the process environment.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace chat {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The process environment.
EnvLookup ProcessEnv();

class EnvReader {
 public:
  explicit EnvReader(EnvLookup lookup) : lookup_(std::move(lookup)) {}

  std::string String(const std::string& name, const std::string& fallback);
  int64_t Int(const std::string& name, int64_t fallback, int64_t min, int64_t max);
  bool Bool(const std::string& name, bool fallback);

  // First error met (a value that does not parse or is out of range), or OK.
  absl::Status status() const { return status_; }

 private:
  EnvLookup lookup_;
  absl::Status status_;
};

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

absl::StatusOr<HostPort> ParseHostPort(const std::string& addr);

}  // namespace chat
