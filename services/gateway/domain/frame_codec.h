#pragma once
// Client protocol v1 frames <-> JSON text (proto3 JSON mapping). Thread-safe, stateless.

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "chat/v1/frames.pb.h"
#include "chat/v1/messages.pb.h"

namespace chat::gateway {

struct ParsedFrame {
  // The frame, or InvalidArgument (malformed JSON, wrong types, no body, two bodies).
  absl::StatusOr<chat::v1::ClientFrame> frame;
  // The frame's ref when it could be read, even from a frame that is otherwise invalid.
  std::optional<uint32_t> ref;
};

ParsedFrame ParseClientFrame(std::string_view text);

// Compact JSON with every field of the body written, false/0/empty included; int64 as strings.
std::string EncodeServerFrame(const chat::v1::ServerFrame& frame);

// The ack of a committed send (or of the first one, for a repeated clientId).
chat::v1::ServerFrame AckFrame(const chat::v1::PostMessageReply& sent);

// The error frame for a refused request.
chat::v1::ServerFrame ErrorFrame(std::optional<uint32_t> ref, std::string_view code, std::string_view message,
                                 uint32_t retry_after_ms = 0);

}  // namespace chat::gateway
