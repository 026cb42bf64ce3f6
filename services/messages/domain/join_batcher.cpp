#include "domain/join_batcher.h"

namespace chat::messages {
namespace {

absl::Status Unavailable() { return absl::UnavailableError("messages service is overloaded or stopping"); }

}  // namespace

JoinBatcher::JoinBatcher(QueryPool& pool, size_t batch_max, size_t queue_max, MetricsRegistry& metrics)
    : batcher_(
          pool, batch_max, queue_max, &JoinBatcher::Run, [](Pending& p) { p.done(Unavailable()); },
          &metrics.GetHistogram("chat_join_batch_size", "Joins per join_rooms statement",
                                {1, 2, 4, 8, 16, 32, 64, 128, 256, 512})) {}

void JoinBatcher::Submit(RoomJoin join, Done done) {
  batcher_.Submit(Pending{std::move(join), std::move(done)});
}

void JoinBatcher::Run(MessageStore& store, std::vector<Pending>& batch) {
  std::vector<RoomJoin> joins;
  joins.reserve(batch.size());
  for (auto& p : batch) joins.push_back(std::move(p.join));
  auto results = store.JoinBatch(joins);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!results.ok()) {
      batch[i].done(results.status());
    } else {
      batch[i].done(std::move((*results)[i]));
    }
  }
}

}  // namespace chat::messages
