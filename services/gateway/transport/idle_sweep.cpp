#include "transport/idle_sweep.h"

#include <algorithm>
#include <chrono>

#include "transport/lane_sweep.h"

namespace chat::gateway {

IdleSweep::IdleSweep(boost::asio::io_context& ioc, GatewayContext& ctx,
                     std::vector<boost::asio::io_context*> lanes)
    : timer_(ioc), ctx_(ctx), lanes_(std::move(lanes)) {}

void IdleSweep::Start() { Schedule(); }

void IdleSweep::Stop() { timer_.cancel(); }

void IdleSweep::Schedule() {
  const auto round = std::chrono::milliseconds(std::max<int64_t>(250, ctx_.config.heartbeat_seconds * 250));
  const size_t shares =
      std::clamp<size_t>(static_cast<size_t>(round / std::chrono::milliseconds(50)), 1, SessionSet::kShards);
  timer_.expires_after(round / shares);
  timer_.async_wait([this, shares](boost::system::error_code ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::vector<std::shared_ptr<ClientSession>>> by_lane(lanes_.size());
    for (auto& session : ctx_.sessions.Share(ticks_++ % shares, shares)) {
      const size_t lane = session->lane();
      if (lane < by_lane.size()) {
        by_lane[lane].push_back(std::move(session));
      } else {
        session->CheckIdleFromAnyThread(now);
      }
    }
    for (size_t lane = 0; lane < by_lane.size(); ++lane) {
      SweepInSlices(*lanes_[lane], std::move(by_lane[lane]), kSlice,
                    [now](const std::shared_ptr<ClientSession>& s) { s->CheckIdleOnLane(now); });
    }
    Schedule();
  });
}

}  // namespace chat::gateway
