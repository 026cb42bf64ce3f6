#pragma once
// A RedisSubscriber on its own io thread against the tests' Redis, and a plain connection to publish
// with: what the subscriber and room hub tests share.

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "common/redis_connection.h"
#include "common/redis_subscriber.h"
#include "support/test_env.h"

namespace chat::gateway {

class RunningSubscriber {
 public:
  // `configure` runs before the subscriber starts (its hooks must be set by then). Fails unless it
  // connects within two seconds.
  ::testing::AssertionResult Start(RedisSubscriber::OnMessage on_message, MetricsRegistry& metrics,
                                   const std::function<void(RedisSubscriber&)>& configure = {}) {
    servers = chat::testing::LoadTestServers();
    sub = std::make_unique<RedisSubscriber>(ioc, servers.redis_host, servers.redis_port,
                                            std::move(on_message), metrics);
    if (configure) configure(*sub);
    thread_ = std::thread([this] { ioc.run(); });
    sub->Start();
    for (int i = 0; i < 200 && !sub->connected(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!sub->connected()) return ::testing::AssertionFailure() << "the subscriber did not connect";
    pub = std::make_unique<RedisConnection>(servers.redis_host, servers.redis_port,
                                            std::chrono::milliseconds(2000));
    return ::testing::AssertionSuccess();
  }

  // Once: RedisSubscriber::Stop waits for the io thread, which is gone after the first call.
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    if (sub) sub->Stop();
    work_.reset();
    ioc.stop();
    if (thread_.joinable()) thread_.join();
  }
  ~RunningSubscriber() { Stop(); }

  chat::testing::TestServers servers;
  boost::asio::io_context ioc{1};
  std::unique_ptr<RedisSubscriber> sub;
  std::unique_ptr<RedisConnection> pub;

 private:
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      boost::asio::make_work_guard(ioc)};
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace chat::gateway
