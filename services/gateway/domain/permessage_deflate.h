#pragma once
// permessage-deflate (RFC 7692) as the gateway uses it: both directions without context takeover, so
// every message is compressed on its own. A compressed broadcast frame can then be shared by every
// receiver (compressed once per message, not per connection), and no connection keeps zlib state:
// the cost is CPU per compressed message, not memory per connection. Off unless WS_DEFLATE=1.
// Stateless functions; thread-safe. Uses Beast's zlib port (no other dependency).

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace chat::gateway {

// The Sec-WebSocket-Extensions value that accepts the client's first acceptable permessage-deflate
// offer in `offers` (the request's header), compressing with at most `window_bits`; empty to decline
// (no offer, or none we can honour). `*server_window_bits` gets the window to compress with.
std::string NegotiateDeflate(std::string_view offers, int window_bits, int* server_window_bits);

// One message compressed on its own, without the 00 00 ff ff tail (RFC 7692 7.2.1).
std::string DeflateMessage(std::string_view payload, int window_bits);

// The payload of a compressed message; ResourceExhausted past `limit` bytes (a deflate bomb),
// InvalidArgument for data that is not a raw deflate stream.
absl::StatusOr<std::string> InflateMessage(std::string_view payload, size_t limit);

}  // namespace chat::gateway
