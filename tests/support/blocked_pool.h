#pragma once
// A WorkerPool of one worker, held busy until `release` is set: what is submitted meanwhile waits, so a
// test can line work up behind it and see how a batcher groups it.

#include <future>
#include <memory>
#include <utility>
#include <vector>

#include "common/worker_pool.h"

namespace chat::testing {

template <typename Resource>
std::unique_ptr<WorkerPool<Resource>> BlockedPool(std::unique_ptr<Resource> resource,
                                                  std::shared_future<void> release) {
  std::vector<std::unique_ptr<Resource>> resources;
  resources.push_back(std::move(resource));
  auto pool = std::make_unique<WorkerPool<Resource>>(std::move(resources), 1000);
  pool->Start();
  pool->Post([release](Resource&) { release.wait(); }, [] {});
  return pool;
}

}  // namespace chat::testing
