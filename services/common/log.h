#pragma once
// JSON logging: one object a line on stderr. Thread-safe; the service name and level are set once by
// main before any thread starts and only read afterwards.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

#include "absl/strings/string_view.h"

namespace chat::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using Value = std::variant<std::string_view, int64_t, double, bool>;

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, absl::string_view v) : key(k), value(std::string_view(v.data(), v.size())) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  template <typename I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) Field(std::string_view k, I v)
      : key(k), value(static_cast<int64_t>(v)) {}
  std::string_view key;
  Value value;
};

// Called once from main.
void Init(std::string_view service, std::string_view level_name);
bool Enabled(Level level);
void Write(Level level, std::string_view msg, std::initializer_list<Field> fields);

// Exposed for tests: the line Write would print, without the trailing newline.
std::string FormatLine(std::string_view service, Level level, std::string_view msg,
                       std::initializer_list<Field> fields, int64_t unix_micros);

inline void Debug(std::string_view msg, std::initializer_list<Field> f = {}) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, msg, f);
}
inline void Info(std::string_view msg, std::initializer_list<Field> f = {}) { Write(Level::kInfo, msg, f); }
inline void Warn(std::string_view msg, std::initializer_list<Field> f = {}) { Write(Level::kWarn, msg, f); }
inline void Error(std::string_view msg, std::initializer_list<Field> f = {}) { Write(Level::kError, msg, f); }

}  // namespace chat::log
