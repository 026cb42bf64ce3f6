#include "common/log.h"

#include <gtest/gtest.h>

#include "common/json_string.h"

namespace chat::log {
namespace {

TEST(Log, OneJsonObjectWithFields) {
  std::string line = FormatLine("gateway", Level::kInfo, "connection opened",
                                {{"conn", "c-1"}, {"n", 3}, {"ok", true}}, 1'700'000'000'123'456);
  EXPECT_EQ(line,
            "{\"ts\":\"2023-11-14T22:13:20.123456Z\",\"level\":\"info\",\"service\":\"gateway\","
            "\"msg\":\"connection opened\",\"conn\":\"c-1\",\"n\":3,\"ok\":true}");
}

TEST(Log, EscapesQuotesNewlinesAndControls) {
  std::string s;
  chat::AppendJsonString(s, "a\"b\\c\nd\x01");
  EXPECT_EQ(s, "\"a\\\"b\\\\c\\nd\\u0001\"");
}

}  // namespace
}  // namespace chat::log
