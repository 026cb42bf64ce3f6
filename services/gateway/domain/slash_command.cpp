#include "domain/slash_command.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/text_rules.h"

namespace chat::gateway {

std::optional<absl::StatusOr<SlashCommand>> ParseSlashCommand(std::string_view text) {
  if (text.empty() || text[0] != '/') return std::nullopt;
  std::string_view rest = text.substr(1);
  size_t sp = rest.find(' ');
  std::string_view name = rest.substr(0, sp);
  std::string_view args = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  std::vector<std::string> words = absl::StrSplit(std::string(args), ' ', absl::SkipEmpty());
  auto bad = [](const char* usage) -> std::optional<absl::StatusOr<SlashCommand>> {
    return absl::StatusOr<SlashCommand>(absl::InvalidArgumentError(usage));
  };
  auto with_user = [&](SlashCommand::Kind kind,
                       const char* usage) -> std::optional<absl::StatusOr<SlashCommand>> {
    if (words.size() != 1 || !ValidateUserId(words[0]).ok()) return bad(usage);
    return absl::StatusOr<SlashCommand>(SlashCommand{kind, words[0], 0, ""});
  };
  if (name == "kick") return with_user(SlashCommand::Kind::kKick, "usage: /kick USER");
  if (name == "unmute") return with_user(SlashCommand::Kind::kUnmute, "usage: /unmute USER");
  if (name == "mute") {
    const char* usage = "usage: /mute USER [SECONDS]";
    if (words.empty() || words.size() > 2 || !ValidateUserId(words[0]).ok()) return bad(usage);
    int64_t seconds = 0;
    if (words.size() == 2 && (!absl::SimpleAtoi(words[1], &seconds) || seconds <= 0)) return bad(usage);
    return absl::StatusOr<SlashCommand>(SlashCommand{SlashCommand::Kind::kMute, words[0], seconds, ""});
  }
  if (name == "clear") {
    if (!words.empty()) return bad("usage: /clear");
    return absl::StatusOr<SlashCommand>(SlashCommand{SlashCommand::Kind::kClear, "", 0, ""});
  }
  if (name == "stats") {
    if (!words.empty()) return bad("usage: /stats");
    return absl::StatusOr<SlashCommand>(SlashCommand{SlashCommand::Kind::kStats, "", 0, ""});
  }
  if (name == "broadcast") {
    if (words.empty()) return bad("usage: /broadcast TEXT");
    return absl::StatusOr<SlashCommand>(
        SlashCommand{SlashCommand::Kind::kBroadcast, "", 0, std::string(args)});
  }
  return std::nullopt;
}

}  // namespace chat::gateway
