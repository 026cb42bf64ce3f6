#pragma once
// What a client connection needs from the rest of the system, as interfaces so the connection logic
// is tested without sockets. Every method is thread-safe, returns at once, and calls its callback
// exactly once on some other thread (or inline when refused at once).

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "chat/v1/messages.pb.h"
#include "chat/v1/presence.pb.h"
#include "common/error_codes.h"
#include "domain/room_registry.h"

namespace chat::gateway {

template <typename T>
using Callback = std::function<void(absl::StatusOr<T>)>;

// The outcome of a backend call: the transport's status, or the error the backend answered with.
template <typename Reply>
absl::Status Outcome(const absl::StatusOr<Reply>& r) {
  if (!r.ok()) return r.status();
  if (r->has_error()) return StatusFromErrorCode(r->error().code(), r->error().message());
  return absl::OkStatus();
}

class MessagesBackend {
 public:
  virtual ~MessagesBackend() = default;
  virtual void Call(chat::v1::GatewayRequest request, Callback<chat::v1::GatewayReply> done) = 0;
};

class PresenceBackend {
 public:
  virtual ~PresenceBackend() = default;
  virtual void Call(chat::v1::PresenceRequest request, Callback<chat::v1::PresenceReply> done) = 0;
};

// Local room membership plus the pub/sub subscription behind it.
class RoomFanout {
 public:
  virtual ~RoomFanout() = default;
  // Adds the member; `ready` runs (on some thread) once the room's channel subscription is confirmed, or
  // with an error if it cannot be made.
  virtual void Enter(const std::string& room, const std::string& connection_id,
                     std::weak_ptr<RoomMember> member, std::function<void(absl::Status)> ready) = 0;
  virtual void Exit(const std::string& room, const std::string& connection_id) = 0;
};

}  // namespace chat::gateway
