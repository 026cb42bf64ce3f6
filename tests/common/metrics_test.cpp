#include "common/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace chat {
namespace {

TEST(Metrics, CountersRenderWithLabels) {
  MetricsRegistry r;
  r.GetCounter("chat_frames_in_total", "Frames", {{"type", "send"}}).Inc(3);
  r.GetCounter("chat_frames_in_total", "Frames", {{"type", "join"}}).Inc();
  std::string text = r.RenderText();
  EXPECT_NE(text.find("# TYPE chat_frames_in_total counter"), std::string::npos);
  EXPECT_NE(text.find("chat_frames_in_total{type=\"send\"} 3"), std::string::npos);
  EXPECT_NE(text.find("chat_frames_in_total{type=\"join\"} 1"), std::string::npos);
}

TEST(Metrics, SameNameAndLabelsIsSameCounter) {
  MetricsRegistry r;
  Counter& a = r.GetCounter("x_total", "x");
  Counter& b = r.GetCounter("x_total", "x");
  EXPECT_EQ(&a, &b);
}

TEST(Metrics, GaugeAndHistogram) {
  MetricsRegistry r;
  r.GetGauge("chat_connections", "c").Set(7);
  Histogram& h = r.GetHistogram("lat_seconds", "l", {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  std::string text = r.RenderText();
  EXPECT_NE(text.find("chat_connections 7"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.1\"} 1"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"1\"} 2"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count 3"), std::string::npos);
}

TEST(Metrics, ConcurrentIncrementsAreCounted) {
  MetricsRegistry r;
  Counter& c = r.GetCounter("n_total", "n");
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      for (int k = 0; k < 10000; ++k) c.Inc();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.Value(), 40000u);
}

}  // namespace
}  // namespace chat
