#pragma once
// Group commit: sends from every stream and RPC queue here; one writer thread stores what has queued
// up in one transaction, publishes the new messages, and only then completes each send. Submit is
// thread-safe and never blocks; completions run on the writer thread and must not block.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/metrics.h"
#include "domain/event_publisher.h"
#include "storage/message_store.h"

namespace chat::messages {

class CommitBatcher {
 public:
  using Done = std::function<void(absl::StatusOr<AppendOutcome>)>;

  CommitBatcher(std::unique_ptr<MessageStore> store, EventPublisher& publisher, size_t batch_max,
                size_t queue_max, MetricsRegistry& metrics);
  ~CommitBatcher();

  void Start();
  // Finishes every queued send (stored or failed), then stops the writer.
  void Stop();

  // Refused at once with Unavailable when the queue is full or the batcher is stopping.
  void Submit(NewMessage message, Done done);

 private:
  struct Pending {
    NewMessage message;
    Done done;
  };
  void Run();
  void CommitOne(std::vector<Pending>& batch);

  std::unique_ptr<MessageStore> store_;
  EventPublisher& publisher_;
  const size_t batch_max_;
  const size_t queue_max_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread writer_;

  Histogram& batch_size_;
  Histogram& commit_seconds_;
  Counter& committed_;
  Counter& duplicates_;
  Counter& commit_failures_;
  Counter& publish_failures_;
};

}  // namespace chat::messages
