#include "connection.h"

#include <netinet/in.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/error.hpp>
#include <chrono>

#include "jwt_mint.h"
#include "protocol.h"
#include "worker.h"

namespace chat::loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kMaxPending = 4096;            // unanswered requests remembered per connection
constexpr size_t kKeepBufferBytes = 16 * 1024;  // a larger read buffer is given back after use

std::chrono::steady_clock::duration Seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

Connection::Connection(Worker& worker, const ConnPlan& plan)
    : worker_(worker), plan_(plan), ws_(worker.io()) {}

std::string Connection::Token() const {
  const auto& o = worker_.ctx().options;
  return MintHs256(o.jwt_secret, o.user_prefix + std::to_string(plan_.index), worker_.ctx().jwt_exp);
}

std::string Connection::RoomName() const {
  return worker_.ctx().options.room_prefix + "r" + std::to_string(plan_.room);
}

uint32_t Connection::NextId() {
  if (++next_id_ == 0) next_id_ = 1;  // after 2^32 requests: never ref 0
  return next_id_;
}

void Connection::Start(asio::ip::address source) {
  started_ns_ = NowNs();
  state_ = State::kConnecting;
  auto& stream = beast::get_lowest_layer(ws_);
  auto& socket = stream.socket();
  beast::error_code ec;
  socket.open(tcp::v4(), ec);
  if (ec) return Fail("socket: " + ec.message());
  if (!source.is_unspecified()) {
#ifdef IP_BIND_ADDRESS_NO_PORT
    // Pick the port at connect time, by the whole 4-tuple, instead of reserving one at bind time.
    int one = 1;
    ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    socket.bind(tcp::endpoint(source, 0), ec);
    if (ec) return Fail("bind " + source.to_string() + ": " + ec.message());
  }
  // Covers connect, handshake and (socketio) the namespace connect, until Ready.
  stream.expires_after(Seconds(worker_.ctx().options.connect_timeout_s));
  timeout_armed_ = true;
  const auto& target = worker_.ctx().targets[plan_.url];
  stream.async_connect(target.endpoint,
                       [self = shared_from_this()](beast::error_code e) { self->OnConnect(e); });
}

void Connection::OnConnect(beast::error_code ec) {
  if (state_ == State::kClosed) return;
  if (ec) return Fail(ec == beast::error::timeout ? "connect: timeout" : "connect: " + ec.message());
  const auto& o = worker_.ctx().options;
  const auto& target = worker_.ctx().targets[plan_.url];
  std::string path = target.target;
  std::string subprotocol;
  if (o.protocol == Protocol::kChat) {
    if (o.token_in_query) {
      path += (path.find('?') == std::string::npos ? "?token=" : "&token=") + Token();
    } else {
      subprotocol = "chat.v1, bearer." + Token();
    }
  }
  ws_.set_option(websocket::stream_base::decorator([subprotocol](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "chat-loadgen");
    if (!subprotocol.empty()) req.set(beast::http::field::sec_websocket_protocol, subprotocol);
  }));
  if (o.deflate) {
    websocket::permessage_deflate pmd;
    pmd.client_enable = true;
    ws_.set_option(pmd);
  }
  ws_.read_message_max(64 * 1024 * 1024);
  ws_.auto_fragment(false);
  state_ = State::kHandshaking;
  response_ = std::make_unique<websocket::response_type>();
  ws_.async_handshake(*response_, target.host_header, path,
                      [self = shared_from_this()](beast::error_code e) { self->OnHandshake(e); });
}

void Connection::OnHandshake(beast::error_code ec) {
  if (state_ == State::kClosed) return;
  if (ec == websocket::error::upgrade_declined && response_) {
    return Fail("handshake: HTTP " + std::to_string(response_->result_int()));
  }
  if (ec) return Fail(ec == beast::error::timeout ? "handshake: timeout" : "handshake: " + ec.message());
  response_.reset();
  worker_.mutable_stats().connect_ns.Record(NowNs() - started_ns_);
  if (worker_.ctx().options.protocol == Protocol::kChat) {
    Ready();
  } else {
    state_ = State::kOpening;  // waiting for Engine.IO's open, then the namespace's connect
  }
  DoRead();
}

void Connection::Ready() {
  worker_.mutable_stats().ready_ns.Record(NowNs() - started_ns_);
  DisarmTimeoutWhenIdle();
  state_ = State::kReady;
  was_ready_ = true;
  worker_.mutable_live().Add(worker_.mutable_live().connected);
  worker_.OnConnectDone();
}

void Connection::Join() {
  if (state_ != State::kReady) {
    worker_.mutable_stats().join_errors["not connected"]++;
    worker_.mutable_live().Add(worker_.mutable_live().join_failed);
    worker_.OnJoinDone();
    return;
  }
  state_ = State::kJoining;
  uint32_t id = NextId();
  pending_.push_back({id, Kind::kJoin, NowNs()});
  Write(worker_.ctx().options.protocol == Protocol::kChat ? ChatJoinFrame(id, RoomName())
                                                          : SioJoinFrame(id, RoomName()));
}

bool Connection::SendMessage(int64_t now_ns) {
  const auto& ctx = worker_.ctx();
  if (state_ != State::kJoined || out_.size() >= static_cast<size_t>(ctx.options.max_queued)) return false;
  uint32_t id = NextId();
  std::string client_id = ctx.run_id + "-" + std::to_string(plan_.index) + "-" + std::to_string(++messages_);
  std::string text = StampedText(now_ns, static_cast<size_t>(ctx.options.text_bytes));
  if (pending_.size() >= kMaxPending) pending_.pop_front();  // never answered: forget it
  pending_.push_back({id, Kind::kSend, now_ns});
  Write(ctx.options.protocol == Protocol::kChat ? ChatSendFrame(id, RoomName(), client_id, text)
                                                : SioSendFrame(id, RoomName(), client_id, text));
  if (ctx.schedule.InWindow(now_ns)) {
    auto& stats = worker_.mutable_stats();
    ++stats.sent;
    ++stats.sent_per_room[plan_.room];
    worker_.mutable_live().Add(worker_.mutable_live().sent);
  }
  return true;
}

void Connection::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  beast::get_lowest_layer(ws_).close();
}

void Connection::Fail(const std::string& reason) {
  if (state_ == State::kClosed) return;
  State was = state_;
  state_ = State::kClosed;
  beast::get_lowest_layer(ws_).close();
  auto& stats = worker_.mutable_stats();
  auto& live = worker_.mutable_live();
  if (was == State::kNew || was == State::kConnecting || was == State::kHandshaking ||
      was == State::kOpening) {
    stats.connect_errors[reason]++;
    live.Add(live.connect_failed);
    worker_.OnConnectDone();
    return;
  }
  stats.disconnects[reason]++;
  live.Add(live.disconnected);
  if (was == State::kJoining) {
    stats.join_errors["closed: " + reason]++;
    live.Add(live.join_failed);
    worker_.OnJoinDone();
  }
}

void Connection::DoRead() {
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
}

void Connection::OnRead(beast::error_code ec) {
  if (state_ == State::kClosed) return;
  if (ec) {
    if (ec == websocket::error::closed) {
      const auto& reason = ws_.reason();
      std::string text = "close " + std::to_string(reason.code);
      if (!reason.reason.empty()) text += " " + std::string(reason.reason.c_str());
      return Fail(text);
    }
    if (ec == beast::error::timeout) {
      return Fail(state_ == State::kOpening ? "socket.io connect: timeout" : "timeout");
    }
    return Fail(ec.message());
  }
  auto data = buffer_.cdata();
  std::string_view text(static_cast<const char*>(data.data()), data.size());
  if (!ws_.got_text()) {
    worker_.mutable_stats().unparsed_frames++;
  } else if (worker_.ctx().options.protocol == Protocol::kChat) {
    HandleChat(text);
  } else {
    HandleSocketIo(text);
  }
  if (state_ == State::kClosed) return;
  buffer_.consume(buffer_.size());
  // A big frame (a joined with a long online list) must not leave every connection holding its size.
  if (buffer_.capacity() > kKeepBufferBytes) buffer_.shrink_to_fit();
  DoRead();
}

void Connection::HandleChat(std::string_view text) {
  auto frame = ParseChatFrame(text);
  auto& stats = worker_.mutable_stats();
  if (!frame) {
    stats.unparsed_frames++;
    return;
  }
  if (frame->kind == "message") {
    OnDelivery(frame->body);
    return;
  }
  if (frame->kind == "welcome") {
    stats.welcomes++;
    return;
  }
  if (frame->kind == "error") {
    std::string code = "unknown";
    if (auto c = json::Member(frame->body, "code"); c && json::StringContents(*c)) {
      code = std::string(*json::StringContents(*c));
    }
    if (frame->ref) {
      OnReply(*frame->ref, code);
    } else {
      stats.errors[code + " (no ref)"]++;
    }
    return;
  }
  // joined, ack, pong, history...: a reply to one of ours when it carries a ref.
  if (frame->ref) OnReply(*frame->ref, std::nullopt);
}

void Connection::HandleSocketIo(std::string_view text) {
  using K = SioPacket::Kind;
  SioPacket p = ParseSio(text);
  auto& stats = worker_.mutable_stats();
  switch (p.kind) {
    case K::kOpen:
      if (state_ == State::kOpening) Write(SioConnectFrame(Token()));
      return;
    case K::kPing:
      Write("3");
      return;
    case K::kConnect:
      if (state_ == State::kOpening) Ready();
      return;
    case K::kConnectError: {
      std::string why = "socket.io connect_error";
      if (auto m = json::Member(p.payload, "message"); m && json::StringContents(*m)) {
        why += ": " + std::string(*json::StringContents(*m));
      }
      return Fail(why);
    }
    case K::kDisconnect:
      return Fail("socket.io disconnect");
    case K::kClose:
      return Fail("engine.io close");
    case K::kEvent: {
      auto event = ParseSioEvent(p.payload);
      if (!event) {
        stats.unparsed_frames++;
      } else if (event->name == "message") {
        OnDelivery(event->data);
      }
      return;
    }
    case K::kAck:
      if (p.ack_id) OnReply(*p.ack_id, SioAckError(p.payload));
      return;
    case K::kPong:
    case K::kNoop:
      return;
    case K::kOther:
      stats.unparsed_frames++;
      return;
  }
}

void Connection::OnReply(uint32_t id, std::optional<std::string> error) {
  auto it = pending_.begin();
  while (it != pending_.end() && it->id != id) ++it;
  if (it == pending_.end()) return;  // not ours, or forgotten
  Pending req = *it;
  pending_.erase(it);
  const int64_t now = NowNs();
  const auto& schedule = worker_.ctx().schedule;
  auto& stats = worker_.mutable_stats();
  auto& live = worker_.mutable_live();
  if (req.kind == Kind::kJoin) {
    if (state_ != State::kJoining) return;
    if (error) {
      stats.join_errors[*error]++;
      live.Add(live.join_failed);
      state_ = State::kReady;
    } else {
      stats.join_ns.Record(now - req.sent_ns);
      stats.members_per_room[plan_.room]++;
      live.Add(live.joined);
      state_ = State::kJoined;
    }
    worker_.OnJoinDone();
    return;
  }
  if (!schedule.InWindow(req.sent_ns) || !schedule.Recording(now)) return;
  if (error) {
    stats.send_errors++;
    stats.rejected_per_room[plan_.room]++;
    stats.errors[*error]++;
    return;
  }
  stats.acked++;
  stats.ack_ns.Record(now - req.sent_ns);
  live.Add(live.acked);
}

void Connection::OnDelivery(std::string_view message) {
  auto text = json::Member(message, "text");
  auto contents = text ? json::StringContents(*text) : std::nullopt;
  auto stamp = contents ? ParseStamp(*contents) : std::nullopt;
  if (!stamp) return;  // not one of ours
  const int64_t now = NowNs();
  const auto& schedule = worker_.ctx().schedule;
  auto& stats = worker_.mutable_stats();
  if (!schedule.InWindow(*stamp) || !schedule.Recording(now)) {
    stats.deliveries_other++;
    return;
  }
  stats.deliveries++;
  stats.latency_ns.Record(now - *stamp);
  stats.latency_by_url_ns[plan_.url].Record(now - *stamp);
  worker_.mutable_live().Add(worker_.mutable_live().delivered);
}

void Connection::Write(std::string frame) {
  out_.push_back(std::move(frame));
  if (out_.size() == 1) DoWrite();
}

void Connection::DoWrite() {
  ws_.text(true);
  ws_.async_write(asio::buffer(out_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (self->state_ == State::kClosed) return;
    if (ec) return self->Fail("write: " + ec.message());
    self->out_.pop_front();
    if (!self->out_.empty()) return self->DoWrite();
    if (self->timeout_armed_ && self->was_ready_) self->DisarmTimeoutWhenIdle();
  });
}

// tcp_stream keeps the expiry of an operation in flight: expires_never() only reaches the side (read
// or write) with nothing pending. Ready runs from a completed read with no read started yet; a write
// still queued then disarms its side when the queue drains.
void Connection::DisarmTimeoutWhenIdle() {
  if (!out_.empty()) return;
  beast::get_lowest_layer(ws_).expires_never();
  timeout_armed_ = false;
}

}  // namespace chat::loadgen
