#pragma once
// A blocking Redis connection (hiredis) for worker threads: never use it on an Asio or gRPC callback
// thread. Not thread-safe: one owner thread. Reconnects lazily after an error.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct redisContext;
struct redisReply;

namespace chat {

struct RedisReplyDeleter {
  void operator()(redisReply* r) const;
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

// A reply copied out of hiredis, so callers need not know its types.
struct RedisValue {
  enum class Type { kNil, kInteger, kString, kStatus, kArray, kError };
  Type type = Type::kNil;
  long long integer = 0;
  std::string str;
  std::vector<RedisValue> elements;
};

class RedisConnection {
 public:
  RedisConnection(std::string host, int port, std::chrono::milliseconds timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Runs one command; a Redis error reply is returned as a value of type kError, not a failed status.
  absl::StatusOr<RedisValue> Command(const std::vector<std::string>& argv);
  // Sends all commands in one write and reads all replies (pipelining).
  absl::StatusOr<std::vector<RedisValue>> Pipeline(const std::vector<std::vector<std::string>>& commands);

  bool connected() const { return ctx_ != nullptr; }

 private:
  absl::Status EnsureConnected();
  void Drop();

  std::string host_;
  int port_;
  std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
};

RedisValue ToRedisValue(const redisReply* r);

}  // namespace chat
