#pragma once
// Accepts TCP connections on the gateway's HTTP port and spreads them over the io_contexts, one per
// core, round-robin. The acceptor lives on the first io_context. With TLS enabled every connection is
// https/wss (no plain listener beside it).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <vector>

#include "absl/status/status.h"

namespace chat::gateway {

class GatewayContext;
class StaticFiles;

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(std::vector<boost::asio::io_context*> contexts, GatewayContext& ctx, const StaticFiles& files);
  // Loads the PEM certificate chain and key; call before Start.
  absl::Status EnableTls(const std::string& cert_file, const std::string& key_file);
  absl::Status Listen(const std::string& addr);
  void Start();
  // Stops accepting; thread-safe.
  void Stop();
  int port() const { return port_; }

 private:
  void DoAccept();

  std::vector<boost::asio::io_context*> contexts_;
  boost::asio::ip::tcp::acceptor acceptor_;
  GatewayContext& ctx_;
  const StaticFiles& files_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  size_t next_ = 0;
  int port_ = 0;
};

}  // namespace chat::gateway
