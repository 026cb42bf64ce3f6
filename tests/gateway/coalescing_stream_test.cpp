// CoalescingStream over a real loopback TCP connection: frames and raw writes come out whole and in
// the order they were queued, many frames share a socket write, and the teardown hook waits for the
// queue to drain.
#include "transport/coalescing_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace chat::gateway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Pair {
  asio::io_context io;
  std::unique_ptr<CoalescingStream<boost::beast::tcp_stream>> server;
  tcp::socket client{io};

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    server = std::make_unique<CoalescingStream<boost::beast::tcp_stream>>(acceptor.accept());
  }

  // Reads `n` bytes from the client side while running the io_context.
  std::string Read(size_t n) {
    std::string got(n, '\0');
    bool done = false;
    asio::async_read(client, asio::buffer(got), [&](boost::system::error_code ec, size_t) {
      EXPECT_FALSE(ec) << ec.message();
      done = true;
    });
    while (!done && io.run_one()) {
    }
    return got;
  }
};

// Parses unmasked text frames from the wire.
std::vector<std::string> Frames(const std::string& wire) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < wire.size()) {
    EXPECT_EQ(static_cast<unsigned char>(wire[at]), 0x81u);
    size_t len = static_cast<unsigned char>(wire[at + 1]);
    at += 2;
    if (len == 126) {
      len = (static_cast<unsigned char>(wire[at]) << 8) | static_cast<unsigned char>(wire[at + 1]);
      at += 2;
    } else if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(wire[at + i]);
      at += 8;
    }
    out.push_back(wire.substr(at, len));
    at += len;
  }
  return out;
}

TEST(CoalescingStream, FramesComeOutWholeInOrderAndShareWrites) {
  Pair p;
  std::vector<std::string> sent;
  size_t wire_bytes = 0;
  for (int i = 0; i < 500; ++i) {
    // Sizes across the three header forms.
    std::string body = std::to_string(i) + std::string(i % 3 == 0 ? 10 : i % 3 == 1 ? 300 : 70000, 'x');
    sent.push_back(body);
    wire_bytes += body.size() + (body.size() < 126 ? 2 : body.size() < 65536 ? 4 : 10);
    p.server->QueueText(std::make_shared<const std::string>(body));
  }
  EXPECT_GT(p.server->queued_bytes(), 0u);
  EXPECT_EQ(Frames(p.Read(wire_bytes)), sent);
  EXPECT_LT(p.server->flushes(), 50u) << "frames queued behind a write go out together";
  EXPECT_EQ(p.server->queued_bytes(), 0u);
}

TEST(CoalescingStream, RawWritesKeepTheirPlaceAndTeardownWaitsForTheQueue) {
  Pair p;
  p.server->QueueText(std::make_shared<const std::string>("first"));
  std::string raw = "\x88\x02\x03\xe8";  // a close frame, as Beast would write it
  bool write_done = false;
  p.server->async_write_some(asio::buffer(raw), [&](boost::system::error_code ec, size_t n) {
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, raw.size());
    write_done = true;
  });
  p.server->QueueText(std::make_shared<const std::string>("second"));
  bool flushed = false;
  p.server->WhenFlushed([&] { flushed = true; });
  std::string wire = p.Read(7 + raw.size() + 8);
  EXPECT_EQ(wire.substr(0, 7), std::string("\x81\x05") + "first");
  EXPECT_EQ(wire.substr(7, raw.size()), raw);
  EXPECT_EQ(wire.substr(7 + raw.size()), std::string("\x81\x06") + "second");
  while (!(write_done && flushed) && p.io.run_one()) {
  }
  EXPECT_TRUE(write_done);
  EXPECT_TRUE(flushed);
}

TEST(CoalescingStream, DropQueuedKeepsOnlyTheWriteInFlight) {
  Pair p;
  p.server->QueueText(std::make_shared<const std::string>("in flight"));
  for (int i = 0; i < 10; ++i) p.server->QueueText(std::make_shared<const std::string>("dropped"));
  p.server->DropQueued();
  EXPECT_EQ(p.server->queued_bytes(), 11u);
  EXPECT_EQ(p.Read(11), std::string("\x81\x09") + "in flight");
}

}  // namespace
}  // namespace chat::gateway
