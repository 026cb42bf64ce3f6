#pragma once
// Redis pub/sub subscriber on hiredis's async API, driven by one Asio io_context (its thread does all
// the Redis work). Subscribes and unsubscribes channels on demand, tells when a subscription is
// confirmed, and after a lost connection reconnects with backoff and subscribes again. Public methods
// are thread-safe (they post to the io_context).

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/backoff.h"
#include "common/metrics.h"

struct redisAsyncContext;
struct redisReply;

namespace chat {

class RedisSubscriber {
 public:
  // Runs on the subscriber's io_context thread.
  using OnMessage = std::function<void(const std::string& channel, const std::string& payload)>;
  // A subscription was confirmed; `again` when it was restored after a lost connection.
  using OnSubscribed = std::function<void(const std::string& channel, bool again)>;

  RedisSubscriber(boost::asio::io_context& ioc, std::string host, int port, OnMessage on_message,
                  MetricsRegistry& metrics);
  // Set before Start.
  void SetOnSubscribed(OnSubscribed cb) { on_subscribed_ = std::move(cb); }
  // Set before Start: runs on the io_context thread after each wake that read from Redis, once every
  // message it brought has gone to OnMessage (so a caller can act on them together).
  void SetOnReadDone(std::function<void()> cb) { on_read_done_ = std::move(cb); }
  ~RedisSubscriber();

  void Start();
  // Disconnects; call from outside the io_context thread while it still runs. Destroying the
  // subscriber without Stop is allowed once the io_context no longer runs.
  void Stop();

  // `ready` runs on the io_context thread once the subscription is confirmed (or at once if it is),
  // or with Unavailable when Redis cannot be reached now.
  void Subscribe(const std::string& channel, std::function<void(absl::Status)> ready);
  void Unsubscribe(const std::string& channel);
  // A channel subscribed for the subscriber's whole life (the control channel), whether or not Redis is
  // reachable now: subscribed on every (re)connect.
  void SubscribeForever(const std::string& channel);
  bool connected() const { return connected_.load(); }

  // For callers that are on the io_context thread already.
  void SubscribeHere(const std::string& channel, std::function<void(absl::Status)> ready);
  void UnsubscribeHere(const std::string& channel);
  boost::asio::io_context& context() { return ioc_; }

 private:
  struct Watch;
  struct Channel {
    enum class State { kSubscribing, kSubscribed, kUnsubscribing } state = State::kSubscribing;
    bool wanted = true;
    bool restoring = false;
    bool forever = false;
    std::vector<std::function<void(absl::Status)>> waiters;
  };

  void Connect();
  void ScheduleReconnect();
  void SendCommand(const char* verb, const std::string& channel);
  void HandleReply(redisReply* reply);
  void HandleConnected(int status);
  void HandleDisconnected();
  static void OnConnectCb(const redisAsyncContext* ac, int status);
  static void OnDisconnectCb(const redisAsyncContext* ac, int status);
  static void OnReplyCb(redisAsyncContext* ac, void* reply, void* privdata);

  boost::asio::io_context& ioc_;
  const std::string host_;
  const int port_;
  OnMessage on_message_;
  OnSubscribed on_subscribed_;
  std::function<void()> on_read_done_;
  boost::asio::steady_timer reconnect_timer_;
  Backoff backoff_;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<Watch> watch_;
  std::map<std::string, Channel> channels_;
  std::atomic<bool> connected_{false};
  bool stopping_ = false;
  Counter& reconnects_;
  Counter& messages_in_;
};

}  // namespace chat
