#pragma once
// Storage queries (join, history, room info) run on a pool of threads, each with its own MessageStore.

#include "common/worker_pool.h"
#include "storage/message_store.h"

namespace chat::messages {

using QueryPool = WorkerPool<MessageStore>;

}  // namespace chat::messages
