#pragma once
// Joins go to storage in batches (MessageStore::JoinBatch, one statement): while one batch runs on a
// query-pool worker, joins that arrive wait and go together in the next. A lone join goes at once, as a
// batch of one; a storm of them (a gateway restarting: each client reconnects and joins its rooms
// again) shares each statement's fixed costs. One batch at most is in flight, so the pool's other
// workers stay free for history and room queries. Submit is thread-safe and never blocks; completions
// run on the pool's worker (or on the caller's thread when refused) and must not block.

#include <functional>
#include <mutex>
#include <vector>

#include "common/metrics.h"
#include "domain/query_pool.h"
#include "storage/message_store.h"

namespace chat::messages {

class JoinBatcher {
 public:
  using Done = std::function<void(absl::StatusOr<chat::v1::RoomInfo>)>;

  // queue_max: joins waiting at most; past it a join is refused at once with Unavailable.
  JoinBatcher(QueryPool& pool, size_t batch_max, size_t queue_max, MetricsRegistry& metrics);

  void Submit(RoomJoin join, Done done);

 private:
  struct Pending {
    RoomJoin join;
    Done done;
  };

  // Runs batches on a worker until nothing waits.
  void Drain(MessageStore& store);
  // The pool refused the drain (full or stopping): every waiting join fails.
  void FailWaiting();

  QueryPool& pool_;
  const size_t batch_max_;
  const size_t queue_max_;
  Histogram& batch_size_;
  std::mutex mu_;
  std::vector<Pending> waiting_;
  bool draining_ = false;  // a Drain is posted or running: new joins wait for it
};

}  // namespace chat::messages
