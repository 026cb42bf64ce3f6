#pragma once
// EventPublisher on Redis pub/sub: one pipelined write of PUBLISH commands per batch. Used by the
// commit writer thread only.

#include "common/redis_connection.h"
#include "domain/event_publisher.h"

namespace chat::messages {

class RedisEventPublisher : public EventPublisher {
 public:
  RedisEventPublisher(std::string host, int port);
  absl::Status Publish(const std::vector<chat::v1::ChatMessage>& messages) override;

 private:
  RedisConnection redis_;
};

}  // namespace chat::messages
