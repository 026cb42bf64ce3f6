#include "transport/websocket_session.h"

#include <boost/asio/post.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "common/log.h"
#include "transport/connection_setup.h"
#include "transport/gateway_context.h"

namespace chat::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

template <typename Stream>
WebSocketSession<Stream>::WebSocketSession(Stream stream, GatewayContext& ctx, ConnectionIdentity identity,
                                           size_t lane)
    : ws_(std::move(stream)), ctx_(ctx), identity_(std::move(identity)), lane_(lane) {}

template <typename Stream>
WebSocketSession<Stream>::~WebSocketSession() = default;

template <typename Stream>
void WebSocketSession<Stream>::JoinFromAnyThread(std::string room) {
  asio::post(ws_.get_executor(), [self = this->shared_from_this(), room = std::move(room)] {
    if (self->chat_ && !self->finished_) self->chat_->JoinInvited(room);
  });
}

template <typename Stream>
void WebSocketSession<Stream>::DeliverRaw(std::shared_ptr<const std::string> frame) {
  asio::post(ws_.get_executor(), [self = this->shared_from_this(), frame = std::move(frame)]() mutable {
    self->Send(std::move(frame));
  });
}

template <typename Stream>
void WebSocketSession<Stream>::Run(beast::http::request<beast::http::string_body> req,
                                   std::string subprotocol) {
  const auto& cfg = ctx_.config;
  // Beast pings when the peer is idle for half the timeout and drops it after the whole timeout.
  websocket::stream_base::timeout t{};
  t.handshake_timeout = std::chrono::seconds(10);
  t.idle_timeout = std::chrono::seconds(cfg.heartbeat_seconds * 2);
  t.keep_alive_pings = true;
  beast::get_lowest_layer(ws_).expires_never();
  ws_.next_layer().SetOwner(this->weak_from_this());
  ws_.set_option(t);
  ws_.read_message_max(static_cast<size_t>(cfg.frame_limit_bytes));
  ws_.auto_fragment(false);
  ws_.set_option(websocket::stream_base::decorator([subprotocol](websocket::response_type& res) {
    res.set(beast::http::field::server, "chat-gateway");
    // Browsers fail the handshake unless one protocol they offered is selected.
    if (!subprotocol.empty()) res.set(beast::http::field::sec_websocket_protocol, subprotocol);
  }));
  ws_.async_accept(req, [self = this->shared_from_this()](beast::error_code ec) { self->OnAccept(ec); });
}

template <typename Stream>
void WebSocketSession<Stream>::OnAccept(beast::error_code ec) {
  if (ec) {
    log::Debug("websocket accept failed", {{"error", ec.message()}});
    ctx_.sessions.Release(identity_.user);
    return;
  }
  ctx_.connections.Add(1);
  ctx_.connects.Inc();
  ctx_.sessions.Add(identity_.connection_id, identity_.user, this->weak_from_this());
  std::weak_ptr<WebSocketSession> weak = this->weak_from_this();
  ChatConnection::Send send = [this](std::shared_ptr<const std::string> frame) { Send(std::move(frame)); };
  ChatConnection::CloseFn close = [this](uint16_t code, std::string reason) {
    Close(static_cast<websocket::close_code>(code), std::move(reason));
  };
  chat_ = std::make_unique<ChatConnection>(
      identity_, ConnectionLimitsFrom(ctx_.config), ctx_.messages, ctx_.presence, ctx_.fanout,
      ctx_.connection_metrics,
      ChatConnection::Io{PostTo(weak, ws_.get_executor()), PostAfterTo(weak, ws_.get_executor()),
                         std::move(send), std::move(close), std::weak_ptr<RoomMember>(weak)});
  log::Info("connection opened", {{"conn", identity_.connection_id}, {"user", identity_.user}});
  chat_->Start();
  DoRead();
}

template <typename Stream>
void WebSocketSession<Stream>::DoRead() {
  ws_.async_read(buffer_,
                 [self = this->shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
}

template <typename Stream>
void WebSocketSession<Stream>::OnRead(beast::error_code ec, size_t) {
  if (ec) {
    // Beast has already answered protocol violations with their close codes: 1009 for a message past
    // read_message_max, 1007 for invalid UTF-8 in a text message, 1002 for other protocol errors.
    std::string reason = ec == websocket::error::closed ? "client closed" : ec.message();
    return Finish(reason);
  }
  if (ws_.got_text()) {
    auto data = buffer_.cdata();
    chat_->OnText(std::string_view(static_cast<const char*>(data.data()), data.size()));
  } else {
    chat_->OnBinary();
  }
  buffer_.Reset();
  if (!finished_) DoRead();
}

template <typename Stream>
void WebSocketSession<Stream>::Deliver(std::shared_ptr<const Delivery> delivery) {
  asio::post(ws_.get_executor(), [self = this->shared_from_this(), delivery = std::move(delivery)] {
    if (self->chat_ && !self->finished_) self->chat_->OnDelivery(*delivery);
  });
}

template <typename Stream>
void WebSocketSession<Stream>::DeliverOnLane(const Delivery& delivery) {
  if (chat_ && !finished_) chat_->OnDelivery(delivery);
}

template <typename Stream>
void WebSocketSession<Stream>::Send(std::shared_ptr<const std::string> frame) {
  if (closing_ || finished_) return;
  auto& out = ws_.next_layer();
  if (out.queued_bytes() + frame->size() > static_cast<size_t>(ctx_.config.outbound_queue_bytes)) {
    // Like Redis's client-output-buffer-limit: a reader this far behind is cut off; it resumes later.
    ctx_.slow_consumers.Inc();
    log::Warn("slow consumer cut off", {{"conn", identity_.connection_id},
                                        {"queued_bytes", static_cast<int64_t>(out.queued_bytes())}});
    return Close(websocket::close_code::try_again_later, "outbound queue full");
  }
  // The frame joins the write queue under Beast; frames queued while a write is in flight go out
  // together with the next one.
  out.QueueText(std::move(frame));
  ctx_.frames_out.Inc();
}

template <typename Stream>
void WebSocketSession<Stream>::CloseFromAnyThread(uint16_t code, std::string reason) {
  asio::post(ws_.get_executor(),
             [self = this->shared_from_this(), code, reason = std::move(reason)]() mutable {
               self->Close(static_cast<websocket::close_code>(code), std::move(reason));
             });
}

template <typename Stream>
void WebSocketSession<Stream>::Close(websocket::close_code code, std::string reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  close_reason_ = websocket::close_reason(code, reason);
  // The close frame queues behind the frames already queued, so they are flushed first; a slow
  // consumer's queue is dropped instead (all but the write in flight).
  if (code == websocket::close_code::try_again_later) ws_.next_layer().DropQueued();
  ws_.async_close(close_reason_,
                  [self = this->shared_from_this()](beast::error_code) { self->Finish("closed by server"); });
}

template <typename Stream>
void WebSocketSession<Stream>::Finish(std::string_view reason) {
  if (finished_) return;
  finished_ = true;
  if (chat_) {
    chat_->Close();
    ctx_.connections.Add(-1);
    ctx_.Disconnects(DisconnectLabel(closing_, static_cast<uint16_t>(close_reason_.code), reason)).Inc();
    ctx_.sessions.Remove(identity_.connection_id, identity_.user);
    log::Info("connection closed", {{"conn", identity_.connection_id}, {"reason", reason}});
  }
}

template class WebSocketSession<beast::tcp_stream>;
template class WebSocketSession<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace chat::gateway
