#include "transport/websocket_session.h"

#include <boost/asio/post.hpp>
#include <boost/beast/ssl.hpp>

#include "common/log.h"
#include "common/text_rules.h"
#include "domain/permessage_deflate.h"
#include "domain/websocket_handshake.h"
#include "transport/connection_setup.h"
#include "transport/gateway_context.h"
#include "transport/stream_shutdown.h"

namespace chat::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr uint8_t kOpClose = 0x8;
constexpr uint8_t kOpPing = 0x9;
constexpr uint8_t kOpPong = 0xa;
// How long a closing connection waits for the peer's close frame (or EOF) before dropping it.
constexpr auto kCloseLinger = std::chrono::seconds(5);

std::string_view Header(const http::request<http::string_body>& req, http::field f) {
  auto v = req[f];
  return std::string_view(v.data(), v.size());
}

}  // namespace

template <typename Stream>
WebSocketSession<Stream>::WebSocketSession(Stream stream, GatewayContext& ctx, ConnectionIdentity identity,
                                           size_t lane)
    : out_(WebSocketTransport<Stream>::From(std::move(stream))),
      reader_(static_cast<size_t>(ctx.config.frame_limit_bytes)),
      ctx_(ctx),
      identity_(std::move(identity)),
      lane_(lane) {}

template <typename Stream>
WebSocketSession<Stream>::~WebSocketSession() = default;

template <typename Stream>
void WebSocketSession<Stream>::JoinFromAnyThread(std::string room) {
  asio::post(out_.get_executor(), [self = this->shared_from_this(), room = std::move(room)] {
    if (self->chat_ && !self->finished_) self->chat_->JoinInvited(room);
  });
}

template <typename Stream>
void WebSocketSession<Stream>::DeliverRaw(std::shared_ptr<const std::string> frame) {
  asio::post(out_.get_executor(), [self = this->shared_from_this(), frame = std::move(frame)]() mutable {
    self->Send(std::move(frame));
  });
}

template <typename Stream>
void WebSocketSession<Stream>::Run(const http::request<http::string_body>& req,
                                   const std::string& subprotocol) {
  out_.SetOwner(this->weak_from_this());
  UpgradeHeaders h;
  h.method = std::string_view(req.method_string().data(), req.method_string().size());
  h.version = req.version();
  h.upgrade = Header(req, http::field::upgrade);
  h.connection = Header(req, http::field::connection);
  h.key = Header(req, http::field::sec_websocket_key);
  h.websocket_version = Header(req, http::field::sec_websocket_version);
  HandshakeAnswer answer = CheckUpgrade(h);
  if (answer.status != 101) {
    log::Debug("websocket handshake refused", {{"error", answer.reason}});
    ctx_.sessions.Release(identity_.user);
    finished_ = true;
    std::string body = answer.reason + "\n";
    std::string res = answer.status == 426 ? "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"
                                           : "HTTP/1.1 400 Bad Request\r\n";
    res += "Server: chat-gateway\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
    out_.QueueRaw(std::move(res));
    out_.WhenFlushed([self = this->shared_from_this()] { self->CloseSocket(); });
    return;
  }
  std::string extensions;
  if (ctx_.config.ws_deflate && lane_ < ctx_.deflate_by_lane.size()) {
    extensions = NegotiateDeflate(Header(req, http::field::sec_websocket_extensions),
                                  static_cast<int>(ctx_.config.ws_deflate_window_bits), &deflate_window_);
    if (extensions.empty()) deflate_window_ = 0;
    if (deflate_window_ != 0) reader_.EnableDeflate();
  }
  // Held: the welcome frame that Accepted sends takes it along, one write for both.
  out_.QueueRaw(SwitchingProtocolsResponse(answer.accept, subprotocol, extensions), /*hold=*/true);
  Accepted();
}

template <typename Stream>
void WebSocketSession<Stream>::Accepted() {
  ctx_.connections.Add(1);
  ctx_.connects.Inc();
  ctx_.sessions.Add(identity_.connection_id, identity_.user, this->weak_from_this());
  std::weak_ptr<WebSocketSession> weak = this->weak_from_this();
  ChatConnection::Send send = [this](std::shared_ptr<const std::string> frame) { Send(std::move(frame)); };
  ChatConnection::Send send_with_next = [this](std::shared_ptr<const std::string> frame) {
    Send(std::move(frame), true);
  };
  ChatConnection::Send send_last = [this](std::shared_ptr<const std::string> frame) {
    Send(std::move(frame), false, /*now=*/true);
  };
  ChatConnection::CloseFn close = [this](uint16_t code, std::string reason) {
    Close(code, std::move(reason));
  };
  chat_ = std::make_unique<ChatConnection>(
      identity_, ConnectionLimitsFrom(ctx_.config), ctx_.messages, ctx_.presence, ctx_.fanout,
      ctx_.connection_metrics,
      ChatConnection::Io{PostTo(weak, out_.get_executor()), PostAfterTo(weak, out_.get_executor()),
                         std::move(send), std::move(close), std::weak_ptr<RoomMember>(weak),
                         std::move(send_with_next), std::move(send_last)});
  log::Info("connection opened", {{"conn", identity_.connection_id}, {"user", identity_.user}});
  last_read_ = std::chrono::steady_clock::now();
  // The handshake's answer and the welcome (sent `last`) go out in one write, made on this stack: in a
  // connect storm the second write was one of a connect's ~12 syscalls, and woke the client twice.
  chat_->Start();
  out_.FlushHeld(/*now=*/true);
  DoRead();
}

// A plain socket waits for readability and is then read on this stack, so an idle connection holds no
// read buffer and a wake costs one read (with Asio's async_read_some: a read tried at once, which
// mostly finds nothing, then the wake's). TLS reads through the stream into the session's chunk.
template <typename Stream>
void WebSocketSession<Stream>::DoRead() {
  if constexpr (kTls) {
    out_.next_layer().async_read_some(
        asio::buffer(read_buf_),
        [self = this->shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
  } else {
    out_.next_layer().async_wait(
        asio::ip::tcp::socket::wait_read,
        [self = this->shared_from_this()](beast::error_code ec) { self->OnRead(ec, 0); });
  }
}

template <typename Stream>
void WebSocketSession<Stream>::OnRead(beast::error_code ec, size_t n) {
  if (finished_) return;
  auto read_failed = [this](const beast::error_code& e) {
    // EOF after our close frame is the end of a clean close; before, the peer went away without one.
    if (close_sent_) return Finish(closing_ ? "closed by server" : "client closed");
    return Finish(e == asio::error::eof ? "connection dropped" : e.message());
  };
  if (ec) return read_failed(ec);
  if constexpr (kTls) {
    last_read_ = std::chrono::steady_clock::now();
    ping_sent_ = false;
    if (!Consume(std::string_view(read_buf_.data(), n))) return;
  } else {
    // Readable: read until a read comes back short (the socket is then empty) or would block (a
    // wake with nothing to read).
    auto& socket = out_.next_layer();
    ec = out_.MakeNonBlocking();
    if (ec) return read_failed(ec);
    std::array<char, 16384> buf;
    for (;;) {
      size_t got = socket.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) return read_failed(ec);
      last_read_ = std::chrono::steady_clock::now();
      ping_sent_ = false;
      if (!Consume(std::string_view(buf.data(), got))) return;
      if (got < buf.size()) break;
    }
  }
  DoRead();
}

template <typename Stream>
bool WebSocketSession<Stream>::Consume(std::string_view bytes) {
  std::vector<WebSocketEvent> events;
  const uint64_t inflated = reader_.inflated();
  reader_.Feed(bytes, events);
  if (reader_.inflated() != inflated) ctx_.messages_inflated.Inc(reader_.inflated() - inflated);
  for (auto& e : events) {
    if (finished_) return false;
    switch (e.kind) {
      case WebSocketEvent::Kind::kText:
        // Data after our close frame is read and dropped (RFC 6455 5.5.1), as Beast did.
        if (!close_sent_ && chat_) chat_->OnText(e.payload);
        break;
      case WebSocketEvent::Kind::kBinary:
        if (!close_sent_ && chat_) chat_->OnBinary();
        break;
      case WebSocketEvent::Kind::kPing:
        if (!close_sent_) out_.QueueFrame(kOpPong, std::move(e.payload), /*now=*/true);
        break;
      case WebSocketEvent::Kind::kPong:
        break;
      case WebSocketEvent::Kind::kClose:
        close_received_ = true;
        if (close_sent_) {
          // The answer to our close: done.
          ShutdownAfterFlush(closing_ ? "closed by server" : "client closed");
          return false;
        }
        // The peer's close: echo its code, then end.
        SendClose(e.code == 1005 ? 0 : e.code, "");
        ShutdownAfterFlush("client closed");
        return false;
      case WebSocketEvent::Kind::kError:
        // A protocol violation: 1002, 1007 (invalid UTF-8) or 1009 (message too big), then end.
        if (!close_sent_) SendClose(e.code, e.payload);
        ShutdownAfterFlush(e.payload);
        return false;
    }
  }
  return !finished_;
}

template <typename Stream>
void WebSocketSession<Stream>::Deliver(std::shared_ptr<const Delivery> delivery) {
  asio::post(out_.get_executor(), [self = this->shared_from_this(), delivery = std::move(delivery)] {
    self->DeliverOnLane(*delivery);
  });
}

template <typename Stream>
void WebSocketSession<Stream>::DeliverOnLane(const Delivery& delivery) {
  // Frames sent while handling a room delivery are held until the lane's flush.
  if (!chat_ || finished_) return;
  delivering_ = true;
  chat_->OnDelivery(delivery);
  delivering_ = false;
}

template <typename Stream>
void WebSocketSession<Stream>::FlushHeld() {
  flush_due_ = false;
  if (out_.FlushHeld(/*now=*/true)) ctx_.delayed_writes.Inc();
}

template <typename Stream>
void WebSocketSession<Stream>::Send(std::shared_ptr<const std::string> frame, bool with_next, bool now) {
  if (close_sent_ || finished_) return;
  if (out_.queued_bytes() + frame->size() > static_cast<size_t>(ctx_.config.outbound_queue_bytes)) {
    // Like Redis's client-output-buffer-limit: a reader this far behind is cut off; it resumes later.
    ctx_.slow_consumers.Inc();
    log::Warn("slow consumer cut off", {{"conn", identity_.connection_id},
                                        {"queued_bytes", static_cast<int64_t>(out_.queued_bytes())}});
    return Close(1013, "outbound queue full");
  }
  // Frames queued while a write is in flight go out together with the next one. A room message waits
  // while the lane holds (the same Redis read has more for its room, or WS_WRITE_DELAY_MS); anything
  // else (an ack, a control frame, the room's last message of the read) goes at once and takes the held
  // frames along. A frame `with_next` (the sender's own message before its ack) waits for whatever is
  // written next without asking the lane for a flush. A room message's write, and the lane's flush, are
  // made on this stack (CoalescingStream's `now`): fan-out makes one per delivery; so is a turn's last
  // frame (`now`: the welcome, an ack).
  const bool lane_hold =
      delivering_ && lane_ < ctx_.flush_by_lane.size() && ctx_.flush_by_lane[lane_]->Holds();
  const bool hold = lane_hold || with_next;
  bool held;
  if (deflate_window_ != 0 && frame->size() >= static_cast<size_t>(ctx_.config.ws_deflate_min_bytes)) {
    held = out_.QueueText(ctx_.deflate_by_lane[lane_]->Get(frame, deflate_window_), true, hold,
                          delivering_ || now);
    ctx_.frames_deflated.Inc();
  } else {
    held = out_.QueueText(std::move(frame), false, hold, delivering_ || now);
  }
  ctx_.frames_out.Inc();
  if (lane_hold) ctx_.frames_held.Inc();
  if (with_next) ctx_.own_messages_held.Inc();
  if (held && lane_hold && !flush_due_) {
    flush_due_ = true;
    ctx_.flush_by_lane[lane_]->Add(this->weak_from_this());
  }
}

template <typename Stream>
void WebSocketSession<Stream>::CloseFromAnyThread(uint16_t code, std::string reason) {
  asio::post(out_.get_executor(),
             [self = this->shared_from_this(), code, reason = std::move(reason)]() mutable {
               self->Close(code, std::move(reason));
             });
}

template <typename Stream>
void WebSocketSession<Stream>::CheckIdleFromAnyThread(std::chrono::steady_clock::time_point now) {
  asio::post(out_.get_executor(), [self = this->shared_from_this(), now] { self->CheckIdleOnLane(now); });
}

template <typename Stream>
void WebSocketSession<Stream>::CheckIdleOnLane(std::chrono::steady_clock::time_point now) {
  if (finished_ || !chat_) return;
  const auto heartbeat = std::chrono::seconds(ctx_.config.heartbeat_seconds);
  const auto quiet = now - last_read_;
  if (quiet >= 2 * heartbeat) {
    // Silent through a ping and a whole heartbeat more: gone (a frozen tab, a dead network).
    Finish("idle timeout");
    CloseSocket();
  } else if (quiet >= heartbeat && !ping_sent_ && !close_sent_) {
    ping_sent_ = true;
    out_.QueueFrame(kOpPing, std::string(), /*now=*/true);
  }
}

template <typename Stream>
void WebSocketSession<Stream>::Close(uint16_t code, std::string reason) {
  if (close_sent_ || finished_) return;
  closing_ = true;
  close_code_ = code;
  // The close frame queues behind the frames already queued, so they are flushed first; a slow
  // consumer's queue is dropped instead (all but the write in flight).
  if (code == 1013) out_.DropQueued();
  SendClose(code, reason);
  // Then wait for the peer's close frame (reading on), at most kCloseLinger once ours has gone out. A
  // peer that does not read never gets it: the IdleSweep drops it after twice the heartbeat, and until
  // then only the write in flight is held (a slow consumer that resumes reading still finds its 1013).
  out_.WhenFlushed([self = this->shared_from_this()] {
    if (self->finished_) return;
    self->linger_ = std::make_unique<asio::steady_timer>(self->out_.get_executor());
    self->linger_->expires_after(kCloseLinger);
    self->linger_->async_wait([self](beast::error_code ec) {
      if (ec || self->finished_) return;
      self->Finish("closed by server");
      self->CloseSocket();
    });
  });
}

template <typename Stream>
void WebSocketSession<Stream>::SendClose(uint16_t code, std::string_view reason) {
  close_sent_ = true;
  std::string payload;
  if (code != 0) {
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xff));
    // A control frame carries at most 125 bytes: the reason is cut to 123, on a character boundary.
    std::string r = SanitizeUtf8(reason.substr(0, 123));
    while (r.size() > 123) r.pop_back();
    while (!r.empty() && !IsValidUtf8(r)) r.pop_back();
    payload += r;
  }
  out_.QueueFrame(kOpClose, std::move(payload));
}

template <typename Stream>
void WebSocketSession<Stream>::ShutdownAfterFlush(std::string reason) {
  Finish(reason);
  out_.WhenFlushed([self = this->shared_from_this()] {
    ShutdownStream(self->out_.next_layer(), self);
    // The peer sees our FIN after the close frame; the socket itself goes when the last owner does.
  });
}

template <typename Stream>
void WebSocketSession<Stream>::CloseSocket() {
  beast::error_code ignored;
  if constexpr (kTls) {
    beast::get_lowest_layer(out_.next_layer()).socket().close(ignored);
  } else {
    out_.next_layer().close(ignored);
  }
}

template <typename Stream>
void WebSocketSession<Stream>::Finish(std::string_view reason) {
  if (finished_) return;
  finished_ = true;
  if (linger_) linger_->cancel();
  if (chat_) {
    chat_->Close();
    ctx_.connections.Add(-1);
    ctx_.Disconnects(DisconnectLabel(closing_, close_code_, reason)).Inc();
    ctx_.sessions.Remove(identity_.connection_id, identity_.user);
    log::Info("connection closed", {{"conn", identity_.connection_id}, {"reason", reason}});
  }
}

template class WebSocketSession<beast::tcp_stream>;
template class WebSocketSession<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace chat::gateway
