// CoalescingStream over a real loopback TCP connection: frames, control frames and raw bytes come out
// whole and in the order they were queued, many frames share a socket write, and WhenFlushed waits
// for the queue to drain. Held frames (WS_WRITE_DELAY_MS) wait for FlushHeld or the next write, and the
// LaneFlusher flushes each holder once after the delay. A write asked for `now` is made before the call
// returns, and what the socket does not take goes on asynchronously; held raw bytes (the handshake's
// answer) share the next frame's write.
#include "transport/coalescing_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "transport/lane_flusher.h"

namespace chat::gateway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Pair {
  asio::io_context io;
  std::unique_ptr<CoalescingStream<tcp::socket>> server;
  tcp::socket client{io};

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    server = std::make_unique<CoalescingStream<tcp::socket>>(acceptor.accept());
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

TEST(CoalescingStream, ControlFramesAndRawBytesKeepTheirPlaceAndWhenFlushedWaits) {
  Pair p;
  p.server->QueueRaw("HTTP/1.1 101 Switching Protocols\r\n\r\n");
  p.server->QueueText(std::make_shared<const std::string>("first"));
  // Short owned bytes live inside the queue's entries: queue many while the first write is in flight,
  // so the entries move (a sanitizer run catches a gather list left pointing at the old ones).
  for (int i = 0; i < 40; ++i) p.server->QueueFrame(0xa, "p" + std::to_string(i % 10));
  p.server->QueueFrame(0x8, std::string("\x03\xe8", 2));
  p.server->QueueText(std::make_shared<const std::string>("second"));
  bool flushed = false;
  p.server->WhenFlushed([&] { flushed = true; });
  const std::string http = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
  std::string wire = p.Read(http.size() + 7 + 40 * 4 + 4 + 8);
  EXPECT_EQ(wire.substr(0, http.size()), http);
  size_t at = http.size();
  EXPECT_EQ(wire.substr(at, 7), std::string("\x81\x05") + "first");
  at += 7;
  for (int i = 0; i < 40; ++i, at += 4)
    EXPECT_EQ(wire.substr(at, 4), std::string("\x8a\x02p") + std::to_string(i % 10));
  EXPECT_EQ(wire.substr(at, 4), std::string("\x88\x02\x03\xe8", 4));
  EXPECT_EQ(wire.substr(at + 4), std::string("\x81\x06") + "second");
  while (!flushed && p.io.run_one()) {
  }
  EXPECT_TRUE(flushed);
  EXPECT_EQ(p.server->queued_bytes(), 0u);
}

TEST(CoalescingStream, DropQueuedKeepsOnlyTheWriteInFlight) {
  Pair p;
  p.server->QueueText(std::make_shared<const std::string>("in flight"));
  for (int i = 0; i < 10; ++i) p.server->QueueText(std::make_shared<const std::string>("dropped"));
  p.server->DropQueued();
  EXPECT_EQ(p.server->queued_bytes(), 11u);
  EXPECT_EQ(p.Read(11), std::string("\x81\x09") + "in flight");
}

TEST(CoalescingStream, HeldFramesWaitForFlushHeldOrTheNextWrite) {
  Pair p;
  // Held with nothing in flight: nothing is written until FlushHeld, then all in one write.
  EXPECT_TRUE(p.server->QueueText(std::make_shared<const std::string>("a"), false, true));
  EXPECT_TRUE(p.server->QueueText(std::make_shared<const std::string>("b"), false, true));
  p.io.poll();
  p.io.restart();  // poll stopped it: nothing was pending
  EXPECT_EQ(p.server->flushes(), 0u);
  EXPECT_EQ(p.server->queued_bytes(), 6u);
  p.server->FlushHeld();
  EXPECT_EQ(p.server->flushes(), 1u);
  EXPECT_EQ(Frames(p.Read(6)), (std::vector<std::string>{"a", "b"}));
  p.io.poll();  // the write's completion
  p.io.restart();
  // Held, then a frame that is not: both go out in its write, in order; FlushHeld then has nothing to do.
  EXPECT_TRUE(p.server->QueueText(std::make_shared<const std::string>("c"), false, true));
  p.server->QueueText(std::make_shared<const std::string>("ack"));
  EXPECT_EQ(p.server->flushes(), 2u);
  EXPECT_EQ(Frames(p.Read(8)), (std::vector<std::string>{"c", "ack"}));
  p.io.poll();
  p.io.restart();
  p.server->FlushHeld();
  EXPECT_EQ(p.server->flushes(), 2u);
  // Held behind a write in flight: it goes with the next write, no FlushHeld needed.
  p.server->QueueText(std::make_shared<const std::string>("d"));
  EXPECT_FALSE(p.server->QueueText(std::make_shared<const std::string>("e"), false, true));
  EXPECT_EQ(Frames(p.Read(6)), (std::vector<std::string>{"d", "e"}));
  EXPECT_EQ(p.server->flushes(), 4u);  // d's, then e's when d's completed
}

TEST(CoalescingStream, AWriteAskedForNowIsMadeOnTheCallersStack) {
  Pair p;
  p.server->QueueText(std::make_shared<const std::string>("delivered"), false, false, /*now=*/true);
  EXPECT_EQ(p.server->flushes(), 1u);
  EXPECT_EQ(p.server->queued_bytes(), 0u) << "written before QueueText returned";
  EXPECT_EQ(p.io.poll(), 0u) << "no completion left to run";
  std::string got(11, '\0');
  asio::read(p.client, asio::buffer(got));  // without running the io_context
  EXPECT_EQ(got, std::string("\x81\x09") + "delivered");
  // A lane's flush of held frames, the same way: one write.
  p.io.restart();
  for (const char* f : {"x", "y"}) p.server->QueueText(std::make_shared<const std::string>(f), false, true);
  EXPECT_TRUE(p.server->FlushHeld(/*now=*/true));
  EXPECT_EQ(p.server->flushes(), 2u);
  EXPECT_EQ(p.server->queued_bytes(), 0u);
  bool flushed = false;
  p.server->WhenFlushed([&] { flushed = true; });
  EXPECT_TRUE(flushed) << "nothing left to wait for";
  got.assign(6, '\0');
  asio::read(p.client, asio::buffer(got));
  EXPECT_EQ(Frames(got), (std::vector<std::string>{"x", "y"}));
}

TEST(CoalescingStream, HeldRawBytesGoOutWithTheNextFrameInOneWrite) {
  // The handshake's answer waits for the welcome frame; both go in one write made on this stack.
  Pair p;
  const std::string answer = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
  p.server->QueueRaw(answer, /*hold=*/true);
  EXPECT_EQ(p.server->flushes(), 0u);
  EXPECT_EQ(p.server->queued_bytes(), answer.size());
  p.server->QueueText(std::make_shared<const std::string>("welcome"), false, false, /*now=*/true);
  EXPECT_EQ(p.server->flushes(), 1u);
  EXPECT_EQ(p.server->queued_bytes(), 0u);
  EXPECT_EQ(p.io.poll(), 0u) << "no completion left to run";
  std::string got(answer.size() + 9, '\0');
  asio::read(p.client, asio::buffer(got));
  EXPECT_EQ(got, answer + "\x81\x07" + "welcome");
}

TEST(CoalescingStream, AControlFrameAskedForNowIsMadeOnTheCallersStack) {
  // The keepalive sweep's ping (and a pong): no reactor operation for each idle connection.
  Pair p;
  p.server->QueueFrame(0x9, std::string(), /*now=*/true);
  EXPECT_EQ(p.server->flushes(), 1u);
  EXPECT_EQ(p.server->queued_bytes(), 0u);
  EXPECT_EQ(p.io.poll(), 0u) << "no completion left to run";
  std::string got(2, '\0');
  asio::read(p.client, asio::buffer(got));
  EXPECT_EQ(got, std::string("\x89\x00", 2));
}

TEST(CoalescingStream, WhatAWriteNowCannotTakeGoesOnAsynchronouslyInOrder) {
  Pair p;
  std::vector<std::string> sent;
  size_t wire_bytes = 0;
  auto queue = [&](std::string body, bool hold, bool now) {
    wire_bytes += body.size() + (body.size() < 126 ? 2 : body.size() < 65536 ? 4 : 10);
    sent.push_back(body);
    p.server->QueueText(std::make_shared<const std::string>(std::move(body)), false, hold, now);
  };
  // More held frames than one call can write (64 buffers: 32 frames) and than one flush takes (256).
  for (int i = 0; i < 300; ++i) queue("held " + std::to_string(i), true, false);
  EXPECT_TRUE(p.server->FlushHeld(/*now=*/true));
  // Larger than the socket takes while the client reads nothing: the rest waits for the reactor.
  for (int i = 0; i < 8; ++i) queue(std::to_string(i) + std::string(1 << 20, 'z'), false, true);
  EXPECT_GT(p.server->queued_bytes(), 0u);
  EXPECT_EQ(Frames(p.Read(wire_bytes)), sent);
  while (p.server->queued_bytes() != 0 && p.io.run_one()) {
  }
  EXPECT_EQ(p.server->queued_bytes(), 0u);
}

// A session's part of WS_WRITE_DELAY_MS, counted.
struct CountingHold : HeldWrites {
  void FlushHeld() override { ++flushed; }
  int flushed = 0;
};

TEST(LaneFlusher, FlushesEveryHolderOnceAfterTheDelay) {
  asio::io_context io;
  LaneFlusher flusher(io, std::chrono::milliseconds(30));
  auto a = std::make_shared<CountingHold>();
  auto b = std::make_shared<CountingHold>();
  auto gone = std::make_shared<CountingHold>();
  const auto start = std::chrono::steady_clock::now();
  flusher.Add(a);
  flusher.Add(b);
  flusher.Add(gone);
  gone.reset();  // closed meanwhile: skipped
  io.run_for(std::chrono::milliseconds(10));
  EXPECT_EQ(a->flushed + b->flushed, 0) << "nothing before the delay";
  io.run();  // the timer fires once, then nothing is left
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
  EXPECT_EQ(a->flushed, 1);
  EXPECT_EQ(b->flushed, 1);
  // Idle, the flusher holds no timer: the next hold arms it again.
  io.restart();
  flusher.Add(a);
  io.run();
  EXPECT_EQ(a->flushed, 2);
  EXPECT_EQ(b->flushed, 1);
}

}  // namespace
}  // namespace chat::gateway
