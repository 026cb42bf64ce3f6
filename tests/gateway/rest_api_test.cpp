// The REST fallback's rules without sockets: what reaches messages, what is refused before it, and the
// HTTP status of each answer. The real path is covered by tests/e2e/fallback.test.mjs.
#include "domain/rest_api.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "domain/query_string.h"
#include "gateway/recording_messages.h"

namespace chat::gateway {
namespace {

using chat::v1::GatewayReply;
using chat::v1::GatewayRequest;
using chat::v1::ServerFrame;

class RestApiTest : public ::testing::Test {
 protected:
  RestApiTest() : metrics_(registry_), api_(Limits(), messages_, metrics_) {}

  static ConnectionLimits Limits() {
    ConnectionLimits l;
    l.text_max_bytes = 16;
    l.send_rate_per_second = 1;
    l.send_burst = 3;
    l.query_rate_per_second = 1;
    l.query_burst = 2;
    return l;
  }

  RestReply Post(const std::string& room, std::string_view body, ConnectionIdentity who = Alice()) {
    RestReply out;
    out.status = 0;
    api_.PostMessage(who, room, body, [&](RestReply r) { out = std::move(r); });
    return out;
  }

  RestReply History(const std::string& room, std::string_view query) {
    RestReply out;
    out.status = 0;
    api_.GetHistory(Alice(), room, query, [&](RestReply r) { out = std::move(r); });
    return out;
  }

  static ConnectionIdentity Alice() { return ConnectionIdentity{"alice", false, "", "gw"}; }

  static ServerFrame Parse(const std::string& body) {
    ServerFrame f;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(body, &f).ok()) << body;
    return f;
  }

  MetricsRegistry registry_;
  ConnectionMetrics metrics_;
  RecordingMessages messages_;
  RestApi api_;
};

TEST_F(RestApiTest, PostForwardsTheSendAndAnswersTheAckAfterCommit) {
  RestReply pending = Post("general", R"({"clientId":"c-1","text":"hello","unknown":1})");
  EXPECT_EQ(pending.status, 0u) << "no answer before messages answers";
  ASSERT_EQ(messages_.requests.size(), 1u);
  const auto& send = messages_.requests[0].send();
  EXPECT_EQ(send.room(), "general");
  EXPECT_EQ(send.sender(), "alice");
  EXPECT_EQ(send.client_id(), "c-1");
  EXPECT_EQ(send.text(), "hello");

  RestReply out;
  GatewayReply reply;
  reply.mutable_sent()->mutable_message()->set_room("general");
  reply.mutable_sent()->mutable_message()->set_seq(42);
  reply.mutable_sent()->set_duplicate(true);
  api_.PostMessage(Alice(), "general", R"({"clientId":"c-2","text":"again"})",
                   [&](RestReply r) { out = std::move(r); });
  messages_.Answer(1, reply);
  EXPECT_EQ(out.status, 200u);
  ServerFrame f = Parse(out.body);
  ASSERT_TRUE(f.has_ack());
  EXPECT_EQ(f.ack().seq(), 42);
  EXPECT_TRUE(f.ack().duplicate());
}

TEST_F(RestApiTest, BadInputIsRefusedBeforeMessages) {
  struct Case {
    std::string room, body;
    unsigned status;
    std::string code;
  } cases[] = {
      {"general", "not json", 400, "bad_request"},
      {"general", R"({"clientId":5,"text":"x"})", 400, "bad_request"},
      {"general", R"({"text":"x"})", 400, "bad_request"},
      {"general", R"({"clientId":"c","text":""})", 400, "bad_request"},
      {"general", R"({"clientId":"c","text":"01234567890123456"})", 413, "too_large"},
      {"general", "{\"clientId\":\"c\",\"text\":\"\xff\"}", 400, "bad_request"},
      {"bad room!", R"({"clientId":"c","text":"x"})", 400, "bad_request"},
      {"general", R"({"clientId":"c","text":"/kick bob"})", 403, "forbidden"},
  };
  for (const auto& c : cases) {
    RestReply r = Post(c.room, c.body);
    EXPECT_EQ(r.status, c.status) << c.body;
    ServerFrame f = Parse(r.body);
    EXPECT_EQ(f.error().code(), c.code) << c.body;
  }
  EXPECT_TRUE(messages_.requests.empty());
}

TEST_F(RestApiTest, AdminSlashCommandsNeedAWebSocket) {
  RestReply r =
      Post("general", R"({"clientId":"c","text":"/kick bob"})", ConnectionIdentity{"root", true, "", ""});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(Parse(r.body).error().message().find("WebSocket"), std::string::npos);
  EXPECT_TRUE(messages_.requests.empty());
}

TEST_F(RestApiTest, SendsAreLimitedPerUserWithRetryAfter) {
  for (int i = 0; i < 3; ++i) Post("general", R"({"clientId":"c","text":"x"})");
  RestReply refused = Post("general", R"({"clientId":"c","text":"x"})");
  EXPECT_EQ(refused.status, 429u);
  EXPECT_GT(refused.retry_after_ms, 0u);
  EXPECT_EQ(Parse(refused.body).error().code(), "rate_limited");
  EXPECT_EQ(messages_.requests.size(), 3u) << "nothing past the limit reaches messages";
  // Another user has a bucket of their own.
  Post("general", R"({"clientId":"c","text":"x"})", ConnectionIdentity{"bob", false, "", ""});
  EXPECT_EQ(messages_.requests.size(), 4u);
  EXPECT_EQ(api_.TrackedUsers(), 2u);
}

TEST_F(RestApiTest, HistoryReadsItsQueryAndMapsErrors) {
  History("general", "beforeSeq=120&limit=50");
  ASSERT_EQ(messages_.requests.size(), 1u);
  EXPECT_EQ(messages_.requests[0].history().before_seq(), 120);
  EXPECT_EQ(messages_.requests[0].history().limit(), 50u);
  EXPECT_EQ(messages_.requests[0].history().user(), "alice");

  RestReply out;
  api_.GetHistory(Alice(), "secret", "", [&](RestReply r) { out = std::move(r); });
  GatewayReply forbidden;
  forbidden.mutable_error()->set_code("forbidden");
  forbidden.mutable_error()->set_message("not a member of 'secret'");
  messages_.Answer(1, forbidden);
  EXPECT_EQ(out.status, 403u);
  EXPECT_EQ(Parse(out.body).error().code(), "forbidden");

  EXPECT_EQ(History("general", "beforeSeq=-1").status, 400u);
  EXPECT_EQ(History("general", "limit=x").status, 400u) << "bad input is refused before it spends a token";
  EXPECT_EQ(History("general", "limit=5").status, 429u) << "the query bucket (burst 2) is spent by now";
}

TEST(HttpStatusFor, EveryErrorCodeHasAStatus) {
  EXPECT_EQ(HttpStatusFor("bad_request"), 400u);
  EXPECT_EQ(HttpStatusFor("unauthorized"), 401u);
  EXPECT_EQ(HttpStatusFor("forbidden"), 403u);
  EXPECT_EQ(HttpStatusFor("muted"), 403u);
  EXPECT_EQ(HttpStatusFor("not_found"), 404u);
  EXPECT_EQ(HttpStatusFor("too_large"), 413u);
  EXPECT_EQ(HttpStatusFor("rate_limited"), 429u);
  EXPECT_EQ(HttpStatusFor("unavailable"), 503u);
  EXPECT_EQ(HttpStatusFor("internal"), 500u);
}

TEST(QueryString, DecodesAndRepeats) {
  std::string_view q = "room=a&after=5&room=b%3Ax&after=&token=t+u%2B&flag";
  EXPECT_EQ(QueryParams(q, "room"), (std::vector<std::string>{"a", "b:x"}));
  EXPECT_EQ(QueryParams(q, "after"), (std::vector<std::string>{"5", ""}));
  EXPECT_EQ(QueryParam(q, "token"), "t u+");
  EXPECT_EQ(QueryParam(q, "flag"), "");
  EXPECT_FALSE(QueryParam(q, "missing").has_value());
}

}  // namespace
}  // namespace chat::gateway
