#pragma once
// Keepalive for WebSocket connections without a timer on each: every quarter heartbeat (at least every
// 250 ms) each session checks how long its client has been quiet. Quiet for a heartbeat: a ping goes
// out; for two: the connection is dropped (the client's tab froze or its network went away), as
// DESIGN.md's heartbeat asks. Runs on one io_context; sessions do their part on their own thread.
//
// The sessions are checked a share at a time, spread over the quarter heartbeat (up to 16 shares, one
// every >= 50 ms; SessionSet keeps its sessions in 16 shards, so a turn walks only its share's), and
// each io thread gets its share's checks in slices of kSlice (lane_sweep.h), not one posted handler
// per session. Connections that came together (a gateway's clients reconnecting after a restart) go
// quiet together; checked all at once, they were all pinged in one burst, and (most likely) their
// pongs came back in one: with 18,000 idle connections a delivery could wait 100-190 ms behind that,
// and 20 ms behind a sweep's 18,000 posted handlers.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <vector>

#include "transport/gateway_context.h"

namespace chat::gateway {

class IdleSweep {
 public:
  // Sessions per handler on an io thread.
  static constexpr size_t kSlice = 256;

  // `lanes`: the io threads' contexts, indexed by a session's lane().
  IdleSweep(boost::asio::io_context& ioc, GatewayContext& ctx, std::vector<boost::asio::io_context*> lanes);
  void Start();
  void Stop();

 private:
  void Schedule();

  boost::asio::steady_timer timer_;
  GatewayContext& ctx_;
  std::vector<boost::asio::io_context*> lanes_;
  uint64_t ticks_ = 0;
};

}  // namespace chat::gateway
