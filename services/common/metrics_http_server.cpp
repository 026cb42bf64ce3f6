#include "metrics_http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "env_config.h"
#include "log.h"

namespace chat {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class MetricsSession : public std::enable_shared_from_this<MetricsSession> {
 public:
  MetricsSession(tcp::socket socket, const MetricsRegistry& registry, const std::function<bool()>& healthy)
      : stream_(std::move(socket)), registry_(registry), healthy_(healthy) {}

  void Start() { Read(); }

 private:
  void Read() {
    req_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      self->Respond();
    });
  }

  void Respond() {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req_.version());
    res->keep_alive(req_.keep_alive());
    std::string_view target(req_.target().data(), req_.target().size());
    if (req_.method() == http::verb::get && target == "/metrics") {
      res->result(http::status::ok);
      res->set(http::field::content_type, "text/plain; version=0.0.4");
      res->body() = registry_.RenderText();
    } else if (req_.method() == http::verb::get && (target == "/healthz" || target == "/readyz")) {
      bool ok = healthy_();
      res->result(ok ? http::status::ok : http::status::service_unavailable);
      res->set(http::field::content_type, "text/plain");
      res->body() = ok ? "ok\n" : "not ready\n";
    } else {
      res->result(http::status::not_found);
      res->body() = "not found\n";
    }
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      if (ec || !res->keep_alive()) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->Read();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  const MetricsRegistry& registry_;
  const std::function<bool()>& healthy_;
};

}  // namespace

struct MetricsHttpServer::Impl {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
};

MetricsHttpServer::MetricsHttpServer(const MetricsRegistry& registry, std::function<bool()> healthy)
    : registry_(registry), healthy_(std::move(healthy)), impl_(std::make_unique<Impl>()) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::Start(const std::string& addr) {
  auto hp = ParseHostPort(addr);
  if (!hp.ok()) return hp.status();
  beast::error_code ec;
  auto ip = asio::ip::make_address(hp->host, ec);
  if (ec) return absl::InvalidArgumentError("metrics address: " + ec.message());
  tcp::endpoint ep(ip, hp->port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError("metrics listen on " + addr + ": " + ec.message());
  port_ = impl_->acceptor.local_endpoint().port();
  auto accept = std::make_shared<std::function<void()>>();
  *accept = [this, accept_weak = std::weak_ptr<std::function<void()>>(accept)]() {
    impl_->acceptor.async_accept([this, accept_weak](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<MetricsSession>(std::move(socket), registry_, healthy_)->Start();
      if (auto next = accept_weak.lock()) (*next)();
    });
  };
  thread_ = std::thread([this, accept] {
    (*accept)();
    impl_->ioc.run();
  });
  return absl::OkStatus();
}

void MetricsHttpServer::Stop() {
  if (!thread_.joinable()) return;
  impl_->ioc.stop();
  thread_.join();
}

}  // namespace chat
