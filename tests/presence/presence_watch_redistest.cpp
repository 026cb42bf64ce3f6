// chat.v1.Presence/Watch end to end in one process: a real gRPC server and client, a real Redis, the
// real store publishing and the real subscriber feeding the watchers.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "common/redis_subscriber.h"
#include "storage/redis_presence_store.h"
#include "support/test_env.h"
#include "transport/presence_grpc_service.h"

namespace chat::presence {
namespace {

using chat::testing::LoadTestServers;
using chat::testing::UniqueName;

TEST(PresenceWatch, MatchingChangesAreStreamed) {
  auto servers = LoadTestServers();
  MetricsRegistry metrics;
  PresenceTimings timings;
  std::vector<std::unique_ptr<PresenceStore>> stores;
  stores.push_back(std::make_unique<RedisPresenceStore>(servers.redis_host, servers.redis_port, timings));
  PresencePool pool(std::move(stores), 100);
  NowMs now = [] { return int64_t{1'900'000'000'000}; };
  PresenceLogic logic(pool, now, metrics);
  pool.Start();
  WatchHub watchers(metrics);
  boost::asio::io_context ioc(1);
  auto work = boost::asio::make_work_guard(ioc);
  RedisSubscriber subscriber(
      ioc, servers.redis_host, servers.redis_port,
      [&watchers](const std::string&, const std::string& payload) { watchers.Dispatch(payload); }, metrics);
  subscriber.SubscribeForever(kPresenceEventsChannel);
  subscriber.Start();
  std::thread io([&] { ioc.run(); });
  for (int i = 0; i < 200 && !subscriber.connected(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

  PresenceGrpcService service(logic, watchers, metrics);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  auto stub = chat::v1::Presence::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  std::string room = UniqueName("watched"), other = UniqueName("other");
  grpc::ClientContext ctx;
  chat::v1::WatchRequest req;
  req.add_rooms(room);
  auto reader = stub->Watch(&ctx, req);
  reader->WaitForInitialMetadata();

  RedisPresenceStore store(servers.redis_host, servers.redis_port, timings);
  chat::v1::ConnectionRef c;
  c.set_gateway(UniqueName("gw"));
  c.set_connection("1");
  c.set_user(UniqueName("bob"));
  auto entered = store.Apply({ConnectionEvent::Enter(c, other), ConnectionEvent::Enter(c, room)}, now());
  const auto& outside = entered[0];  // not watched
  ASSERT_TRUE(outside.status.ok()) << outside.status;
  const auto& inside = entered[1];
  ASSERT_TRUE(inside.status.ok()) << inside.status;
  ASSERT_EQ(inside.enter.changes.size(), 1u);
  // Until the subscriber's SUBSCRIBE has landed a publish may reach nobody: publish both again and again
  // (the unwatched one first) until the watcher has its event.
  std::atomic<bool> got_it{false};
  std::thread publisher([&] {
    RedisPresenceStore pub(servers.redis_host, servers.redis_port, timings);
    for (int i = 0; i < 100 && !got_it; ++i) {
      (void)pub.Publish(outside.enter.changes);
      (void)pub.Publish(inside.enter.changes);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  chat::v1::RoomEvent got;
  ASSERT_TRUE(reader->Read(&got));
  ASSERT_TRUE(got.has_presence());
  EXPECT_EQ(got.presence().room(), room);  // the other room's event was filtered out
  EXPECT_EQ(got.presence().user(), c.user());
  EXPECT_TRUE(got.presence().online());
  got_it = true;
  publisher.join();

  ctx.TryCancel();
  chat::v1::RoomEvent rest;
  while (reader->Read(&rest)) {
  }
  reader->Finish();
  watchers.CloseAll();
  server->Shutdown();
  subscriber.Stop();
  work.reset();
  ioc.stop();
  io.join();
  pool.Stop();
}

}  // namespace
}  // namespace chat::presence
