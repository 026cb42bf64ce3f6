#include "transport/http_session.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <boost/asio/post.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <type_traits>

#include "absl/strings/numbers.h"
#include "common/log.h"
#include "common/text_rules.h"
#include "domain/query_string.h"
#include "domain/sse_positions.h"
#include "transport/gateway_context.h"
#include "transport/sse_session.h"
#include "transport/static_files.h"
#include "transport/stream_shutdown.h"
#include "transport/websocket_session.h"

namespace chat::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

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

template <typename Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

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

std::optional<std::string> RestMessagesRoom(std::string_view path) {
  constexpr std::string_view kPrefix = "/api/rooms/";
  constexpr std::string_view kSuffix = "/messages";
  if (path.size() <= kPrefix.size() + kSuffix.size() || path.substr(0, kPrefix.size()) != kPrefix ||
      path.substr(path.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  std::string_view room = path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
  if (room.find('/') != std::string_view::npos) return std::nullopt;
  return UrlDecode(room);
}

template <typename Stream>
HttpSession<Stream>::HttpSession(Stream stream, GatewayContext& ctx, const StaticFiles& files, size_t lane)
    : stream_(std::move(stream)), ctx_(ctx), files_(files), lane_(lane) {}

template <typename Stream>
void HttpSession<Stream>::Run() {
  if constexpr (kIsTls<Stream>) {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(10));
    stream_.async_handshake(boost::asio::ssl::stream_base::server,
                            [self = this->shared_from_this()](beast::error_code ec) {
                              if (ec) {
                                self->ctx_.tls_handshake_failures.Inc();
                                log::Debug("tls handshake failed", {{"error", ec.message()}});
                                return;
                              }
                              self->DoRead();
                            });
  } else {
    DoRead();
  }
}

template <typename Stream>
void HttpSession<Stream>::DoRead() {
  parser_.emplace();
  parser_->body_limit(64 * 1024);
  parser_->header_limit(16 * 1024);
  beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
  http::async_read(
      stream_, buffer_, *parser_,
      [self = this->shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
}

template <typename Stream>
void HttpSession<Stream>::OnRead(beast::error_code ec, size_t) {
  if (ec == http::error::end_of_stream) return ShutdownStream(stream_, this->shared_from_this());
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
  if (path == "/api/events" && req.method() == http::verb::get) return OpenEvents();
  if (auto room = RestMessagesRoom(path);
      room && (req.method() == http::verb::get || req.method() == http::verb::post)) {
    return HandleRest(std::move(*room));
  }
  Write(Handle(req));
}

template <typename Stream>
void HttpSession<Stream>::Reject(http::status status, std::string_view code, std::string_view message) {
  Response res{status, req_.version()};
  res.set(http::field::content_type, "application/json");
  res.body() = JsonError(code, message);
  res.keep_alive(false);
  Write(std::move(res));
}

template <typename Stream>
std::optional<ConnectionIdentity> HttpSession<Stream>::Admit(const Request& req, bool reserve_connection) {
  if (ctx_.draining.load()) {
    Reject(http::status::service_unavailable, "unavailable", "gateway is draining");
    return std::nullopt;
  }
  auto header = [&](http::field f) {
    auto v = req[f];
    return std::string_view(v.data(), v.size());
  };
  if (!ctx_.origins.Allows(header(http::field::origin), header(http::field::host))) {
    ctx_.refused_upgrades.Inc();
    log::Info("request refused", {{"reason", "origin not allowed"}});
    Reject(http::status::forbidden, "forbidden", "origin not allowed");
    return std::nullopt;
  }
  std::string_view target(req.target().data(), req.target().size());
  std::string token = ExtractToken(target, header(http::field::authorization));
  if (token.empty()) token = ParseSubprotocols(header(http::field::sec_websocket_protocol)).token;
  auto identity = ctx_.jwt.Verify(token, NowUnix());
  if (!identity.ok()) {
    ctx_.refused_upgrades.Inc();
    log::Info("request refused", {{"reason", std::string(identity.status().message())}});
    Reject(http::status::unauthorized, "unauthorized", std::string(identity.status().message()));
    return std::nullopt;
  }
  if (reserve_connection &&
      !ctx_.sessions.Reserve(identity->user, static_cast<size_t>(ctx_.config.max_connections),
                             static_cast<size_t>(ctx_.config.max_connections_per_user))) {
    ctx_.refused_upgrades.Inc();
    Reject(http::status::too_many_requests, "rate_limited", "too many connections");
    return std::nullopt;
  }
  ConnectionIdentity id;
  id.user = identity->user;
  id.admin = identity->admin;
  id.connection_id = ctx_.NewConnectionId();
  id.gateway_id = ctx_.config.instance_id;
  return id;
}

template <typename Stream>
void HttpSession<Stream>::Upgrade() {
  req_ = parser_->release();
  auto id = Admit(req_, true);
  if (!id) return;
  auto protocols = req_[http::field::sec_websocket_protocol];
  auto offer = ParseSubprotocols(std::string_view(protocols.data(), protocols.size()));
  auto session = std::make_shared<WebSocketSession<Stream>>(std::move(stream_), ctx_, std::move(*id), lane_);
  session->Run(std::move(req_), offer.selected);
}

template <typename Stream>
void HttpSession<Stream>::OpenEvents() {
  req_ = parser_->release();
  std::string_view target(req_.target().data(), req_.target().size());
  auto q = target.find('?');
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  // room=R&after=S&ref=N, repeated: `after` and `ref` line up with `room` by position, empty for none.
  std::vector<std::string> rooms = QueryParams(query, "room");
  std::vector<std::string> afters = QueryParams(query, "after");
  std::vector<std::string> refs = QueryParams(query, "ref");
  auto last_event = req_["Last-Event-ID"];
  auto resumed_at = SsePositions::Parse(std::string_view(last_event.data(), last_event.size()));
  if (rooms.empty()) {
    for (const auto& [room, seq] : resumed_at) rooms.push_back(room);
  }
  if (rooms.size() > static_cast<size_t>(ctx_.config.max_rooms_per_connection)) {
    return Reject(http::status::bad_request, "bad_request",
                  "at most " + std::to_string(ctx_.config.max_rooms_per_connection) + " rooms per stream");
  }
  std::vector<SseRoomStart> starts;
  for (size_t i = 0; i < rooms.size(); ++i) {
    SseRoomStart s;
    s.room = rooms[i];
    if (auto st = ValidateRoomName(s.room); !st.ok()) {
      return Reject(http::status::bad_request, "bad_request", std::string(st.message()));
    }
    int64_t after = 0;
    uint32_t ref = 0;
    if (i < afters.size() && !afters[i].empty()) {
      if (!absl::SimpleAtoi(afters[i], &after) || after < 0) {
        return Reject(http::status::bad_request, "bad_request", "after must be a non-negative integer");
      }
      s.after = after;
    }
    if (i < refs.size() && !refs[i].empty()) {
      if (!absl::SimpleAtoi(refs[i], &ref)) {
        return Reject(http::status::bad_request, "bad_request", "ref must be a non-negative integer");
      }
      s.ref = ref;
    }
    // The browser's own reconnect knows better than the URL it reuses.
    if (auto it = resumed_at.find(s.room); it != resumed_at.end()) s.after = it->second;
    starts.push_back(std::move(s));
  }
  auto id = Admit(req_, true);
  if (!id) return;
  std::make_shared<SseSession<Stream>>(std::move(stream_), ctx_, std::move(*id), std::move(starts), lane_)
      ->Run();
}

template <typename Stream>
void HttpSession<Stream>::HandleRest(std::string room) {
  req_ = parser_->release();
  auto id = Admit(req_, false);
  if (!id) return;
  // The answer comes from a backend thread; the session waits for it before reading the next request.
  auto done = [self = this->shared_from_this()](RestReply reply) {
    boost::asio::post(self->stream_.get_executor(),
                      [self, reply = std::move(reply)]() mutable { self->WriteRest(std::move(reply)); });
  };
  if (req_.method() == http::verb::post) {
    ctx_.rest.PostMessage(*id, room, req_.body(), std::move(done));
  } else {
    std::string_view target(req_.target().data(), req_.target().size());
    auto q = target.find('?');
    ctx_.rest.GetHistory(*id, room, q == std::string_view::npos ? std::string_view() : target.substr(q + 1),
                         std::move(done));
  }
}

template <typename Stream>
void HttpSession<Stream>::WriteRest(RestReply reply) {
  Response res{static_cast<http::status>(reply.status), req_.version()};
  res.set(http::field::server, "chat-gateway");
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  if (reply.retry_after_ms > 0) {
    res.set(http::field::retry_after, std::to_string((reply.retry_after_ms + 999) / 1000));
  }
  res.keep_alive(req_.keep_alive());
  res.body() = std::move(reply.body);
  Write(std::move(res));
}

template <typename Stream>
typename HttpSession<Stream>::Response HttpSession<Stream>::Handle(const Request& req) {
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
  } else if (path == "/api/events" || RestMessagesRoom(path)) {
    json(http::status::method_not_allowed, JsonError("bad_request", "method not allowed here"));
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

template <typename Stream>
void HttpSession<Stream>::Write(Response res) {
  auto sp = std::make_shared<Response>(std::move(res));
  sp->prepare_payload();
  http::async_write(stream_, *sp, [self = this->shared_from_this(), sp](beast::error_code ec, size_t) {
    if (ec) return;
    if (!sp->keep_alive()) return ShutdownStream(self->stream_, self);
    self->DoRead();
  });
}

template class HttpSession<beast::tcp_stream>;
template class HttpSession<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace chat::gateway
