// The load generator's own WebSocket client code (bench/loadgen/ws_wire.h): what it writes must be
// what a server accepts, and it must read back every frame a server may send, split anywhere.
#include "ws_wire.h"

#include <gtest/gtest.h>

#include <boost/beast/zlib/deflate_stream.hpp>
#include <string>
#include <vector>

namespace chat::loadgen::ws {
namespace {

// A server frame (unmasked), as a server writes it.
std::string ServerFrame(uint8_t first_byte, std::string_view payload) {
  std::string f(1, static_cast<char>(first_byte));
  const size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(n));
  } else if (n <= 0xffff) {
    f.push_back(static_cast<char>(126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8)
      f.push_back(static_cast<char>((uint64_t{n} >> shift) & 0xff));
  }
  return f + std::string(payload);
}

// Decodes one masked client frame the way a server does.
struct Decoded {
  uint8_t first = 0;
  bool masked = false;
  std::string payload;
  size_t size = 0;
};
Decoded DecodeClientFrame(std::string_view f) {
  Decoded d;
  d.first = static_cast<uint8_t>(f[0]);
  d.masked = (static_cast<uint8_t>(f[1]) & 0x80) != 0;
  uint64_t n = static_cast<uint8_t>(f[1]) & 0x7f;
  size_t at = 2;
  if (n == 126) {
    n = (uint64_t{static_cast<uint8_t>(f[2])} << 8) | static_cast<uint8_t>(f[3]);
    at = 4;
  } else if (n == 127) {
    n = 0;
    for (size_t i = 2; i < 10; ++i) n = (n << 8) | static_cast<uint8_t>(f[i]);
    at = 10;
  }
  std::string_view key = f.substr(at, 4);
  at += 4;
  for (size_t i = 0; i < n; ++i) d.payload.push_back(static_cast<char>(f[at + i] ^ key[i & 3]));
  d.size = at + n;
  return d;
}

// Raw deflate with a sync flush and the trailing 00 00 ff ff removed: a permessage-deflate payload.
std::string Compress(boost::beast::zlib::deflate_stream& ds, std::string_view text) {
  std::string out(text.size() + 64, '\0');
  boost::beast::zlib::z_params zs;
  zs.next_in = text.data();
  zs.avail_in = text.size();
  zs.next_out = out.data();
  zs.avail_out = out.size();
  boost::beast::error_code ec;
  ds.write(zs, boost::beast::zlib::Flush::sync, ec);
  EXPECT_FALSE(ec) << ec.message();
  out.resize(out.size() - zs.avail_out);
  EXPECT_EQ(out.substr(out.size() - 4), std::string("\x00\x00\xff\xff", 4));
  out.resize(out.size() - 4);
  return out;
}

TEST(WsWireTest, AcceptIsTheRfcExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(AcceptFor("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsWireTest, KeysAreSixteenBytesOfBase64AndDiffer) {
  std::string a = KeyFrom(1), b = KeyFrom(2);
  EXPECT_EQ(a.size(), 24u);
  EXPECT_EQ(a.substr(22), "==");
  EXPECT_NE(a, b);
}

TEST(WsWireTest, UpgradeRequestCarriesWhatAServerChecks) {
  std::string r = UpgradeRequest("127.0.0.1:8080", "/ws?x=1", "KEY", "chat.v1, bearer.T", true);
  EXPECT_EQ(r.rfind("GET /ws?x=1 HTTP/1.1\r\n", 0), 0u);
  for (const char* h : {"Host: 127.0.0.1:8080\r\n", "Upgrade: websocket\r\n", "Connection: Upgrade\r\n",
                        "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key: KEY\r\n",
                        "Sec-WebSocket-Protocol: chat.v1, bearer.T\r\n",
                        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"}) {
    EXPECT_NE(r.find(h), std::string::npos) << h;
  }
  EXPECT_EQ(r.substr(r.size() - 4), "\r\n\r\n");
  std::string plain = UpgradeRequest("h", "/", "K", "", false);
  EXPECT_EQ(plain.find("Sec-WebSocket-Protocol"), std::string::npos);
  EXPECT_EQ(plain.find("Sec-WebSocket-Extensions"), std::string::npos);
}

TEST(WsWireTest, UpgradeReplyIsParsedOnceWholeWithHeadersInAnyCase) {
  std::string reply =
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nConnection: upgrade\r\n"
      "sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n"
      "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n";
  std::string with_frame = reply + ServerFrame(0x81, "{}");
  for (size_t cut = 0; cut < reply.size(); ++cut) {
    EXPECT_FALSE(ParseUpgradeReply(std::string_view(reply).substr(0, cut))) << cut;
  }
  auto r = ParseUpgradeReply(with_frame);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(r->accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(r->size, reply.size());  // what follows is the first frame
  EXPECT_TRUE(AcceptsDeflate(r->extensions));
  EXPECT_FALSE(AcceptsDeflate(""));
  EXPECT_FALSE(AcceptsDeflate("x-webkit-deflate-frame"));

  auto refused = ParseUpgradeReply("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_TRUE(refused->accept.empty());
  auto garbage = ParseUpgradeReply("SSH-2.0-OpenSSH\r\n\r\n");
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->status, 0);
}

TEST(WsWireTest, ClientFramesAreMaskedWithEveryLengthEncoding) {
  for (size_t n :
       {size_t{0}, size_t{5}, size_t{125}, size_t{126}, size_t{200}, size_t{65535}, size_t{70000}}) {
    std::string payload(n, '\0');
    for (size_t i = 0; i < n; ++i) payload[i] = static_cast<char>('a' + i % 26);
    std::string out = "prefix";
    AppendClientFrame(out, kText, payload, 0xA1B2C3D4);
    Decoded d = DecodeClientFrame(std::string_view(out).substr(6));
    EXPECT_EQ(d.first, 0x81) << n;
    EXPECT_TRUE(d.masked) << n;
    EXPECT_EQ(d.payload, payload) << n;
    EXPECT_EQ(d.size, out.size() - 6) << n;
    if (n >= 4) {
      EXPECT_NE(out.substr(out.size() - n), payload) << n;  // the bytes on the wire are masked
    }
  }
  std::string pong;
  AppendClientFrame(pong, kPong, "hb", 0);
  EXPECT_EQ(DecodeClientFrame(pong).first, 0x8A);
}

TEST(WsWireTest, ServerFramesAreReadWhereverTheBytesAreCut) {
  const std::string big(70000, 'b');
  const std::string mid(300, 'm');
  const std::vector<std::string> frames = {ServerFrame(0x81, "{\"a\":1}"), ServerFrame(0x89, "ping"),
                                           ServerFrame(0x81, mid), ServerFrame(0x82, big),
                                           ServerFrame(0x88, std::string("\x03\xe8", 2) + "bye")};
  const std::vector<std::pair<uint8_t, size_t>> want = {
      {kText, 7}, {kPing, 4}, {kText, 300}, {kBinary, 70000}, {kClose, 5}};
  std::string wire;
  std::vector<size_t> ends;  // where each frame ends in the stream
  for (const auto& f : frames) ends.push_back((wire += f).size());
  std::vector<size_t> cuts;
  for (size_t cut = 0; cut < wire.size(); cut += (cut < 400 ? 1 : 997)) cuts.push_back(cut);
  for (size_t end : ends) {
    cuts.push_back(end - 1);
    cuts.push_back(end);
  }
  // Every prefix of the stream yields the frames wholly inside it and asks for more at the cut.
  for (size_t cut : cuts) {
    std::string_view in = std::string_view(wire).substr(0, cut);
    size_t at = 0, got = 0;
    for (;;) {
      Frame f;
      size_t used = 0;
      std::string why;
      Parse p = ParseServerFrame(in.substr(at), 1 << 20, f, used, why);
      ASSERT_NE(p, Parse::kBad) << why;
      if (p == Parse::kNeedMore) break;
      ASSERT_LT(got, want.size());
      EXPECT_EQ(f.opcode, want[got].first);
      EXPECT_EQ(f.payload.size(), want[got].second);
      EXPECT_TRUE(f.fin);
      at += used;
      ++got;
    }
    size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= cut) ++whole;
    EXPECT_EQ(got, whole) << "cut at " << cut;
    EXPECT_EQ(at, whole == 0 ? 0 : ends[whole - 1]) << "cut at " << cut;
  }
}

TEST(WsWireTest, BadServerFramesAreRefusedWithAReason) {
  struct Case {
    std::string bytes;
    const char* why;
  };
  std::string masked = ServerFrame(0x81, "x");
  masked[1] = static_cast<char>(masked[1] | 0x80);
  std::string long_ping = ServerFrame(0x89, std::string(126, 'p'));
  const Case cases[] = {
      {masked, "masked"},
      {ServerFrame(0xA1, "x"), "RSV2"},
      {ServerFrame(0x83, "x"), "unknown opcode 3"},
      {ServerFrame(0x8B, "x"), "unknown opcode 11"},
      {ServerFrame(0x09, "x"), "control"},  // a ping without fin
      {long_ping, "control"},
      {ServerFrame(0x81, std::string(2000, 'x')), "frame of 2000 bytes"},
  };
  for (const auto& c : cases) {
    Frame f;
    size_t used = 0;
    std::string why;
    EXPECT_EQ(ParseServerFrame(c.bytes, 1000, f, used, why), Parse::kBad) << c.why;
    EXPECT_NE(why.find(c.why), std::string::npos) << why;
  }
}

TEST(WsWireTest, FragmentedMessagesAreJoined) {
  MessageAssembler a(1000);
  std::string why;
  Frame f{kText, false, false, "{\"he"};
  EXPECT_EQ(a.Add(f, why), MessageAssembler::Step::kPending);
  f = {kContinuation, false, false, "llo\":"};
  EXPECT_EQ(a.Add(f, why), MessageAssembler::Step::kPending);
  f = {kContinuation, true, false, "1}"};
  ASSERT_EQ(a.Add(f, why), MessageAssembler::Step::kMessage);
  EXPECT_EQ(a.message(), "{\"hello\":1}");
  EXPECT_TRUE(a.text());
  // A whole frame is handed back without a copy.
  const std::string whole = "[1]";
  f = {kBinary, true, false, whole};
  ASSERT_EQ(a.Add(f, why), MessageAssembler::Step::kMessage);
  EXPECT_EQ(a.message().data(), whole.data());
  EXPECT_FALSE(a.text());
}

TEST(WsWireTest, ProtocolErrorsInMessagesAreRefused) {
  std::string why;
  MessageAssembler a(10);
  EXPECT_EQ(a.Add(Frame{kContinuation, true, false, "x"}, why), MessageAssembler::Step::kBad);
  EXPECT_NE(why.find("continuation"), std::string::npos);
  EXPECT_EQ(a.Add(Frame{kText, true, true, "x"}, why), MessageAssembler::Step::kBad);
  EXPECT_NE(why.find("RSV1"), std::string::npos);
  EXPECT_EQ(a.Add(Frame{kText, false, false, "123456"}, why), MessageAssembler::Step::kPending);
  EXPECT_EQ(a.Add(Frame{kText, true, false, "x"}, why), MessageAssembler::Step::kBad);
  EXPECT_NE(why.find("inside"), std::string::npos);
  MessageAssembler b(10);
  EXPECT_EQ(b.Add(Frame{kText, false, false, "123456"}, why), MessageAssembler::Step::kPending);
  EXPECT_EQ(b.Add(Frame{kContinuation, true, false, "789012"}, why), MessageAssembler::Step::kBad);
  EXPECT_NE(why.find("over 10 bytes"), std::string::npos);
}

TEST(WsWireTest, CompressedMessagesAreInflatedWithContextTakeover) {
  boost::beast::zlib::deflate_stream ds;
  ds.reset(6, 11, 8, boost::beast::zlib::Strategy::normal);  // a small server window, as the gateway's
  const std::string first =
      R"({"message":{"room":"r1","text":"t=123;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}})";
  const std::string second =
      R"({"message":{"room":"r1","text":"t=124;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}})";
  std::string c1 = Compress(ds, first);
  std::string c2 = Compress(ds, second);  // refers back to the first message
  EXPECT_LT(c2.size(), c1.size());

  MessageAssembler a(1 << 20);
  a.EnableDeflate();
  std::string why;
  ASSERT_EQ(a.Add(Frame{kText, true, true, c1}, why), MessageAssembler::Step::kMessage) << why;
  EXPECT_EQ(a.message(), first);
  // The second one arrives in two frames; only the first carries RSV1.
  std::string_view v2 = c2;
  ASSERT_EQ(a.Add(Frame{kText, false, true, v2.substr(0, 3)}, why), MessageAssembler::Step::kPending);
  ASSERT_EQ(a.Add(Frame{kContinuation, true, false, v2.substr(3)}, why), MessageAssembler::Step::kMessage)
      << why;
  EXPECT_EQ(a.message(), second);
  // A plain message between compressed ones is fine too.
  ASSERT_EQ(a.Add(Frame{kText, true, false, "plain"}, why), MessageAssembler::Step::kMessage);
  EXPECT_EQ(a.message(), "plain");

  // Garbage that claims to be compressed is refused, not passed on.
  MessageAssembler b(1 << 20);
  b.EnableDeflate();
  EXPECT_EQ(b.Add(Frame{kText, true, true, std::string("\xff\xff\xff\xff", 4)}, why),
            MessageAssembler::Step::kBad);
  EXPECT_NE(why.find("inflate"), std::string::npos) << why;
}

TEST(WsWireTest, InflatedSizeIsBounded) {
  boost::beast::zlib::deflate_stream ds;
  ds.reset(6, 15, 8, boost::beast::zlib::Strategy::normal);
  std::string zeros(100000, '0');
  std::string c = Compress(ds, zeros);
  MessageAssembler a(50000);
  a.EnableDeflate();
  std::string why;
  EXPECT_EQ(a.Add(Frame{kText, true, true, c}, why), MessageAssembler::Step::kBad);
  EXPECT_NE(why.find("over 50000"), std::string::npos) << why;
}

}  // namespace
}  // namespace chat::loadgen::ws
