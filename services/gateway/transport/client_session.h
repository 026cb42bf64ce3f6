#pragma once
// What the gateway's control paths (kick, broadcast, invites, shutdown) need of a client's session,
// whatever carries it: WebSocket, over TLS or not, or the SSE fallback. Every method is thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "domain/room_registry.h"

namespace chat::gateway {

class ClientSession : public RoomMember {
 public:
  // Joins a room as if the client had asked (a DM opened by someone else): an unprompted `joined`
  // follows.
  virtual void JoinFromAnyThread(std::string room) = 0;
  // A frame for this connection alone, outside any room (notices, broadcasts).
  virtual void DeliverRaw(std::shared_ptr<const std::string> frame) = 0;
  // Closes with a WebSocket close code (1001 on shutdown, 4003 kicked); the SSE fallback sends the
  // code in a last `close` event.
  virtual void CloseFromAnyThread(uint16_t code, std::string reason) = 0;
  // Called every few seconds by the IdleSweep: a session that keeps its own keepalive does nothing; a
  // WebSocket pings a quiet client and drops one silent for twice the heartbeat. CheckIdleOnLane is
  // the same, called on the session's own io thread (its lane).
  virtual void CheckIdleFromAnyThread(std::chrono::steady_clock::time_point /*now*/) {}
  virtual void CheckIdleOnLane(std::chrono::steady_clock::time_point /*now*/) {}
};

}  // namespace chat::gateway
