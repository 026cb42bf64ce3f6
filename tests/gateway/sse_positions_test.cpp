#include "domain/sse_positions.h"

#include <gtest/gtest.h>

#include "domain/frame_codec.h"

namespace chat::gateway {
namespace {

std::string Message(const std::string& room, int64_t seq, const std::string& text) {
  chat::v1::ServerFrame f;
  f.mutable_message()->set_room(room);
  f.mutable_message()->set_seq(seq);
  f.mutable_message()->set_text(text);
  return EncodeServerFrame(f);
}

TEST(SsePositions, FollowsMessagesAndJoinsAsTheCodecWritesThem) {
  SsePositions p;
  chat::v1::ServerFrame joined;
  joined.set_ref(3);
  joined.mutable_joined()->set_room("general");
  joined.mutable_joined()->set_last_seq(7);
  EXPECT_TRUE(p.Observe(EncodeServerFrame(joined)));
  EXPECT_EQ(p.Id(), "general=7");

  chat::v1::ServerFrame resumed;
  resumed.mutable_resumed()->set_room("dm:ab12");
  resumed.mutable_resumed()->set_last_seq(2);
  EXPECT_TRUE(p.Observe(EncodeServerFrame(resumed)));

  // A text that looks like a field does not fool it: room and seq come first.
  EXPECT_TRUE(p.Observe(Message("general", 8, R"(x","seq":"999)")));
  EXPECT_EQ(p.Id(), "dm:ab12=2,general=8");
  EXPECT_FALSE(p.Observe(Message("general", 8, "again"))) << "a duplicate does not move";
  EXPECT_FALSE(p.Observe(Message("general", 5, "older")));

  chat::v1::ServerFrame typing;
  typing.mutable_typing()->set_room("general");
  EXPECT_FALSE(p.Observe(EncodeServerFrame(typing)));
  p.Forget("general");
  EXPECT_EQ(p.Id(), "dm:ab12=2");
}

TEST(SsePositions, ParsesLastEventIdSkippingJunk) {
  auto got = SsePositions::Parse("general=8,dm:ab12=2,bad room=1,x=-3,y=abc,=4,z");
  EXPECT_EQ(got, (std::map<std::string, int64_t>{{"general", 8}, {"dm:ab12", 2}}));
  EXPECT_TRUE(SsePositions::Parse("").empty());
}

TEST(SseEvent, WritesIdAndEventLines) {
  EXPECT_EQ(SseEvent("{}"), "data: {}\n\n");
  EXPECT_EQ(SseEvent("{}", "a=1"), "id: a=1\ndata: {}\n\n");
  EXPECT_EQ(SseEvent("{}", "", "close"), "event: close\ndata: {}\n\n");
}

}  // namespace
}  // namespace chat::gateway
