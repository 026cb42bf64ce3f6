#include "transport/sse_session.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "transport/connection_setup.h"
#include "transport/gateway_context.h"

namespace chat::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

constexpr std::string_view kResponseHead =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache, no-store\r\n"
    // nginx and similar proxies buffer responses unless told not to.
    "X-Accel-Buffering: no\r\n"
    "Connection: close\r\n"
    "Server: chat-gateway\r\n"
    "\r\n"
    // A first comment flushes intermediaries; `retry` paces a bare EventSource's own reconnects.
    ": stream open\n"
    "retry: 2000\n\n";

// The client frame that starts following a room, as the client would have sent it.
std::string StartFrame(const SseRoomStart& r) {
  std::string out = "{";
  if (r.ref) absl::StrAppend(&out, "\"ref\":", *r.ref, ",");
  if (r.after) {
    absl::StrAppend(&out, "\"resume\":{\"room\":\"", r.room, "\",\"afterSeq\":\"", *r.after, "\"}}");
  } else {
    absl::StrAppend(&out, "\"join\":{\"room\":\"", r.room, "\"}}");
  }
  return out;
}

}  // namespace

template <typename Stream>
SseSession<Stream>::SseSession(Stream stream, GatewayContext& ctx, ConnectionIdentity identity,
                               std::vector<SseRoomStart> rooms, size_t lane)
    : stream_(std::move(stream)),
      ctx_(ctx),
      identity_(std::move(identity)),
      start_rooms_(std::move(rooms)),
      heartbeat_(stream_.get_executor()),
      lane_(lane) {}

template <typename Stream>
SseSession<Stream>::~SseSession() = default;

template <typename Stream>
void SseSession<Stream>::Run() {
  beast::get_lowest_layer(stream_).expires_never();
  // The head goes out with the first write, ahead of welcome.
  pending_.assign(kResponseHead);
  Start();
}

template <typename Stream>
void SseSession<Stream>::Start() {
  ctx_.connections.Add(1);
  ctx_.connects.Inc();
  ctx_.sse_streams.Add(1);
  ctx_.sessions.Add(identity_.connection_id, identity_.user, this->weak_from_this());
  std::weak_ptr<SseSession> weak = this->weak_from_this();
  ChatConnection::Send send = [this](std::shared_ptr<const std::string> frame) { Send(*frame); };
  ChatConnection::CloseFn close = [this](uint16_t code, std::string reason) {
    Close(code, std::move(reason));
  };
  chat_ = std::make_unique<ChatConnection>(
      identity_, ConnectionLimitsFrom(ctx_.config), ctx_.messages, ctx_.presence, ctx_.fanout,
      ctx_.connection_metrics,
      ChatConnection::Io{PostTo(weak, stream_.get_executor()), PostAfterTo(weak, stream_.get_executor()),
                         std::move(send), std::move(close), std::weak_ptr<RoomMember>(weak), nullptr,
                         nullptr});
  log::Info("sse stream opened", {{"conn", identity_.connection_id},
                                  {"user", identity_.user},
                                  {"rooms", static_cast<int64_t>(start_rooms_.size())}});
  chat_->Start();
  for (const auto& r : start_rooms_) {
    if (finished_ || closing_) break;
    chat_->OnText(StartFrame(r));
  }
  start_rooms_.clear();
  DoRead();
  ArmHeartbeat();
}

template <typename Stream>
void SseSession<Stream>::DoRead() {
  // The client says nothing more on this connection; a read only tells when it goes away.
  stream_.async_read_some(asio::buffer(read_buf_),
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            if (self->finished_) return;
                            if (ec)
                              return self->Finish(ec == asio::error::eof ? "client closed" : ec.message());
                            self->DoRead();
                          });
}

template <typename Stream>
void SseSession<Stream>::ArmHeartbeat() {
  heartbeat_.expires_after(std::chrono::seconds(ctx_.config.heartbeat_seconds));
  heartbeat_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
    if (ec || self->finished_ || self->closing_) return;
    self->Append(": keepalive\n\n");
    self->ArmHeartbeat();
  });
}

template <typename Stream>
void SseSession<Stream>::Deliver(std::shared_ptr<const Delivery> delivery) {
  asio::post(stream_.get_executor(), [self = this->shared_from_this(), delivery = std::move(delivery)] {
    if (self->chat_ && !self->finished_) self->chat_->OnDelivery(*delivery);
  });
}

template <typename Stream>
void SseSession<Stream>::DeliverOnLane(const Delivery& delivery) {
  if (chat_ && !finished_) chat_->OnDelivery(delivery);
}

template <typename Stream>
void SseSession<Stream>::JoinFromAnyThread(std::string room) {
  asio::post(stream_.get_executor(), [self = this->shared_from_this(), room = std::move(room)] {
    if (self->chat_ && !self->finished_) self->chat_->JoinInvited(room);
  });
}

template <typename Stream>
void SseSession<Stream>::DeliverRaw(std::shared_ptr<const std::string> frame) {
  asio::post(stream_.get_executor(), [self = this->shared_from_this(), frame = std::move(frame)] {
    if (!self->finished_) self->Send(*frame);
  });
}

template <typename Stream>
void SseSession<Stream>::CloseFromAnyThread(uint16_t code, std::string reason) {
  asio::post(stream_.get_executor(),
             [self = this->shared_from_this(), code, reason = std::move(reason)]() mutable {
               self->Close(code, std::move(reason));
             });
}

template <typename Stream>
void SseSession<Stream>::Send(const std::string& frame) {
  if (closing_ || finished_) return;
  ctx_.frames_out.Inc();
  // Frames that move a room's position carry the positions of every room, for Last-Event-ID.
  if (positions_.Observe(frame)) return Append(SseEvent(frame, positions_.Id()));
  Append(SseEvent(frame));
}

template <typename Stream>
void SseSession<Stream>::Append(std::string event) {
  if (finished_) return;
  if (pending_.size() + writing_.size() + event.size() >
      static_cast<size_t>(ctx_.config.outbound_queue_bytes)) {
    // The same bound as a WebSocket's outbound queue: a reader this far behind is cut off; it resumes.
    ctx_.slow_consumers.Inc();
    log::Warn("slow consumer cut off", {{"conn", identity_.connection_id}, {"transport", "sse"}});
    closing_ = true;
    close_code_ = 1013;
    pending_.clear();
    if (!write_in_flight_) Finish("outbound queue full");
    return;
  }
  pending_.append(event);
  if (!write_in_flight_) DoWrite();
}

template <typename Stream>
void SseSession<Stream>::DoWrite() {
  writing_.swap(pending_);
  pending_.clear();
  write_in_flight_ = true;
  asio::async_write(stream_, asio::buffer(writing_),
                    [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
}

template <typename Stream>
void SseSession<Stream>::OnWrite(beast::error_code ec) {
  write_in_flight_ = false;
  writing_.clear();
  if (ec) return Finish("write failed: " + ec.message());
  if (finished_) return;
  if (!pending_.empty()) return DoWrite();
  if (closing_) Finish("closed by server");
}

template <typename Stream>
void SseSession<Stream>::Close(uint16_t code, std::string reason) {
  if (closing_ || finished_) return;
  // The close code a WebSocket client would get (4003 kicked, 1001 shutdown, 1008 flooding) as a last
  // event, so the client can tell "stop" from "reconnect".
  google::protobuf::Struct body;
  (*body.mutable_fields())["code"].set_number_value(code);
  (*body.mutable_fields())["reason"].set_string_value(reason);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(body, &json);
  Append(SseEvent(json, {}, "close"));
  closing_ = true;
  close_code_ = code;
  if (!write_in_flight_ && pending_.empty()) Finish("closed by server");
}

template <typename Stream>
void SseSession<Stream>::Finish(std::string_view reason) {
  if (finished_) return;
  finished_ = true;
  heartbeat_.cancel();
  if (chat_) {
    chat_->Close();
    ctx_.connections.Add(-1);
    ctx_.sse_streams.Add(-1);
    ctx_.Disconnects(DisconnectLabel(closing_, close_code_, reason)).Inc();
    ctx_.sessions.Remove(identity_.connection_id, identity_.user);
    log::Info("sse stream closed", {{"conn", identity_.connection_id}, {"reason", reason}});
  }
  pending_.clear();
  // Everything written is in the kernel's buffer and still goes out; the response ends with the
  // connection (no TLS close_notify: the `close` event already told the client).
  beast::error_code ignored;
  beast::get_lowest_layer(stream_).socket().close(ignored);
}

template class SseSession<beast::tcp_stream>;
template class SseSession<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace chat::gateway
