#include "domain/slash_command.h"

#include <gtest/gtest.h>

namespace chat::gateway {
namespace {

SlashCommand Parse(std::string_view text) {
  auto c = ParseSlashCommand(text);
  EXPECT_TRUE(c.has_value()) << text;
  EXPECT_TRUE(c && c->ok()) << text;
  return c && c->ok() ? **c : SlashCommand{};
}

TEST(SlashCommand, Commands) {
  EXPECT_EQ(Parse("/kick bob").user, "bob");
  EXPECT_EQ(Parse("/kick bob").kind, SlashCommand::Kind::kKick);
  EXPECT_EQ(Parse("/mute bob").seconds, 0);
  EXPECT_EQ(Parse("/mute bob 90").seconds, 90);
  EXPECT_EQ(Parse("/unmute bob").kind, SlashCommand::Kind::kUnmute);
  EXPECT_EQ(Parse("/clear").kind, SlashCommand::Kind::kClear);
  EXPECT_EQ(Parse("/stats").kind, SlashCommand::Kind::kStats);
  EXPECT_EQ(Parse("/broadcast the  server restarts at 5").text, "the  server restarts at 5");
}

TEST(SlashCommand, OrdinaryTextIsNotACommand) {
  EXPECT_FALSE(ParseSlashCommand("hello").has_value());
  EXPECT_FALSE(ParseSlashCommand("/shrug").has_value());
  EXPECT_FALSE(ParseSlashCommand("").has_value());
  EXPECT_FALSE(ParseSlashCommand(" /kick bob").has_value());
}

TEST(SlashCommand, BadArgumentsAreRefused) {
  for (const char* bad : {"/kick", "/kick a b", "/mute", "/mute bob -5", "/mute bob soon", "/clear now",
                          "/broadcast", "/kick bad|name", "/stats please"}) {
    auto c = ParseSlashCommand(bad);
    ASSERT_TRUE(c.has_value()) << bad;
    EXPECT_EQ(c->status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace chat::gateway
