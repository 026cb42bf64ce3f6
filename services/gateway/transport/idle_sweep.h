#pragma once
// Keepalive for WebSocket connections without a timer on each: every quarter heartbeat (at least every
// 250 ms) each session checks how long its client has been quiet. Quiet for a heartbeat: a ping goes
// out; for two: the connection is dropped (the client's tab froze or its network went away), as
// DESIGN.md's heartbeat asks. Runs on one io_context; sessions do their part on their own thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "transport/gateway_context.h"

namespace chat::gateway {

class IdleSweep {
 public:
  IdleSweep(boost::asio::io_context& ioc, GatewayContext& ctx);
  void Start();
  void Stop();

 private:
  void Schedule();

  boost::asio::steady_timer timer_;
  GatewayContext& ctx_;
};

}  // namespace chat::gateway
