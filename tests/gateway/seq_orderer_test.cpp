#include "domain/seq_orderer.h"

#include <gtest/gtest.h>

namespace chat::gateway {
namespace {

using Clock = SeqOrderer::Clock;

SeqFrame F(int64_t seq) {
  return SeqFrame{seq, std::make_shared<const std::string>(std::to_string(seq)), nullptr};
}

std::vector<int64_t> Seqs(const SeqOrderer::Step& s) {
  std::vector<int64_t> out;
  for (const auto& f : s.deliver) out.push_back(f.seq);
  return out;
}

SeqOrderer::Options RoomOptions() {
  SeqOrderer::Options o;
  o.start_on_first_frame = true;
  o.refetch_after = std::chrono::milliseconds(1000);
  return o;
}

const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1);

TEST(SeqOrderer, InOrderPassesAndDuplicatesDrop) {
  SeqOrderer o(RoomOptions());
  EXPECT_EQ(Seqs(o.OnLive(F(5), t0)), std::vector<int64_t>{5});
  EXPECT_EQ(Seqs(o.OnLive(F(6), t0)), std::vector<int64_t>{6});
  EXPECT_TRUE(Seqs(o.OnLive(F(6), t0)).empty());
  EXPECT_TRUE(Seqs(o.OnLive(F(3), t0)).empty());
  EXPECT_EQ(o.duplicates(), 2u);
}

TEST(SeqOrderer, TakeNextIsTheFastPathOnly) {
  SeqOrderer::Options opts;  // a connection's: waits for Start
  SeqOrderer o(opts);
  EXPECT_FALSE(o.TakeNext(1)) << "not started";
  o.Start(4, t0);
  EXPECT_TRUE(o.TakeNext(5));
  EXPECT_EQ(o.last(), 5);
  EXPECT_FALSE(o.TakeNext(5)) << "a duplicate is not taken";
  EXPECT_FALSE(o.TakeNext(7)) << "past a gap is not taken";
  EXPECT_EQ(o.last(), 5) << "and changes nothing";
  auto held = o.OnLive(F(7), t0);  // held, with a fetch of 6
  ASSERT_TRUE(held.fetch.has_value());
  EXPECT_FALSE(o.TakeNext(6)) << "while frames are held, OnLive must order them";
  EXPECT_EQ(Seqs(o.OnLive(F(6), t0)), (std::vector<int64_t>{6, 7}));
  EXPECT_TRUE(o.TakeNext(8));
}

TEST(SeqOrderer, GapIsHeldAndFetched) {
  SeqOrderer o(RoomOptions());
  o.OnLive(F(1), t0);
  auto s = o.OnLive(F(4), t0);
  EXPECT_TRUE(s.deliver.empty());
  ASSERT_TRUE(s.fetch);
  EXPECT_EQ(s.fetch->after_seq, 1);
  EXPECT_EQ(s.fetch->limit, 3u);
  EXPECT_FALSE(o.OnLive(F(5), t0).fetch);  // one fetch at a time
  auto filled = o.OnFetched({F(2), F(3), F(4)}, t0);
  EXPECT_EQ(Seqs(filled), (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_FALSE(filled.fetch);
  EXPECT_EQ(o.held(), 0u);
}

TEST(SeqOrderer, ShortFetchAsksForTheRest) {
  SeqOrderer o(RoomOptions());
  o.OnLive(F(1), t0);
  o.OnLive(F(6), t0);
  auto s = o.OnFetched({F(2), F(3)}, t0);
  EXPECT_EQ(Seqs(s), (std::vector<int64_t>{2, 3}));
  ASSERT_TRUE(s.fetch);
  EXPECT_EQ(s.fetch->after_seq, 3);
}

TEST(SeqOrderer, FailedFetchIsRetriedAfterTheDelayOnly) {
  SeqOrderer o(RoomOptions());
  o.OnLive(F(1), t0);
  ASSERT_TRUE(o.OnLive(F(3), t0).fetch);
  o.OnFetchFailed(t0);
  EXPECT_FALSE(o.OnTick(t0 + std::chrono::milliseconds(500)).fetch);
  auto again = o.OnTick(t0 + std::chrono::milliseconds(1500));
  ASSERT_TRUE(again.fetch);
  EXPECT_EQ(again.fetch->after_seq, 1);
  EXPECT_EQ(Seqs(o.OnFetched({F(2)}, t0)), (std::vector<int64_t>{2, 3}));
}

TEST(SeqOrderer, WaitsForStartWhenAsked) {
  SeqOrderer o(SeqOrderer::Options{});
  EXPECT_TRUE(o.OnLive(F(9), t0).deliver.empty());
  EXPECT_TRUE(o.OnLive(F(10), t0).deliver.empty());
  auto s = o.Start(9, t0);  // the client has up to 9
  EXPECT_EQ(Seqs(s), std::vector<int64_t>{10});
  EXPECT_FALSE(s.fetch);
}

TEST(SeqOrderer, StartBehindHeldFramesFetchesTheGap) {
  SeqOrderer o(SeqOrderer::Options{});
  o.OnLive(F(12), t0);
  auto s = o.Start(9, t0);
  EXPECT_TRUE(s.deliver.empty());
  ASSERT_TRUE(s.fetch);
  EXPECT_EQ(s.fetch->after_seq, 9);
}

TEST(SeqOrderer, ProbeAfterResubscribe) {
  SeqOrderer o(RoomOptions());
  o.OnLive(F(1), t0);
  auto p = o.Probe(t0);
  ASSERT_TRUE(p.fetch);
  EXPECT_EQ(p.fetch->after_seq, 1);
  EXPECT_EQ(Seqs(o.OnFetched({F(2), F(3)}, t0)), (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE(o.fetching());
  auto nothing = o.Probe(t0);
  EXPECT_TRUE(Seqs(o.OnFetched({}, t0)).empty());
  EXPECT_FALSE(o.fetching());
  (void)nothing;
}

TEST(SeqOrderer, HeldFramesAreBoundedButNotForgotten) {
  SeqOrderer::Options opts = RoomOptions();
  opts.max_held = 2;
  SeqOrderer o(opts);
  o.OnLive(F(1), t0);
  o.OnLive(F(3), t0);
  o.OnLive(F(4), t0);
  o.OnLive(F(5), t0);  // not held: over the bound
  EXPECT_EQ(o.held(), 2u);
  auto s = o.OnFetched({F(2)}, t0);
  EXPECT_EQ(Seqs(s), (std::vector<int64_t>{2, 3, 4}));
  ASSERT_TRUE(s.fetch);  // 5 is known to exist
  EXPECT_EQ(s.fetch->after_seq, 4);
}

}  // namespace
}  // namespace chat::gateway
