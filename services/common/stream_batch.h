#pragma once
// Batching on the gateways' long-lived streams. A stream message is one request (reply) or, with
// `batch` set, several, each with its own correlation id. Each side batches only when the other said
// it reads batches: the gateway sends `chat-stream-batch: 1` in its metadata, the backend in its
// initial metadata, so a gateway and a backend of different versions (a rolling upgrade) fall back to
// one request per message. Whatever queues while a write is in flight goes out in the next one: an
// idle stream still writes each request at once, a busy one writes fewer, larger messages.

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <deque>
#include <string_view>

namespace chat {

inline constexpr std::string_view kStreamBatchKey = "chat-stream-batch";

// Messages in one batch, and the bytes a batch grows to before the rest waits for the next write (far
// below gRPC's 4 MiB limit; one larger message still goes, alone).
inline constexpr size_t kStreamBatchMaxItems = 512;
inline constexpr size_t kStreamBatchMaxBytes = 1 << 20;

template <typename Metadata>
bool SaysStreamBatch(const Metadata& md) {
  auto it = md.find(grpc::string_ref(kStreamBatchKey.data(), kStreamBatchKey.size()));
  return it != md.end() && it->second == "1";
}

// Moves the front of `queue` into `out`: one message as it is, or, when `batch` and more wait, as many
// as the limits allow inside out.batch. Returns how many it took (at least one; `queue` not empty).
template <typename Message>
size_t TakeStreamBatch(std::deque<Message>& queue, Message& out, bool batch) {
  out.Clear();
  if (!batch || queue.size() == 1) {
    out = std::move(queue.front());
    queue.pop_front();
    return 1;
  }
  size_t n = 0;
  size_t bytes = 0;
  while (!queue.empty() && n < kStreamBatchMaxItems) {
    const size_t size = queue.front().ByteSizeLong();
    if (n > 0 && bytes + size > kStreamBatchMaxBytes) break;
    bytes += size;
    *out.add_batch() = std::move(queue.front());
    queue.pop_front();
    ++n;
  }
  if (n == 1) {
    Message single = std::move(*out.mutable_batch(0));
    out = std::move(single);
  }
  return n;
}

}  // namespace chat
