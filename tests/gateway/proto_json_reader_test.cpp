#include "domain/proto_json_reader.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "chat/v1/frames.pb.h"
#include "gateway/random_proto.h"

namespace chat::gateway {
namespace {

using google::protobuf::util::MessageDifferencer;
using test_support::RandomFiller;

// What protobuf's parser makes of `json` (with the gateway's options), if it accepts it.
bool ProtobufRead(const std::string& json, chat::v1::ClientFrame& out) {
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  return google::protobuf::util::JsonStringToMessage(json, &out, opts).ok();
}

// The fast reader's promise: whatever it accepts, protobuf's parser reads to the same message.
void ExpectAgreesWithProtobuf(const std::string& json) {
  chat::v1::ClientFrame ours;
  if (!TryReadProtoJson(json, ours)) return;
  chat::v1::ClientFrame theirs;
  ASSERT_TRUE(ProtobufRead(json, theirs)) << "accepted what protobuf refuses: " << json;
  EXPECT_TRUE(MessageDifferencer::Equals(ours, theirs))
      << "input: " << json << "\nours:     " << ours.ShortDebugString()
      << "\nprotobuf: " << theirs.ShortDebugString();
}

TEST(ProtoJsonReader, ReadsWhatClientsSend) {
  for (
      const char* json : {
          R"({"ref":2,"send":{"room":"general","clientId":"6f1c","text":"hello"}})",
          R"({"ref":1,"join":{"room":"general"}})",
          R"({"ref":3,"history":{"room":"general","beforeSeq":"120","limit":50}})",
          R"({"resume":{"room":"g","afterSeq":117}})",
          R"({"typing":{"room":"general","active":true}})",
          R"({"ref":7,"ping":{}})",
          R"({"ref":4,"presence":{"room":"general","users":["a","b"]}})",
          R"( { "ref" : 5 , "send" : { "room" : "r" , "client_id" : "x" , "text" : "a\"b\\c\n\u00e9\ud83d\ude00" } } )",
      }) {
    chat::v1::ClientFrame ours;
    EXPECT_TRUE(TryReadProtoJson(json, ours)) << json;
    ExpectAgreesWithProtobuf(json);
  }
}

TEST(ProtoJsonReader, LeavesEverythingElseToProtobuf) {
  for (const char* json : {
           "",
           " ",
           "[]",
           "null",
           "{",
           "}",
           R"({"ref":1,})",
           R"({"ref":1} x)",
           R"({"ref":null,"ping":{}})",
           R"({"futureField":1,"ping":{}})",      // unknown field: protobuf ignores it
           R"({"ping":{},"join":{"room":"a"}})",  // two bodies
           R"({"ref":1,"ref":2,"ping":{}})",      // a key twice
           R"({"ref":1.0,"ping":{}})",
           R"({"ref":1e2,"ping":{}})",
           R"({"ref":-1,"ping":{}})",
           R"({"ref":4294967296,"ping":{}})",
           R"({"ref":01,"ping":{}})",
           R"({"ref":"1","ping":{}})",
           R"({"typing":{"room":"a","active":"true"}})",
           R"({"join":{"room":42}})",
           R"({"join":{"room":"a\x"}})",
           R"({"join":{"room":"\ud800"}})",
           R"({"join":{"room":"\udc00x"}})",
           "{\"join\":{\"room\":\"\xff\"}}",
           "{\"join\":{\"room\":\"a\tb\"}}",
           R"({"presence":{"room":"a","users":[1]}})",
           R"({"presence":{"room":"a","users":null}})",
           R"({"history":{"room":"a","beforeSeq":"9223372036854775808"}})",
           R"({"history":{"room":"a","beforeSeq":"-0"}})",
           R"({"history":{"room":"a","limit":-0}})",
           R"({"join":{"room":"a"}}})",
           R"({"join":[]})",
           R"({"ping":{"x":{"y":{"z":[1,{"a":null}]}}}})",
       }) {
    ExpectAgreesWithProtobuf(json);
  }
}

TEST(ProtoJsonReader, ReadsRandomFramesAsProtobufPrintsThem) {
  RandomFiller filler(42);
  int fast = 0;
  for (int i = 0; i < 3000; ++i) {
    chat::v1::ClientFrame f;
    filler.Fill(f, 0);
    google::protobuf::util::JsonPrintOptions opts;
    opts.always_print_primitive_fields = i % 2 == 0;
    opts.preserve_proto_field_names = i % 3 == 0;
    opts.add_whitespace = i % 5 == 0;
    std::string json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(f, &json, opts).ok());
    chat::v1::ClientFrame ours;
    if (TryReadProtoJson(json, ours)) {
      ++fast;
      EXPECT_TRUE(MessageDifferencer::Equals(ours, f)) << json;
    }
    ExpectAgreesWithProtobuf(json);
    if (HasFailure()) return;
  }
  // Printed frames are in the subset (the "\u2028"-style escapes and all): the fast path is the path.
  EXPECT_EQ(fast, 3000);
}

TEST(ProtoJsonReader, MutatedFramesNeverReadDifferently) {
  RandomFiller filler(7);
  std::mt19937 rng(99);
  const std::string alphabet = "{}[]\":,\\ 0123456789-.eEtrufalsn\x01\xc3\xa9\xff";
  for (int i = 0; i < 20000; ++i) {
    chat::v1::ClientFrame f;
    filler.Fill(f, 0);
    std::string json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(f, &json).ok());
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !json.empty(); ++e) {
      const size_t at = rng() % json.size();
      switch (rng() % 3) {
        case 0:
          json[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          json.erase(at, 1);
          break;
        default:
          json.insert(at, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    ExpectAgreesWithProtobuf(json);
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace chat::gateway
