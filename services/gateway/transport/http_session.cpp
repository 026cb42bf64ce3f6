#include "transport/http_session.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <boost/beast/websocket.hpp>
#include <chrono>

#include "common/log.h"
#include "transport/gateway_context.h"
#include "transport/static_files.h"
#include "transport/websocket_session.h"

namespace chat::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

int FromHex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && FromHex(s[i + 1]) >= 0 && FromHex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(FromHex(s[i + 1]) * 16 + FromHex(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string JsonError(std::string_view code, std::string_view message) {
  google::protobuf::Struct err;
  auto& fields = *err.mutable_fields();
  fields["code"].set_string_value(std::string(code));
  fields["message"].set_string_value(std::string(message));
  google::protobuf::Struct outer;
  *(*outer.mutable_fields())["error"].mutable_struct_value() = err;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(outer, &out);
  return out;
}

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

SubprotocolOffer ParseSubprotocols(std::string_view header) {
  SubprotocolOffer out;
  std::string first;
  while (!header.empty()) {
    auto comma = header.find(',');
    std::string_view entry = header.substr(0, comma);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    if (entry.rfind("bearer.", 0) == 0) {
      out.token = std::string(entry.substr(7));
    } else if (entry == kChatSubprotocol) {
      out.selected = std::string(entry);
    } else if (first.empty() && !entry.empty()) {
      first = std::string(entry);
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  // Never echo the token back; answer with the protocol proper when offered.
  if (out.selected.empty()) out.selected = first;
  return out;
}

std::string ExtractToken(std::string_view target, std::string_view authorization) {
  auto q = target.find('?');
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      if (pair.rfind("token=", 0) == 0) return UrlDecode(pair.substr(6));
      if (amp == std::string_view::npos) break;
      query = query.substr(amp + 1);
    }
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() > kBearer.size() && authorization.substr(0, kBearer.size()) == kBearer) {
    return std::string(authorization.substr(kBearer.size()));
  }
  return "";
}

HttpSession::HttpSession(boost::asio::ip::tcp::socket socket, GatewayContext& ctx, const StaticFiles& files)
    : stream_(std::move(socket)), ctx_(ctx), files_(files) {}

void HttpSession::Run() { DoRead(); }

void HttpSession::DoRead() {
  parser_.emplace();
  parser_->body_limit(64 * 1024);
  parser_->header_limit(16 * 1024);
  stream_.expires_after(std::chrono::seconds(30));
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
}

void HttpSession::OnRead(beast::error_code ec, size_t) {
  if (ec == http::error::end_of_stream) {
    beast::error_code ignored;
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
    return;
  }
  if (ec) {
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      Response res{http::status::payload_too_large, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = JsonError("too_large", "request too large");
      res.keep_alive(false);
      Write(std::move(res));
    }
    return;
  }
  ctx_.http_requests.Inc();
  const Request& req = parser_->get();
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/ws" && websocket::is_upgrade(req)) return Upgrade();
  Write(Handle(req));
}

void HttpSession::Upgrade() {
  Request req = parser_->release();
  auto reject = [&](http::status status, std::string_view code, std::string_view message) {
    Response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = JsonError(code, message);
    res.keep_alive(false);
    Write(std::move(res));
  };
  if (ctx_.draining.load()) {
    return reject(http::status::service_unavailable, "unavailable", "gateway is draining");
  }
  auto header = [&](http::field f) {
    auto v = req[f];
    return std::string_view(v.data(), v.size());
  };
  if (!ctx_.origins.Allows(header(http::field::origin), header(http::field::host))) {
    ctx_.refused_upgrades.Inc();
    log::Info("upgrade refused", {{"reason", "origin not allowed"}});
    return reject(http::status::forbidden, "forbidden", "origin not allowed");
  }
  std::string_view target(req.target().data(), req.target().size());
  SubprotocolOffer offer = ParseSubprotocols(header(http::field::sec_websocket_protocol));
  std::string token = ExtractToken(target, header(http::field::authorization));
  if (token.empty()) token = offer.token;
  auto identity = ctx_.jwt.Verify(token, NowUnix());
  if (!identity.ok()) {
    ctx_.refused_upgrades.Inc();
    log::Info("upgrade refused", {{"reason", std::string(identity.status().message())}});
    return reject(http::status::unauthorized, "unauthorized", std::string(identity.status().message()));
  }
  if (!ctx_.sessions.Reserve(identity->user, static_cast<size_t>(ctx_.config.max_connections),
                             static_cast<size_t>(ctx_.config.max_connections_per_user))) {
    ctx_.refused_upgrades.Inc();
    return reject(http::status::too_many_requests, "rate_limited", "too many connections");
  }
  ConnectionIdentity id;
  id.user = identity->user;
  id.admin = identity->admin;
  id.connection_id = ctx_.NewConnectionId();
  id.gateway_id = ctx_.config.instance_id;
  auto session = std::make_shared<WebSocketSession>(stream_.release_socket(), ctx_, std::move(id));
  session->Run(std::move(req), offer.selected);
}

HttpSession::Response HttpSession::Handle(const Request& req) {
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  Response res{http::status::ok, req.version()};
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "chat-gateway");
  auto text = [&](http::status s, std::string body) {
    res.result(s);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::move(body);
  };
  auto json = [&](http::status s, std::string body) {
    res.result(s);
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
  };

  if (path == "/healthz") {
    text(http::status::ok, "ok\n");
  } else if (path == "/readyz") {
    bool ready = !ctx_.draining.load() && ctx_.ready && ctx_.ready();
    text(ready ? http::status::ok : http::status::service_unavailable, ready ? "ready\n" : "not ready\n");
  } else if (path == "/metrics" && req.method() == http::verb::get) {
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = ctx_.metrics.RenderText();
  } else if (path == "/api/login") {
    if (!ctx_.config.dev_login) {
      json(http::status::not_found, JsonError("not_found", "dev login is disabled (DEV_LOGIN=0)"));
    } else if (req.method() != http::verb::post) {
      json(http::status::method_not_allowed, JsonError("bad_request", "use POST"));
    } else {
      google::protobuf::Struct body;
      auto st = google::protobuf::util::JsonStringToMessage(req.body(), &body);
      auto user_it = body.fields().find("user");
      if (!st.ok() || user_it == body.fields().end() ||
          user_it->second.kind_case() != google::protobuf::Value::kStringValue) {
        json(http::status::bad_request, JsonError("bad_request", "expected {\"user\":\"name\"}"));
      } else {
        auto admin_it = body.fields().find("admin");
        bool admin = admin_it != body.fields().end() && admin_it->second.bool_value();
        auto token = ctx_.jwt.Mint(user_it->second.string_value(), admin, NowUnix(),
                                   ctx_.config.dev_token_ttl_seconds);
        if (!token.ok()) {
          json(http::status::bad_request, JsonError("bad_request", std::string(token.status().message())));
        } else {
          google::protobuf::Struct out;
          (*out.mutable_fields())["token"].set_string_value(*token);
          (*out.mutable_fields())["user"].set_string_value(user_it->second.string_value());
          std::string s;
          (void)google::protobuf::util::MessageToJsonString(out, &s);
          json(http::status::ok, s);
        }
      }
    }
  } else if (path == "/ws") {
    json(http::status::bad_request, JsonError("bad_request", "WebSocket upgrade required"));
  } else if (const StaticFiles::File* f =
                 (req.method() == http::verb::get || req.method() == http::verb::head) ? files_.Find(path)
                                                                                       : nullptr) {
    res.set(http::field::content_type, f->content_type);
    res.set(http::field::cache_control, "no-cache");
    res.body() = f->body;
  } else {
    text(http::status::not_found, "not found\n");
  }
  res.prepare_payload();
  return res;
}

void HttpSession::Write(Response res) {
  auto sp = std::make_shared<Response>(std::move(res));
  sp->prepare_payload();
  http::async_write(stream_, *sp, [self = shared_from_this(), sp](beast::error_code ec, size_t) {
    if (ec) return;
    if (!sp->keep_alive()) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
      return;
    }
    self->DoRead();
  });
}

}  // namespace chat::gateway
