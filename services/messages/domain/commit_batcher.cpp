#include "domain/commit_batcher.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "domain/send_batch.h"

namespace chat::messages {

CommitBatcher::CommitBatcher(std::unique_ptr<MessageStore> store, EventPublisher& publisher, size_t batch_max,
                             size_t queue_max, std::chrono::microseconds linger, size_t linger_after,
                             MetricsRegistry& metrics)
    : store_(std::move(store)),
      publisher_(publisher),
      batch_max_(batch_max),
      queue_max_(queue_max),
      linger_(linger),
      linger_after_(std::max<size_t>(linger_after, 2)),
      batch_size_(metrics.GetHistogram("chat_commit_batch_size", "Messages per group-commit transaction",
                                       {1, 2, 4, 8, 16, 32, 64, 128, 256, 512})),
      commit_seconds_(metrics.GetHistogram("chat_commit_duration_seconds",
                                           "Time to store and publish one batch", LatencyBuckets())),
      committed_(metrics.GetCounter("chat_messages_committed_total", "Messages stored")),
      duplicates_(metrics.GetCounter("chat_messages_duplicate_total",
                                     "Sends answered with an already stored message")),
      commit_failures_(metrics.GetCounter("chat_commit_failures_total", "Batches that failed to commit")),
      publish_failures_(metrics.GetCounter("chat_publish_failures_total",
                                           "Batches whose pub/sub publish failed after commit")),
      finished_by_writer_(metrics.GetCounter(
          "chat_commit_finished_by_writer_total",
          "Batches the writer published and completed itself (no send waiting behind them)")) {}

CommitBatcher::~CommitBatcher() { Stop(); }

void CommitBatcher::Start() {
  finisher_ = std::thread([this] { RunFinisher(); });
  writer_ = std::thread([this] { Run(); });
}

void CommitBatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard lock(finish_mu_);
    writer_done_ = true;
  }
  finish_cv_.notify_all();
  if (finisher_.joinable()) finisher_.join();
}

void CommitBatcher::Submit(NewMessage message, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && queue_.size() < queue_max_) {
      queue_.push_back(Pending{std::move(message), std::move(done)});
      // The writer waits for a first message (idle) or a full batch (lingering): only those wake it.
      if (queue_.size() == 1 || queue_.size() == batch_max_) cv_.notify_one();
      return;
    }
  }
  done(absl::UnavailableError("messages service is overloaded or stopping"));
}

void CommitBatcher::Run() {
  size_t last_batch = 0;
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(mu_);
      if (last_batch >= linger_after_ && linger_.count() > 0) {
        cv_.wait_for(lock, linger_, [&] { return stopping_ || queue_.size() >= batch_max_; });
      }
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && batch.size() < batch_max_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    last_batch = batch.size();
    CommitOne(batch);
  }
}

void CommitBatcher::CommitOne(std::vector<Pending>& batch) {
  auto started = std::chrono::steady_clock::now();
  SendBatch plan;
  for (auto& p : batch) plan.Add(p.message);

  // A conflict with another replica (unique key, deadlock) rolls the whole transaction back; trying again
  // then finds the other replica's row. A lost connection is retried once the store reconnects.
  absl::StatusOr<std::vector<absl::StatusOr<AppendOutcome>>> stored;
  constexpr int kAttempts = 4;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    stored = store_->AppendBatch(plan.unique());
    if (stored.ok() || (!absl::IsAborted(stored.status()) && !absl::IsUnavailable(stored.status()))) break;
    log::Warn("commit retry", {{"attempt", attempt + 1}, {"error", stored.status().ToString()}});
    std::this_thread::sleep_for(std::chrono::milliseconds(20 << attempt));
  }
  if (!stored.ok()) {
    commit_failures_.Inc();
    log::Error("commit failed",
               {{"messages", static_cast<int64_t>(batch.size())}, {"error", stored.status().ToString()}});
    absl::Status refused = absl::IsAborted(stored.status()) || absl::IsUnavailable(stored.status())
                               ? absl::UnavailableError("storage unavailable, retry with the same clientId")
                               : absl::InternalError("storage error");
    for (auto& p : batch) p.done(refused);
    return;
  }

  batch_size_.Observe(static_cast<double>(plan.unique().size()));
  Committed c{std::move(batch), std::move(plan), std::move(*stored), started};
  bool queue_empty;
  {
    std::lock_guard lock(mu_);
    queue_empty = queue_.empty();
  }
  {
    std::unique_lock lock(finish_mu_);
    // Nothing to store next and no earlier batch being finished: this thread finishes the batch itself
    // (order holds, only this thread queues batches), sparing the hand-off's wake of the finisher on
    // the path of every send on a quiet server. With sends waiting, the finisher takes it and this
    // thread stores the next batch meanwhile.
    if (!queue_empty || finishing_ || !committed_waiting_.empty()) {
      finish_cv_.wait(lock, [&] { return committed_waiting_.size() < kMaxCommittedWaiting; });
      committed_waiting_.push_back(std::move(c));
      finish_cv_.notify_all();
      return;
    }
    finishing_ = true;
  }
  Finish(c);
  finished_by_writer_.Inc();
  std::lock_guard lock(finish_mu_);
  finishing_ = false;
}

void CommitBatcher::RunFinisher() {
  for (;;) {
    Committed c;
    {
      std::unique_lock lock(finish_mu_);
      finish_cv_.wait(lock, [&] { return writer_done_ || !committed_waiting_.empty(); });
      if (committed_waiting_.empty()) return;  // the writer stopped and everything is finished
      c = std::move(committed_waiting_.front());
      committed_waiting_.pop_front();
      finishing_ = true;
    }
    finish_cv_.notify_all();  // room for the writer's next batch
    Finish(c);
    std::lock_guard lock(finish_mu_);
    finishing_ = false;
  }
}

void CommitBatcher::Finish(Committed& c) {
  std::vector<chat::v1::ChatMessage> fresh;
  for (const auto& o : c.stored) {
    if (o.ok() && !o->duplicate) fresh.push_back(o->message);
  }
  committed_.Inc(fresh.size());
  if (!fresh.empty()) {
    // Durable already: a failed publish is logged and counted; gateways fill the gap from storage.
    if (auto st = publisher_.Publish(fresh); !st.ok()) {
      publish_failures_.Inc();
      log::Error("publish after commit failed", {{"error", st.ToString()}});
    }
  }
  commit_seconds_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - c.started).count());
  for (size_t i = 0; i < c.batch.size(); ++i) {
    auto outcome = c.plan.OutcomeFor(i, c.stored);
    if (outcome.ok() && outcome->duplicate) duplicates_.Inc();
    c.batch[i].done(std::move(outcome));
  }
}

}  // namespace chat::messages
