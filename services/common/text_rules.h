#pragma once
// Rules for what clients send that every service applies the same way. Pure functions.

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace chat {

bool IsValidUtf8(std::string_view s);
// The text with every byte that is not part of valid UTF-8 replaced by '?'.
std::string SanitizeUtf8(std::string_view s);

// Room ids: 1-64 of [A-Za-z0-9_.:-]. Clients see InvalidArgument.
absl::Status ValidateRoomName(std::string_view room);
// User ids (JWT sub): 1-64 printable ASCII without spaces, quotes, backslashes, slashes or '|'.
absl::Status ValidateUserId(std::string_view user);
// Client ids: 1-64 printable ASCII.
absl::Status ValidateClientId(std::string_view client_id);

// The Redis pub/sub channel of a room.
std::string RoomChannel(std::string_view room);
// The channel every gateway subscribes to for kicks and broadcasts.
inline constexpr std::string_view kControlChannel = "chat:control";

}  // namespace chat
