#pragma once
// Admin slash commands typed as message text: /kick USER, /mute USER [SECONDS], /unmute USER, /clear,
// /broadcast TEXT, /stats. Pure parsing.

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace chat::gateway {

struct SlashCommand {
  enum class Kind { kKick, kMute, kUnmute, kClear, kBroadcast, kStats };
  Kind kind;
  std::string user;     // kick, mute, unmute
  int64_t seconds = 0;  // mute; 0 = until unmuted
  std::string text;     // broadcast
};

// nullopt: not a command (an ordinary message, even if it starts with '/'). An error: a command with
// bad arguments (InvalidArgument, with the usage).
std::optional<absl::StatusOr<SlashCommand>> ParseSlashCommand(std::string_view text);

}  // namespace chat::gateway
