#pragma once
// RoomFanout over the RoomRegistry and the Redis subscriber: a room's channel is subscribed while it
// has a local member, and each event from it is encoded once and the same bytes are queued on every
// local member. Per room, a SeqOrderer keeps messages in seq order: what Redis drops or reorders
// (a restart, a late subscribe) is fetched from messages before later messages go out. Subscription
// decisions and the orderers live on the subscriber's thread, where the registry is read again, so
// concurrent enters and exits cannot leave a room unsubscribed with members in it.
//
// Everything one read from Redis brings goes to each lane as one batch (one post per lane and read, not
// per message), delivered between the lane flusher's BeginBatch and EndBatch: a connection that gets
// several messages of one room from the batch gets them in one socket write (transport/lane_flusher.h).

#include <boost/asio/steady_timer.hpp>
#include <map>
#include <string>

#include "common/metrics.h"
#include "common/redis_subscriber.h"
#include "domain/backends.h"
#include "domain/room_registry.h"
#include "domain/seq_orderer.h"
#include "transport/lane_flusher.h"

namespace chat::gateway {

class RoomHub : public RoomFanout {
 public:
  RoomHub(RoomRegistry& registry, MessagesBackend& messages, std::chrono::milliseconds refetch_after,
          MetricsRegistry& metrics);

  // Set once before Start: the subscriber whose events come to OnChannelMessage / OnSubscribed, and
  // whose end of each read ends the batch (OnReadDone).
  void Attach(RedisSubscriber* subscriber);
  // Set once before Start: the io_contexts that sessions live on, by lane (RoomMember::lane), and each
  // lane's flusher of held frames (none: deliveries are not batched).
  void SetLanes(std::vector<boost::asio::io_context*> lanes, std::vector<LaneFlusher*> flushers = {});
  // Starts the tick that retries overdue gap fetches; call once the io_context runs.
  void StartTicking();
  void StopTicking();

  void Enter(const std::string& room, const std::string& connection_id, std::weak_ptr<RoomMember> member,
             std::function<void(absl::Status)> ready) override;
  void Exit(const std::string& room, const std::string& connection_id) override;

  // On the subscriber's thread.
  void OnChannelMessage(const std::string& channel, const std::string& payload);
  void OnSubscribed(const std::string& channel, bool again);
  // The read that brought the last OnChannelMessage calls is done: hands each lane its batch.
  void OnReadDone();

 private:
  SeqOrderer& OrderOf(const std::string& room);
  void Apply(const std::string& room, SeqOrderer::Step step);
  void Fetch(const std::string& room, GapFetch gap);
  void FanOut(const std::string& room, SeqFrame frame);
  // One room event and the members on one lane it goes to.
  struct LaneDelivery {
    std::shared_ptr<const Delivery> delivery;
    std::vector<std::shared_ptr<RoomMember>> members;
    bool more_for_room = false;  // the batch has another message for this room after this one
  };
  void PostToLane(size_t lane, std::vector<LaneDelivery> batch);
  void Tick();

  RoomRegistry& registry_;
  MessagesBackend& messages_;
  std::chrono::milliseconds refetch_after_;
  RedisSubscriber* subscriber_ = nullptr;
  std::unique_ptr<boost::asio::steady_timer> tick_;
  bool ticking_ = false;
  std::map<std::string, SeqOrderer> orders_;  // subscriber thread only
  std::vector<boost::asio::io_context*> lanes_;
  std::vector<LaneFlusher*> flushers_;
  std::vector<std::vector<std::shared_ptr<RoomMember>>> by_lane_;  // FanOut's scratch, subscriber thread
  // Inside a read from Redis: what it fans out waits here, by lane, until OnReadDone.
  bool in_read_ = false;
  std::vector<std::vector<LaneDelivery>> pending_by_lane_;
  Counter& deliveries_;
  Counter& events_;
  Counter& bad_events_;
  Counter& gap_fetches_;
  Counter& redis_duplicates_;
  Histogram& delivery_latency_;
};

}  // namespace chat::gateway
