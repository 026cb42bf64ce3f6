#pragma once
// Reading a request target's query string (`a=1&b=x%20y`), for the HTTP endpoints.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chat::gateway {

// %XX and '+' decoded.
std::string UrlDecode(std::string_view s);
// One query parameter, decoded; nullopt when absent (the first when repeated).
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);
// Every value of a repeated query parameter, in order (`room=a&room=b`).
std::vector<std::string> QueryParams(std::string_view query, std::string_view name);

}  // namespace chat::gateway
