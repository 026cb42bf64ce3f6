#pragma once
// A JSON string literal: quotes, backslashes and control characters escaped, everything else (UTF-8
// included) copied as it is, in runs. Used by the JSON log lines and by the gateway's frame writer.

#include <string>
#include <string_view>

namespace chat {

void AppendJsonString(std::string& out, std::string_view s);

}  // namespace chat
