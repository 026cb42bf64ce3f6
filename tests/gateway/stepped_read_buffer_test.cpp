#include "transport/stepped_read_buffer.h"

#include <gtest/gtest.h>

#include <string>

namespace chat::gateway {
namespace {

TEST(SteppedReadBuffer, AsksForOneStepAtATime) {
  SteppedReadBuffer b;
  // What Beast prepares for a read that has not arrived yet: kStep, not 1536.
  EXPECT_EQ(b.max_size() - b.size(), SteppedReadBuffer::kStep);
  b.commit(boost::asio::buffer_copy(b.prepare(100), boost::asio::buffer(std::string(100, 'a'))));
  EXPECT_EQ(b.max_size() - b.size(), SteppedReadBuffer::kStep);
  // The rest of a long message in one piece (Beast asks for what the frame header announced).
  b.commit(boost::asio::buffer_copy(b.prepare(70000), boost::asio::buffer(std::string(70000, 'b'))));
  EXPECT_EQ(b.size(), 70100u);
}

TEST(SteppedReadBuffer, GivesBackWhatALargeMessageTook) {
  SteppedReadBuffer b;
  b.commit(b.prepare(SteppedReadBuffer::kStep).size());
  b.Reset();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_LE(b.capacity(), SteppedReadBuffer::kKeep);
  b.commit(b.prepare(64 * 1024).size());
  b.Reset();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), 0u);
}

}  // namespace
}  // namespace chat::gateway
