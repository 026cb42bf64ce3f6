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

namespace chat {

template <typename Resource>
class WorkerPool {
 public:
  using Task = std::function<void(Resource&)>;
  using Refused = std::function<void()>;

  WorkerPool(std::vector<std::unique_ptr<Resource>> resources, size_t queue_max)
      : resources_(std::move(resources)), queue_max_(queue_max) {}
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
      }
      task(resource);
    }
  }

  std::vector<std::unique_ptr<Resource>> resources_;
  const size_t queue_max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace chat
