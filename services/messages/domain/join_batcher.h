#pragma once
// Joins go to storage in batches (MessageStore::JoinBatch, one statement): while one batch runs on a
// query-pool worker, joins that arrive wait and go together in the next (PoolBatcher). A lone join goes
// at once, as a batch of one; a storm of them (a gateway restarting: each client reconnects and joins
// its rooms again) shares each statement's fixed costs. One batch at most is in flight, so the pool's
// other workers stay free for history and room queries. Submit is thread-safe and never blocks;
// completions run on the pool's worker (or on the caller's thread when refused) and must not block.

#include <functional>

#include "common/metrics.h"
#include "common/pool_batcher.h"
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

  static void Run(MessageStore& store, std::vector<Pending>& batch);

  PoolBatcher<MessageStore, Pending> batcher_;
};

}  // namespace chat::messages
