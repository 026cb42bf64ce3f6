// PgMessageStore against a real PostgreSQL (started by the ctest fixture).
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "storage/pg_message_store.h"
#include "support/test_env.h"

namespace chat::messages {
namespace {

using chat::testing::LoadTestServers;
using chat::testing::UniqueName;

class PgMessageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = LoadTestServers().database_url;
    ASSERT_TRUE(ApplyMigrations(url_).ok());
    store_ = std::make_unique<PgMessageStore>(url_);
    room_ = UniqueName("room");
    ASSERT_TRUE(store_->CreateRoom(room_, chat::v1::ROOM_KIND_PUBLIC, {}).ok());
  }

  std::vector<absl::StatusOr<AppendOutcome>> Append(const std::vector<NewMessage>& batch) {
    auto r = store_->AppendBatch(batch);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<absl::StatusOr<AppendOutcome>>{};
  }

  std::string url_;
  std::string room_;
  std::unique_ptr<PgMessageStore> store_;
};

TEST_F(PgMessageStoreTest, MigrationsAreIdempotent) {
  EXPECT_TRUE(ApplyMigrations(url_).ok());
  EXPECT_TRUE(ApplyMigrations(url_).ok());
}

TEST_F(PgMessageStoreTest, BatchFunctionsArePlannedOnceAsIndexProbes) {
  // Re-planning append_batch on every call was a third of PostgreSQL's CPU at one message a commit; a
  // plan kept from when a table was small must not scan it whole once it has grown.
  pqxx::connection c(url_);
  pqxx::work tx(c);
  auto r = tx.exec(
      "SELECT proname, array_to_string(proconfig, ',') FROM pg_proc "
      "WHERE proname IN ('append_batch', 'join_rooms') ORDER BY proname");
  ASSERT_EQ(r.size(), 2u);
  for (const auto& row : r) {
    EXPECT_EQ(row[1].c_str(), std::string("plan_cache_mode=force_generic_plan,enable_seqscan=off"))
        << row[0].c_str();
  }
}

TEST_F(PgMessageStoreTest, IdColumnsCompareBytewise) {
  // Every message probes and inserts B-tree keys on these columns: under the database's locale each
  // comparison is a strcoll (migrations/008_keys_collate_c.sql).
  pqxx::connection c(url_);
  pqxx::work tx(c);
  auto r = tx.exec(
      "SELECT table_name || '.' || column_name, coalesce(collation_name, '(default)') "
      "FROM information_schema.columns WHERE table_schema = current_schema() AND "
      "(table_name, column_name) IN (('rooms', 'id'), ('room_members', 'room'), ('room_members', 'user_id'), "
      "('messages', 'room'), ('messages', 'sender'), ('messages', 'client_id'), ('mutes', 'room'), "
      "('mutes', 'user_id')) ORDER BY 1");
  ASSERT_EQ(r.size(), 8u);
  for (const auto& row : r) EXPECT_EQ(row[1].c_str(), std::string("C")) << row[0].c_str();
  // The foreign keys came back after the change: a message for a room that does not exist is refused.
  EXPECT_THROW(tx.exec("INSERT INTO messages (room, seq, id, sender, client_id, body) "
                       "VALUES ('no-such-room-fk', 1, gen_random_uuid(), 'a', 'fk1', 'x')"),
               pqxx::foreign_key_violation);
}

TEST_F(PgMessageStoreTest, SeqsStartAtOneAndFollowArrivalOrder) {
  auto out =
      Append({{room_, "alice", "a1", "one"}, {room_, "bob", "b1", "two"}, {room_, "alice", "a2", "three"}});
  ASSERT_EQ(out.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(out[i].ok()) << out[i].status();
    EXPECT_EQ(out[i]->message.seq(), i + 1);
    EXPECT_FALSE(out[i]->duplicate);
    EXPECT_EQ(out[i]->message.id().size(), 36u);  // uuid
  }
  EXPECT_EQ(out[1]->message.from(), "bob");
  EXPECT_EQ(out[2]->message.text(), "three");
  auto info = store_->GetRoom(room_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->last_seq(), 3);
}

TEST_F(PgMessageStoreTest, AnyTextIsStoredUnchanged) {
  // The batch goes to the server as text[] literals: quoting must not change a byte.
  std::vector<std::string> texts = {R"(quote " and backslash \ and \")",
                                    "{braces},commas, spaces ",
                                    "NULL",
                                    "",
                                    "日本語 ✓ emoji 🎉",
                                    "line\nbreak\ttab"};
  std::vector<NewMessage> batch;
  for (size_t i = 0; i < texts.size(); ++i)
    batch.push_back({room_, "alice", "t" + std::to_string(i), texts[i]});
  auto out = Append(batch);
  ASSERT_EQ(out.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_TRUE(out[i].ok()) << out[i].status();
    EXPECT_EQ(out[i]->message.text(), texts[i]);
  }
  chat::v1::HistoryRequest req;
  req.set_room(room_);
  req.set_limit(50);
  auto page = store_->History(req);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->messages_size(), static_cast<int>(texts.size()));
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(page->messages(static_cast<int>(i)).text(), texts[i]);
}

TEST_F(PgMessageStoreTest, RepeatedClientIdReturnsTheFirstMessage) {
  auto first = Append({{room_, "alice", "dup-1", "original"}});
  ASSERT_TRUE(first[0].ok());
  auto again = Append({{room_, "alice", "dup-1", "a different text"}, {room_, "alice", "dup-2", "new"}});
  ASSERT_TRUE(again[0].ok());
  EXPECT_TRUE(again[0]->duplicate);
  EXPECT_EQ(again[0]->message.seq(), first[0]->message.seq());
  EXPECT_EQ(again[0]->message.id(), first[0]->message.id());
  EXPECT_EQ(again[0]->message.text(), "original");
  // The next message takes the next seq: the duplicate consumed none.
  EXPECT_EQ(again[1]->message.seq(), first[0]->message.seq() + 1);
}

TEST_F(PgMessageStoreTest, RefusalsDoNotAffectTheRestOfTheBatch) {
  std::string priv = UniqueName("private");
  ASSERT_TRUE(store_->CreateRoom(priv, chat::v1::ROOM_KIND_PRIVATE, {"carol"}).ok());
  auto out = Append({{room_, "alice", UniqueName("c"), "ok"},
                     {UniqueName("missing"), "alice", UniqueName("c"), "no room"},
                     {priv, "alice", UniqueName("c"), "not a member"},
                     {priv, "carol", UniqueName("c"), "member"},
                     {room_, "alice", UniqueName("c"), "ok too"}});
  ASSERT_TRUE(out[0].ok());
  EXPECT_EQ(out[1].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(out[2].status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(out[3].ok());
  EXPECT_EQ(out[3]->message.seq(), 1);
  ASSERT_TRUE(out[4].ok());
  EXPECT_EQ(out[4]->message.seq(), 2);
}

TEST_F(PgMessageStoreTest, SystemMessages) {
  auto out = Append({{room_, "", "sys-1", "maintenance at noon"}});
  ASSERT_TRUE(out[0].ok());
  EXPECT_EQ(out[0]->message.kind(), "system");
  EXPECT_EQ(out[0]->message.from(), "");
}

TEST_F(PgMessageStoreTest, HistoryPagesBackwardAndForward) {
  std::vector<NewMessage> batch;
  for (int i = 1; i <= 120; ++i)
    batch.push_back({room_, "alice", "h" + std::to_string(i) + room_, "m" + std::to_string(i)});
  Append(batch);

  chat::v1::HistoryRequest req;
  req.set_room(room_);
  req.set_user("bob");
  req.set_limit(50);
  auto page = store_->History(req);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->messages_size(), 50);
  EXPECT_EQ(page->messages(0).seq(), 71);
  EXPECT_EQ(page->messages(49).seq(), 120);
  EXPECT_TRUE(page->has_more());

  req.set_before_seq(71);
  page = store_->History(req);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->messages(0).seq(), 21);
  EXPECT_EQ(page->messages(49).seq(), 70);
  EXPECT_TRUE(page->has_more());

  req.set_before_seq(21);
  page = store_->History(req);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->messages_size(), 20);
  EXPECT_EQ(page->messages(0).seq(), 1);
  EXPECT_EQ(page->messages(0).text(), "m1");
  EXPECT_FALSE(page->has_more());

  req.set_before_seq(0);
  req.set_after_seq(100);
  page = store_->History(req);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->messages_size(), 20);
  EXPECT_EQ(page->messages(0).seq(), 101);
  EXPECT_FALSE(page->has_more());
}

TEST_F(PgMessageStoreTest, HistoryOfPrivateRoomNeedsMembership) {
  std::string priv = UniqueName("private");
  ASSERT_TRUE(store_->CreateRoom(priv, chat::v1::ROOM_KIND_PRIVATE, {"carol"}).ok());
  chat::v1::HistoryRequest req;
  req.set_room(priv);
  req.set_user("mallory");
  EXPECT_EQ(store_->History(req).status().code(), absl::StatusCode::kPermissionDenied);
  req.set_user("carol");
  EXPECT_TRUE(store_->History(req).ok());
  req.set_room(UniqueName("missing"));
  EXPECT_EQ(store_->History(req).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PgMessageStoreTest, JoinRules) {
  auto joined = store_->Join(room_, "dave");
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(joined->member_count(), 1);
  EXPECT_EQ(store_->Join(room_, "dave")->member_count(), 1);  // idempotent
  std::string priv = UniqueName("private");
  ASSERT_TRUE(store_->CreateRoom(priv, chat::v1::ROOM_KIND_PRIVATE, {"carol"}).ok());
  EXPECT_EQ(store_->Join(priv, "dave").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(store_->Join(priv, "carol").ok());
  EXPECT_EQ(store_->Join(UniqueName("missing"), "dave").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PgMessageStoreTest, JoinBatchFollowsTheJoinRulesPerJoin) {
  std::string priv = UniqueName("private");
  ASSERT_TRUE(store_->CreateRoom(priv, chat::v1::ROOM_KIND_PRIVATE, {"carol"}).ok());
  Append({{room_, "erin", "c1", "one"}, {room_, "erin", "c2", "two"}});
  std::string missing = UniqueName("missing");
  auto out = store_->JoinBatch({{room_, "dave"},
                                {priv, "dave"},
                                {priv, "carol"},
                                {missing, "dave"},
                                {room_, "dave"},  // twice in one batch
                                {room_, "frank"}});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 6u);
  ASSERT_TRUE((*out)[0].ok()) << (*out)[0].status();
  EXPECT_EQ((*out)[0]->room(), room_);
  EXPECT_EQ((*out)[0]->kind(), chat::v1::ROOM_KIND_PUBLIC);
  EXPECT_EQ((*out)[0]->last_seq(), 2);
  EXPECT_EQ((*out)[1].status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE((*out)[2].ok()) << (*out)[2].status();
  EXPECT_EQ((*out)[2]->kind(), chat::v1::ROOM_KIND_PRIVATE);
  EXPECT_EQ((*out)[3].status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*out)[4].ok());
  EXPECT_TRUE((*out)[5].ok());
  // Joining the public room made dave and frank members (erin became one by sending), once each.
  EXPECT_EQ(store_->Join(room_, "gina")->member_count(), 4);
  // Nothing was recorded for the refused ones.
  EXPECT_EQ(store_->Join(priv, "dave").status().code(), absl::StatusCode::kPermissionDenied);
  // Any text goes through the array literal unchanged.
  std::string odd = UniqueName("we\"ird,{room}");
  ASSERT_TRUE(store_->CreateRoom(odd, chat::v1::ROOM_KIND_PUBLIC, {}).ok());
  auto odd_out = store_->JoinBatch({{odd, "h\\al"}});
  ASSERT_TRUE(odd_out.ok()) << odd_out.status();
  ASSERT_TRUE((*odd_out)[0].ok()) << (*odd_out)[0].status();
  EXPECT_EQ((*odd_out)[0]->room(), odd);
}

TEST_F(PgMessageStoreTest, MutedSendsAreRefusedUntilUnmuted) {
  std::string user = UniqueName("loud");
  ASSERT_TRUE(store_->Mute("*", user, 0, "root").ok());
  auto out = Append({{room_, user, UniqueName("c"), "spam"}, {room_, "alice", UniqueName("c"), "fine"}});
  EXPECT_EQ(out[0].status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(out[1].ok());
  EXPECT_EQ(out[1]->message.seq(), 1);  // the refused send took no seq
  ASSERT_TRUE(store_->Unmute("*", user).ok());
  out = Append({{room_, user, UniqueName("c"), "sorry"}});
  ASSERT_TRUE(out[0].ok()) << out[0].status();
  // A room mute applies to that room only; an expired mute does not apply.
  ASSERT_TRUE(store_->Mute(room_, user, 0, "root").ok());
  std::string other = UniqueName("room");
  ASSERT_TRUE(store_->CreateRoom(other, chat::v1::ROOM_KIND_PUBLIC, {}).ok());
  out = Append({{room_, user, UniqueName("c"), "x"}, {other, user, UniqueName("c"), "y"}});
  EXPECT_EQ(out[0].status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(out[1].ok());
}

TEST_F(PgMessageStoreTest, ClearHidesEarlierHistory) {
  std::vector<NewMessage> batch;
  for (int i = 1; i <= 5; ++i) batch.push_back({room_, "alice", UniqueName("c"), "m" + std::to_string(i)});
  Append(batch);
  auto cleared = store_->Clear(room_);
  ASSERT_TRUE(cleared.ok());
  EXPECT_EQ(*cleared, 5);
  Append({{room_, "alice", UniqueName("c"), "after"}});
  chat::v1::HistoryRequest req;
  req.set_room(room_);
  req.set_limit(50);
  auto page = store_->History(req);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->messages_size(), 1);
  EXPECT_EQ(page->messages(0).seq(), 6);
  req.set_after_seq(0);
  req.set_before_seq(0);
  req.set_after_seq(1);
  page = store_->History(req);
  ASSERT_EQ(page->messages_size(), 1);  // resume skips the cleared part too
  EXPECT_EQ(store_->Clear(UniqueName("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PgMessageStoreTest, ReadPositionOnlyMovesForward) {
  Append({{room_, "alice", UniqueName("c"), "1"},
          {room_, "alice", UniqueName("c"), "2"},
          {room_, "alice", UniqueName("c"), "3"}});
  std::string reader = UniqueName("reader");
  EXPECT_EQ(store_->MarkRead(room_, reader, 2).status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(store_->Join(room_, reader).ok());
  auto r = store_->MarkRead(room_, reader, 2);
  ASSERT_TRUE(r.ok()) << r.status();
  using Pos = std::pair<int64_t, bool>;
  EXPECT_EQ(*r, Pos(2, true));
  EXPECT_EQ(*store_->MarkRead(room_, reader, 1), Pos(2, false));
  EXPECT_EQ(*store_->MarkRead(room_, reader, 99), Pos(3, true));  // capped at last seq
}

TEST_F(PgMessageStoreTest, MembersOfPrivateRooms) {
  std::string priv = UniqueName("private");
  ASSERT_TRUE(store_->CreateRoom(priv, chat::v1::ROOM_KIND_PRIVATE, {"carol"}).ok());
  EXPECT_EQ(store_->Join(priv, "dave").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->AddMember(priv, "dave")->member_count(), 2);
  EXPECT_TRUE(store_->Join(priv, "dave").ok());
  EXPECT_EQ(store_->RemoveMember(priv, "dave")->member_count(), 1);
  EXPECT_EQ(store_->Join(priv, "dave").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->AddMember(UniqueName("missing"), "dave").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PgMessageStoreTest, UnreachableDatabaseIsUnavailable) {
  PgMessageStore down("postgresql://chat@127.0.0.1:1/chat?connect_timeout=2");
  auto r = down.GetRoom(room_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace chat::messages
