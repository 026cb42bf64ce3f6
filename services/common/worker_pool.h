#pragma once
// Runs blocking work (database, Redis) on a fixed pool of threads, each owning its own Resource (a
// connection), so gRPC reactors and Asio handlers never block. Post is thread-safe and never blocks;
// a full queue refuses work at once.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics.h"

namespace chat {

template <typename Resource>
class WorkerPool {
 public:
  using Task = std::function<void(Resource&)>;
  using Refused = std::function<void()>;

  // busy and queued, when given, follow the workers running a task and the tasks waiting (metrics).
  WorkerPool(std::vector<std::unique_ptr<Resource>> resources, size_t queue_max, Gauge* busy = nullptr,
             Gauge* queued = nullptr)
      : resources_(std::move(resources)), queue_max_(queue_max), busy_(busy), queued_(queued) {}
  ~WorkerPool() { Stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Start() {
    for (auto& r : resources_) threads_.emplace_back([this, res = r.get()] { Run(*res); });
  }

  // Runs the queued tasks to the end, then joins the threads.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  // Runs task on a worker, or calls refused on this thread when the queue is full or stopping.
  void Post(Task task, Refused refused) {
    {
      std::lock_guard lock(mu_);
      if (!stopping_ && tasks_.size() < queue_max_) {
        tasks_.push_back(std::move(task));
        if (queued_) queued_->Set(static_cast<int64_t>(tasks_.size()));
        cv_.notify_one();
        return;
      }
    }
    refused();
  }

 private:
  void Run(Resource& resource) {
    for (;;) {
      Task task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
        if (queued_) queued_->Set(static_cast<int64_t>(tasks_.size()));
      }
      if (busy_) busy_->Add(1);
      task(resource);
      if (busy_) busy_->Add(-1);
    }
  }

  std::vector<std::unique_ptr<Resource>> resources_;
  const size_t queue_max_;
  Gauge* busy_;
  Gauge* queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace chat
