#pragma once
// The presence service's requests, validated and run on the Redis worker pool. Thread-safe; each
// method returns at once and calls `done` exactly once, on a worker thread (or on the caller's thread
// when refused up front).

#include <functional>

#include "chat/v1/presence.pb.h"
#include "common/metrics.h"
#include "common/worker_pool.h"
#include "storage/presence_store.h"

namespace chat::presence {

using PresencePool = WorkerPool<PresenceStore>;

class PresenceLogic {
 public:
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;

  PresenceLogic(PresencePool& pool, MetricsRegistry& metrics);

  // One request of a gateway's stream; the reply carries `online` for `entered`.
  void Handle(const chat::v1::PresenceRequest& req, Done<chat::v1::PresenceReply> done);
  void RoomOnline(const std::string& room, Done<chat::v1::RoomOnline> done);
  void Users(const std::vector<std::string>& users, Done<chat::v1::GetUsersReply> done);

 private:
  PresencePool& pool_;
  Counter& users_online_;
  Counter& users_offline_;
};

}  // namespace chat::presence
