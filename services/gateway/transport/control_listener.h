#pragma once
// Acts on the control channel every gateway subscribes to: kicks (close the user's connections here
// with 4003) and broadcasts (a notice to every connection here, encoded once). Runs on the subscriber's
// thread; the sessions it touches are reached through thread-safe calls.

#include <string>

#include "common/metrics.h"

namespace chat::gateway {

class GatewayContext;

class ControlListener {
 public:
  ControlListener(GatewayContext& ctx, MetricsRegistry& metrics);
  void OnMessage(const std::string& payload);

 private:
  GatewayContext& ctx_;
  Counter& kicks_;
  Counter& broadcasts_;
};

}  // namespace chat::gateway
