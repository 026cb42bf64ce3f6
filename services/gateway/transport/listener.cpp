#include "transport/listener.h"

#include <boost/asio/post.hpp>
#include <boost/beast/ssl.hpp>

#include "common/env_config.h"
#include "common/log.h"
#include "transport/http_session.h"

namespace chat::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Listener::Listener(std::vector<asio::io_context*> contexts, GatewayContext& ctx, const StaticFiles& files)
    : contexts_(std::move(contexts)), acceptor_(*contexts_.front()), ctx_(ctx), files_(files) {}

absl::Status Listener::EnableTls(const std::string& cert_file, const std::string& key_file) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  boost::system::error_code ec;
  // TLS 1.2 and 1.3 only.
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  if (!ec) tls->use_certificate_chain_file(cert_file, ec);
  if (ec) return absl::InvalidArgumentError("TLS_CERT_FILE " + cert_file + ": " + ec.message());
  tls->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) return absl::InvalidArgumentError("TLS_KEY_FILE " + key_file + ": " + ec.message());
  tls_ = std::move(tls);
  return absl::OkStatus();
}

absl::Status Listener::Listen(const std::string& addr) {
  auto hp = ParseHostPort(addr);
  if (!hp.ok()) return hp.status();
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->host, ec);
  if (ec) return absl::InvalidArgumentError("bad listen address " + addr);
  tcp::endpoint ep(ip, hp->port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError("listen on " + addr + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  return absl::OkStatus();
}

void Listener::Start() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->DoAccept(); });
}

void Listener::Stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

void Listener::DoAccept() {
  size_t lane = next_++ % contexts_.size();
  asio::io_context& target = *contexts_[lane];
  acceptor_.async_accept(
      target, [self = shared_from_this(), lane](boost::system::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
        if (!ec) {
          socket.set_option(tcp::no_delay(true), ec);
          if (self->tls_) {
            using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
            std::make_shared<HttpSession<TlsStream>>(TlsStream(std::move(socket), *self->tls_), self->ctx_,
                                                     self->files_, lane)
                ->Run();
          } else {
            std::make_shared<HttpSession<boost::beast::tcp_stream>>(
                boost::beast::tcp_stream(std::move(socket)), self->ctx_, self->files_, lane)
                ->Run();
          }
        } else {
          log::Warn("accept failed", {{"error", ec.message()}});
        }
        self->DoAccept();
      });
}

}  // namespace chat::gateway
