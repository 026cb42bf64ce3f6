// chat-gateway: wiring only. HTTP + WebSocket for browsers, gRPC admin API, streams to messages and
// presence, Redis pub/sub for fan-out.

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/grpc_tls.h"
#include "common/log.h"
#include "common/process.h"
#include "common/text_rules.h"
#include "domain/jwt_verifier.h"
#include "gateway_config.h"
#include "transport/admin_grpc_service.h"
#include "transport/control_listener.h"
#include "transport/gateway_context.h"
#include "transport/idle_sweep.h"
#include "transport/listener.h"
#include "transport/room_hub.h"
#include "transport/static_files.h"
#include "transport/stream_backends.h"
#include "transport/websocket_session.h"

using namespace chat;
using namespace chat::gateway;
namespace asio = boost::asio;

namespace {

std::shared_ptr<grpc::Channel> BackendChannel(const std::string& addr,
                                              const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  grpc::ChannelArguments args;
  // Notice a dead backend within seconds even when idle.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(addr, creds, args);
}

// Keeps this gateway's connections alive in presence, every third of the TTL, and reports the
// gateway's numbers for /stats. Runs on the main io_context.
class PresenceHeartbeat {
 public:
  PresenceHeartbeat(asio::io_context& ioc, PresenceStream& presence, GatewayContext& ctx)
      : timer_(ioc), presence_(presence), ctx_(ctx) {}

  void Start() {
    last_acked_ = ctx_.connection_metrics.sends_acked.Value();
    last_at_ = std::chrono::steady_clock::now();
    Schedule();
  }
  void Stop() { timer_.cancel(); }

 private:
  void Schedule() {
    timer_.expires_after(
        std::chrono::milliseconds(std::max<int64_t>(1000, ctx_.config.presence_ttl_seconds * 1000 / 3)));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      Beat();
      Schedule();
    });
  }

  void Beat() {
    auto now = std::chrono::steady_clock::now();
    uint64_t acked = ctx_.connection_metrics.sends_acked.Value();
    double seconds = std::chrono::duration<double>(now - last_at_).count();
    chat::v1::PresenceRequest req;
    auto* h = req.mutable_heartbeat();
    h->set_gateway(ctx_.config.instance_id);
    h->set_connections(ctx_.connections.Value());
    h->set_users(static_cast<int64_t>(ctx_.sessions.users()));
    h->set_rooms(static_cast<int64_t>(ctx_.rooms.RoomCount()));
    h->set_messages_per_second(seconds > 0 ? static_cast<double>(acked - last_acked_) / seconds : 0);
    last_acked_ = acked;
    last_at_ = now;
    presence_.Call(std::move(req), [](absl::StatusOr<chat::v1::PresenceReply> r) {
      if (!r.ok() || r->has_error()) log::Warn("presence heartbeat failed");
    });
  }

  asio::steady_timer timer_;
  PresenceStream& presence_;
  GatewayContext& ctx_;
  uint64_t last_acked_ = 0;
  std::chrono::steady_clock::time_point last_at_;
};

}  // namespace

int main() {
  BlockShutdownSignals();
  DisableMutexDeadlockDetection();
  auto config = GatewayConfig::FromEnv(ProcessEnv());
  if (!config.ok()) {
    log::Init("gateway", "info");
    log::Error("bad configuration", {{"error", config.status().ToString()}});
    return 2;
  }
  const GatewayConfig& cfg = *config;
  log::Init("gateway", cfg.log_level);

  StaticFiles files;
  if (auto st = files.Load(cfg.web_root); !st.ok()) {
    log::Warn("web page not served", {{"error", st.ToString()}});
  }

  size_t threads = cfg.threads > 0 ? static_cast<size_t>(cfg.threads)
                                   : std::max<size_t>(1, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (size_t i = 0; i < threads; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
  std::vector<asio::io_context*> context_ptrs;
  for (auto& c : contexts) context_ptrs.push_back(c.get());
  auto work = std::vector<asio::executor_work_guard<asio::io_context::executor_type>>();
  for (auto& c : contexts) work.push_back(asio::make_work_guard(*c));
  asio::io_context& main_ctx = *contexts.front();

  MetricsRegistry metrics;
  std::string jwt_key = cfg.jwt_secret;
  auto jwt_alg = JwtVerifier::Algorithm::kHS256;
  if (cfg.jwt_algorithm != "HS256") {
    jwt_alg = cfg.jwt_algorithm == "RS256" ? JwtVerifier::Algorithm::kRS256 : JwtVerifier::Algorithm::kES256;
    std::ifstream in(cfg.jwt_public_key_file);
    std::stringstream pem;
    pem << in.rdbuf();
    jwt_key = pem.str();
    if (!in || jwt_key.find("PUBLIC KEY") == std::string::npos) {
      log::Error("cannot read the JWT public key", {{"file", cfg.jwt_public_key_file}});
      return 2;
    }
  }
  JwtVerifier jwt(jwt_alg, jwt_key, cfg.jwt_clock_skew_seconds);

  EnvReader tls_env(ProcessEnv());
  auto channel_creds = GrpcChannelCredentials(tls_env);
  auto server_creds = GrpcServerCredentials(tls_env);
  if (!channel_creds.ok() || !server_creds.ok()) {
    log::Error("bad gRPC TLS configuration",
               {{"error", (channel_creds.ok() ? server_creds.status() : channel_creds.status()).ToString()}});
    return 2;
  }
  auto messages_channel = BackendChannel(cfg.messages_addr, *channel_creds);
  auto messages_stub = chat::v1::Messages::NewStub(messages_channel);
  MessagesStream messages_stream(
      "messages",
      [&](grpc::ClientContext* c,
          grpc::ClientBidiReactor<chat::v1::GatewayRequest, chat::v1::GatewayReply>* r) {
        messages_stub->async()->Connect(c, r);
      },
      main_ctx, metrics);
  auto presence_channel = BackendChannel(cfg.presence_addr, *channel_creds);
  auto presence_stub = chat::v1::Presence::NewStub(presence_channel);
  PresenceStream presence_stream(
      "presence",
      [&](grpc::ClientContext* c,
          grpc::ClientBidiReactor<chat::v1::PresenceRequest, chat::v1::PresenceReply>* r) {
        presence_stub->async()->Connect(c, r);
      },
      main_ctx, metrics);
  MessagesStreamBackend messages(messages_stream);
  PresenceStreamBackend presence(presence_stream);

  RoomRegistry rooms;
  RoomHub hub(rooms, messages, std::chrono::milliseconds(cfg.gap_refetch_ms), metrics);
  auto redis = *ParseHostPort(cfg.redis_addr);
  std::unique_ptr<ControlListener> control;  // needs the context, made below
  RedisSubscriber subscriber(
      main_ctx, redis.host, redis.port,
      [&hub, &control](const std::string& channel, const std::string& payload) {
        if (channel == kControlChannel) {
          if (control) control->OnMessage(payload);
          return;
        }
        hub.OnChannelMessage(channel, payload);
      },
      metrics);
  subscriber.SetOnSubscribed(
      [&hub](const std::string& channel, bool again) { hub.OnSubscribed(channel, again); });
  hub.Attach(&subscriber);

  GatewayContext ctx(cfg, metrics, messages, presence, hub, rooms, jwt);
  if (cfg.ws_deflate) {
    for (size_t i = 0; i < threads; ++i) ctx.deflate_by_lane.push_back(std::make_unique<DeflateCache>());
  }
  std::vector<LaneFlusher*> flushers;
  Counter& carried = metrics.GetCounter(
      "chat_ws_lane_batches_carried_total",
      "Batches of room messages that left their held frames to the next batch waiting on the lane");
  for (size_t i = 0; i < threads; ++i) {
    ctx.flush_by_lane.push_back(std::make_unique<LaneFlusher>(
        *context_ptrs[i], std::chrono::milliseconds(cfg.ws_write_delay_ms), &carried));
    flushers.push_back(ctx.flush_by_lane.back().get());
  }
  hub.SetLanes(context_ptrs, flushers);
  control = std::make_unique<ControlListener>(ctx, metrics);
  subscriber.SubscribeForever(std::string(kControlChannel));
  ctx.ready = [&] { return messages_stream.ready() && presence_stream.ready() && subscriber.connected(); };

  auto listener = std::make_shared<Listener>(context_ptrs, ctx, files);
  if (!cfg.tls_cert_file.empty()) {
    if (auto st = listener->EnableTls(cfg.tls_cert_file, cfg.tls_key_file); !st.ok()) {
      log::Error("cannot load the TLS certificate", {{"error", std::string(st.message())}});
      return 1;
    }
  }
  if (auto st = listener->Listen(cfg.http_addr); !st.ok()) {
    log::Error("cannot listen", {{"error", st.ToString()}});
    return 1;
  }

  AdminGrpcService admin(ctx);
  EnableHealthAndReflection();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(cfg.grpc_addr, *server_creds, &grpc_port);
  builder.RegisterService(&admin);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || grpc_port == 0) {
    log::Error("cannot listen", {{"addr", cfg.grpc_addr}});
    return 1;
  }
  grpc_server->GetHealthCheckService()->SetServingStatus(true);

  std::vector<std::thread> io_threads;
  for (auto& c : contexts) io_threads.emplace_back([&c] { c->run(); });
  messages_stream.Start();
  presence_stream.Start();
  subscriber.Start();
  listener->Start();
  hub.StartTicking();
  PresenceHeartbeat heartbeat(main_ctx, presence_stream, ctx);
  asio::post(main_ctx, [&] { heartbeat.Start(); });
  IdleSweep idle_sweep(main_ctx, ctx, context_ptrs);
  asio::post(main_ctx, [&] { idle_sweep.Start(); });
  log::Info("gateway ready", {{"http_port", listener->port()},
                              {"tls", !cfg.tls_cert_file.empty()},
                              {"grpc_port", grpc_port},
                              {"gateway", cfg.gateway_id},
                              {"threads", static_cast<int64_t>(threads)},
                              {"web_files", static_cast<int64_t>(files.size())}});

  std::string sig = WaitForShutdownSignal();
  log::Info("draining", {{"signal", sig}, {"connections", ctx.connections.Value()}});
  // Readiness turns false first, then no new connections, then clients are closed with 1001 after
  // their queues flush.
  ctx.draining = true;
  grpc_server->GetHealthCheckService()->SetServingStatus(false);
  listener->Stop();
  for (auto& s : ctx.sessions.All()) s->CloseFromAnyThread(1001, "shutdown");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (ctx.connections.Value() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Presence must hear of the closes before the streams go.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  asio::post(main_ctx, [&] {
    heartbeat.Stop();
    idle_sweep.Stop();
  });
  hub.StopTicking();
  subscriber.Stop();
  messages_stream.Stop();
  presence_stream.Stop();
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  work.clear();
  for (auto& c : contexts) c->stop();
  for (auto& t : io_threads) t.join();
  log::Info("stopped");
  return 0;
}
