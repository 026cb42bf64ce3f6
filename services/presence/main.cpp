// chat-presence: wiring only. Online state and last seen in Redis.

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "common/env_config.h"
#include "common/grpc_tls.h"
#include "common/log.h"
#include "common/metrics_http_server.h"
#include "common/process.h"
#include "common/redis_subscriber.h"
#include "domain/presence_logic.h"
#include "domain/presence_sweeper.h"
#include "storage/redis_presence_store.h"
#include "transport/presence_grpc_service.h"

using namespace chat;
using namespace chat::presence;

int main() {
  BlockShutdownSignals();
  DisableMutexDeadlockDetection();
  EnvReader env(ProcessEnv());
  std::string grpc_addr = env.String("PRESENCE_GRPC_ADDR", "0.0.0.0:50052");
  std::string metrics_addr = env.String("PRESENCE_METRICS_ADDR", "0.0.0.0:9102");
  std::string redis_addr = env.String("REDIS_ADDR", "127.0.0.1:6379");
  int64_t ttl = env.Int("PRESENCE_TTL_SECONDS", 30, 2, 3600);
  int64_t workers = env.Int("PRESENCE_WORKERS", 4, 1, 256);
  PresenceTimings timings;
  timings.ttl_ms = ttl * 1000;
  timings.grace_ms = env.Int("PRESENCE_GRACE_MS", 5000, 0, 3600000);
  timings.typing_expire_ms = env.Int("TYPING_EXPIRE_MS", 5000, 100, 3600000);
  timings.typing_throttle_ms = env.Int("TYPING_THROTTLE_MS", 1000, 0, 3600000);
  timings.room_presence_events = env.Bool("ROOM_PRESENCE_EVENTS", true);
  int64_t sweep_ms = env.Int("PRESENCE_SWEEP_MS", 250, 10, 60000);
  log::Init("presence", env.String("LOG_LEVEL", "info"));
  auto redis = ParseHostPort(redis_addr);
  if (!env.status().ok() || !redis.ok()) {
    log::Error("bad configuration",
               {{"error", (env.status().ok() ? redis.status() : env.status()).ToString()}});
    return 2;
  }

  MetricsRegistry metrics;
  std::vector<std::unique_ptr<PresenceStore>> stores;
  for (int64_t i = 0; i < workers; ++i) {
    stores.push_back(std::make_unique<RedisPresenceStore>(redis->host, redis->port, timings));
  }
  NowMs now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  PresencePool pool(std::move(stores), 100000,
                    &metrics.GetGauge("chat_redis_pool_busy", "Presence workers running a Redis script"),
                    &metrics.GetGauge("chat_redis_pool_queued", "Presence requests waiting for a worker"));
  PresenceLogic logic(pool, now_ms, metrics);
  pool.Start();
  PresenceSweeper sweeper(std::make_unique<RedisPresenceStore>(redis->host, redis->port, timings), now_ms,
                          std::chrono::milliseconds(sweep_ms), metrics);
  sweeper.Start();

  // Watch streams are fed from the presence events channel by a subscriber on its own thread.
  WatchHub watchers(metrics);
  boost::asio::io_context watch_ctx(1);
  auto watch_work = boost::asio::make_work_guard(watch_ctx);
  RedisSubscriber subscriber(
      watch_ctx, redis->host, redis->port,
      [&watchers](const std::string&, const std::string& payload) { watchers.Dispatch(payload); }, metrics);
  subscriber.SubscribeForever(kPresenceEventsChannel);

  PresenceGrpcService service(logic, watchers, metrics);
  EnableHealthAndReflection();
  grpc::ServerBuilder builder;
  int port = 0;
  auto server_creds = GrpcServerCredentials(env);
  if (!server_creds.ok()) {
    log::Error("bad gRPC TLS configuration", {{"error", server_creds.status().ToString()}});
    return 2;
  }
  builder.AddListeningPort(grpc_addr, *server_creds, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    log::Error("cannot listen", {{"addr", grpc_addr}});
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  MetricsHttpServer metrics_http(metrics, [] { return true; });
  if (auto st = metrics_http.Start(metrics_addr); !st.ok()) {
    log::Error("cannot serve metrics", {{"error", st.ToString()}});
    return 1;
  }
  // Started once everything listens: the early returns above must not leave a joinable thread behind
  // (its destructor would abort the process instead of exiting with the error).
  subscriber.Start();
  std::thread watch_thread([&] { watch_ctx.run(); });
  log::Info("presence ready", {{"grpc_port", port},
                               {"metrics_port", metrics_http.port()},
                               {"ttl_seconds", ttl},
                               {"grace_ms", timings.grace_ms}});

  std::string sig = WaitForShutdownSignal();
  log::Info("shutting down", {{"signal", sig}});
  server->GetHealthCheckService()->SetServingStatus(false);
  watchers.CloseAll();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  subscriber.Stop();
  watch_work.reset();
  watch_ctx.stop();
  watch_thread.join();
  sweeper.Stop();
  pool.Stop();
  metrics_http.Stop();
  log::Info("stopped");
  return 0;
}
