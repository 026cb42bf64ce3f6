#include "common/text_rules.h"

#include <gtest/gtest.h>

namespace chat {
namespace {

TEST(Utf8, AcceptsAsciiAndMultibyte) {
  EXPECT_TRUE(IsValidUtf8("hello"));
  EXPECT_TRUE(IsValidUtf8("héllo wörld"));
  EXPECT_TRUE(IsValidUtf8("日本語"));
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));  // emoji
  EXPECT_TRUE(IsValidUtf8(""));
}

TEST(Utf8, RefusesBrokenSequences) {
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("ok\x80"));  // stray continuation
}

TEST(RoomName, Rules) {
  EXPECT_TRUE(ValidateRoomName("general").ok());
  EXPECT_TRUE(ValidateRoomName("team-1.dev:ops_x").ok());
  EXPECT_FALSE(ValidateRoomName("").ok());
  EXPECT_FALSE(ValidateRoomName(std::string(65, 'a')).ok());
  EXPECT_FALSE(ValidateRoomName("with space").ok());
  EXPECT_FALSE(ValidateRoomName("a/b").ok());
  EXPECT_EQ(ValidateRoomName("é").code(), absl::StatusCode::kInvalidArgument);
}

TEST(UserId, Rules) {
  EXPECT_TRUE(ValidateUserId("alice").ok());
  EXPECT_TRUE(ValidateUserId("user@example.com").ok());
  EXPECT_FALSE(ValidateUserId("").ok());
  EXPECT_FALSE(ValidateUserId("a b").ok());
  EXPECT_FALSE(ValidateUserId("a\"b").ok());
  EXPECT_FALSE(ValidateUserId("a/b").ok());
  EXPECT_TRUE(ValidateClientId("6f1c/abc").ok());
  EXPECT_FALSE(ValidateClientId("").ok());
}

TEST(Channels, RoomChannelName) { EXPECT_EQ(RoomChannel("general"), "chat:room:general"); }

}  // namespace
}  // namespace chat

namespace chat {
namespace {

TEST(Utf8, SanitizeReplacesOnlyBrokenBytes) {
  EXPECT_EQ(SanitizeUtf8("héllo"), "héllo");
  EXPECT_EQ(SanitizeUtf8("a\xFF"
                         "b"),
            "a?b");
  EXPECT_EQ(SanitizeUtf8("\xC3"), "?");
  EXPECT_EQ(SanitizeUtf8("ok\xE2\x82"), "ok??");
  EXPECT_TRUE(IsValidUtf8(SanitizeUtf8("\xED\xA0\x80 x \xF0\x9F\x98\x80")));
}

}  // namespace
}  // namespace chat
