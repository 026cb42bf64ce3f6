#pragma once
// EventPublisher on Redis pub/sub: one pipelined write of PUBLISH commands per batch. Used by the
// commit writer thread only.

#include <mutex>

#include "common/redis_connection.h"
#include "domain/event_publisher.h"

namespace chat::messages {

class RedisEventPublisher : public EventPublisher {
 public:
  RedisEventPublisher(std::string host, int port);
  absl::Status Publish(const std::vector<chat::v1::ChatMessage>& messages) override;
  absl::Status PublishEvent(const std::string& room, const chat::v1::RoomEvent& event) override;
  absl::Status PublishControl(const chat::v1::ControlEvent& event) override;

 private:
  RedisConnection redis_;
};

// The same for many threads (the query pool's occasional events): one connection under a mutex.
class LockedEventPublisher : public EventPublisher {
 public:
  LockedEventPublisher(std::string host, int port) : inner_(std::move(host), port) {}
  absl::Status Publish(const std::vector<chat::v1::ChatMessage>& messages) override {
    std::lock_guard lock(mu_);
    return inner_.Publish(messages);
  }
  absl::Status PublishEvent(const std::string& room, const chat::v1::RoomEvent& event) override {
    std::lock_guard lock(mu_);
    return inner_.PublishEvent(room, event);
  }
  absl::Status PublishControl(const chat::v1::ControlEvent& event) override {
    std::lock_guard lock(mu_);
    return inner_.PublishControl(event);
  }

 private:
  std::mutex mu_;
  RedisEventPublisher inner_;
};

}  // namespace chat::messages
