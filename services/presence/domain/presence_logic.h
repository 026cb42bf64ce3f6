#pragma once
// The presence service's requests, validated and run on the Redis worker pool, and the changes they
// cause published to the rooms. Connection events (opened, closed, entered, exited, heartbeat) go in
// batches, one Redis round trip each, one batch at a time and in arrival order (PoolBatcher); queries
// and typing run on the pool's other workers. Thread-safe; each method returns at once and calls `done`
// exactly once, on a worker thread (or on the caller's thread when refused up front). Time comes from
// `now_ms`.

#include <functional>

#include "chat/v1/presence.pb.h"
#include "common/metrics.h"
#include "common/pool_batcher.h"
#include "common/worker_pool.h"
#include "storage/presence_store.h"

namespace chat::presence {

using PresencePool = WorkerPool<PresenceStore>;
using NowMs = std::function<int64_t()>;

class PresenceLogic {
 public:
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;

  PresenceLogic(PresencePool& pool, NowMs now_ms, MetricsRegistry& metrics);

  // One request of a gateway's stream.
  void Handle(const chat::v1::PresenceRequest& req, Done<chat::v1::PresenceReply> done);
  void RoomOnline(const std::string& room, Done<chat::v1::RoomOnline> done);
  void Users(const std::vector<std::string>& users, Done<chat::v1::GetUsersReply> done);

 private:
  struct PendingEvent {
    ConnectionEvent event;
    chat::v1::PresenceReply reply;  // its correlation id, filled in when the event is applied
    Done<chat::v1::PresenceReply> done;
  };

  absl::StatusOr<chat::v1::PresenceReply> Run(PresenceStore& store, const chat::v1::PresenceRequest& req);
  void RunEvents(PresenceStore& store, std::vector<PendingEvent>& batch);
  void Publish(PresenceStore& store, const std::vector<PresenceChange>& changes);

  PresencePool& pool_;
  NowMs now_ms_;
  Counter& online_events_;
  Counter& typing_events_;
  Counter& publish_failures_;
  PoolBatcher<PresenceStore, PendingEvent> events_;
};

}  // namespace chat::presence
