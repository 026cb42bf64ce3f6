#include "domain/join_batcher.h"

#include <algorithm>
#include <iterator>

namespace chat::messages {
namespace {

absl::Status Unavailable() { return absl::UnavailableError("messages service is overloaded or stopping"); }

}  // namespace

JoinBatcher::JoinBatcher(QueryPool& pool, size_t batch_max, size_t queue_max, MetricsRegistry& metrics)
    : pool_(pool),
      batch_max_(std::max<size_t>(batch_max, 1)),
      queue_max_(queue_max),
      batch_size_(metrics.GetHistogram("chat_join_batch_size", "Joins per join_rooms statement",
                                       {1, 2, 4, 8, 16, 32, 64, 128, 256, 512})) {}

void JoinBatcher::Submit(RoomJoin join, Done done) {
  bool accepted = false, post = false;
  {
    std::lock_guard lock(mu_);
    if (waiting_.size() < queue_max_) {
      waiting_.push_back(Pending{std::move(join), std::move(done)});
      accepted = true;
      post = !draining_;
      draining_ = true;
    }
  }
  if (!accepted) return done(Unavailable());
  if (post) pool_.Post([this](MessageStore& store) { Drain(store); }, [this] { FailWaiting(); });
}

void JoinBatcher::Drain(MessageStore& store) {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::lock_guard lock(mu_);
      if (waiting_.empty()) {
        draining_ = false;
        return;
      }
      const auto n = static_cast<std::ptrdiff_t>(std::min(waiting_.size(), batch_max_));
      batch.assign(std::make_move_iterator(waiting_.begin()), std::make_move_iterator(waiting_.begin() + n));
      waiting_.erase(waiting_.begin(), waiting_.begin() + n);
    }
    std::vector<RoomJoin> joins;
    joins.reserve(batch.size());
    for (auto& p : batch) joins.push_back(std::move(p.join));
    batch_size_.Observe(static_cast<double>(joins.size()));
    auto results = store.JoinBatch(joins);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!results.ok()) {
        batch[i].done(results.status());
      } else {
        batch[i].done(std::move((*results)[i]));
      }
    }
  }
}

void JoinBatcher::FailWaiting() {
  std::vector<Pending> failed;
  {
    std::lock_guard lock(mu_);
    failed.swap(waiting_);
    draining_ = false;
  }
  for (auto& p : failed) p.done(Unavailable());
}

}  // namespace chat::messages
