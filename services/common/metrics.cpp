#include "metrics.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace chat {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0) sum_micro_.fetch_add(static_cast<uint64_t>(std::llround(v * 1e6)), std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

double Histogram::Sum() const { return static_cast<double>(sum_micro_.load()) / 1e6; }

std::string MetricsRegistry::LabelText(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"";
    for (char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.type = "counter";
  f.help = help;
  auto key = LabelText(labels);
  auto it = f.counters.find(key);
  if (it != f.counters.end()) return *it->second;
  Counter& c = counter_store_.emplace_back();
  f.counters[key] = &c;
  return c;
}

Gauge& MetricsRegistry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.type = "gauge";
  f.help = help;
  auto key = LabelText(labels);
  auto it = f.gauges.find(key);
  if (it != f.gauges.end()) return *it->second;
  Gauge& g = gauge_store_.emplace_back();
  f.gauges[key] = &g;
  return g;
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.type = "histogram";
  f.help = help;
  auto key = LabelText(labels);
  auto it = f.histograms.find(key);
  if (it != f.histograms.end()) return *it->second;
  Histogram& h = histogram_store_.emplace_back(std::move(bounds));
  f.histograms[key] = &h;
  return h;
}

std::string MetricsRegistry::RenderText() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters) out += absl::StrFormat("%s%s %d\n", name, labels, c->Value());
    for (const auto& [labels, g] : f.gauges) out += absl::StrFormat("%s%s %d\n", name, labels, g->Value());
    for (const auto& [labels, h] : f.histograms) {
      // Insert "le" into the label set.
      std::string prefix = labels.empty() ? "{" : labels.substr(0, labels.size() - 1) + ",";
      auto counts = h->CumulativeCounts();
      for (size_t i = 0; i < h->Bounds().size(); ++i) {
        out += absl::StrFormat("%s_bucket%sle=\"%g\"} %d\n", name, prefix, h->Bounds()[i], counts[i]);
      }
      out += absl::StrFormat("%s_bucket%sle=\"+Inf\"} %d\n", name, prefix, counts.back());
      out += absl::StrFormat("%s_sum%s %g\n", name, labels, h->Sum());
      out += absl::StrFormat("%s_count%s %d\n", name, labels, h->Count());
    }
  }
  return out;
}

std::vector<double> LatencyBuckets() {
  std::vector<double> b;
  for (double v = 0.0001; v < 10; v *= 2) b.push_back(v);
  return b;
}

}  // namespace chat
