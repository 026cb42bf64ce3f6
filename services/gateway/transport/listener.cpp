#include "transport/listener.h"

#include <boost/asio/post.hpp>

#include "common/env_config.h"
#include "common/log.h"
#include "transport/http_session.h"

namespace chat::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Listener::Listener(std::vector<asio::io_context*> contexts, GatewayContext& ctx, const StaticFiles& files)
    : contexts_(std::move(contexts)), acceptor_(*contexts_.front()), ctx_(ctx), files_(files) {}

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
  asio::io_context& target = *contexts_[next_++ % contexts_.size()];
  acceptor_.async_accept(
      target, [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
        if (!ec) {
          socket.set_option(tcp::no_delay(true), ec);
          std::make_shared<HttpSession>(std::move(socket), self->ctx_, self->files_)->Run();
        } else {
          log::Warn("accept failed", {{"error", ec.message()}});
        }
        self->DoAccept();
      });
}

}  // namespace chat::gateway
