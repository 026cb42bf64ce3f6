#pragma once
// Work that goes to storage in batches on a WorkerPool: while one batch runs on a worker, items that
// arrive wait and go together in the next. A lone item goes at once, as a batch of one; a storm of them
// shares each round trip's fixed costs. At most one batch is in flight, so items run in the order they
// were submitted and the pool's other workers stay free for other requests. Submit is thread-safe and
// never blocks; batches run on the pool's worker, refusals on the caller's thread or, when the pool
// refuses the drain, on the thread that posted it.

#include <algorithm>
#include <functional>
#include <iterator>
#include <mutex>
#include <vector>

#include "common/metrics.h"
#include "common/worker_pool.h"

namespace chat {

template <typename Resource, typename Item>
class PoolBatcher {
 public:
  // Runs one batch with the worker's resource. Must complete every item.
  using RunBatch = std::function<void(Resource&, std::vector<Item>&)>;
  // Completes an item that will not run: the queue is full or the pool refused (stopping, full).
  using Refuse = std::function<void(Item&)>;

  // queue_max: items waiting at most; past it an item is refused at once. batch_size, when given,
  // observes the size of every batch.
  PoolBatcher(WorkerPool<Resource>& pool, size_t batch_max, size_t queue_max, RunBatch run, Refuse refuse,
              Histogram* batch_size = nullptr)
      : pool_(pool),
        batch_max_(std::max<size_t>(batch_max, 1)),
        queue_max_(queue_max),
        run_(std::move(run)),
        refuse_(std::move(refuse)),
        batch_size_(batch_size) {}
  PoolBatcher(const PoolBatcher&) = delete;
  PoolBatcher& operator=(const PoolBatcher&) = delete;

  void Submit(Item item) {
    bool accepted = false, post = false;
    {
      std::lock_guard lock(mu_);
      if (waiting_.size() < queue_max_) {
        waiting_.push_back(std::move(item));
        accepted = true;
        post = !draining_;
        draining_ = true;
      }
    }
    if (!accepted) return refuse_(item);
    if (post) pool_.Post([this](Resource& r) { Drain(r); }, [this] { FailWaiting(); });
  }

 private:
  // Runs one batch on a worker, then, if more wait, queues the next behind whatever else the pool was
  // given meanwhile: a storm of items does not keep a worker from other requests (a pool of one
  // worker still answers queries between batches). When the pool takes no more work (stopping, or
  // its queue is full) the next batches run here, so nothing accepted is dropped.
  void Drain(Resource& resource) {
    for (;;) {
      std::vector<Item> batch;
      {
        std::lock_guard lock(mu_);
        if (waiting_.empty()) {
          draining_ = false;
          return;
        }
        const auto n = static_cast<std::ptrdiff_t>(std::min(waiting_.size(), batch_max_));
        batch.assign(std::make_move_iterator(waiting_.begin()),
                     std::make_move_iterator(waiting_.begin() + n));
        waiting_.erase(waiting_.begin(), waiting_.begin() + n);
      }
      if (batch_size_) batch_size_->Observe(static_cast<double>(batch.size()));
      run_(resource, batch);
      {
        std::lock_guard lock(mu_);
        if (waiting_.empty()) {
          draining_ = false;
          return;
        }
      }
      bool refused = false;
      pool_.Post([this](Resource& r) { Drain(r); }, [&refused] { refused = true; });
      if (!refused) return;
    }
  }

  void FailWaiting() {
    std::vector<Item> failed;
    {
      std::lock_guard lock(mu_);
      failed.swap(waiting_);
      draining_ = false;
    }
    for (auto& item : failed) refuse_(item);
  }

  WorkerPool<Resource>& pool_;
  const size_t batch_max_;
  const size_t queue_max_;
  RunBatch run_;
  Refuse refuse_;
  Histogram* batch_size_;
  std::mutex mu_;
  std::vector<Item> waiting_;
  bool draining_ = false;  // a Drain is posted or running: new items wait for it
};

}  // namespace chat
