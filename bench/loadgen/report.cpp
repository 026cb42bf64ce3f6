#include "report.h"

#include <cmath>
#include <cstdio>
#include <map>

namespace chat::loadgen {

namespace {

// A minimal JSON writer: objects, arrays, numbers, strings; commas handled.
class JsonWriter {
 public:
  JsonWriter& Open(std::string_view key = {}) { return Start(key, '{'); }
  JsonWriter& OpenArray(std::string_view key = {}) { return Start(key, '['); }
  JsonWriter& Close() {
    out_ += closers_.back();
    closers_.pop_back();
    first_ = false;
    return *this;
  }
  JsonWriter& Field(std::string_view key, std::string_view value) {
    Key(key);
    Quote(value);
    return *this;
  }
  JsonWriter& Field(std::string_view key, const char* value) { return Field(key, std::string_view(value)); }
  JsonWriter& Field(std::string_view key, bool value) {
    Key(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  JsonWriter& Field(std::string_view key, uint64_t value) {
    Key(key);
    out_ += std::to_string(value);
    return *this;
  }
  JsonWriter& Field(std::string_view key, int64_t value) {
    Key(key);
    out_ += std::to_string(value);
    return *this;
  }
  JsonWriter& Field(std::string_view key, int value) { return Field(key, static_cast<int64_t>(value)); }
  JsonWriter& Field(std::string_view key, double value) {
    Key(key);
    if (!std::isfinite(value)) {
      out_ += "null";
    } else {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.3f", value);
      out_ += buf;
    }
    return *this;
  }
  JsonWriter& Field(std::string_view key, const std::optional<int64_t>& value) {
    if (value) return Field(key, *value);
    Key(key);
    out_ += "null";
    return *this;
  }
  JsonWriter& Counts(std::string_view key, const std::map<std::string, uint64_t>& counts) {
    Open(key);
    for (const auto& [k, v] : counts) Field(k, v);
    return Close();
  }
  const std::string& str() const { return out_; }

 private:
  JsonWriter& Start(std::string_view key, char open) {
    Key(key);
    out_ += open;
    closers_.push_back(open == '{' ? '}' : ']');
    first_ = true;
    return *this;
  }
  void Key(std::string_view key) {
    if (!first_) out_ += ',';
    first_ = false;
    if (!key.empty()) {
      Quote(key);
      out_ += ':';
    }
  }
  void Quote(std::string_view s) {
    out_ += '"';
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out_ += buf;
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::string closers_;
  bool first_ = true;
};

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

void Latency(JsonWriter& w, std::string_view key, const Histogram& h) {
  w.Open(key)
      .Field("count", h.count())
      .Field("p50", Ms(h.Percentile(50)))
      .Field("p90", Ms(h.Percentile(90)))
      .Field("p99", Ms(h.Percentile(99)))
      .Field("p999", Ms(h.Percentile(99.9)))
      .Field("max", Ms(h.max()))
      .Field("mean", h.mean() / 1e6)
      .Close();
}

void Rss(JsonWriter& w, std::string_view key, const RssReading& r) { w.Field(key, r.total_kib); }

double PerSecond(uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }

std::optional<int64_t> RssPerConnBytes(const RunFacts& f) {
  const RssReading& after = f.rss_after_idle ? *f.rss_after_idle : f.rss_after_connect;
  if (!f.rss_before.total_kib || !after.total_kib || f.connected == 0) return std::nullopt;
  return (*after.total_kib - *f.rss_before.total_kib) * 1024 / static_cast<int64_t>(f.connected);
}

std::string Line(const char* fmt, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

std::string LatencyText(const char* name, const Histogram& h) {
  return Line("%-16s n=%llu p50=%.2f p90=%.2f p99=%.2f p99.9=%.2f max=%.2f ms\n", name,
              static_cast<unsigned long long>(h.count()), Ms(h.Percentile(50)), Ms(h.Percentile(90)),
              Ms(h.Percentile(99)), Ms(h.Percentile(99.9)), Ms(h.max()));
}

std::string CountsText(const char* name, const std::map<std::string, uint64_t>& counts) {
  if (counts.empty()) return "";
  std::string s = Line("%-16s", name);
  for (const auto& [k, v] : counts) s += " " + k + "=" + std::to_string(v);
  return s + "\n";
}

std::string RssText(const std::optional<int64_t>& kib) {
  return kib ? std::to_string(*kib) + " KiB" : std::string("n/a");
}

}  // namespace

uint64_t ExpectedDeliveries(const Options& options, const Stats& stats) {
  uint64_t expected = 0;
  for (size_t r = 0; r < stats.sent_per_room.size(); ++r) {
    uint64_t members = stats.members_per_room[r];
    if (options.exclude_self && members > 0) --members;
    expected += (stats.sent_per_room[r] - stats.rejected_per_room[r]) * members;
  }
  return expected;
}

std::string ReportJson(const Options& o, const std::vector<Target>& targets, const RunFacts& f,
                       const Stats& s) {
  const uint64_t expected = ExpectedDeliveries(o, s);
  JsonWriter w;
  w.Open();
  w.Field("protocol", o.protocol == Protocol::kChat ? "chat" : "socketio");
  w.OpenArray("urls");
  for (const auto& t : targets) w.Field("", t.url);
  w.Close();
  w.Field("connections", o.connections)
      .Field("rooms", o.rooms)
      .Field("senders", f.senders)
      .Field("senders_per_room", o.senders_per_room)
      .Field("threads", o.threads)
      .Field("text_bytes", o.text_bytes)
      .Field("rate_target", o.rate)
      .Field("idle_s", o.idle_s)
      .Field("warmup_s", o.warmup_s)
      .Field("duration_s", f.measured_s)
      .Field("drain_s", o.drain_s)
      .Field("sent", s.sent)
      .Field("sent_per_s", PerSecond(s.sent, f.measured_s))
      .Field("send_skipped", s.send_skipped)
      .Field("acked", s.acked)
      .Field("acks_per_s", PerSecond(s.acked, f.measured_s))
      .Field("send_errors", s.send_errors)
      .Field("unanswered", static_cast<int64_t>(s.sent) - static_cast<int64_t>(s.acked + s.send_errors))
      .Counts("errors", s.errors)
      .Field("deliveries", s.deliveries)
      .Field("deliveries_per_s", PerSecond(s.deliveries, f.measured_s))
      .Field("expected_deliveries", expected)
      .Field("lost", static_cast<int64_t>(expected) - static_cast<int64_t>(s.deliveries))
      .Field("deliveries_outside_window", s.deliveries_other);
  Latency(w, "latency_ms", s.latency_ns);
  Latency(w, "ack_latency_ms", s.ack_ns);
  if (targets.size() > 1) {
    w.OpenArray("latency_ms_by_url");
    for (size_t i = 0; i < targets.size(); ++i) {
      const Histogram& h = s.latency_by_url_ns[i];
      w.Open()
          .Field("url", targets[i].url)
          .Field("count", h.count())
          .Field("p50", Ms(h.Percentile(50)))
          .Field("p90", Ms(h.Percentile(90)))
          .Field("p99", Ms(h.Percentile(99)))
          .Field("max", Ms(h.max()))
          .Close();
    }
    w.Close();
  }
  w.Open("connect")
      .Field("ok", f.connected)
      .Field("failed", f.connect_failed)
      .Field("total_ms", f.connect_total_ms)
      .Field("p50_ms", Ms(s.connect_ns.Percentile(50)))
      .Field("p90_ms", Ms(s.connect_ns.Percentile(90)))
      .Field("p99_ms", Ms(s.connect_ns.Percentile(99)))
      .Field("max_ms", Ms(s.connect_ns.max()))
      .Field("ready_p50_ms", Ms(s.ready_ns.Percentile(50)))
      .Field("ready_p99_ms", Ms(s.ready_ns.Percentile(99)))
      .Counts("errors", s.connect_errors)
      .Close();
  w.Open("join")
      .Field("ok", f.joined)
      .Field("failed", f.join_failed)
      .Field("pending", f.join_pending)
      .Field("total_ms", f.join_total_ms)
      .Field("p50_ms", Ms(s.join_ns.Percentile(50)))
      .Field("p99_ms", Ms(s.join_ns.Percentile(99)))
      .Field("max_ms", Ms(s.join_ns.max()))
      .Counts("errors", s.join_errors)
      .Close();
  w.Counts("disconnects", s.disconnects);
  w.Open("rss_kib");
  Rss(w, "before", f.rss_before);
  Rss(w, "after_connect", f.rss_after_connect);
  if (f.rss_after_idle) Rss(w, "after_idle", *f.rss_after_idle);
  Rss(w, "end", f.rss_end);
  w.OpenArray("pids");
  for (size_t i = 0; i < o.server_pids.size(); ++i) {
    auto at = [i](const RssReading& r) { return i < r.per_pid_kib.size() ? r.per_pid_kib[i] : std::nullopt; };
    w.Open()
        .Field("pid", o.server_pids[i])
        .Field("before", at(f.rss_before))
        .Field("after_connect", at(f.rss_after_connect))
        .Field("end", at(f.rss_end))
        .Close();
  }
  w.Close().Close();
  w.Field("rss_per_conn_bytes", RssPerConnBytes(f));
  w.Field("welcomes", s.welcomes)
      .Field("unparsed_frames", s.unparsed_frames)
      .Field("interrupted", f.interrupted);
  w.Close();
  return w.str();
}

std::string ReportText(const Options& o, const std::vector<Target>& targets, const RunFacts& f,
                       const Stats& s) {
  const uint64_t expected = ExpectedDeliveries(o, s);
  std::string t = "---- chat-loadgen report ----\n";
  t += Line("connect          %llu ok, %llu failed in %.0f ms; p50=%.2f p99=%.2f max=%.2f ms\n",
            static_cast<unsigned long long>(f.connected), static_cast<unsigned long long>(f.connect_failed),
            f.connect_total_ms, Ms(s.connect_ns.Percentile(50)), Ms(s.connect_ns.Percentile(99)),
            Ms(s.connect_ns.max()));
  t += CountsText("connect errors", s.connect_errors);
  t += Line("join             %llu ok, %llu failed, %llu unanswered in %.0f ms; p50=%.2f p99=%.2f ms\n",
            static_cast<unsigned long long>(f.joined), static_cast<unsigned long long>(f.join_failed),
            static_cast<unsigned long long>(f.join_pending), f.join_total_ms, Ms(s.join_ns.Percentile(50)),
            Ms(s.join_ns.Percentile(99)));
  t += CountsText("join errors", s.join_errors);
  t += Line("window           %.2f s at %.0f msg/s target, %llu senders\n", f.measured_s, o.rate,
            static_cast<unsigned long long>(f.senders));
  t += Line("sent             %llu (%.0f/s), skipped %llu\n", static_cast<unsigned long long>(s.sent),
            PerSecond(s.sent, f.measured_s), static_cast<unsigned long long>(s.send_skipped));
  t += Line("acked            %llu (%.0f/s)\n", static_cast<unsigned long long>(s.acked),
            PerSecond(s.acked, f.measured_s));
  t += CountsText("send errors", s.errors);
  t += Line("deliveries       %llu of %llu expected (%.0f/s), lost %lld\n",
            static_cast<unsigned long long>(s.deliveries), static_cast<unsigned long long>(expected),
            PerSecond(s.deliveries, f.measured_s),
            static_cast<long long>(expected) - static_cast<long long>(s.deliveries));
  t += LatencyText("delivery latency", s.latency_ns);
  t += LatencyText("ack latency", s.ack_ns);
  if (targets.size() > 1) {
    for (size_t i = 0; i < targets.size(); ++i) {
      t += LatencyText(("  via url[" + std::to_string(i) + "]").c_str(), s.latency_by_url_ns[i]);
    }
  }
  t += CountsText("disconnects", s.disconnects);
  if (!o.server_pids.empty()) {
    t += "server rss       before " + RssText(f.rss_before.total_kib) + ", after connect " +
         RssText(f.rss_after_connect.total_kib);
    if (f.rss_after_idle) t += ", after idle " + RssText(f.rss_after_idle->total_kib);
    t += ", end " + RssText(f.rss_end.total_kib);
    if (auto per = RssPerConnBytes(f)) t += ", " + std::to_string(*per) + " B/connection";
    t += "\n";
  }
  if (f.interrupted) t += "(interrupted)\n";
  return t;
}

}  // namespace chat::loadgen
