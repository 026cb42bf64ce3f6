#pragma once
// One HTTP connection before (or instead of) a WebSocket upgrade: health, readiness, metrics, the web
// page, the dev login, the REST and SSE fallback (`/api/rooms/{room}/messages`, `/api/events`), and
// /ws, which authenticates and hands the stream to a WebSocketSession. Lives on its io_context's
// thread. `Stream` is beast::tcp_stream, or beast::ssl_stream of one when TLS is on (the handshake is
// the session's first step).

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "domain/chat_connection.h"
#include "domain/rest_api.h"

namespace chat::gateway {

class GatewayContext;
class StaticFiles;

template <typename Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  // `lane`: the index of the io_context it runs on (for RoomMember::lane).
  HttpSession(Stream stream, GatewayContext& ctx, const StaticFiles& files, size_t lane);
  void Run();

 private:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  // Origin, token and connection caps, as for a WebSocket upgrade; answers the refusal itself.
  std::optional<ConnectionIdentity> Admit(const Request& req, bool reserve_connection);
  void Upgrade();
  void OpenEvents();
  void HandleRest(std::string room);
  void WriteRest(RestReply reply);
  void Reject(boost::beast::http::status status, std::string_view code, std::string_view message);
  Response Handle(const Request& req);
  void Write(Response res);

  Stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  Request req_;  // the request being answered asynchronously (REST)
  GatewayContext& ctx_;
  const StaticFiles& files_;
  size_t lane_;
};

// The token of a request: `?token=` in the target, else `Authorization: Bearer`.
std::string ExtractToken(std::string_view target, std::string_view authorization);

// Browsers cannot set headers on WebSockets, and a token in the URL ends up in logs: they may offer
// `Sec-WebSocket-Protocol: chat.v1, bearer.<token>` instead. The answer selects chat.v1.
inline constexpr std::string_view kChatSubprotocol = "chat.v1";
struct SubprotocolOffer {
  std::string token;     // from a "bearer.<token>" entry
  std::string selected;  // the protocol to answer with, if any
};
SubprotocolOffer ParseSubprotocols(std::string_view header);

// The room of a `/api/rooms/{room}/messages` path, or nullopt for any other path.
std::optional<std::string> RestMessagesRoom(std::string_view path);

}  // namespace chat::gateway
