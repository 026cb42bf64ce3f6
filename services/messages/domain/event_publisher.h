#pragma once
// Where committed messages go next: the rooms' pub/sub channels. Called from the commit writer thread
// only; implementations may block.

#include <vector>

#include "absl/status/status.h"
#include "chat/v1/frames.pb.h"

namespace chat::messages {

class EventPublisher {
 public:
  virtual ~EventPublisher() = default;
  // Publishes each message to its room's channel, in the given order.
  virtual absl::Status Publish(const std::vector<chat::v1::ChatMessage>& messages) = 0;
  // Publishes another event (read, cleared) to a room's channel.
  virtual absl::Status PublishEvent(const std::string& room, const chat::v1::RoomEvent& event) = 0;
  // Publishes on the control channel every gateway listens to.
  virtual absl::Status PublishControl(const chat::v1::ControlEvent& event) = 0;
};

}  // namespace chat::messages
