#include "text_rules.h"

#include "absl/strings/str_cat.h"

namespace chat {

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len > 0 && i + len <= s.size() && IsValidUtf8(s.substr(i, len))) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.push_back('?');
      ++i;
    }
  }
  return out;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

absl::Status ValidateRoomName(std::string_view room) {
  if (room.empty() || room.size() > 64) {
    return absl::InvalidArgumentError("room must be 1 to 64 characters");
  }
  for (char c : room) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.' || c == ':';
    if (!ok) return absl::InvalidArgumentError("room may hold only letters, digits and _ - . :");
  }
  return absl::OkStatus();
}

namespace {
absl::Status ValidateToken(const char* what, std::string_view v, bool allow_slash) {
  if (v.empty() || v.size() > 64)
    return absl::InvalidArgumentError(absl::StrCat(what, " must be 1 to 64 characters"));
  for (char c : v) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || (!allow_slash && (c == '/' || c == '|'))) {
      return absl::InvalidArgumentError(absl::StrCat(what, " holds a character that is not allowed"));
    }
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status ValidateUserId(std::string_view user) { return ValidateToken("user id", user, false); }
absl::Status ValidateClientId(std::string_view client_id) {
  return ValidateToken("clientId", client_id, true);
}

std::string RoomChannel(std::string_view room) { return "chat:room:" + std::string(room); }

}  // namespace chat
