#pragma once
// One HTTP connection before (or instead of) a WebSocket upgrade: health, readiness, metrics, the web
// page, the dev login, and /ws, which authenticates and hands the socket to a WebSocketSession.
// Lives on its io_context's thread.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>

namespace chat::gateway {

class GatewayContext;
class StaticFiles;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, GatewayContext& ctx, const StaticFiles& files);
  void Run();

 private:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  void Upgrade();
  Response Handle(const Request& req);
  void Write(Response res);

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  GatewayContext& ctx_;
  const StaticFiles& files_;
};

// The token of an upgrade request: `?token=` in the target, else `Authorization: Bearer`.
std::string ExtractToken(std::string_view target, std::string_view authorization);

// Browsers cannot set headers on WebSockets, and a token in the URL ends up in logs: they may offer
// `Sec-WebSocket-Protocol: chat.v1, bearer.<token>` instead. The answer selects chat.v1.
inline constexpr std::string_view kChatSubprotocol = "chat.v1";
struct SubprotocolOffer {
  std::string token;     // from a "bearer.<token>" entry
  std::string selected;  // the protocol to answer with, if any
};
SubprotocolOffer ParseSubprotocols(std::string_view header);

}  // namespace chat::gateway
