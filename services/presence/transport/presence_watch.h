#pragma once
// chat.v1.Presence/Watch: every change published on chat:presence:events goes to the watchers whose
// rooms or users match. WatchHub is thread-safe (the Redis subscriber's thread dispatches, gRPC threads
// add and remove watchers). Each watcher keeps one write in flight and a bounded queue; a watcher that
// falls 1000 events behind is finished with RESOURCE_EXHAUSTED rather than grow without bound.

#include <grpcpp/support/server_callback.h>

#include <deque>
#include <mutex>
#include <set>
#include <string>

#include "chat/v1/presence.pb.h"
#include "common/metrics.h"

namespace chat::presence {

class WatchReactor;

class WatchHub {
 public:
  explicit WatchHub(MetricsRegistry& metrics);
  // Starts a watcher for the RPC; the reactor deletes itself when the RPC is done.
  grpc::ServerWriteReactor<chat::v1::RoomEvent>* Open(const chat::v1::WatchRequest& request);
  // One payload from the presence events channel.
  void Dispatch(const std::string& payload);
  // Ends every watch (shutdown).
  void CloseAll();

 private:
  friend class WatchReactor;
  void Remove(WatchReactor* r);

  std::mutex mu_;
  std::set<WatchReactor*> watchers_;
  Gauge& open_;
  Counter& sent_;
  Counter& dropped_watchers_;
};

}  // namespace chat::presence
