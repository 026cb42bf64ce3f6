#include "domain/proto_json_writer.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "chat/v1/frames.pb.h"
#include "gateway/random_proto.h"

namespace chat::gateway {
namespace {

using google::protobuf::Message;
using test_support::RandomFiller;

// protobuf's own printer with the options the gateway used before: the reference.
std::string ProtobufJson(const Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  std::string out;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &out, opts).ok());
  return out;
}

std::string OurJson(const Message& m) {
  std::string out;
  EXPECT_TRUE(AppendProtoJson(m, out));
  return out;
}

// JSON documents are compared as values: key order and escaping may differ, content may not.
google::protobuf::Value AsValue(const std::string& json) {
  google::protobuf::Value v;
  auto st = google::protobuf::util::JsonStringToMessage(json, &v);
  EXPECT_TRUE(st.ok()) << st << " in " << json;
  return v;
}

void ExpectSameJson(const Message& m) {
  const std::string ours = OurJson(m);
  const std::string theirs = ProtobufJson(m);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(AsValue(ours), AsValue(theirs)))
      << "ours:     " << ours << "\nprotobuf: " << theirs;
}

TEST(ProtoJsonWriter, WritesWhatProtobufsPrinterWritesForRandomServerFrames) {
  RandomFiller filler(20261201);
  for (int i = 0; i < 3000; ++i) {
    chat::v1::ServerFrame f;
    filler.Fill(f, 0);
    ExpectSameJson(f);
    if (HasFailure()) return;  // the first difference says enough
  }
}

TEST(ProtoJsonWriter, WritesEveryBodyOfServerFrameWithDefaults) {
  const auto* d = chat::v1::ServerFrame::descriptor();
  const auto* body = d->FindOneofByName("body");
  ASSERT_NE(body, nullptr);
  for (int i = 0; i < body->field_count(); ++i) {
    chat::v1::ServerFrame f;
    f.GetReflection()->MutableMessage(&f, body->field(i));  // an empty body: every field at its default
    ExpectSameJson(f);
  }
}

TEST(ProtoJsonWriter, WritesTheOtherMessagesOfTheSchema) {
  RandomFiller filler(7);
  for (int i = 0; i < 500; ++i) {
    chat::v1::RoomEvent e;
    filler.Fill(e, 0);
    ExpectSameJson(e);
    chat::v1::ControlEvent c;
    filler.Fill(c, 0);
    ExpectSameJson(c);
  }
}

TEST(ProtoJsonWriter, WritesCompactJsonInFieldOrder) {
  chat::v1::ServerFrame f;
  f.set_ref(2);
  auto* a = f.mutable_ack();
  a->set_room("general");
  a->set_seq(118);
  a->set_id("abc");
  a->mutable_ts()->set_seconds(1795341600);
  a->mutable_ts()->set_nanos(123000000);
  EXPECT_EQ(OurJson(f),
            R"({"ref":2,"ack":{"room":"general","seq":"118","id":"abc","ts":"2026-11-22T10:00:00.123Z",)"
            R"("duplicate":false}})");
}

TEST(ProtoJsonWriter, EscapesWhatJsonRequires) {
  chat::v1::ServerFrame f;
  f.mutable_error()->set_code("q\" b\\ n\n c\x01 d\x7f é");
  EXPECT_EQ(OurJson(f),
            R"({"error":{"code":"q\" b\\ n\n c\u0001 d\u007f é","message":"","retryAfterMs":0}})");
}

TEST(ProtoJsonWriter, WritesTimestampsAsProtobufDoes) {
  chat::v1::ServerFrame f;
  auto* ts = f.mutable_notice()->mutable_ts();
  for (int64_t s : {int64_t{0}, int64_t{-1}, int64_t{951782400} /* 2000-02-29 */, int64_t{-62135596800},
                    int64_t{253402300799}}) {
    for (int32_t n : {0, 1000000, 1000, 1, 999999999}) {
      ts->set_seconds(s);
      ts->set_nanos(n);
      ExpectSameJson(f);
    }
  }
}

}  // namespace
}  // namespace chat::gateway
