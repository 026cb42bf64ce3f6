// Optional TLS for internal gRPC: a server with the test certificate answers a client that trusts the
// test CA, refuses a plaintext client, and bad configuration is refused at start.
#include "common/grpc_tls.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>

#include "chat/v1/presence.grpc.pb.h"
#include "support/test_env.h"

namespace chat {
namespace {

using chat::testing::MapEnv;

std::string Data(const char* name) { return std::string(CHAT_TESTDATA_DIR) + "/" + name; }

TEST(GrpcTls, PlaintextWithoutConfiguration) {
  EnvReader env(MapEnv({}));
  EXPECT_TRUE(GrpcServerCredentials(env).ok());
  EXPECT_TRUE(GrpcChannelCredentials(env).ok());
}

TEST(GrpcTls, BadConfigurationIsRefused) {
  EnvReader half(MapEnv({{"GRPC_TLS_CERT_FILE", Data("server.pem")}}));
  EXPECT_FALSE(GrpcServerCredentials(half).ok());
  EnvReader missing(MapEnv({{"GRPC_TLS_CA_FILE", "/nonexistent.pem"}}));
  EXPECT_FALSE(GrpcChannelCredentials(missing).ok());
  EnvReader client_only(MapEnv({{"GRPC_TLS_CLIENT_CERT_FILE", Data("server.pem")}}));
  EXPECT_FALSE(GrpcChannelCredentials(client_only).ok());
}

TEST(GrpcTls, TlsServerAnswersTrustingClientsOnly) {
  EnvReader server_env(
      MapEnv({{"GRPC_TLS_CERT_FILE", Data("server.pem")}, {"GRPC_TLS_KEY_FILE", Data("server.key")}}));
  auto server_creds = GrpcServerCredentials(server_env);
  ASSERT_TRUE(server_creds.ok()) << server_creds.status();
  // A service with no methods implemented: a call that reaches it gets UNIMPLEMENTED, one that cannot
  // connect gets UNAVAILABLE.
  chat::v1::Presence::CallbackService service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", *server_creds, &port);
  auto server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  // An IP literal: no resolver involved (c-ares keeps a few bytes past exit, which LeakSanitizer reports).
  std::string addr = "127.0.0.1:" + std::to_string(port);

  auto check = [&](std::shared_ptr<grpc::ChannelCredentials> creds) {
    auto stub = chat::v1::Presence::NewStub(grpc::CreateChannel(addr, creds));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    chat::v1::GetUsersRequest req;
    chat::v1::GetUsersReply res;
    return stub->GetUsers(&ctx, req, &res).error_code();
  };
  EnvReader client_env(MapEnv({{"GRPC_TLS_CA_FILE", Data("ca.pem")}}));
  auto tls = GrpcChannelCredentials(client_env);
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(check(*tls), grpc::StatusCode::UNIMPLEMENTED);  // reached the server over TLS
  EXPECT_EQ(check(grpc::InsecureChannelCredentials()), grpc::StatusCode::UNAVAILABLE);
  server->Shutdown();
}

}  // namespace
}  // namespace chat
