#include "domain/frame_codec.h"

#include <gtest/gtest.h>

namespace chat::gateway {
namespace {

TEST(FrameCodec, ParsesEveryClientFrameOfDesign) {
  EXPECT_TRUE(ParseClientFrame(R"({"ref":1,"join":{"room":"general"}})").frame->has_join());
  auto send = ParseClientFrame(R"({"ref":2,"send":{"room":"general","clientId":"6f1c","text":"hello"}})");
  ASSERT_TRUE(send.frame.ok());
  EXPECT_EQ(send.frame->send().client_id(), "6f1c");
  EXPECT_EQ(send.ref, 2u);
  auto hist = ParseClientFrame(R"({"ref":3,"history":{"room":"general","beforeSeq":"120","limit":50}})");
  ASSERT_TRUE(hist.frame.ok());
  EXPECT_EQ(hist.frame->history().before_seq(), 120);
  // int64 as a number is accepted too.
  EXPECT_EQ(ParseClientFrame(R"({"resume":{"room":"g","afterSeq":117}})").frame->resume().after_seq(), 117);
  EXPECT_TRUE(ParseClientFrame(R"({"typing":{"room":"general","active":true}})").frame->typing().active());
  EXPECT_TRUE(ParseClientFrame(R"({"ref":5,"openDm":{"user":"bob"}})").frame->has_open_dm());
  EXPECT_TRUE(ParseClientFrame(R"({"ref":7,"ping":{}})").frame->has_ping());
  EXPECT_FALSE(ParseClientFrame(R"({"ping":{}})").ref.has_value());
}

TEST(FrameCodec, IgnoresUnknownFields) {
  auto p = ParseClientFrame(R"({"ref":1,"futureField":{"x":1},"join":{"room":"general","extra":true}})");
  ASSERT_TRUE(p.frame.ok()) << p.frame.status();
  EXPECT_EQ(p.frame->join().room(), "general");
}

TEST(FrameCodec, RefusesBadFramesButKeepsTheRef) {
  auto none = ParseClientFrame(R"({"ref":5})");
  EXPECT_EQ(none.frame.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(none.ref, 5u);
  auto two = ParseClientFrame(R"({"ref":6,"ping":{},"join":{"room":"a"}})");
  EXPECT_EQ(two.frame.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(two.ref, 6u);
  auto wrong_type = ParseClientFrame(R"({"ref":8,"join":{"room":42}})");
  EXPECT_FALSE(wrong_type.frame.ok());
  EXPECT_EQ(wrong_type.ref, 8u);
  auto malformed = ParseClientFrame(R"({"ref":9,"join":)");
  EXPECT_FALSE(malformed.frame.ok());
  EXPECT_FALSE(malformed.ref.has_value());
  EXPECT_FALSE(ParseClientFrame("").frame.ok());
  EXPECT_FALSE(ParseClientFrame("[1,2]").frame.ok());
  EXPECT_FALSE(ParseClientFrame(R"({"ref":-1,"ping":{}})").frame.ok());
}

TEST(FrameCodec, EncodesServerFramesInProto3Json) {
  chat::v1::ServerFrame f;
  f.set_ref(2);
  auto* a = f.mutable_ack();
  a->set_room("general");
  a->set_seq(118);
  a->set_id("abc");
  a->mutable_ts()->set_seconds(1795341600);
  a->mutable_ts()->set_nanos(123000000);
  // Every field is written (false too), in field-number order.
  EXPECT_EQ(EncodeServerFrame(f), R"({"ref":2,"ack":{"room":"general","seq":"118","id":"abc",)"
                                  R"("ts":"2026-11-22T10:00:00.123Z","duplicate":false}})");
  chat::v1::ServerFrame push;
  push.mutable_presence()->set_user("bob");
  EXPECT_EQ(EncodeServerFrame(push), R"({"presence":{"room":"","user":"bob","online":false}})");
}

TEST(FrameCodec, ErrorFrame) {
  EXPECT_EQ(EncodeServerFrame(ErrorFrame(2, "rate_limited", "slow down", 400)),
            R"({"ref":2,"error":{"code":"rate_limited","message":"slow down","retryAfterMs":400}})");
  EXPECT_EQ(EncodeServerFrame(ErrorFrame(std::nullopt, "bad_request", "x")),
            R"({"error":{"code":"bad_request","message":"x","retryAfterMs":0}})");
}

}  // namespace
}  // namespace chat::gateway
