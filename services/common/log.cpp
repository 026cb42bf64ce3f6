#include "log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "absl/strings/str_format.h"
#include "common/json_string.h"

namespace chat::log {
namespace {

struct Settings {
  char service[64] = "chat";
  std::atomic<int> min_level{static_cast<int>(Level::kInfo)};
};

Settings& settings() {
  static Settings s;
  return s;
}

std::string_view LevelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void Init(std::string_view service, std::string_view level_name) {
  auto& s = settings();
  std::snprintf(s.service, sizeof(s.service), "%.*s", static_cast<int>(service.size()), service.data());
  Level l = Level::kInfo;
  if (level_name == "debug") l = Level::kDebug;
  if (level_name == "warn") l = Level::kWarn;
  if (level_name == "error") l = Level::kError;
  s.min_level.store(static_cast<int>(l));
}

bool Enabled(Level level) {
  return static_cast<int>(level) >= settings().min_level.load(std::memory_order_relaxed);
}

std::string FormatLine(std::string_view service, Level level, std::string_view msg,
                       std::initializer_list<Field> fields, int64_t unix_micros) {
  std::string out;
  out.reserve(128);
  std::time_t secs = static_cast<std::time_t>(unix_micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(unix_micros % 1000000));
  out += "{\"ts\":\"";
  out += ts;
  out += "\",\"level\":\"";
  out += LevelName(level);
  out += "\",\"service\":";
  AppendJsonString(out, service);
  out += ",\"msg\":";
  AppendJsonString(out, msg);
  for (const Field& f : fields) {
    out.push_back(',');
    AppendJsonString(out, f.key);
    out.push_back(':');
    if (auto* s = std::get_if<std::string_view>(&f.value)) {
      AppendJsonString(out, *s);
    } else if (auto* i = std::get_if<int64_t>(&f.value)) {
      out += std::to_string(*i);
    } else if (auto* d = std::get_if<double>(&f.value)) {
      out += absl::StrFormat("%g", *d);
    } else if (auto* b = std::get_if<bool>(&f.value)) {
      out += *b ? "true" : "false";
    }
  }
  out.push_back('}');
  return out;
}

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  auto now = std::chrono::system_clock::now().time_since_epoch();
  std::string line = FormatLine(settings().service, level, msg, fields,
                                std::chrono::duration_cast<std::chrono::microseconds>(now).count());
  line.push_back('\n');
  // One fwrite per line: stdio locks the stream, so lines from threads never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace chat::log
