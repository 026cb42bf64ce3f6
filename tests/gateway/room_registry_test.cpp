#include "domain/room_registry.h"

#include <gtest/gtest.h>

namespace chat::gateway {
namespace {

struct Inbox : RoomMember {
  void Deliver(std::shared_ptr<const Delivery> d) override { frames.push_back(std::move(d)); }
  std::vector<std::shared_ptr<const Delivery>> frames;
};

TEST(RoomRegistry, FirstAndLastMemberAreReported) {
  RoomRegistry r;
  auto a = std::make_shared<Inbox>(), b = std::make_shared<Inbox>();
  EXPECT_TRUE(r.Add("general", "c1", a));
  EXPECT_FALSE(r.Add("general", "c2", b));
  EXPECT_EQ(r.Members("general").size(), 2u);
  EXPECT_FALSE(r.Remove("general", "c1"));
  EXPECT_FALSE(r.Remove("general", "c1"));  // twice: no effect
  EXPECT_TRUE(r.Remove("general", "c2"));
  EXPECT_EQ(r.RoomCount(), 0u);
  EXPECT_FALSE(r.Remove("nowhere", "c1"));
}

TEST(RoomRegistry, GoneMembersAreSkipped) {
  RoomRegistry r;
  auto a = std::make_shared<Inbox>();
  {
    auto gone = std::make_shared<Inbox>();
    r.Add("general", "gone", gone);
  }
  r.Add("general", "a", a);
  auto members = r.Members("general");
  ASSERT_EQ(members.size(), 1u);
  auto frame = std::make_shared<const Delivery>(
      Delivery{"general", 1, std::make_shared<const std::string>("x"), nullptr});
  for (auto& m : members) m->Deliver(frame);
  ASSERT_EQ(a->frames.size(), 1u);
  EXPECT_EQ(a->frames[0].get(), frame.get());  // the same bytes, not a copy
}

}  // namespace
}  // namespace chat::gateway
