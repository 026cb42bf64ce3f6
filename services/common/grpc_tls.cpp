#include "common/grpc_tls.h"

#include <fstream>
#include <sstream>

namespace chat {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  if (pem.find("-----BEGIN") == std::string::npos) return absl::InvalidArgumentError(path + " is not PEM");
  return pem;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(EnvReader& env) {
  std::string cert = env.String("GRPC_TLS_CERT_FILE", ""), key = env.String("GRPC_TLS_KEY_FILE", "");
  std::string client_ca = env.String("GRPC_TLS_CLIENT_CA_FILE", "");
  if (cert.empty() && key.empty()) return grpc::InsecureServerCredentials();
  if (cert.empty() || key.empty()) {
    return absl::InvalidArgumentError("GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE go together");
  }
  auto cert_pem = ReadPem(cert);
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = ReadPem(key);
  if (!key_pem.ok()) return key_pem.status();
  grpc::SslServerCredentialsOptions opts(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  opts.pem_key_cert_pairs.push_back({*key_pem, *cert_pem});
  if (!client_ca.empty()) {
    auto ca_pem = ReadPem(client_ca);
    if (!ca_pem.ok()) return ca_pem.status();
    opts.pem_root_certs = *ca_pem;
    opts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(opts);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcChannelCredentials(EnvReader& env) {
  std::string ca = env.String("GRPC_TLS_CA_FILE", "");
  std::string cert = env.String("GRPC_TLS_CLIENT_CERT_FILE", ""),
              key = env.String("GRPC_TLS_CLIENT_KEY_FILE", "");
  if (ca.empty()) {
    if (!cert.empty() || !key.empty())
      return absl::InvalidArgumentError("client certificates need GRPC_TLS_CA_FILE");
    return grpc::InsecureChannelCredentials();
  }
  auto ca_pem = ReadPem(ca);
  if (!ca_pem.ok()) return ca_pem.status();
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = *ca_pem;
  if (!cert.empty() || !key.empty()) {
    if (cert.empty() || key.empty()) {
      return absl::InvalidArgumentError("GRPC_TLS_CLIENT_CERT_FILE and GRPC_TLS_CLIENT_KEY_FILE go together");
    }
    auto cert_pem = ReadPem(cert);
    if (!cert_pem.ok()) return cert_pem.status();
    auto key_pem = ReadPem(key);
    if (!key_pem.ok()) return key_pem.status();
    opts.pem_cert_chain = *cert_pem;
    opts.pem_private_key = *key_pem;
  }
  return grpc::SslCredentials(opts);
}

}  // namespace chat
