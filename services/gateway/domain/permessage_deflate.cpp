#include "domain/permessage_deflate.h"

#include <algorithm>
#include <boost/beast/zlib/deflate_stream.hpp>
#include <boost/beast/zlib/inflate_stream.hpp>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace chat::gateway {

namespace zlib = boost::beast::zlib;

namespace {

// One offer's parameters; nullopt when it has one we do not know or one twice (RFC 7692 5.1: decline).
struct Offer {
  bool server_max_window_bits = false;
  int server_window = 15;
};

std::optional<Offer> ParseOffer(const std::vector<absl::string_view>& params) {
  Offer o;
  bool seen[4] = {false, false, false, false};
  for (size_t i = 1; i < params.size(); ++i) {
    absl::string_view p = absl::StripAsciiWhitespace(params[i]);
    absl::string_view name = p, value;
    if (auto eq = p.find('='); eq != absl::string_view::npos) {
      name = absl::StripAsciiWhitespace(p.substr(0, eq));
      value = absl::StripAsciiWhitespace(p.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
    }
    int which = name == "server_no_context_takeover"   ? 0
                : name == "client_no_context_takeover" ? 1
                : name == "server_max_window_bits"     ? 2
                : name == "client_max_window_bits"     ? 3
                                                       : -1;
    if (which < 0 || seen[which]) return std::nullopt;
    seen[which] = true;
    if ((which == 0 || which == 1) && !value.empty()) return std::nullopt;
    if (which == 2 || (which == 3 && !value.empty())) {
      int bits = 0;
      if (!absl::SimpleAtoi(value, &bits) || bits < 8 || bits > 15) return std::nullopt;
      if (which == 2) {
        // zlib cannot make a raw deflate stream with a 256-byte window.
        if (bits < 9) return std::nullopt;
        o.server_max_window_bits = true;
        o.server_window = bits;
      }
    }
  }
  return o;
}

}  // namespace

std::string NegotiateDeflate(std::string_view offers, int window_bits, int* server_window_bits) {
  for (absl::string_view ext : absl::StrSplit(absl::string_view(offers.data(), offers.size()), ',')) {
    std::vector<absl::string_view> params = absl::StrSplit(ext, ';');
    if (params.empty() || absl::StripAsciiWhitespace(params[0]) != "permessage-deflate") continue;
    auto offer = ParseOffer(params);
    if (!offer) continue;
    const int bits = std::min(window_bits, offer->server_window);
    *server_window_bits = bits;
    // The client must not keep context either: we inflate each message with a fresh stream.
    std::string answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    // RFC 7692 7.1.2.1: the window is answered only when it was offered.
    if (offer->server_max_window_bits) absl::StrAppend(&answer, "; server_max_window_bits=", bits);
    return answer;
  }
  return "";
}

std::string DeflateMessage(std::string_view payload, int window_bits) {
  zlib::deflate_stream zo;
  // Level 6, memory level 4: ~12 KB of transient state per call at 11 window bits.
  zo.reset(6, window_bits, 4, zlib::Strategy::normal);
  std::string out(payload.size() + payload.size() / 8 + 64, '\0');
  zlib::z_params zs;
  zs.next_in = payload.data();
  zs.avail_in = payload.size();
  zs.next_out = out.data();
  zs.avail_out = out.size();
  for (;;) {
    boost::beast::error_code ec;
    zo.write(zs, zlib::Flush::sync, ec);
    if (zs.avail_in == 0 && zs.avail_out > 0) break;
    // Output full: grow and go on.
    const size_t used = zs.total_out;
    out.resize(out.size() * 2);
    zs.next_out = out.data() + used;
    zs.avail_out = out.size() - used;
  }
  out.resize(zs.total_out);
  // A sync flush ends with the empty stored block 00 00 ff ff, which the frame leaves out.
  if (out.size() >= 4 && out.compare(out.size() - 4, 4, std::string("\x00\x00\xff\xff", 4)) == 0)
    out.resize(out.size() - 4);
  return out;
}

absl::StatusOr<std::string> InflateMessage(std::string_view payload, size_t limit) {
  zlib::inflate_stream zi;
  zi.reset(15);
  std::string in(payload);
  in.append("\x00\x00\xff\xff", 4);
  std::string out(std::min<size_t>(std::max<size_t>(payload.size() * 4, 256), limit + 1), '\0');
  zlib::z_params zs;
  zs.next_in = in.data();
  zs.avail_in = in.size();
  zs.next_out = out.data();
  zs.avail_out = out.size();
  for (;;) {
    const size_t in_before = zs.avail_in;
    const size_t out_before = zs.avail_out;
    boost::beast::error_code ec;
    zi.write(zs, zlib::Flush::sync, ec);
    if (zs.total_out > limit) return absl::ResourceExhaustedError("message too big once inflated");
    // A block marked final ends the stream; the tail we appended is then left over, which is fine.
    if (ec == zlib::error::end_of_stream) break;
    if (ec && ec != zlib::error::need_buffers)
      return absl::InvalidArgumentError("bad compressed data: " + ec.message());
    if (zs.avail_in == 0 && zs.avail_out > 0) break;
    if (zs.avail_out == 0) {
      const size_t used = zs.total_out;
      if (used >= limit) return absl::ResourceExhaustedError("message too big once inflated");
      out.resize(std::min(out.size() * 2, limit + 1));
      zs.next_out = out.data() + used;
      zs.avail_out = out.size() - used;
    } else if (zs.avail_in == in_before && zs.avail_out == out_before) {
      return absl::InvalidArgumentError("bad compressed data: truncated");
    }
  }
  out.resize(zs.total_out);
  return out;
}

}  // namespace chat::gateway
