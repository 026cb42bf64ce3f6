#include "domain/websocket_frame_reader.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "domain/permessage_deflate.h"

namespace chat::gateway {
namespace {

using Kind = WebSocketEvent::Kind;

// A client frame: masked, as RFC 6455 requires of clients.
std::string Frame(uint8_t opcode, std::string_view payload, bool fin = true, bool mask = true,
                  uint8_t rsv = 0, int force_len_bytes = 0) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | rsv | opcode));
  const uint8_t m = mask ? 0x80 : 0;
  const size_t n = payload.size();
  if ((n < 126 && force_len_bytes == 0) || force_len_bytes == 1) {
    f.push_back(static_cast<char>(m | n));
  } else if ((n < 65536 && force_len_bytes == 0) || force_len_bytes == 2) {
    f.push_back(static_cast<char>(m | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n));
  } else {
    f.push_back(static_cast<char>(m | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>(static_cast<uint64_t>(n) >> (8 * i)));
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (mask) f.append(key, 4);
  for (size_t i = 0; i < n; ++i) f.push_back(mask ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  return f;
}

std::vector<WebSocketEvent> Read(const std::string& bytes, size_t limit = 1 << 20) {
  WebSocketFrameReader r(limit);
  std::vector<WebSocketEvent> out;
  r.Feed(bytes, out);
  return out;
}

TEST(WebSocketFrameReader, ReadsMessagesOfEverySizeWhateverTheChunking) {
  std::string big(70000, 'x');
  std::string mid(300, 'y');
  const std::string stream = Frame(0x1, "hello") + Frame(0x1, mid) + Frame(0x1, big) +
                             Frame(0x2, "\x01\x02") + Frame(0x1, "") + Frame(0x1, "héllo 😀");
  std::mt19937 rng(5);
  for (int round = 0; round < 50; ++round) {
    WebSocketFrameReader r(1 << 20);
    std::vector<WebSocketEvent> out;
    for (size_t i = 0; i < stream.size();) {
      const size_t n = round == 0 ? 1 : std::min<size_t>(stream.size() - i, 1 + rng() % 700);
      r.Feed(std::string_view(stream).substr(i, n), out);
      i += n;
    }
    ASSERT_EQ(out.size(), 6u);
    EXPECT_EQ(out[0].kind, Kind::kText);
    EXPECT_EQ(out[0].payload, "hello");
    EXPECT_EQ(out[1].payload, mid);
    EXPECT_EQ(out[2].payload, big);
    EXPECT_EQ(out[3].kind, Kind::kBinary);
    EXPECT_EQ(out[4].payload, "");
    EXPECT_EQ(out[5].payload, "héllo 😀");
  }
}

TEST(WebSocketFrameReader, AssemblesFragmentsAroundControlFrames) {
  auto out = Read(Frame(0x1, "hel", false) + Frame(0x9, "p1") + Frame(0x0, "lo ", false) + Frame(0xa, "") +
                  Frame(0x0, "world"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, Kind::kPing);
  EXPECT_EQ(out[0].payload, "p1");
  EXPECT_EQ(out[1].kind, Kind::kPong);
  EXPECT_EQ(out[2].kind, Kind::kText);
  EXPECT_EQ(out[2].payload, "hello world");
}

TEST(WebSocketFrameReader, ReadsCloseFrames) {
  auto out = Read(Frame(0x8, std::string("\x03\xe8") + "bye"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::kClose);
  EXPECT_EQ(out[0].code, 1000);
  EXPECT_EQ(out[0].payload, "bye");
  out = Read(Frame(0x8, ""));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code, 1005);
}

// Each bad input ends with one kError carrying the close code, and nothing after it is read.
void ExpectError(const std::string& bytes, uint16_t code, size_t limit = 1 << 20) {
  WebSocketFrameReader r(limit);
  std::vector<WebSocketEvent> out;
  r.Feed(bytes + Frame(0x1, "after"), out);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().kind, Kind::kError);
  EXPECT_EQ(out.back().code, code) << out.back().payload;
  EXPECT_TRUE(r.failed());
  for (const auto& e : out) EXPECT_NE(e.payload, "after");
}

TEST(WebSocketFrameReader, RefusesProtocolViolationsWithTheirCloseCodes) {
  ExpectError(Frame(0x1, "x", true, /*mask=*/false), 1002);
  ExpectError(Frame(0x1, "x", true, true, /*rsv=*/0x40), 1002);
  ExpectError(Frame(0x3, "x"), 1002);                           // reserved data opcode
  ExpectError(Frame(0xb, "x"), 1002);                           // reserved control opcode
  ExpectError(Frame(0x0, "x"), 1002);                           // continuation without a message
  ExpectError(Frame(0x1, "a", false) + Frame(0x1, "b"), 1002);  // new message inside a fragmented one
  ExpectError(Frame(0x9, "p", /*fin=*/false), 1002);
  ExpectError(Frame(0x9, std::string(126, 'p')), 1002);
  ExpectError(Frame(0x8, "\x03"), 1002);                      // 1-byte close payload
  ExpectError(Frame(0x8, std::string("\x03\xed", 2)), 1002);  // 1005 is never sent
  ExpectError(Frame(0x8, std::string("\x03\xe8\xff", 3)), 1007);
  ExpectError(Frame(0x1, "x", true, true, 0, /*force_len_bytes=*/2), 1002);  // non-minimal length
  ExpectError(Frame(0x1, std::string(200, 'x'), true, true, 0, 8), 1002);
  std::string huge = "\x81\xff\x80\x00\x00\x00\x00\x00\x00\x01";  // 2^63 + 1
  ExpectError(huge, 1002);
}

TEST(WebSocketFrameReader, RefusesInvalidUtf8AndOversizedMessages) {
  ExpectError(Frame(0x1, "ok \xff"), 1007);
  ExpectError(Frame(0x1, "\xe2\x82", false) + Frame(0x0, "x"), 1007);
  ExpectError(Frame(0x1, std::string(101, 'x')), 1009, 100);
  // The limit is on the whole message, fragments together.
  ExpectError(Frame(0x1, std::string(60, 'x'), false) + Frame(0x0, std::string(60, 'x')), 1009, 100);
  // Binary is not UTF-8-checked; a message at the limit passes.
  EXPECT_EQ(Read(Frame(0x2, "\xff\xfe"))[0].kind, Kind::kBinary);
  EXPECT_EQ(Read(Frame(0x1, std::string(100, 'x')), 100)[0].kind, Kind::kText);
  // UTF-8 split across fragments is fine.
  auto out = Read(Frame(0x1, "\xe2\x82", false) + Frame(0x0, "\xac"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload, "€");
}

TEST(WebSocketFrameReader, InflatesCompressedMessagesOnlyWhenNegotiated) {
  const std::string text(3000, 'z');
  const std::string packed = DeflateMessage(text, 11);
  // RSV1 on the first frame marks the message compressed; continuations carry no RSV1.
  const std::string one = Frame(0x1, packed, true, true, /*rsv=*/0x40);
  const std::string split = Frame(0x1, packed.substr(0, 5), false, true, 0x40) + Frame(0x0, packed.substr(5));
  for (const auto& bytes : {one, split}) {
    WebSocketFrameReader r(1 << 20);
    r.EnableDeflate();
    std::vector<WebSocketEvent> out;
    r.Feed(bytes, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, Kind::kText);
    EXPECT_EQ(out[0].payload, text);
    EXPECT_EQ(r.inflated(), 1u);
  }
  ExpectError(one, 1002);  // not negotiated: RSV1 is a protocol error
  WebSocketFrameReader r(1000);
  r.EnableDeflate();
  std::vector<WebSocketEvent> out;
  r.Feed(one, out);  // 3000 bytes once inflated, past the 1000-byte limit
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code, 1009);
  WebSocketFrameReader r2(1 << 20);
  r2.EnableDeflate();
  out.clear();
  r2.Feed(Frame(0x9, "p", true, true, 0x40), out);  // never on a control frame
  EXPECT_EQ(out.back().code, 1002);
  WebSocketFrameReader r3(1 << 20);
  r3.EnableDeflate();
  out.clear();
  r3.Feed(Frame(0x1, "\xff\xff\xff", true, true, 0x40), out);  // not deflate data
  EXPECT_EQ(out.back().kind, Kind::kError);
}

TEST(WebSocketFrameReader, SurvivesRandomBytes) {
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(1 + rng() % 64, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    WebSocketFrameReader r(4096);
    std::vector<WebSocketEvent> out;
    r.Feed(bytes, out);
    for (size_t k = 0; k + 1 < out.size(); ++k) EXPECT_NE(out[k].kind, Kind::kError);
  }
}

}  // namespace
}  // namespace chat::gateway
