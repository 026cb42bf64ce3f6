#pragma once
// Which browser origins may open WebSockets. Immutable after construction; thread-safe.

#include <string>
#include <string_view>
#include <vector>

namespace chat::gateway {

class OriginPolicy {
 public:
  // `allowed`: exact origins ("https://chat.example.com"), or "*" for any. Empty list: the gateway's own
  // origin (the request's Host) and localhost/127.0.0.1 on any port, for development.
  explicit OriginPolicy(std::vector<std::string> allowed) : allowed_(std::move(allowed)) {}

  // Requests without an Origin header (not from a browser) are allowed: browsers always send one.
  bool Allows(std::string_view origin, std::string_view host) const;

 private:
  std::vector<std::string> allowed_;
};

}  // namespace chat::gateway
