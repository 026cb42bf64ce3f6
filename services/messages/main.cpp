// chat-messages: wiring only. Rooms, membership and messages in PostgreSQL; group commit; publishes
// committed messages to Redis.

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <thread>

#include "common/grpc_tls.h"
#include "common/log.h"
#include "common/metrics_http_server.h"
#include "common/process.h"
#include "domain/commit_batcher.h"
#include "domain/messages_logic.h"
#include "domain/query_pool.h"
#include "messages_config.h"
#include "storage/pg_message_store.h"
#include "storage/redis_event_publisher.h"
#include "transport/messages_grpc_service.h"

using namespace chat;
using namespace chat::messages;

int main() {
  BlockShutdownSignals();
  DisableMutexDeadlockDetection();
  auto config = MessagesConfig::FromEnv(ProcessEnv());
  if (!config.ok()) {
    log::Init("messages", "info");
    log::Error("bad configuration", {{"error", config.status().ToString()}});
    return 2;
  }
  log::Init("messages", config->log_level);

  // Postgres may still be starting (compose, k8s): wait for it with backoff, up to a minute.
  absl::Status migrated;
  for (int attempt = 0; attempt < 60; ++attempt) {
    migrated = ApplyMigrations(config->database_url);
    if (migrated.ok()) break;
    log::Warn("waiting for postgres", {{"error", migrated.ToString()}});
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (!migrated.ok()) {
    log::Error("migrations failed", {{"error", migrated.ToString()}});
    return 1;
  }

  {
    PgMessageStore seeding(config->database_url);
    for (const auto& room : config->seed_public_rooms) {
      auto info = seeding.CreateRoom(room, chat::v1::ROOM_KIND_PUBLIC, {});
      if (!info.ok()) {
        log::Error("seeding room failed", {{"room", room}, {"error", info.status().ToString()}});
        return 1;
      }
    }
  }

  if (config->migrate_only) {
    log::Info("migrations applied; MIGRATE_ONLY=1, exiting");
    return 0;
  }

  MetricsRegistry metrics;
  auto redis = *ParseHostPort(config->redis_addr);
  RedisEventPublisher publisher(redis.host, redis.port);
  CommitBatcher batcher(std::make_unique<PgMessageStore>(config->database_url), publisher,
                        static_cast<size_t>(config->commit_batch_max), static_cast<size_t>(config->queue_max),
                        std::chrono::microseconds(config->commit_linger_us),
                        static_cast<size_t>(config->commit_linger_after), metrics);
  std::vector<std::unique_ptr<MessageStore>> stores;
  for (int64_t i = 0; i < config->db_pool_size; ++i) {
    stores.push_back(std::make_unique<PgMessageStore>(config->database_url));
  }
  metrics.GetGauge("chat_db_pool_size", "PostgreSQL connections of the query pool (plus one commit writer)")
      .Set(config->db_pool_size);
  QueryPool queries(std::move(stores), static_cast<size_t>(config->queue_max),
                    &metrics.GetGauge("chat_db_pool_busy", "Query pool connections running a query"),
                    &metrics.GetGauge("chat_db_pool_queued", "Queries waiting for a pool connection"));
  MessagesLimits limits{
      static_cast<size_t>(config->text_limit_bytes), static_cast<uint32_t>(config->history_page_default),
      static_cast<uint32_t>(config->history_page_max), static_cast<uint32_t>(config->resume_replay_max)};
  LockedEventPublisher side_events(redis.host, redis.port);
  JoinBatcher joins(queries, static_cast<size_t>(config->commit_batch_max),
                    static_cast<size_t>(config->queue_max), metrics);
  MessagesLogic logic(batcher, joins, queries, side_events, limits);
  batcher.Start();
  queries.Start();

  MessagesGrpcService service(logic, metrics);
  EnableHealthAndReflection();
  grpc::ServerBuilder builder;
  int port = 0;
  EnvReader tls_env(ProcessEnv());
  auto server_creds = GrpcServerCredentials(tls_env);
  if (!server_creds.ok()) {
    log::Error("bad gRPC TLS configuration", {{"error", server_creds.status().ToString()}});
    return 2;
  }
  builder.AddListeningPort(config->grpc_addr, *server_creds, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    log::Error("cannot listen", {{"addr", config->grpc_addr}});
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);

  MetricsHttpServer metrics_http(metrics, [] { return true; });
  if (auto st = metrics_http.Start(config->metrics_addr); !st.ok()) {
    log::Error("cannot serve metrics", {{"error", st.ToString()}});
    return 1;
  }
  log::Info("messages ready", {{"grpc_port", port}, {"metrics_port", metrics_http.port()}});

  std::string sig = WaitForShutdownSignal();
  log::Info("shutting down", {{"signal", sig}});
  server->GetHealthCheckService()->SetServingStatus(false);
  // Streams and calls end first (their replies still come from the running batcher and pool), then the
  // batch in flight commits and the writer stops.
  // Gateways keep their streams open: after 2 s they are cancelled (the gateways answer what was still in
  // flight with unavailable, and clients resend with the same clientId).
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  batcher.Stop();
  queries.Stop();
  metrics_http.Stop();
  log::Info("stopped");
  return 0;
}
