#include "connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "jwt_mint.h"
#include "protocol.h"
#include "worker.h"

namespace chat::loadgen {

namespace {

constexpr size_t kMaxPending = 4096;                // unanswered requests remembered per connection
constexpr size_t kKeepBufferBytes = 16 * 1024;      // a larger partial-frame buffer is given back after use
constexpr uint64_t kMaxMessage = 64 * 1024 * 1024;  // a joined with a long online list fits
constexpr size_t kMaxUpgradeReply = 16 * 1024;
constexpr size_t kMaxGather = 64;  // frames in one socket write

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace

Connection::Connection(Worker& worker, const ConnPlan& plan)
    : worker_(worker),
      plan_(plan),
      mask_state_(0x9E3779B97F4A7C15ULL ^ (uint64_t{plan.index} << 20) ^ static_cast<uint64_t>(NowNs())),
      assembler_(kMaxMessage) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

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

// Masks need not be secret here (RFC 6455 wants them unpredictable to protect proxies' caches from
// scripted clients); xorshift64 is enough and costs nothing.
uint32_t Connection::NextMask() {
  mask_state_ ^= mask_state_ << 13;
  mask_state_ ^= mask_state_ >> 7;
  mask_state_ ^= mask_state_ << 17;
  return static_cast<uint32_t>(mask_state_ >> 16);
}

void Connection::Start(std::optional<uint32_t> source) {
  started_ns_ = NowNs();
  state_ = State::kConnecting;
  const auto& target = worker_.ctx().targets[plan_.url];
  const auto& endpoint = target.endpoint;
  fd_ = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Fail("socket: " + ErrnoText(errno));
  if (source && endpoint.protocol().family() == AF_INET) {
#ifdef IP_BIND_ADDRESS_NO_PORT
    // Pick the port at connect time, by the whole 4-tuple, instead of reserving one at bind time.
    int one = 1;
    ::setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(*source);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0) {
      in_addr a{from.sin_addr.s_addr};
      char text[INET_ADDRSTRLEN] = "?";
      ::inet_ntop(AF_INET, &a, text, sizeof text);
      return Fail("bind " + std::string(text) + ": " + ErrnoText(errno));
    }
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const auto timeout_ns = static_cast<int64_t>(worker_.ctx().options.connect_timeout_s * 1e9);
  worker_.AddDeadline(started_ns_ + timeout_ns, this);
  if (::connect(fd_, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0 && errno != EINPROGRESS) {
    return Fail("connect: " + ErrnoText(errno));
  }
  // Registered after connect: its first EPOLLOUT (or EPOLLERR) says how the connect went.
  if (int err = worker_.Watch(fd_, this); err != 0) return Fail("epoll_ctl: " + ErrnoText(err));
}

void Connection::OnTimeout() {
  switch (state_) {
    case State::kConnecting:
      return Fail("connect: timeout");
    case State::kHandshaking:
      return Fail("handshake: timeout");
    case State::kOpening:
      return Fail("socket.io connect: timeout");
    default:
      return;
  }
}

void Connection::OnEvents(uint32_t events) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kConnecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return Fail("connect: " + ErrnoText(err));
    OnConnected();
    if (state_ == State::kClosed) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    // After the peer's FIN (or an error) no further edge comes: read until the socket says so.
    ReadAll((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    if (state_ == State::kClosed) return;
  }
  if ((events & EPOLLOUT) && write_blocked_) {
    write_blocked_ = false;
    Flush();
  }
}

void Connection::OnConnected() {
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
  std::string key = ws::KeyFrom(mask_state_ ^ plan_.index);
  expected_accept_ = ws::AcceptFor(key);
  state_ = State::kHandshaking;
  WriteRaw(ws::UpgradeRequest(target.host_header, path, key, subprotocol, o.deflate));
}

void Connection::OnUpgradeReply(const ws::UpgradeReply& reply) {
  if (reply.status != 101) return Fail("handshake: HTTP " + std::to_string(reply.status));
  if (reply.accept != expected_accept_) return Fail("handshake: wrong Sec-WebSocket-Accept");
  std::string().swap(expected_accept_);
  if (worker_.ctx().options.deflate && ws::AcceptsDeflate(reply.extensions)) assembler_.EnableDeflate();
  worker_.mutable_stats().connect_ns.Record(NowNs() - started_ns_);
  if (worker_.ctx().options.protocol == Protocol::kChat) {
    Ready();
  } else {
    state_ = State::kOpening;  // waiting for Engine.IO's open, then the namespace's connect
  }
}

void Connection::Ready() {
  worker_.mutable_stats().ready_ns.Record(NowNs() - started_ns_);
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
  Write(ws::kText, worker_.ctx().options.protocol == Protocol::kChat ? ChatJoinFrame(id, RoomName())
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
  Write(ws::kText, ctx.options.protocol == Protocol::kChat ? ChatSendFrame(id, RoomName(), client_id, text)
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
  if (fd_ >= 0) ::close(fd_);  // also leaves the epoll set
  fd_ = -1;
}

void Connection::Fail(const std::string& reason) {
  if (state_ == State::kClosed) return;
  State was = state_;
  state_ = State::kClosed;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
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

// Edge-triggered: the socket is empty once a read comes back short, and data that arrives later
// brings a new event. Only the peer's FIN (or an error) brings none, so then it reads to the end.
void Connection::ReadAll(bool until_empty) {
  auto& scratch = worker_.read_scratch();
  for (;;) {
    const ssize_t got = ::recv(fd_, scratch.data(), scratch.size(), 0);
    if (got > 0) {
      Consume(std::string_view(scratch.data(), static_cast<size_t>(got)));
      if (state_ == State::kClosed) return;
      if (static_cast<size_t>(got) < scratch.size() && !until_empty) return;
      continue;
    }
    if (got == 0) return Fail("end of stream");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    return Fail(ErrnoText(errno));
  }
}

void Connection::Consume(std::string_view data) {
  if (state_ == State::kHandshaking) {
    in_.append(data);
    auto reply = ws::ParseUpgradeReply(in_);
    if (!reply) {
      if (in_.size() > kMaxUpgradeReply) Fail("handshake: reply headers too long");
      return;
    }
    OnUpgradeReply(*reply);
    if (state_ == State::kClosed) return;
    in_.erase(0, reply->size);
    data = {};
  }
  if (in_.empty()) {
    size_t used = HandleFrames(data);
    if (state_ != State::kClosed && used < data.size()) in_.assign(data.substr(used));
    return;
  }
  in_.append(data);
  size_t used = HandleFrames(in_);
  if (state_ == State::kClosed) return;
  in_.erase(0, used);
  // A big frame (a joined with a long online list) must not leave every connection holding its size.
  if (in_.empty() && in_.capacity() > kKeepBufferBytes) std::string().swap(in_);
}

size_t Connection::HandleFrames(std::string_view data) {
  size_t at = 0;
  while (at < data.size()) {
    ws::Frame frame;
    size_t used = 0;
    std::string why;
    switch (ws::ParseServerFrame(data.substr(at), kMaxMessage, frame, used, why)) {
      case ws::Parse::kNeedMore:
        return at;
      case ws::Parse::kBad:
        Fail("protocol: " + why);
        return at;
      case ws::Parse::kFrame:
        break;
    }
    at += used;
    if (frame.opcode == ws::kClose) {
      HandleClose(frame.payload);
      return at;
    }
    if (frame.opcode == ws::kPing) {
      Write(ws::kPong, frame.payload);
    } else if (frame.opcode == ws::kText || frame.opcode == ws::kBinary ||
               frame.opcode == ws::kContinuation) {
      switch (assembler_.Add(frame, why)) {
        case ws::MessageAssembler::Step::kBad:
          Fail("protocol: " + why);
          return at;
        case ws::MessageAssembler::Step::kPending:
          break;
        case ws::MessageAssembler::Step::kMessage:
          HandleMessage(assembler_.message(), assembler_.text());
          break;
      }
    }
    if (state_ == State::kClosed) return at;
  }
  return at;
}

void Connection::HandleMessage(std::string_view message, bool text) {
  if (!text) {
    worker_.mutable_stats().unparsed_frames++;
  } else if (worker_.ctx().options.protocol == Protocol::kChat) {
    HandleChat(message);
  } else {
    HandleSocketIo(message);
  }
}

// The server closed: recorded as "close <code> <reason>"; the socket is dropped without answering.
void Connection::HandleClose(std::string_view payload) {
  std::string text = "close ";
  if (payload.size() >= 2) {
    text += std::to_string((static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]));
    if (payload.size() > 2) text += " " + std::string(payload.substr(2));
  } else {
    text += "1005";  // no status code
  }
  Fail(text);
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
      if (state_ == State::kOpening) Write(ws::kText, SioConnectFrame(Token()));
      return;
    case K::kPing:
      Write(ws::kText, "3");
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

void Connection::Write(uint8_t opcode, std::string_view payload) {
  std::string frame;
  frame.reserve(payload.size() + 14);
  ws::AppendClientFrame(frame, opcode, payload, NextMask());
  WriteRaw(std::move(frame));
}

void Connection::WriteRaw(std::string bytes) {
  out_.push_back(std::move(bytes));
  if (!write_blocked_ && state_ != State::kConnecting) Flush();
}

// What is queued goes out in one gather write, as much as the socket takes.
void Connection::Flush() {
  while (!out_.empty() && state_ != State::kClosed) {
    std::array<iovec, kMaxGather> iov{};
    size_t n = 0;
    for (; n < out_.size() && n < kMaxGather; ++n) {
      const std::string& frame = out_[n];
      const size_t skip = n == 0 ? out_written_ : 0;
      iov[n].iov_base = const_cast<char*>(frame.data() + skip);
      iov[n].iov_len = frame.size() - skip;
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = n;
    ssize_t wrote = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (wrote < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        write_blocked_ = true;
        return;
      }
      return Fail("write: " + ErrnoText(errno));
    }
    auto left = static_cast<size_t>(wrote);
    while (left > 0) {
      const size_t rest = out_.front().size() - out_written_;
      if (left < rest) {
        out_written_ += left;
        break;
      }
      left -= rest;
      out_.pop_front();
      out_written_ = 0;
    }
  }
}

}  // namespace chat::loadgen
