#pragma once
// Group commit: sends from every stream and RPC queue here; one writer thread stores what has queued
// up in one transaction; a second thread publishes each committed batch's new messages and only then
// completes its sends, while the writer already stores the next batch. When no send waits to be
// stored, the writer publishes and completes the batch itself (a quiet server's sends skip a thread
// hand-off). Batches are published and completed in commit order, so each room's messages go out in
// seq order. Submit is thread-safe and never blocks; completions run on the writer or the finishing
// thread and must not block.
//
// Under load the writer lingers before taking the next batch: after a commit of `linger_after` or more
// messages (sends were piling up behind commits) it waits up to `linger` for the queue to fill to
// batch_max. A transaction's fixed cost (statement start-up, commit, two context switches) then spreads
// over many more messages. Below that, sends are stored as they come; a lone send on a quiet server at
// once. A higher `linger_after` keeps moderate rates (batches of two or three) from waiting out a
// linger, at the price of more commits, and CPU, a little above them.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/metrics.h"
#include "domain/event_publisher.h"
#include "domain/send_batch.h"
#include "storage/message_store.h"

namespace chat::messages {

class CommitBatcher {
 public:
  using Done = std::function<void(absl::StatusOr<AppendOutcome>)>;

  CommitBatcher(std::unique_ptr<MessageStore> store, EventPublisher& publisher, size_t batch_max,
                size_t queue_max, std::chrono::microseconds linger, size_t linger_after,
                MetricsRegistry& metrics);
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
  // A stored batch on its way to publish and completion.
  struct Committed {
    std::vector<Pending> batch;
    SendBatch plan;
    std::vector<absl::StatusOr<AppendOutcome>> stored;
    std::chrono::steady_clock::time_point started;
  };
  // Stored batches waiting for the finishing thread: past this the writer waits (a stalled publish
  // holds back commits instead of piling them up).
  static constexpr size_t kMaxCommittedWaiting = 2;

  void Run();
  void CommitOne(std::vector<Pending>& batch);
  void RunFinisher();
  void Finish(Committed& c);

  std::unique_ptr<MessageStore> store_;
  EventPublisher& publisher_;
  const size_t batch_max_;
  const size_t queue_max_;
  const std::chrono::microseconds linger_;
  const size_t linger_after_;  // the least batch that makes the writer linger before the next

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread writer_;

  std::mutex finish_mu_;
  std::condition_variable finish_cv_;  // a batch to finish, or room for one, or the writer is done
  std::deque<Committed> committed_waiting_;
  bool finishing_ = false;  // a batch is being published and completed (by either thread)
  bool writer_done_ = false;
  std::thread finisher_;

  Histogram& batch_size_;
  Histogram& commit_seconds_;
  Counter& committed_;
  Counter& duplicates_;
  Counter& commit_failures_;
  Counter& publish_failures_;
  Counter& finished_by_writer_;
};

}  // namespace chat::messages
