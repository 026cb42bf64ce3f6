#include "domain/send_batch.h"

#include <gtest/gtest.h>

#include "common/text_rules.h"
#include "domain/messages_logic.h"

namespace chat::messages {
namespace {

AppendOutcome Stored(int64_t seq, const std::string& client_id) {
  AppendOutcome o;
  o.message.set_seq(seq);
  o.message.set_client_id(client_id);
  return o;
}

TEST(SendBatch, RepeatedKeyIsStoredOnceAndAnsweredAsDuplicate) {
  SendBatch b;
  b.Add({"general", "alice", "c1", "hi"});
  b.Add({"general", "bob", "c1", "hi"});    // same client id, other sender: distinct
  b.Add({"general", "alice", "c1", "hi"});  // repeat of the first
  ASSERT_EQ(b.unique().size(), 2u);
  EXPECT_EQ(b.size(), 3u);
  std::vector<absl::StatusOr<AppendOutcome>> stored = {Stored(1, "c1"), Stored(2, "c1")};
  auto first = b.OutcomeFor(0, stored);
  auto other = b.OutcomeFor(1, stored);
  auto again = b.OutcomeFor(2, stored);
  ASSERT_TRUE(first.ok() && other.ok() && again.ok());
  EXPECT_EQ(first->message.seq(), 1);
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(other->message.seq(), 2);
  EXPECT_EQ(again->message.seq(), 1);
  EXPECT_TRUE(again->duplicate);
}

TEST(SendBatch, RefusalIsSharedByRepeats) {
  SendBatch b;
  b.Add({"nope", "alice", "c1", "hi"});
  b.Add({"nope", "alice", "c1", "hi"});
  std::vector<absl::StatusOr<AppendOutcome>> stored = {absl::NotFoundError("no room")};
  EXPECT_EQ(b.OutcomeFor(0, stored).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(b.OutcomeFor(1, stored).status().code(), absl::StatusCode::kNotFound);
}

TEST(DmRoomId, SameForBothAndAValidRoomName) {
  EXPECT_EQ(DmRoomId("alice", "bob"), DmRoomId("bob", "alice"));
  EXPECT_NE(DmRoomId("alice", "bob"), DmRoomId("alice", "carol"));
  EXPECT_NE(DmRoomId("a", "bc"), DmRoomId("ab", "c"));
  EXPECT_TRUE(ValidateRoomName(DmRoomId("user@example.com", "bob")).ok());
}

}  // namespace
}  // namespace chat::messages
