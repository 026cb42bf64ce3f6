#pragma once
// One WebSocket connection: owns its socket, its read loop and its outbound queue, and drives a
// ChatConnection. Lives on one io_context thread (each io_context runs on one thread), so only that
// thread touches the queue; other threads reach it through Deliver and Post, which post to it.
// One write in flight; the queue is bounded in bytes, past the bound the client is closed with 1013.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <memory>
#include <string>

#include "domain/chat_connection.h"
#include "domain/room_registry.h"

namespace chat::gateway {

class GatewayContext;

class WebSocketSession : public RoomMember, public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(boost::asio::ip::tcp::socket socket, GatewayContext& ctx, ConnectionIdentity identity);
  ~WebSocketSession() override;

  // Completes the upgrade of `req` (already authenticated), answering with `subprotocol` if not empty,
  // then starts reading.
  void Run(boost::beast::http::request<boost::beast::http::string_body> req, std::string subprotocol);
  void Deliver(std::shared_ptr<const Delivery> delivery) override;
  // Joins a room as if the client had asked (a DM opened by someone else): an unprompted `joined`
  // follows; thread-safe.
  void JoinFromAnyThread(std::string room);
  // A frame for this connection alone, outside any room (notices); thread-safe.
  void DeliverRaw(std::shared_ptr<const std::string> frame);
  // Closes with a close code (1001 on shutdown); thread-safe.
  void CloseFromAnyThread(boost::beast::websocket::close_code code, std::string reason);
  const std::string& user() const { return identity_.user; }

 private:
  void OnAccept(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  void Send(std::shared_ptr<const std::string> frame);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, size_t bytes);
  void Close(boost::beast::websocket::close_code code, std::string reason);
  void Finish(std::string_view reason);
  // The label of chat_disconnects_total: client, error, slow_consumer, flooding, kicked, shutdown, server.
  std::string_view DisconnectReason(std::string_view reason) const;

  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  GatewayContext& ctx_;
  std::unique_ptr<ChatConnection> chat_;
  ConnectionIdentity identity_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  size_t queued_bytes_ = 0;
  boost::beast::websocket::close_reason close_reason_;
  bool closing_ = false;
  bool finished_ = false;
};

}  // namespace chat::gateway
