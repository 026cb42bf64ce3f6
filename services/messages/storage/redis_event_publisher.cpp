#include "storage/redis_event_publisher.h"

#include "common/text_rules.h"

namespace chat::messages {

RedisEventPublisher::RedisEventPublisher(std::string host, int port)
    : redis_(std::move(host), port, std::chrono::milliseconds(2000)) {}

absl::Status RedisEventPublisher::Publish(const std::vector<chat::v1::ChatMessage>& messages) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(messages.size());
  for (const auto& m : messages) {
    chat::v1::RoomEvent ev;
    *ev.mutable_message() = m;
    commands.push_back({"PUBLISH", RoomChannel(m.room()), ev.SerializeAsString()});
  }
  auto replies = redis_.Pipeline(commands);
  if (!replies.ok()) {
    // One reconnect and retry: a Redis restart between batches should not lose a live delivery.
    replies = redis_.Pipeline(commands);
  }
  return replies.status();
}

}  // namespace chat::messages

namespace chat::messages {

absl::Status RedisEventPublisher::PublishEvent(const std::string& room, const chat::v1::RoomEvent& event) {
  std::vector<std::string> cmd = {"PUBLISH", RoomChannel(room), event.SerializeAsString()};
  auto r = redis_.Command(cmd);
  if (!r.ok()) r = redis_.Command(cmd);
  return r.status();
}

absl::Status RedisEventPublisher::PublishControl(const chat::v1::ControlEvent& event) {
  std::vector<std::string> cmd = {"PUBLISH", std::string(kControlChannel), event.SerializeAsString()};
  auto r = redis_.Command(cmd);
  if (!r.ok()) r = redis_.Command(cmd);
  return r.status();
}

}  // namespace chat::messages
