// The keepalive sweep's pieces: SweepInSlices runs a check over many sessions on their io thread a
// slice per handler, so what was posted meanwhile runs between slices; SessionSet::Share splits the
// sessions into fixed shares, each session in exactly one, so a sweep turn checks only its share.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "transport/gateway_context.h"
#include "transport/lane_sweep.h"

namespace chat::gateway {
namespace {

namespace asio = boost::asio;

TEST(SweepInSlices, HandlersPostedMeanwhileRunBetweenSlices) {
  asio::io_context lane;
  std::vector<std::string> log;
  std::vector<int> items(10);
  for (int i = 0; i < 10; ++i) items[i] = i;
  SweepInSlices(lane, items, 4, [&](int i) { log.push_back("check " + std::to_string(i)); });
  asio::post(lane, [&] { log.push_back("delivery"); });
  lane.run();
  // 0-3 in the first handler, then the delivery posted after the sweep began, then 4-7 and 8-9.
  std::vector<std::string> want = {"check 0", "check 1", "check 2", "check 3", "delivery", "check 4",
                                   "check 5", "check 6", "check 7", "check 8", "check 9"};
  EXPECT_EQ(log, want);
}

TEST(SweepInSlices, NothingIsPostedForNoItems) {
  asio::io_context lane;
  SweepInSlices(lane, std::vector<int>{}, 4, [](int) { FAIL(); });
  EXPECT_EQ(lane.poll(), 0u);
}

class NamedSession : public ClientSession {
 public:
  explicit NamedSession(std::string id) : id(std::move(id)) {}
  void Deliver(std::shared_ptr<const Delivery>) override {}
  void JoinFromAnyThread(std::string) override {}
  void DeliverRaw(std::shared_ptr<const std::string>) override {}
  void CloseFromAnyThread(uint16_t, std::string) override {}
  const std::string id;
};

TEST(SessionSet, SharesHoldEverySessionExactlyOnce) {
  SessionSet set;
  std::vector<std::shared_ptr<NamedSession>> sessions;
  for (int i = 0; i < 500; ++i) {
    sessions.push_back(std::make_shared<NamedSession>("c" + std::to_string(i)));
    set.Add(sessions.back()->id, "u" + std::to_string(i % 7), sessions.back());
  }
  // 16 shares (the sweep's most), and 5, which does not divide the 16 shards.
  for (size_t shares : {SessionSet::kShards, size_t{5}}) {
    std::multiset<std::string> seen;
    size_t empty = 0;
    for (size_t part = 0; part < shares; ++part) {
      auto share = set.Share(part, shares);
      if (share.empty()) ++empty;
      for (const auto& s : share) seen.insert(static_cast<const NamedSession&>(*s).id);
    }
    EXPECT_EQ(seen.size(), 500u) << shares;
    for (const auto& s : sessions) EXPECT_EQ(seen.count(s->id), 1u) << s->id << " in " << shares;
    EXPECT_EQ(empty, 0u) << "500 sessions leave none of " << shares << " shares empty";
  }
  // The same share twice is the same sessions; one share of one is all of them.
  EXPECT_EQ(set.Share(3, 16).size(), set.Share(3, 16).size());
  EXPECT_EQ(set.Share(0, 1).size(), 500u);
  EXPECT_EQ(set.All().size(), 500u);
  // A part outside the shares is empty; more shares than shards are as many as the shards.
  EXPECT_TRUE(set.Share(5, 5).empty());
  EXPECT_EQ(set.Share(0, 0).size(), 500u);
  size_t in_many = 0;
  for (size_t part = 0; part < 40; ++part) in_many += set.Share(part, 40).size();
  EXPECT_EQ(in_many, 500u);
  // A session gone is in no share.
  sessions.resize(100);
  size_t alive = 0;
  for (size_t part = 0; part < SessionSet::kShards; ++part)
    alive += set.Share(part, SessionSet::kShards).size();
  EXPECT_EQ(alive, 100u);
}

TEST(SessionSet, CountsEachSessionOnce) {
  SessionSet set;
  auto a = std::make_shared<NamedSession>("a");
  auto b = std::make_shared<NamedSession>("b");
  set.Add("a", "u", a);
  set.Add("a", "u", a);  // the same id again replaces it
  set.Add("b", "v", b);
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(set.users(), 2u);
  EXPECT_EQ(set.OfUser("u").size(), 1u);
  set.Remove("nobody", "w");
  EXPECT_EQ(set.size(), 2u);
  set.Remove("a", "u");
  EXPECT_EQ(set.size(), 1u);
  EXPECT_TRUE(set.OfUser("u").empty());
  EXPECT_EQ(set.OfUser("v").size(), 1u);
}

}  // namespace
}  // namespace chat::gateway
