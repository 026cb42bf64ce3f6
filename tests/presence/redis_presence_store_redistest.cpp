// The presence state machine (RedisPresenceStore's Lua scripts) against a real Redis, with time passed
// in: transitions, the grace period, dead gateways, typing throttle and expiry. No sleeps.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <map>

#include "common/redis_connection.h"
#include "common/text_rules.h"
#include "storage/redis_presence_store.h"
#include "support/test_env.h"

namespace chat::presence {
namespace {

using chat::testing::LoadTestServers;
using chat::testing::UniqueName;

chat::v1::ConnectionRef Conn(const std::string& gw, const std::string& conn, const std::string& user) {
  chat::v1::ConnectionRef r;
  r.set_gateway(gw);
  r.set_connection(conn);
  r.set_user(user);
  return r;
}

PresenceTimings Timings() {
  PresenceTimings t;
  t.ttl_ms = 30000;
  t.grace_ms = 5000;
  t.typing_expire_ms = 5000;
  t.typing_throttle_ms = 1000;
  return t;
}

// "online:alice" / "offline:alice" / "typing:alice" / "stopped:alice"
std::vector<std::string> Describe(const std::vector<PresenceChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) {
    if (c.event.has_presence()) {
      out.push_back((c.event.presence().online() ? "online:" : "offline:") + c.event.presence().user());
    } else if (c.event.has_typing()) {
      out.push_back((c.event.typing().active() ? "typing:" : "stopped:") + c.event.typing().user());
    }
  }
  return out;
}

class PresenceStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = LoadTestServers();
    store_ = std::make_unique<RedisPresenceStore>(s.redis_host, s.redis_port, Timings());
    other_replica_ = std::make_unique<RedisPresenceStore>(s.redis_host, s.redis_port, Timings());
    redis_ = std::make_unique<RedisConnection>(s.redis_host, s.redis_port, std::chrono::milliseconds(2000));
    gw_a_ = UniqueName("gwA");
    gw_b_ = UniqueName("gwB");
    alice_ = UniqueName("alice");
    bob_ = UniqueName("bob");
    room_ = UniqueName("room");
    // Sweeps see every test's leftovers too; start from a time after all of them.
    now_ = 4'000'000'000'000 + static_cast<int64_t>(std::hash<std::string>{}(room_) % 1'000'000) * 1'000'000;
  }

  // One event alone, through the store's one write path.
  ConnectionEventResult ApplyOne(ConnectionEvent e, int64_t at) {
    return store_->Apply({std::move(e)}, at).front();
  }
  absl::Status ApplyOk(ConnectionEvent e, int64_t at) { return ApplyOne(std::move(e), at).status; }

  std::vector<std::string> EnterChanges(const std::string& gw, const std::string& conn,
                                        const std::string& user) {
    auto r = ApplyOne(ConnectionEvent::Enter(Conn(gw, conn, user), room_), now_);
    EXPECT_TRUE(r.status.ok()) << r.status;
    return Describe(r.enter.changes);
  }
  // Sweep changes for this test's room only (other tests' rooms may be due too).
  std::vector<std::string> Sweep(RedisPresenceStore& s, int64_t at) {
    auto r = s.Sweep(at);
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<PresenceChange> mine;
    if (r.ok()) {
      for (auto& c : *r) {
        if (c.room == room_) mine.push_back(c);
      }
    }
    return Describe(mine);
  }

  std::unique_ptr<RedisPresenceStore> store_, other_replica_;
  std::unique_ptr<RedisConnection> redis_;
  std::string gw_a_, gw_b_, alice_, bob_, room_;
  int64_t now_;
};

TEST_F(PresenceStoreTest, UserOnlineWhileAnyConnectionLives) {
  auto first = ApplyOne(ConnectionEvent::Open(Conn(gw_a_, "1", alice_)), now_);
  ASSERT_TRUE(first.status.ok()) << first.status;
  EXPECT_TRUE(first.first);
  auto second = ApplyOne(ConnectionEvent::Open(Conn(gw_b_, "2", alice_)), now_);  // second tab, other replica
  ASSERT_TRUE(second.status.ok()) << second.status;
  EXPECT_FALSE(second.first);
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Close(Conn(gw_a_, "1", alice_)), now_).ok());
  auto users = store_->Users({alice_});
  ASSERT_TRUE(users.ok());
  EXPECT_TRUE((*users)[0].online());
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Close(Conn(gw_b_, "2", alice_)), now_).ok());
  users = store_->Users({alice_});
  EXPECT_FALSE((*users)[0].online());
  EXPECT_EQ((*users)[0].last_seen().seconds(), now_ / 1000);
}

TEST_F(PresenceStoreTest, OnlineOnceOfflineOnceAfterTheGrace) {
  EXPECT_EQ(EnterChanges(gw_a_, "1", alice_), std::vector<std::string>{"online:" + alice_});
  EXPECT_TRUE(EnterChanges(gw_b_, "2", alice_).empty());  // second tab: already online
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Exit(Conn(gw_a_, "1", alice_), room_), now_).ok());
  EXPECT_TRUE(Sweep(*store_, now_ + 60000).empty());  // one tab left: nothing
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Close(Conn(gw_b_, "2", alice_)), now_ + 60000).ok());
  EXPECT_TRUE(Sweep(*store_, now_ + 60000 + 4999).empty());  // within the grace
  EXPECT_EQ(Sweep(*store_, now_ + 60000 + 5000), std::vector<std::string>{"offline:" + alice_});
  EXPECT_TRUE(Sweep(*store_, now_ + 70000).empty());  // once
  EXPECT_TRUE(store_->RoomOnline(room_)->empty());
}

TEST_F(PresenceStoreTest, ReturningWithinTheGracePublishesNothing) {
  EnterChanges(gw_a_, "1", alice_);
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Close(Conn(gw_a_, "1", alice_)), now_).ok());
  now_ += 2000;
  EXPECT_TRUE(EnterChanges(gw_b_, "2", alice_).empty());  // reconnected elsewhere: no new online
  EXPECT_TRUE(Sweep(*store_, now_ + 10000).empty());      // and no offline
  EXPECT_EQ(*store_->RoomOnline(room_), std::vector<std::string>{alice_});
}

TEST_F(PresenceStoreTest, DeadGatewaysUsersGoOfflineAfterTtlAndGrace) {
  EnterChanges(gw_a_, "1", alice_);
  EnterChanges(gw_b_, "2", bob_);
  // Gateway B stops heartbeating: its key expires (removed here, as the TTL would).
  ASSERT_TRUE(redis_->Command({"DEL", "chat:presence:gw:" + gw_b_}).ok());
  EXPECT_EQ(*store_->RoomOnline(room_), std::vector<std::string>{alice_});
  int64_t dead_at = now_ + Timings().ttl_ms;
  EXPECT_TRUE(Sweep(*store_, dead_at).empty());  // closes B's connections, starts the grace
  EXPECT_EQ(Sweep(*store_, dead_at + Timings().grace_ms), std::vector<std::string>{"offline:" + bob_});
  EXPECT_FALSE((*store_->Users({bob_}))[0].online());
}

TEST_F(PresenceStoreTest, RoomOnlineWithManyMembersPerGateway) {
  // The scripts ask Redis once per gateway and run whether it is alive; every member must still be
  // judged by its own gateway.
  std::vector<std::string> a_users, b_users;
  for (int i = 0; i < 5; ++i) {
    a_users.push_back(UniqueName("a"));
    b_users.push_back(UniqueName("b"));
    EnterChanges(gw_a_, "a" + std::to_string(i), a_users.back());
    EnterChanges(gw_b_, "b" + std::to_string(i), b_users.back());
  }
  auto both = a_users;
  both.insert(both.end(), b_users.begin(), b_users.end());
  std::sort(both.begin(), both.end());
  EXPECT_EQ(*store_->RoomOnline(room_), both);
  ASSERT_TRUE(redis_->Command({"DEL", "chat:presence:gw:" + gw_b_}).ok());
  std::sort(a_users.begin(), a_users.end());
  EXPECT_EQ(*store_->RoomOnline(room_), a_users);
  // B's heartbeat within a script counts for the rest of that script: its new member is online.
  auto carol = UniqueName("carol");
  auto entered = ApplyOne(ConnectionEvent::Enter(Conn(gw_b_, "c", carol), room_), now_);
  ASSERT_TRUE(entered.status.ok()) << entered.status;
  auto expected = a_users;
  expected.push_back(carol);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(entered.enter.online, expected);
}

// The per-room counts the scripts keep beside the room set (user -> connections, gateway ->
// connections), read as field -> value.
std::map<std::string, std::string> HashOf(RedisConnection& redis, const std::string& key) {
  std::map<std::string, std::string> out;
  auto v = redis.Command({"HGETALL", key});
  EXPECT_TRUE(v.ok()) << v.status();
  if (!v.ok()) return out;
  for (size_t i = 0; i + 1 < v->elements.size(); i += 2) out[v->elements[i].str] = v->elements[i + 1].str;
  return out;
}

TEST_F(PresenceStoreTest, OnlineCountsFollowTheRoomSetExactly) {
  EnterChanges(gw_a_, "1", alice_);
  EnterChanges(gw_b_, "2", alice_);
  EnterChanges(gw_a_, "3", bob_);
  EnterChanges(gw_a_, "1", alice_);  // the same connection again: not a second member
  using Counts = std::map<std::string, std::string>;
  EXPECT_EQ(HashOf(*redis_, "chat:presence:ronline:" + room_), (Counts{{alice_, "2"}, {bob_, "1"}}));
  EXPECT_EQ(HashOf(*redis_, "chat:presence:rgws:" + room_), (Counts{{gw_a_, "2"}, {gw_b_, "1"}}));

  ASSERT_TRUE(ApplyOk(ConnectionEvent::Exit(Conn(gw_a_, "1", alice_), room_), now_).ok());
  auto both = std::vector<std::string>{alice_, bob_};
  std::sort(both.begin(), both.end());
  EXPECT_EQ(*store_->RoomOnline(room_), both);  // her other tab is still in
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Close(Conn(gw_b_, "2", alice_)), now_).ok());
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Exit(Conn(gw_b_, "2", alice_), room_), now_).ok());  // gone already
  EXPECT_EQ(*store_->RoomOnline(room_), std::vector<std::string>{bob_});
  EXPECT_EQ(HashOf(*redis_, "chat:presence:ronline:" + room_), (Counts{{bob_, "1"}}));
  EXPECT_EQ(HashOf(*redis_, "chat:presence:rgws:" + room_), (Counts{{gw_a_, "1"}}));
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Close(Conn(gw_a_, "3", bob_)), now_).ok());
  EXPECT_TRUE(store_->RoomOnline(room_)->empty());
  EXPECT_TRUE(HashOf(*redis_, "chat:presence:ronline:" + room_).empty());
  EXPECT_TRUE(HashOf(*redis_, "chat:presence:rgws:" + room_).empty());
}

TEST_F(PresenceStoreTest, ARoomWithoutCountsIsReadInFullAndCounted) {
  // What a room written before the counts existed looks like: members, no counts.
  chat::v1::GatewayHeartbeat heartbeat;
  heartbeat.set_gateway(gw_a_);
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Heartbeat(heartbeat), now_).ok());
  ASSERT_TRUE(redis_
                  ->Command({"SADD", "chat:presence:room:" + room_, alice_ + "|" + gw_a_ + "|1",
                             alice_ + "|" + gw_a_ + "|2", bob_ + "|" + gw_a_ + "|3"})
                  .ok());
  auto both = std::vector<std::string>{alice_, bob_};
  std::sort(both.begin(), both.end());
  EXPECT_EQ(*store_->RoomOnline(room_), both);
  using Counts = std::map<std::string, std::string>;
  EXPECT_EQ(HashOf(*redis_, "chat:presence:ronline:" + room_), (Counts{{alice_, "2"}, {bob_, "1"}}));
  EXPECT_EQ(HashOf(*redis_, "chat:presence:rgws:" + room_), (Counts{{gw_a_, "3"}}));
  // A member added behind the counts' back (an older replica during an upgrade) is seen all the same.
  auto carol = UniqueName("carol");
  ASSERT_TRUE(redis_->Command({"SADD", "chat:presence:room:" + room_, carol + "|" + gw_a_ + "|4"}).ok());
  auto all = both;
  all.push_back(carol);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(*store_->RoomOnline(room_), all);
}

TEST_F(PresenceStoreTest, ABigRoomIsCountedInFull) {
  // Counting again writes the counts in pieces: one HSET of 5,000 users would pass Lua's limit of
  // values a call may unpack.
  chat::v1::GatewayHeartbeat heartbeat;
  heartbeat.set_gateway(gw_a_);
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Heartbeat(heartbeat), now_).ok());
  constexpr int kUsers = 5000;
  std::vector<std::string> users;
  std::vector<std::string> sadd = {"SADD", "chat:presence:room:" + room_};
  for (int i = 0; i < kUsers; ++i) {
    users.push_back(alice_ + "-" + std::to_string(i));
    sadd.push_back(users.back() + "|" + gw_a_ + "|" + std::to_string(i));
  }
  ASSERT_TRUE(redis_->Command(sadd).ok());
  std::sort(users.begin(), users.end());
  auto online = store_->RoomOnline(room_);
  ASSERT_TRUE(online.ok()) << online.status();
  EXPECT_EQ(*online, users);
  EXPECT_EQ(HashOf(*redis_, "chat:presence:ronline:" + room_).size(), static_cast<size_t>(kUsers));
  EXPECT_EQ(HashOf(*redis_, "chat:presence:rgws:" + room_),
            (std::map<std::string, std::string>{{gw_a_, std::to_string(kUsers)}}));
}

TEST_F(PresenceStoreTest, AMemberOnADeadGatewayIsDroppedFromTheCounts) {
  EnterChanges(gw_a_, "1", alice_);
  EnterChanges(gw_b_, "2", bob_);
  ASSERT_TRUE(redis_->Command({"DEL", "chat:presence:gw:" + gw_b_}).ok());  // B stopped heartbeating
  EXPECT_EQ(*store_->RoomOnline(room_), std::vector<std::string>{alice_});
  using Counts = std::map<std::string, std::string>;
  EXPECT_EQ(HashOf(*redis_, "chat:presence:ronline:" + room_), (Counts{{alice_, "1"}}));
  EXPECT_EQ(HashOf(*redis_, "chat:presence:rgws:" + room_), (Counts{{gw_a_, "1"}}));
  // The sweep closes B's connections later; bob's member is gone already, so nothing is counted twice.
  Sweep(*store_, now_ + Timings().ttl_ms + 1);
  EXPECT_EQ(HashOf(*redis_, "chat:presence:ronline:" + room_), (Counts{{alice_, "1"}}));
  EXPECT_EQ(*store_->RoomOnline(room_), std::vector<std::string>{alice_});
}

TEST_F(PresenceStoreTest, ScriptsSurviveAFlushedScriptCache) {
  EXPECT_EQ(EnterChanges(gw_a_, "1", alice_), std::vector<std::string>{"online:" + alice_});
  // What a Redis restart or SCRIPT FLUSH does: the next call gets NOSCRIPT and loads the script again.
  ASSERT_TRUE(redis_->Command({"SCRIPT", "FLUSH"}).ok());
  EXPECT_EQ(EnterChanges(gw_a_, "2", bob_), std::vector<std::string>{"online:" + bob_});
  ASSERT_TRUE(redis_->Command({"SCRIPT", "FLUSH"}).ok());
  auto users = store_->Users({alice_, bob_});
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_TRUE((*users)[0].online());
  EXPECT_TRUE((*users)[1].online());
}

TEST_F(PresenceStoreTest, ApplyRunsABatchInOrderWithOneResultEach) {
  chat::v1::GatewayHeartbeat heartbeat;
  heartbeat.set_gateway(gw_b_);
  auto beat = ConnectionEvent::Heartbeat(heartbeat);
  std::vector<ConnectionEvent> events = {
      ConnectionEvent::Open(Conn(gw_a_, "1", alice_)),
      ConnectionEvent::Enter(Conn(gw_a_, "1", alice_), room_),
      ConnectionEvent::Open(Conn(gw_b_, "2", alice_)),  // not her first connection
      ConnectionEvent::Enter(Conn(gw_b_, "2", bob_), room_),
      beat,
      ConnectionEvent::Exit(Conn(gw_a_, "1", alice_), room_),
      ConnectionEvent::Close(Conn(gw_a_, "1", alice_)),
      ConnectionEvent::Open(Conn(gw_a_, "3", alice_)),  // her only other one is gw_b_'s, still alive
  };
  auto results = store_->Apply(events, now_);
  ASSERT_EQ(results.size(), events.size());
  for (size_t i = 0; i < results.size(); ++i) EXPECT_TRUE(results[i].status.ok()) << i << results[i].status;
  EXPECT_TRUE(results[0].first);
  EXPECT_EQ(Describe(results[1].enter.changes), std::vector<std::string>{"online:" + alice_});
  EXPECT_EQ(results[1].enter.online, std::vector<std::string>{alice_});
  EXPECT_FALSE(results[2].first);
  EXPECT_EQ(Describe(results[3].enter.changes), std::vector<std::string>{"online:" + bob_});
  auto both = std::vector<std::string>{alice_, bob_};
  std::sort(both.begin(), both.end());
  EXPECT_EQ(results[3].enter.online, both);  // alice entered earlier in the same batch
  EXPECT_FALSE(results[7].first);
  // Applied in order: alice entered and then left the room; bob is still in it.
  EXPECT_EQ(*store_->RoomOnline(room_), std::vector<std::string>{bob_});
}

TEST_F(PresenceStoreTest, AFailedEventLeavesTheRestOfTheBatchApplied) {
  // A key of the wrong type makes alice's enter fail inside Redis (WRONGTYPE).
  ASSERT_TRUE(redis_->Command({"SET", "chat:presence:uroom:" + room_ + "|" + alice_, "x"}).ok());
  auto results = store_->Apply({ConnectionEvent::Enter(Conn(gw_a_, "1", bob_), room_),
                                ConnectionEvent::Enter(Conn(gw_a_, "2", alice_), room_),
                                ConnectionEvent::Open(Conn(gw_a_, "3", alice_))},
                               now_);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].status.ok()) << results[0].status;
  EXPECT_EQ(results[1].status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(results[1].status.message().find("WRONGTYPE"), std::string::npos) << results[1].status;
  EXPECT_TRUE(results[2].status.ok()) << results[2].status;
  EXPECT_EQ(Describe(results[0].enter.changes), std::vector<std::string>{"online:" + bob_});
  ASSERT_TRUE(redis_->Command({"DEL", "chat:presence:uroom:" + room_ + "|" + alice_}).ok());
}

TEST_F(PresenceStoreTest, ABatchSurvivesAFlushedScriptCache) {
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Open(Conn(gw_a_, "0", bob_)), now_)
                  .ok());  // every script the batch uses is loaded
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Enter(Conn(gw_a_, "0", bob_), room_), now_).ok());
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Exit(Conn(gw_a_, "0", bob_), room_), now_).ok());
  ASSERT_TRUE(redis_->Command({"SCRIPT", "FLUSH"}).ok());
  auto results = store_->Apply({ConnectionEvent::Open(Conn(gw_a_, "1", alice_)),
                                ConnectionEvent::Enter(Conn(gw_a_, "1", alice_), room_),
                                ConnectionEvent::Exit(Conn(gw_a_, "0", bob_), room_)},
                               now_);
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(results[0].first);
  EXPECT_EQ(results[1].enter.online, std::vector<std::string>{alice_});
}

TEST_F(PresenceStoreTest, TwoReplicasSweepingClaimEachChangeOnce) {
  EnterChanges(gw_a_, "1", alice_);
  ASSERT_TRUE(ApplyOk(ConnectionEvent::Close(Conn(gw_a_, "1", alice_)), now_).ok());
  int64_t due = now_ + Timings().grace_ms;
  auto first = Sweep(*other_replica_, due);
  auto second = Sweep(*store_, due);
  EXPECT_EQ(first.size() + second.size(), 1u);
}

TEST_F(PresenceStoreTest, TypingIsThrottledStopsAndExpires) {
  chat::v1::TypingUpdate u;
  *u.mutable_conn() = Conn(gw_a_, "1", alice_);
  u.set_room(room_);
  u.set_active(true);
  EXPECT_EQ(Describe(*store_->Typing(u, now_)), std::vector<std::string>{"typing:" + alice_});
  EXPECT_TRUE(Describe(*store_->Typing(u, now_ + 300)).empty());  // throttled (the key's PX is real time)
  u.set_active(false);
  EXPECT_EQ(Describe(*store_->Typing(u, now_ + 400)), std::vector<std::string>{"stopped:" + alice_});
  EXPECT_TRUE(Describe(*store_->Typing(u, now_ + 500)).empty());  // stopped once
  u.set_active(true);
  EXPECT_EQ(Describe(*store_->Typing(u, now_ + 600)), std::vector<std::string>{"typing:" + alice_});
  EXPECT_TRUE(Sweep(*store_, now_ + 600 + 4999).empty());
  EXPECT_EQ(Sweep(*store_, now_ + 600 + 5000), std::vector<std::string>{"stopped:" + alice_});
  EXPECT_TRUE(Sweep(*store_, now_ + 20000).empty());
}

TEST_F(PresenceStoreTest, TypingClearedByAMessageEndsSilently) {
  chat::v1::TypingUpdate u;
  *u.mutable_conn() = Conn(gw_a_, "1", alice_);
  u.set_room(room_);
  u.set_active(true);
  ASSERT_EQ(store_->Typing(u, now_)->size(), 1u);
  u.set_clear(true);
  EXPECT_TRUE(store_->Typing(u, now_ + 100)->empty());
  EXPECT_TRUE(Sweep(*store_, now_ + 60000).empty());  // no active:false later either
}

TEST_F(PresenceStoreTest, EnteringCountsAsAHeartbeat) {
  // The first connection of a new gateway may enter a room before its open or heartbeat is seen.
  auto r = ApplyOne(ConnectionEvent::Enter(Conn(gw_a_, "1", alice_), room_), now_);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.enter.online, std::vector<std::string>{alice_});
}

TEST_F(PresenceStoreTest, RoomPresenceEventsCanBeTurnedOff) {
  auto servers = LoadTestServers();
  PresenceTimings t = Timings();
  t.room_presence_events = false;
  RedisPresenceStore quiet(servers.redis_host, servers.redis_port, t);
  // A plain subscriber on the room's channel and the Watch channel.
  redisContext* sub = redisConnect(servers.redis_host.c_str(), servers.redis_port);
  ASSERT_TRUE(sub && !sub->err);
  timeval tv{2, 0};
  redisSetTimeout(sub, tv);
  std::string room_channel = RoomChannel(room_);
  for (const std::string& ch : {room_channel, std::string(kPresenceEventsChannel)}) {
    auto* r = static_cast<redisReply*>(redisCommand(sub, "SUBSCRIBE %s", ch.c_str()));
    ASSERT_NE(r, nullptr);
    freeReplyObject(r);
  }
  auto next_channel = [&]() -> std::string {
    void* raw = nullptr;
    if (redisGetReply(sub, &raw) != REDIS_OK || raw == nullptr) return "(none)";
    auto* r = static_cast<redisReply*>(raw);
    std::string ch = r->type == REDIS_REPLY_ARRAY && r->elements == 3 ? r->element[1]->str : "(other)";
    freeReplyObject(r);
    return ch;
  };
  auto entered = quiet.Apply({ConnectionEvent::Enter(Conn(gw_a_, "1", alice_), room_)}, now_).front();
  ASSERT_TRUE(entered.status.ok()) << entered.status;
  ASSERT_EQ(Describe(entered.enter.changes), std::vector<std::string>{"online:" + alice_});
  ASSERT_TRUE(quiet.Publish(entered.enter.changes).ok());
  chat::v1::TypingUpdate u;
  *u.mutable_conn() = Conn(gw_a_, "1", alice_);
  u.set_room(room_);
  u.set_active(true);
  auto typing = quiet.Typing(u, now_);
  ASSERT_TRUE(typing.ok());
  ASSERT_TRUE(quiet.Publish(*typing).ok());
  // online: the Watch channel only; typing: the room, then the Watch channel.
  EXPECT_EQ(next_channel(), kPresenceEventsChannel);
  EXPECT_EQ(next_channel(), room_channel);
  EXPECT_EQ(next_channel(), kPresenceEventsChannel);
  redisFree(sub);
}

TEST_F(PresenceStoreTest, RedisDownIsUnavailable) {
  RedisPresenceStore down("127.0.0.1", 1, Timings());
  auto results = down.Apply({ConnectionEvent::Open(Conn(gw_a_, "1", alice_)),
                             ConnectionEvent::Enter(Conn(gw_a_, "1", alice_), room_)},
                            now_);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace chat::presence
