#pragma once

#include "common/metrics.h"

namespace chat {

// A service's figures for its gateway streams.
struct StreamMetrics {
  explicit StreamMetrics(MetricsRegistry& metrics)
      : open(metrics.GetGauge("chat_gateway_streams", "Open gateway streams")),
        requests(metrics.GetCounter("chat_stream_requests_total", "Requests received on gateway streams")),
        replies(metrics.GetCounter("chat_stream_replies_total", "Replies sent on gateway streams")),
        writes(metrics.GetCounter("chat_stream_writes_total",
                                  "Stream messages written to gateways (a batch of replies is one)")) {}
  Gauge& open;
  Counter& requests;
  Counter& replies;
  Counter& writes;
};

}  // namespace chat
