#pragma once
// A small HTTP server for services without one of their own: GET /metrics (Prometheus text) and
// GET /healthz. Runs its own io_context on one thread; Start and Stop from the owning thread.

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "metrics.h"

namespace chat {

class MetricsHttpServer {
 public:
  MetricsHttpServer(const MetricsRegistry& registry, std::function<bool()> healthy);
  ~MetricsHttpServer();

  absl::Status Start(const std::string& addr);
  void Stop();
  int port() const { return port_; }

 private:
  struct Impl;
  const MetricsRegistry& registry_;
  std::function<bool()> healthy_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace chat
