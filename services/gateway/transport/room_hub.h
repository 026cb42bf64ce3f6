#pragma once
// RoomFanout over the RoomRegistry and the Redis subscriber: a room's channel is subscribed while it
// has a local member, and each event from it is encoded once and the same bytes are queued on every
// local member. Subscription decisions run on the subscriber's thread, where the registry is read
// again, so concurrent enters and exits cannot leave a room unsubscribed with members in it.

#include <string>

#include "common/metrics.h"
#include "domain/backends.h"
#include "domain/room_registry.h"
#include "transport/redis_subscriber.h"

namespace chat::gateway {

class RoomHub : public RoomFanout {
 public:
  RoomHub(RoomRegistry& registry, MetricsRegistry& metrics);

  // Set once before Start: the subscriber whose messages come to OnChannelMessage.
  void Attach(RedisSubscriber* subscriber) { subscriber_ = subscriber; }

  void Enter(const std::string& room, const std::string& connection_id, std::weak_ptr<RoomMember> member,
             std::function<void(absl::Status)> ready) override;
  void Exit(const std::string& room, const std::string& connection_id) override;

  // On the subscriber's thread.
  void OnChannelMessage(const std::string& channel, const std::string& payload);

 private:
  RoomRegistry& registry_;
  RedisSubscriber* subscriber_ = nullptr;
  Counter& deliveries_;
  Counter& events_;
  Counter& bad_events_;
  Histogram& delivery_latency_;
};

}  // namespace chat::gateway
