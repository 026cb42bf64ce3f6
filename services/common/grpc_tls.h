#pragma once
// Optional TLS for the internal gRPC servers and channels, from configuration. Without the variables,
// plaintext (inside a trusted network or a mesh). Blocking file reads: call from main at start.
//   servers:  GRPC_TLS_CERT_FILE + GRPC_TLS_KEY_FILE (PEM); GRPC_TLS_CLIENT_CA_FILE to require client
//             certificates (mutual TLS)
//   channels: GRPC_TLS_CA_FILE (PEM roots to trust); GRPC_TLS_CLIENT_CERT_FILE + GRPC_TLS_CLIENT_KEY_FILE
//             for mutual TLS

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "common/env_config.h"

namespace chat {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(EnvReader& env);
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcChannelCredentials(EnvReader& env);

}  // namespace chat
