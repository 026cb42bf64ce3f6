#include "domain/permessage_deflate.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace chat::gateway {
namespace {

TEST(PermessageDeflate, AcceptsAnOfferWithoutContextTakeoverOnEitherSide) {
  int bits = 0;
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; client_max_window_bits", 11, &bits),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  EXPECT_EQ(bits, 11);
  // A window the client asks for is answered, and honoured when smaller than ours.
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=10", 11, &bits),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10");
  EXPECT_EQ(bits, 10);
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=15", 11, &bits),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=11");
  EXPECT_EQ(bits, 11);
  // What Chromium sends.
  EXPECT_FALSE(NegotiateDeflate("permessage-deflate; client_max_window_bits", 15, &bits).empty());
  // The first acceptable offer wins.
  EXPECT_FALSE(NegotiateDeflate("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, "
                                "permessage-deflate",
                                11, &bits)
                   .empty());
  EXPECT_EQ(bits, 11);
}

TEST(PermessageDeflate, DeclinesWhatItCannotHonour) {
  int bits = 0;
  EXPECT_EQ(NegotiateDeflate("", 11, &bits), "");
  EXPECT_EQ(NegotiateDeflate("x-webkit-deflate-frame", 11, &bits), "");
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=8", 11, &bits), "");
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_max_window_bits=16", 11, &bits), "");
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; unknown_param", 11, &bits), "");
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; client_no_context_takeover; client_no_context_takeover", 11,
                             &bits),
            "");
  EXPECT_EQ(NegotiateDeflate("permessage-deflate; server_no_context_takeover=1", 11, &bits), "");
}

TEST(PermessageDeflate, RoundTripsMessagesOfEverySizeAndWindow) {
  std::mt19937 rng(3);
  for (int bits = 9; bits <= 15; ++bits) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{5000}, size_t{200000}}) {
      std::string text;
      for (size_t i = 0; i < n; ++i)
        text.push_back(static_cast<char>(i % 7 == 0 ? 'a' + rng() % 26 : ' ' + i % 50));
      const std::string packed = DeflateMessage(text, bits);
      if (n >= 5000) {
        EXPECT_LT(packed.size(), n / 2) << "repetitive text compresses";
      }
      auto back = InflateMessage(packed, 1 << 20);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(*back, text);
    }
  }
}

TEST(PermessageDeflate, RefusesBombsAndGarbage) {
  const std::string zeros(1 << 20, '\0');
  const std::string packed = DeflateMessage(zeros, 15);
  EXPECT_LT(packed.size(), 5000u);
  EXPECT_EQ(InflateMessage(packed, 65536).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(InflateMessage(packed, 1 << 20).ok());
  EXPECT_EQ(InflateMessage("\xff\xff\xff\xff garbage", 65536).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::mt19937 rng(9);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(1 + rng() % 100, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    auto r = InflateMessage(junk, 4096);  // must end: an answer or an error, never a hang or a crash
    if (r.ok()) {
      EXPECT_LE(r->size(), 4096u);
    }
  }
}

}  // namespace
}  // namespace chat::gateway
