#include "protocol.h"

#include <charconv>

namespace chat::loadgen {

namespace json {

size_t SkipSpace(std::string_view s, size_t pos) {
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) ++pos;
  return pos;
}

size_t SkipString(std::string_view s, size_t pos) {
  for (size_t i = pos + 1; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;  // the escaped character, whatever it is (\uXXXX's digits need no special care)
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

size_t SkipValue(std::string_view s, size_t pos) {
  pos = SkipSpace(s, pos);
  if (pos >= s.size()) return std::string_view::npos;
  char c = s[pos];
  if (c == '"') return SkipString(s, pos);
  if (c == '{' || c == '[') {
    int depth = 0;
    for (size_t i = pos; i < s.size(); ++i) {
      char d = s[i];
      if (d == '"') {
        i = SkipString(s, i);
        if (i == std::string_view::npos) return i;
        --i;  // the loop's ++i steps past the closing quote
      } else if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }
  // A number, true, false or null: up to the next delimiter.
  size_t i = pos;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
         s[i] != '\n' && s[i] != '\r') {
    ++i;
  }
  return i == pos ? std::string_view::npos : i;
}

std::optional<std::string_view> Member(std::string_view obj, std::string_view key) {
  std::optional<std::string_view> found;
  ForEachMember(obj, [&](std::string_view k, std::string_view v) {
    if (k != key) return true;
    found = v;
    return false;
  });
  return found;
}

std::optional<std::string_view> StringContents(std::string_view value) {
  if (value.size() < 2 || value.front() != '"' || value.back() != '"') return std::nullopt;
  return value.substr(1, value.size() - 2);
}

std::optional<uint64_t> Unsigned(std::string_view value) {
  if (auto inner = StringContents(value)) value = *inner;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return v;
}

}  // namespace json

std::string StampedText(int64_t ns, size_t bytes) {
  std::string text = "t=" + std::to_string(ns) + ";";
  if (text.size() < bytes) text.append(bytes - text.size(), 'x');
  return text;
}

std::optional<int64_t> ParseStamp(std::string_view text) {
  if (text.size() < 4 || text[0] != 't' || text[1] != '=') return std::nullopt;
  int64_t ns = 0;
  auto [end, ec] = std::from_chars(text.data() + 2, text.data() + text.size(), ns);
  if (ec != std::errc() || end == text.data() + text.size() || *end != ';') return std::nullopt;
  return ns;
}

// --- chat -----------------------------------------------------------------------------------------

std::string ChatJoinFrame(uint32_t ref, std::string_view room) {
  std::string f = R"({"ref":)" + std::to_string(ref) + R"(,"join":{"room":")";
  f += room;
  f += R"("}})";
  return f;
}

std::string ChatSendFrame(uint32_t ref, std::string_view room, std::string_view client_id,
                          std::string_view text) {
  std::string f;
  f.reserve(64 + room.size() + client_id.size() + text.size());
  f += R"({"ref":)";
  f += std::to_string(ref);
  f += R"(,"send":{"room":")";
  f += room;
  f += R"(","clientId":")";
  f += client_id;
  f += R"(","text":")";
  f += text;
  f += R"("}})";
  return f;
}

std::optional<ChatFrame> ParseChatFrame(std::string_view text) {
  ChatFrame frame;
  bool ok = json::ForEachMember(text, [&](std::string_view key, std::string_view value) {
    if (key == "ref") {
      if (auto v = json::Unsigned(value); v && *v <= UINT32_MAX) frame.ref = static_cast<uint32_t>(*v);
    } else if (frame.kind.empty()) {
      frame.kind = key;
      frame.body = value;
    }
    return true;
  });
  if (!ok || frame.kind.empty()) return std::nullopt;
  return frame;
}

// --- socketio -------------------------------------------------------------------------------------

std::string SioConnectFrame(std::string_view token) {
  std::string f = R"(40{"token":")";
  f += token;
  f += R"("})";
  return f;
}

std::string SioJoinFrame(uint32_t ack_id, std::string_view room) {
  std::string f = "42" + std::to_string(ack_id) + R"(["join",")";
  f += room;
  f += R"("])";
  return f;
}

std::string SioSendFrame(uint32_t ack_id, std::string_view room, std::string_view client_id,
                         std::string_view text) {
  std::string f;
  f.reserve(64 + room.size() + client_id.size() + text.size());
  f += "42";
  f += std::to_string(ack_id);
  f += R"(["send",{"room":")";
  f += room;
  f += R"(","clientId":")";
  f += client_id;
  f += R"(","text":")";
  f += text;
  f += R"("}])";
  return f;
}

SioPacket ParseSio(std::string_view text) {
  using Kind = SioPacket::Kind;
  SioPacket p;
  if (text.empty()) return p;
  switch (text[0]) {
    case '0':
      p.kind = Kind::kOpen;
      p.payload = text.substr(1);
      return p;
    case '1':
      p.kind = Kind::kClose;
      return p;
    case '2':
      p.kind = Kind::kPing;
      return p;
    case '3':
      p.kind = Kind::kPong;
      return p;
    case '6':
      p.kind = Kind::kNoop;
      return p;
    case '4':
      break;
    default:
      return p;
  }
  if (text.size() < 2) return p;
  char type = text[1];
  size_t i = 2;
  // An optional namespace "/name," (the default namespace has none).
  if (i < text.size() && text[i] == '/') {
    size_t comma = text.find(',', i);
    i = comma == std::string_view::npos ? text.size() : comma + 1;
  }
  size_t digits = i;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits > i) {
    uint32_t id = 0;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + digits, id);
    if (ec == std::errc() && end == text.data() + digits) p.ack_id = id;
  }
  p.payload = text.substr(digits);
  switch (type) {
    case '0':
      p.kind = Kind::kConnect;
      break;
    case '1':
      p.kind = Kind::kDisconnect;
      break;
    case '2':
      p.kind = Kind::kEvent;
      break;
    case '3':
      p.kind = Kind::kAck;
      break;
    case '4':
      p.kind = Kind::kConnectError;
      break;
    default:
      break;
  }
  return p;
}

std::optional<SioEvent> ParseSioEvent(std::string_view payload) {
  SioEvent event;
  int index = 0;
  bool named = false;
  json::ForEachElement(payload, [&](std::string_view element) {
    if (index++ == 0) {
      auto name = json::StringContents(element);
      if (!name) return false;
      event.name = *name;
      named = true;
      return true;
    }
    event.data = element;
    return false;
  });
  if (!named) return std::nullopt;
  return event;
}

std::optional<std::string> SioAckError(std::string_view payload) {
  std::optional<std::string> code;
  json::ForEachElement(payload, [&](std::string_view first) {
    auto error = json::Member(first, "error");
    if (!error || *error == "null" || *error == "false") return false;
    if (auto s = json::StringContents(*error)) {
      code = std::string(*s);
    } else if (auto c = json::Member(*error, "code"); c && json::StringContents(*c)) {
      code = std::string(*json::StringContents(*c));
    } else {
      code = "error";
    }
    return false;
  });
  return code;
}

}  // namespace chat::loadgen
