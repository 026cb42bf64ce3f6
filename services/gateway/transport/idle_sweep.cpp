#include "transport/idle_sweep.h"

#include <algorithm>
#include <chrono>

namespace chat::gateway {

IdleSweep::IdleSweep(boost::asio::io_context& ioc, GatewayContext& ctx) : timer_(ioc), ctx_(ctx) {}

void IdleSweep::Start() { Schedule(); }

void IdleSweep::Stop() { timer_.cancel(); }

void IdleSweep::Schedule() {
  timer_.expires_after(
      std::chrono::milliseconds(std::max<int64_t>(250, ctx_.config.heartbeat_seconds * 250)));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& session : ctx_.sessions.All()) session->CheckIdleFromAnyThread(now);
    Schedule();
  });
}

}  // namespace chat::gateway
