#include "domain/origin_policy.h"

namespace chat::gateway {
namespace {

// "http://host:port" -> "host:port"; empty if there is no scheme.
std::string_view Authority(std::string_view origin) {
  auto p = origin.find("://");
  if (p == std::string_view::npos) return {};
  return origin.substr(p + 3);
}

std::string_view HostOnly(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  return authority.substr(0, authority.find(':'));
}

}  // namespace

bool OriginPolicy::Allows(std::string_view origin, std::string_view host) const {
  if (origin.empty()) return true;
  if (!allowed_.empty()) {
    for (const auto& a : allowed_) {
      if (a == "*" || a == origin) return true;
    }
    return false;
  }
  std::string_view authority = Authority(origin);
  if (authority.empty()) return false;
  if (authority == host) return true;
  std::string_view h = HostOnly(authority);
  return h == "localhost" || h == "127.0.0.1" || h == "[::1]";
}

}  // namespace chat::gateway
