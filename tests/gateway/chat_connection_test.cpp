// ChatConnection driven without sockets: in-process backends stand in for the gRPC streams, so each
// rule of the protocol is checked on its own. The real path is covered by tests/e2e.
#include "domain/chat_connection.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gateway/recording_messages.h"

namespace chat::gateway {
namespace {

using chat::v1::GatewayReply;
using chat::v1::GatewayRequest;
using chat::v1::ServerFrame;

struct AnsweringPresence : PresenceBackend {
  void Call(chat::v1::PresenceRequest r, Callback<chat::v1::PresenceReply> done) override {
    requests.push_back(r);
    chat::v1::PresenceReply reply;
    if (r.has_entered()) {
      reply.mutable_online()->add_users("alice");
      reply.mutable_online()->add_users("bob");
    }
    done(reply);
  }
  std::vector<chat::v1::PresenceRequest> requests;
};

struct RecordingFanout : RoomFanout {
  void Enter(const std::string& room, const std::string&, std::weak_ptr<RoomMember>,
             std::function<void(absl::Status)> ready) override {
    entered.push_back(room);
    ready(absl::OkStatus());
  }
  void Exit(const std::string& room, const std::string&) override { exited.push_back(room); }
  std::vector<std::string> entered, exited;
};

class ChatConnectionTest : public ::testing::Test {
 protected:
  ChatConnectionTest() : metrics_(registry_) {
    conn_ = Make(ConnectionIdentity{"alice", false, "gw1-1", "gw1"});
  }

  std::unique_ptr<ChatConnection> Make(ConnectionIdentity id, ConnectionLimits limits = {}) {
    return std::make_unique<ChatConnection>(
        id, limits, messages_, presence_, fanout_, metrics_,
        ChatConnection::Io{
            [](std::function<void()> fn) { fn(); },
            [this](std::chrono::milliseconds, std::function<void()> fn) { later_.push_back(std::move(fn)); },
            [this](std::shared_ptr<const std::string> f) { Record(*f, false); },
            [this](uint16_t code, std::string) { closed_with_ = code; }, std::weak_ptr<RoomMember>(),
            [this](std::shared_ptr<const std::string> f) { Record(*f, true); },
            [this](std::shared_ptr<const std::string> f) { Record(*f, false, true); }});
  }

  void Record(const std::string& bytes, bool with_next, bool last = false) {
    ServerFrame frame;
    auto st = google::protobuf::util::JsonStringToMessage(bytes, &frame);
    EXPECT_TRUE(st.ok()) << bytes;
    frames_.push_back(frame);
    with_next_.push_back(with_next);
    last_.push_back(last);
  }

  ServerFrame Last() {
    EXPECT_FALSE(frames_.empty());
    return frames_.empty() ? ServerFrame() : frames_.back();
  }

  void JoinGeneral() {
    conn_->OnText(R"({"ref":1,"join":{"room":"general"}})");
    GatewayReply r;
    r.mutable_joined()->mutable_room()->set_room("general");
    r.mutable_joined()->mutable_room()->set_last_seq(7);
    messages_.Answer(messages_.requests.size() - 1, r);
    ASSERT_TRUE(Last().has_joined());
  }

  MetricsRegistry registry_;
  ConnectionMetrics metrics_;
  RecordingMessages messages_;
  AnsweringPresence presence_;
  RecordingFanout fanout_;
  std::vector<ServerFrame> frames_;
  std::vector<bool> with_next_;  // per frame: queued to wait for the next write
  std::vector<bool> last_;       // per frame: sent as its turn's last (Io::send_last)
  std::vector<std::function<void()>> later_;
  uint16_t closed_with_ = 0;
  std::unique_ptr<ChatConnection> conn_;
};

TEST_F(ChatConnectionTest, StartReportsPresenceAndWelcomes) {
  conn_->Start();
  ASSERT_TRUE(Last().has_welcome());
  EXPECT_EQ(Last().welcome().user(), "alice");
  EXPECT_EQ(Last().welcome().connection_id(), "gw1-1");
  EXPECT_EQ(Last().welcome().heartbeat_seconds(), 15u);
  EXPECT_TRUE(last_.back()) << "the welcome ends Start: it goes out with the handshake's answer";
  ASSERT_EQ(presence_.requests.size(), 1u);
  EXPECT_EQ(presence_.requests[0].opened().conn().user(), "alice");
}

TEST_F(ChatConnectionTest, JoinSubscribesThenAsksMessagesThenAnswers) {
  conn_->OnText(R"({"ref":1,"join":{"room":"general"}})");
  // Subscribed first, so nothing committed after the last seq is read can be missed.
  EXPECT_EQ(fanout_.entered, std::vector<std::string>{"general"});
  ASSERT_EQ(messages_.requests.size(), 1u);
  EXPECT_EQ(messages_.requests[0].join().user(), "alice");
  EXPECT_TRUE(frames_.empty());  // nothing before messages answers
  GatewayReply r;
  r.mutable_joined()->mutable_room()->set_last_seq(117);
  messages_.Answer(0, r);
  ServerFrame f = Last();
  ASSERT_TRUE(f.has_joined());
  EXPECT_EQ(f.ref(), 1u);
  EXPECT_EQ(f.joined().room(), "general");
  EXPECT_EQ(f.joined().last_seq(), 117);
  EXPECT_EQ(f.joined().online_size(), 2);
  EXPECT_TRUE(conn_->InRoom("general"));
}

TEST_F(ChatConnectionTest, JoinOfUnknownRoomIsNotFound) {
  conn_->OnText(R"({"ref":4,"join":{"room":"nowhere"}})");
  GatewayReply r;
  r.mutable_error()->set_code("not_found");
  r.mutable_error()->set_message("room 'nowhere' does not exist");
  messages_.Answer(0, r);
  EXPECT_EQ(Last().ref(), 4u);
  EXPECT_EQ(Last().error().code(), "not_found");
  EXPECT_EQ(fanout_.exited, std::vector<std::string>{"nowhere"});  // the subscription is undone
  EXPECT_FALSE(conn_->InRoom("nowhere"));
}

TEST_F(ChatConnectionTest, BadRoomNameNeverLeavesTheGateway) {
  conn_->OnText(R"({"ref":4,"join":{"room":"no spaces allowed"}})");
  EXPECT_EQ(Last().error().code(), "bad_request");
  EXPECT_TRUE(messages_.requests.empty());
}

TEST_F(ChatConnectionTest, SendNeedsAJoinedRoom) {
  conn_->OnText(R"({"ref":2,"send":{"room":"general","clientId":"c1","text":"hi"}})");
  EXPECT_EQ(Last().error().code(), "forbidden");
  EXPECT_TRUE(messages_.requests.empty());
}

TEST_F(ChatConnectionTest, SendIsForwardedAndAcked) {
  JoinGeneral();
  conn_->OnText(R"({"ref":2,"send":{"room":"general","clientId":"c1","text":"hello"}})");
  const auto& req = messages_.requests.back();
  ASSERT_TRUE(req.has_send());
  EXPECT_EQ(req.send().sender(), "alice");  // from the token, never from the frame
  EXPECT_EQ(req.send().client_id(), "c1");
  GatewayReply r;
  auto* m = r.mutable_sent()->mutable_message();
  m->set_room("general");
  m->set_seq(8);
  m->set_id("uuid-8");
  messages_.Answer(messages_.requests.size() - 1, r);
  ServerFrame f = Last();
  ASSERT_TRUE(f.has_ack());
  EXPECT_EQ(f.ref(), 2u);
  EXPECT_EQ(f.ack().seq(), 8);
  EXPECT_EQ(f.ack().id(), "uuid-8");
}

TEST_F(ChatConnectionTest, SendChecksTextAndClientId) {
  JoinGeneral();
  size_t before = messages_.requests.size();
  conn_->OnText(R"({"ref":3,"send":{"room":"general","clientId":"c1","text":")" + std::string(4097, 'x') +
                R"("}})");
  EXPECT_EQ(Last().error().code(), "too_large");
  conn_->OnText(R"({"ref":3,"send":{"room":"general","text":"no client id"}})");
  EXPECT_EQ(Last().error().code(), "bad_request");
  conn_->OnText(R"({"ref":3,"send":{"room":"general","clientId":"c1","text":""}})");
  EXPECT_EQ(Last().error().code(), "bad_request");
  EXPECT_EQ(messages_.requests.size(), before);
}

TEST_F(ChatConnectionTest, FloodIsRateLimitedThenClosed) {
  JoinGeneral();
  for (int i = 0; i < 20; ++i) {
    conn_->OnText(R"({"send":{"room":"general","clientId":"c)" + std::to_string(i) + R"(","text":"x"}})");
  }
  size_t forwarded = messages_.requests.size();
  conn_->OnText(R"({"ref":99,"send":{"room":"general","clientId":"c-over","text":"x"}})");
  EXPECT_EQ(messages_.requests.size(), forwarded);
  EXPECT_EQ(Last().ref(), 99u);
  EXPECT_EQ(Last().error().code(), "rate_limited");
  EXPECT_GT(Last().error().retry_after_ms(), 0u);
  EXPECT_EQ(closed_with_, 0);
  // Coming back before retryAfterMs, again and again: warned, then cut off with 1008.
  for (int i = 0; i < 20 && closed_with_ == 0; ++i) {
    conn_->OnText(R"({"send":{"room":"general","clientId":"f)" + std::to_string(i) + R"(","text":"x"}})");
  }
  EXPECT_EQ(closed_with_, 1008);
  EXPECT_EQ(messages_.requests.size(), forwarded);
}

TEST_F(ChatConnectionTest, SlashCommandsAreForAdmins) {
  JoinGeneral();
  size_t before = messages_.requests.size();
  conn_->OnText(R"({"ref":3,"send":{"room":"general","clientId":"k1","text":"/kick bob"}})");
  EXPECT_EQ(Last().error().code(), "forbidden");
  EXPECT_EQ(messages_.requests.size(), before);  // not stored either
  conn_->OnText(R"({"ref":4,"send":{"room":"general","clientId":"k2","text":"/shrug"}})");
  EXPECT_TRUE(messages_.requests.back().has_send());  // not a command: an ordinary message
}

TEST_F(ChatConnectionTest, AdminCommandsGoToTheirServices) {
  auto admin = Make(ConnectionIdentity{"root", true, "gw1-2", "gw1"});
  admin->OnText(R"({"ref":1,"join":{"room":"general"}})");
  GatewayReply joined;
  joined.mutable_joined()->mutable_room()->set_last_seq(1);
  messages_.Answer(messages_.requests.size() - 1, joined);
  admin->OnText(R"({"ref":2,"send":{"room":"general","clientId":"a1","text":"/kick bob"}})");
  EXPECT_EQ(messages_.requests.back().control().kick_user(), "bob");
  GatewayReply done;
  done.mutable_done();
  messages_.Answer(messages_.requests.size() - 1, done);
  EXPECT_EQ(Last().ref(), 2u);
  EXPECT_TRUE(Last().has_notice());
  admin->OnText(R"({"ref":3,"send":{"room":"general","clientId":"a2","text":"/mute bob 60"}})");
  EXPECT_EQ(messages_.requests.back().mute().user(), "bob");
  EXPECT_EQ(messages_.requests.back().mute().seconds(), 60);
  admin->OnText(R"({"ref":4,"send":{"room":"general","clientId":"a3","text":"/clear"}})");
  EXPECT_EQ(messages_.requests.back().clear().room(), "general");
  admin->OnText(R"({"ref":5,"send":{"room":"general","clientId":"a4","text":"/broadcast hello all"}})");
  EXPECT_EQ(messages_.requests.back().control().broadcast().text(), "hello all");
  admin->OnText(R"({"ref":6,"send":{"room":"general","clientId":"a5","text":"/mute"}})");
  EXPECT_EQ(Last().error().code(), "bad_request");
  admin->OnText(R"({"ref":7,"send":{"room":"general","clientId":"a6","text":"/stats"}})");
  EXPECT_TRUE(presence_.requests.back().has_cluster_stats());
  EXPECT_TRUE(Last().has_stats());
}

TEST_F(ChatConnectionTest, ReadAndOpenDm) {
  conn_->OnText(R"({"ref":1,"read":{"room":"general","seq":"3"}})");
  EXPECT_EQ(Last().error().code(), "forbidden");
  JoinGeneral();
  conn_->OnText(R"({"read":{"room":"general","seq":"3"}})");
  EXPECT_EQ(messages_.requests.back().read().user(), "alice");
  EXPECT_EQ(messages_.requests.back().read().seq(), 3);
  conn_->OnText(R"({"ref":5,"openDm":{"user":"alice"}})");
  EXPECT_EQ(Last().error().code(), "bad_request");
  conn_->OnText(R"({"ref":6,"openDm":{"user":"bob"}})");
  EXPECT_EQ(messages_.requests.back().open_dm().peer(), "bob");
  GatewayReply room;
  room.mutable_room()->set_room("dm:abc");
  messages_.Answer(messages_.requests.size() - 1, room);
  EXPECT_EQ(fanout_.entered.back(), "dm:abc");  // then the usual join
  EXPECT_TRUE(messages_.requests.back().has_join());
}

TEST_F(ChatConnectionTest, BackendUnavailableIsReported) {
  JoinGeneral();
  conn_->OnText(R"({"ref":2,"send":{"room":"general","clientId":"c1","text":"hello"}})");
  messages_.Answer(messages_.requests.size() - 1, absl::UnavailableError("messages stream broke"));
  EXPECT_EQ(Last().error().code(), "unavailable");
  EXPECT_EQ(Last().ref(), 2u);
}

TEST_F(ChatConnectionTest, MalformedFramesGetBadRequest) {
  conn_->OnText("{not json");
  EXPECT_EQ(Last().error().code(), "bad_request");
  EXPECT_FALSE(Last().has_ref());
  conn_->OnText(R"({"ref":5})");
  EXPECT_EQ(Last().error().code(), "bad_request");
  EXPECT_EQ(Last().ref(), 5u);
  conn_->OnBinary();
  EXPECT_EQ(Last().error().code(), "bad_request");
  conn_->OnText(R"({"ref":7,"ping":{}})");
  EXPECT_TRUE(Last().has_pong());
  EXPECT_EQ(Last().ref(), 7u);
}

TEST_F(ChatConnectionTest, TypingNeedsTheRoomAndGoesToPresence) {
  conn_->OnText(R"({"ref":9,"typing":{"room":"general","active":true}})");
  EXPECT_EQ(Last().error().code(), "forbidden");
  JoinGeneral();
  size_t before = presence_.requests.size();
  size_t frames = frames_.size();
  conn_->OnText(R"({"typing":{"room":"general","active":true}})");
  ASSERT_EQ(presence_.requests.size(), before + 1);
  EXPECT_TRUE(presence_.requests.back().typing().active());
  EXPECT_EQ(presence_.requests.back().typing().conn().user(), "alice");
  EXPECT_EQ(frames_.size(), frames);  // no answer when it worked
}

TEST_F(ChatConnectionTest, StoredMessageClearsTypingOnlyAfterTyping) {
  JoinGeneral();
  auto send = [&](int seq) {
    conn_->OnText(
        absl::StrCat(R"({"ref":2,"send":{"room":"general","clientId":"c)", seq, R"(","text":"hi"}})"));
    GatewayReply r;
    r.mutable_sent()->mutable_message()->set_room("general");
    r.mutable_sent()->mutable_message()->set_seq(seq);
    messages_.Answer(messages_.requests.size() - 1, r);
  };
  size_t before = presence_.requests.size();
  send(8);
  EXPECT_EQ(presence_.requests.size(), before) << "nothing to clear: no presence call per message";
  conn_->OnText(R"({"typing":{"room":"general","active":true}})");
  send(9);
  ASSERT_TRUE(presence_.requests.back().has_typing());
  EXPECT_TRUE(presence_.requests.back().typing().clear());
  before = presence_.requests.size();
  send(10);
  EXPECT_EQ(presence_.requests.size(), before) << "cleared once";
}

TEST_F(ChatConnectionTest, PresenceQueryIsAnswered) {
  conn_->OnText(R"({"ref":8,"presence":{"room":"general","users":["bob"]}})");
  ASSERT_TRUE(presence_.requests.back().has_status());
  EXPECT_EQ(presence_.requests.back().status().users(0), "bob");
  ASSERT_TRUE(Last().has_presence_status());
  EXPECT_EQ(Last().ref(), 8u);
}

TEST_F(ChatConnectionTest, HistoryIsForwardedWithTheUser) {
  conn_->OnText(R"({"ref":3,"history":{"room":"general","beforeSeq":"120","limit":50}})");
  const auto& req = messages_.requests.back();
  EXPECT_EQ(req.history().user(), "alice");
  EXPECT_EQ(req.history().before_seq(), 120);
  GatewayReply r;
  auto* page = r.mutable_history()->mutable_page();
  page->set_room("general");
  page->add_messages()->set_seq(119);
  page->set_has_more(true);
  messages_.Answer(0, r);
  ASSERT_TRUE(Last().has_history());
  EXPECT_EQ(Last().history().messages(0).seq(), 119);
  EXPECT_TRUE(Last().history().has_more());
}

TEST_F(ChatConnectionTest, LeaveAndCloseExitRooms) {
  JoinGeneral();
  conn_->OnText(R"({"ref":6,"leave":{"room":"general"}})");
  EXPECT_TRUE(Last().has_left());
  EXPECT_EQ(fanout_.exited, std::vector<std::string>{"general"});
  conn_->OnText(R"({"ref":6,"leave":{"room":"general"}})");
  EXPECT_EQ(Last().error().code(), "not_found");
  JoinGeneral();
  conn_->Close();
  EXPECT_EQ(fanout_.exited.size(), 2u);
  EXPECT_TRUE(presence_.requests.back().has_closed());
  size_t n = frames_.size();
  conn_->OnText(R"({"ref":7,"ping":{}})");
  EXPECT_EQ(frames_.size(), n);  // closed: nothing more
}

TEST_F(ChatConnectionTest, LeaveWhileJoiningDropsTheLateAnswer) {
  conn_->OnText(R"({"ref":1,"join":{"room":"general"}})");
  conn_->OnText(R"({"ref":2,"leave":{"room":"general"}})");
  EXPECT_EQ(fanout_.exited, std::vector<std::string>{"general"});
  GatewayReply r;
  r.mutable_joined()->mutable_room()->set_last_seq(1);
  messages_.Answer(0, r);
  EXPECT_FALSE(conn_->InRoom("general"));
  EXPECT_TRUE(Last().has_left());  // no joined after the left
}

// ---- ordering at the seam between join/resume and live delivery ----

std::shared_ptr<const std::string> MessageBytes(int64_t seq) {
  ServerFrame f;
  f.mutable_message()->set_room("general");
  f.mutable_message()->set_seq(seq);
  return std::make_shared<const std::string>(EncodeServerFrame(f));
}

Delivery Live(int64_t seq) { return Delivery{"general", seq, MessageBytes(seq), nullptr}; }

GatewayReply HistoryOf(int64_t from, int64_t to) {
  GatewayReply r;
  auto* page = r.mutable_history()->mutable_page();
  page->set_room("general");
  for (int64_t s = from; s <= to; ++s) {
    auto* m = page->add_messages();
    m->set_room("general");
    m->set_seq(s);
  }
  return r;
}

std::vector<int64_t> SeqsOf(const std::vector<ServerFrame>& frames) {
  std::vector<int64_t> out;
  for (const auto& f : frames) {
    if (f.has_message()) out.push_back(f.message().seq());
  }
  return out;
}

TEST_F(ChatConnectionTest, LiveMessagesDuringJoinAreHeldThenDeliveredAfterTheAnswer) {
  conn_->OnText(R"({"ref":1,"join":{"room":"general"}})");
  conn_->OnDelivery(Live(10));  // committed before the last seq was read: the client gets it by history
  conn_->OnDelivery(Live(11));
  GatewayReply r;
  r.mutable_joined()->mutable_room()->set_last_seq(10);
  messages_.Answer(0, r);
  ASSERT_GE(frames_.size(), 2u);
  EXPECT_TRUE(frames_[0].has_joined());
  EXPECT_EQ(SeqsOf(frames_), (std::vector<int64_t>{11}));
  conn_->OnDelivery(Live(11));  // a duplicate from pub/sub
  conn_->OnDelivery(Live(12));
  EXPECT_EQ(SeqsOf(frames_), (std::vector<int64_t>{11, 12}));
}

TEST_F(ChatConnectionTest, GapIsFetchedBeforeLaterMessages) {
  JoinGeneral();  // last seq 7
  conn_->OnDelivery(Live(8));
  conn_->OnDelivery(Live(11));  // 9 and 10 were lost on the way
  EXPECT_EQ(SeqsOf(frames_), (std::vector<int64_t>{8}));
  const auto& fetch = messages_.requests.back();
  ASSERT_TRUE(fetch.has_history());
  EXPECT_EQ(fetch.history().after_seq(), 8);
  EXPECT_TRUE(fetch.history().replay());
  conn_->OnDelivery(Live(12));
  EXPECT_EQ(SeqsOf(frames_), (std::vector<int64_t>{8}));  // still held
  messages_.Answer(messages_.requests.size() - 1, HistoryOf(9, 10));
  EXPECT_EQ(SeqsOf(frames_), (std::vector<int64_t>{8, 9, 10, 11, 12}));
}

TEST_F(ChatConnectionTest, FailedGapFetchIsRetriedNeverSkipped) {
  JoinGeneral();  // last seq 7
  conn_->OnDelivery(Live(10));
  size_t fetch_index = messages_.requests.size() - 1;
  messages_.Answer(fetch_index, absl::UnavailableError("messages down"));
  EXPECT_TRUE(SeqsOf(frames_).empty());
  ASSERT_EQ(later_.size(), 1u);
  later_[0]();  // the retry comes after the refetch delay
  ASSERT_GT(messages_.requests.size(), fetch_index + 1);
  EXPECT_EQ(messages_.requests.back().history().after_seq(), 7);
  messages_.Answer(messages_.requests.size() - 1, HistoryOf(8, 10));
  EXPECT_EQ(SeqsOf(frames_), (std::vector<int64_t>{8, 9, 10}));
}

TEST_F(ChatConnectionTest, ResumeReplaysThenAnswersThenGoesLive) {
  conn_->OnText(R"({"ref":4,"resume":{"room":"general","afterSeq":"5"}})");
  EXPECT_EQ(fanout_.entered, std::vector<std::string>{"general"});
  GatewayReply joined;
  joined.mutable_joined()->mutable_room()->set_last_seq(8);
  messages_.Answer(0, joined);
  const auto& replay = messages_.requests.back();
  ASSERT_TRUE(replay.has_history());
  EXPECT_EQ(replay.history().after_seq(), 5);
  EXPECT_TRUE(replay.history().replay());
  conn_->OnDelivery(Live(9));            // live during the replay: held
  messages_.Answer(1, HistoryOf(6, 9));  // the replay read 9 too
  std::vector<int64_t> seqs = SeqsOf(frames_);
  EXPECT_EQ(seqs, (std::vector<int64_t>{6, 7, 8, 9}));  // 9 once
  ServerFrame answer;
  for (const auto& f : frames_) {
    if (f.has_resumed()) answer = f;
  }
  EXPECT_EQ(answer.ref(), 4u);
  EXPECT_EQ(answer.resumed().last_seq(), 9);  // never below what was replayed
  EXPECT_EQ(answer.resumed().replayed(), 4u);
  EXPECT_FALSE(answer.resumed().truncated());
  EXPECT_TRUE(conn_->InRoom("general"));
  conn_->OnDelivery(Live(10));
  EXPECT_EQ(SeqsOf(frames_), (std::vector<int64_t>{6, 7, 8, 9, 10}));
}

TEST_F(ChatConnectionTest, LongResumeIsTruncatedToTheNewest) {
  conn_->OnText(R"({"ref":4,"resume":{"room":"general","afterSeq":"1"}})");
  GatewayReply joined;
  joined.mutable_joined()->mutable_room()->set_last_seq(5000);
  messages_.Answer(0, joined);
  const auto& replay = messages_.requests.back();
  EXPECT_EQ(replay.history().before_seq(), 5001);
  EXPECT_EQ(replay.history().limit(), 1000u);
  messages_.Answer(1, HistoryOf(4001, 5000));
  EXPECT_EQ(SeqsOf(frames_).size(), 1000u);
  EXPECT_TRUE(Last().resumed().truncated());
  EXPECT_EQ(Last().resumed().replayed(), 1000u);
}

TEST_F(ChatConnectionTest, ReplayIsBoundedInBytesToFitTheQueue) {
  ConnectionLimits small;
  small.replay_max_bytes = 300;  // a few message frames
  conn_ = Make(ConnectionIdentity{"alice", false, "gw1-1", "gw1"}, small);
  conn_->OnText(R"({"ref":4,"resume":{"room":"general","afterSeq":"0"}})");
  GatewayReply joined;
  joined.mutable_joined()->mutable_room()->set_last_seq(50);
  messages_.Answer(0, joined);
  messages_.Answer(1, HistoryOf(1, 50));
  std::vector<int64_t> seqs = SeqsOf(frames_);
  ASSERT_FALSE(seqs.empty());
  EXPECT_LT(seqs.size(), 50u);
  EXPECT_EQ(seqs.back(), 50);  // the newest are kept
  ServerFrame answer = Last();
  ASSERT_TRUE(answer.has_resumed());
  EXPECT_TRUE(answer.resumed().truncated());
  EXPECT_EQ(answer.resumed().replayed(), seqs.size());
  conn_->OnDelivery(Live(51));
  EXPECT_EQ(SeqsOf(frames_).back(), 51);
}

TEST_F(ChatConnectionTest, InvitedRoomIsJoinedWithoutARef) {
  conn_->JoinInvited("dm:abc");
  EXPECT_EQ(fanout_.entered.back(), "dm:abc");
  GatewayReply r;
  r.mutable_joined()->mutable_room()->set_last_seq(0);
  messages_.Answer(messages_.requests.size() - 1, r);
  ASSERT_TRUE(Last().has_joined());
  EXPECT_FALSE(Last().has_ref());
  EXPECT_EQ(Last().joined().room(), "dm:abc");
  size_t n = messages_.requests.size();
  conn_->JoinInvited("dm:abc");  // joined already: nothing
  EXPECT_EQ(messages_.requests.size(), n);
}

// The sender's copy of its message usually arrives from Redis just before the ack: it waits for the next
// write (the ack's), so both go out in one socket write. Other members' messages, and the sender's own
// once acked (or from another connection of the same user), go at once.
TEST_F(ChatConnectionTest, OwnMessageBeforeItsAckWaitsForTheAcksWrite) {
  JoinGeneral();  // last seq 7
  auto live = [](int64_t seq, std::string sender, std::string client_id) {
    return Delivery{
        "general", seq, MessageBytes(seq),
        std::make_shared<const MessageOrigin>(MessageOrigin{std::move(sender), std::move(client_id)})};
  };
  conn_->OnText(R"({"ref":2,"send":{"room":"general","clientId":"c1","text":"hello"}})");
  conn_->OnText(R"({"ref":3,"send":{"room":"general","clientId":"c2","text":"again"}})");
  const size_t before = frames_.size();
  conn_->OnDelivery(live(8, "bob", "c1"));     // someone else's, with the same clientId
  conn_->OnDelivery(live(9, "alice", "c1"));   // ours, c1 not answered yet
  conn_->OnDelivery(live(10, "alice", "x9"));  // ours from another tab: no send of this connection
  ASSERT_EQ(frames_.size(), before + 3);
  EXPECT_EQ(SeqsOf(frames_), (std::vector<int64_t>{8, 9, 10}));
  EXPECT_EQ(with_next_[before], false);
  EXPECT_EQ(with_next_[before + 1], true);
  EXPECT_EQ(with_next_[before + 2], false);

  GatewayReply r;
  r.mutable_sent()->mutable_message()->set_room("general");
  r.mutable_sent()->mutable_message()->set_seq(9);
  messages_.Answer(messages_.requests.size() - 2, r);  // c1's ack: it starts the write, at once
  ASSERT_TRUE(Last().has_ack());
  EXPECT_FALSE(with_next_.back());
  EXPECT_TRUE(last_.back()) << "an ack ends its turn: written on the caller's stack";
  EXPECT_EQ(std::count(last_.begin() + static_cast<std::ptrdiff_t>(before), last_.end(), true), 1)
      << "deliveries are not sent `last`";
  // c1 is answered: a late copy (a duplicate from pub/sub aside) would go at once; c2 still waits.
  conn_->OnDelivery(live(11, "alice", "c1"));
  EXPECT_FALSE(with_next_.back());
  conn_->OnDelivery(live(12, "alice", "c2"));
  EXPECT_TRUE(with_next_.back());
  // An error answer ends the wait too.
  GatewayReply refused;
  refused.mutable_error()->set_code("unavailable");
  refused.mutable_error()->set_message("storage unavailable");
  messages_.Answer(messages_.requests.size() - 1, refused);
  EXPECT_TRUE(Last().has_error());
  EXPECT_FALSE(last_.back());
  conn_->OnDelivery(live(13, "alice", "c2"));
  EXPECT_FALSE(with_next_.back());
  EXPECT_EQ(SeqsOf(frames_), (std::vector<int64_t>{8, 9, 10, 11, 12, 13}));
}

}  // namespace
}  // namespace chat::gateway
