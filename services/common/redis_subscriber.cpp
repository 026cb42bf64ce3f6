#include "common/redis_subscriber.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <future>

#include "common/log.h"

namespace chat {

namespace asio = boost::asio;

// hiredis's event hooks on an Asio descriptor. hiredis owns the socket: the descriptor never closes it.
// Handlers hold the Watch, and check `alive`, because hiredis may free its context inside any call.
struct RedisSubscriber::Watch : std::enable_shared_from_this<RedisSubscriber::Watch> {
  Watch(asio::io_context& ioc, redisAsyncContext* c, RedisSubscriber& owner)
      : sd(ioc, c->c.fd), ac(c), owner(owner) {}
  ~Watch() {
    if (sd.is_open()) sd.release();
  }

  asio::posix::stream_descriptor sd;
  redisAsyncContext* ac;
  // Outlives every handler that gets past the `alive` check: Stop (or, with the io thread gone, the
  // destructor) frees the context (alive = false) before the subscriber can go.
  RedisSubscriber& owner;
  bool alive = true;
  bool want_read = false, want_write = false, reading = false, writing = false;

  void ArmRead() {
    if (reading || !alive || !want_read) return;
    reading = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_read,
                  [self = shared_from_this()](boost::system::error_code ec) {
                    self->reading = false;
                    if (!self->alive || ec == asio::error::operation_aborted) return;
                    self->ReadAvailable();
                    // Also after a read that lost the connection: what it brought is acted on.
                    if (self->owner.on_read_done_) self->owner.on_read_done_();
                    self->ArmRead();
                  });
  }
  // hiredis reads at most 16 KiB a call. Going back through the reactor for each 16 KiB let a busy io
  // thread fall behind a fast publisher (the backlog then waits in Redis's output buffer, whose limit
  // cuts the subscriber off): read on while the socket holds more, a bounded number of times so the
  // thread's other handlers still get their turn.
  void ReadAvailable() {
    constexpr int kReadsPerWake = 16;
    for (int i = 0; i < kReadsPerWake; ++i) {
      redisAsyncHandleRead(ac);
      if (!alive || !want_read) return;
      asio::posix::stream_descriptor::bytes_readable readable(true);
      boost::system::error_code ec;
      sd.io_control(readable, ec);
      if (ec || readable.get() == 0) return;
    }
  }
  void ArmWrite() {
    if (writing || !alive || !want_write) return;
    writing = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_write,
                  [self = shared_from_this()](boost::system::error_code ec) {
                    self->writing = false;
                    if (!self->alive || ec == asio::error::operation_aborted) return;
                    redisAsyncHandleWrite(self->ac);
                    self->ArmWrite();
                  });
  }
  void Cleanup() {
    alive = false;
    want_read = want_write = false;
    boost::system::error_code ignored;
    sd.cancel(ignored);
    sd.release();
  }

  static void AddRead(void* p) {
    auto* w = static_cast<Watch*>(p);
    w->want_read = true;
    w->ArmRead();
  }
  static void DelRead(void* p) { static_cast<Watch*>(p)->want_read = false; }
  static void AddWrite(void* p) {
    auto* w = static_cast<Watch*>(p);
    w->want_write = true;
    w->ArmWrite();
  }
  static void DelWrite(void* p) { static_cast<Watch*>(p)->want_write = false; }
  static void CleanupCb(void* p) { static_cast<Watch*>(p)->Cleanup(); }
};

RedisSubscriber::RedisSubscriber(asio::io_context& ioc, std::string host, int port, OnMessage on_message,
                                 MetricsRegistry& metrics)
    : ioc_(ioc),
      host_(std::move(host)),
      port_(port),
      on_message_(std::move(on_message)),
      reconnect_timer_(ioc),
      backoff_(std::chrono::milliseconds(100), std::chrono::seconds(5)),
      reconnects_(metrics.GetCounter("chat_redis_reconnects_total", "Redis subscriber connection attempts")),
      messages_in_(metrics.GetCounter("chat_redis_messages_total", "Pub/sub messages received")) {}

// Stop frees the context on the io thread. Without Stop (the io thread already gone: a start that
// failed, a test that ended) the context would outlive the subscriber, with its socket and
// subscriptions; the io_context is not running by then, so it is freed here.
RedisSubscriber::~RedisSubscriber() {
  stopping_ = true;  // the disconnect callback must not arm a reconnect
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    redisAsyncFree(ac);
  }
}

void RedisSubscriber::Start() {
  asio::post(ioc_, [this] { Connect(); });
}

void RedisSubscriber::Stop() {
  std::promise<void> done;
  asio::post(ioc_, [this, &done] {
    stopping_ = true;
    reconnect_timer_.cancel();
    if (ac_ != nullptr) {
      redisAsyncContext* ac = ac_;
      ac_ = nullptr;
      redisAsyncFree(ac);  // runs the disconnect callback and Cleanup
    }
    done.set_value();
  });
  done.get_future().wait_for(std::chrono::seconds(5));
}

void RedisSubscriber::Connect() {
  if (stopping_) return;
  reconnects_.Inc();
  redisAsyncContext* ac = redisAsyncConnect(host_.c_str(), port_);
  if (ac == nullptr || ac->err != 0) {
    log::Warn("redis subscriber connect failed", {{"error", ac ? ac->errstr : "out of memory"}});
    if (ac != nullptr) redisAsyncFree(ac);
    ScheduleReconnect();
    return;
  }
  ac_ = ac;
  ac->data = this;
  watch_ = std::make_shared<Watch>(ioc_, ac, *this);
  ac->ev.data = watch_.get();
  ac->ev.addRead = &Watch::AddRead;
  ac->ev.delRead = &Watch::DelRead;
  ac->ev.addWrite = &Watch::AddWrite;
  ac->ev.delWrite = &Watch::DelWrite;
  ac->ev.cleanup = &Watch::CleanupCb;
  redisAsyncSetConnectCallback(ac, &RedisSubscriber::OnConnectCb);
  redisAsyncSetDisconnectCallback(ac, &RedisSubscriber::OnDisconnectCb);
  // The connect completes when the socket becomes writable.
  Watch::AddWrite(watch_.get());
}

void RedisSubscriber::ScheduleReconnect() {
  if (stopping_) return;
  reconnect_timer_.expires_after(backoff_.Next());
  reconnect_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Connect();
  });
}

void RedisSubscriber::OnConnectCb(const redisAsyncContext* ac, int status) {
  static_cast<RedisSubscriber*>(ac->data)->HandleConnected(status);
}

void RedisSubscriber::OnDisconnectCb(const redisAsyncContext* ac, int) {
  static_cast<RedisSubscriber*>(ac->data)->HandleDisconnected();
}

void RedisSubscriber::OnReplyCb(redisAsyncContext* ac, void* reply, void*) {
  if (reply == nullptr || ac->data == nullptr) return;
  static_cast<RedisSubscriber*>(ac->data)->HandleReply(static_cast<redisReply*>(reply));
}

void RedisSubscriber::HandleConnected(int status) {
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback.
    log::Warn("redis subscriber connect failed", {{"error", ac_ ? ac_->errstr : ""}});
    ac_ = nullptr;
    ScheduleReconnect();
    return;
  }
  connected_ = true;
  backoff_.Reset();
  log::Info("redis subscriber connected", {{"channels", static_cast<int64_t>(channels_.size())}});
  for (auto& [name, ch] : channels_) {
    ch.state = Channel::State::kSubscribing;
    ch.restoring = true;
    SendCommand("SUBSCRIBE", name);
  }
}

void RedisSubscriber::HandleDisconnected() {
  bool was_connected = connected_.exchange(false);
  // watch_ stays until the next Connect: hiredis runs its cleanup hook after this callback.
  ac_ = nullptr;
  for (auto it = channels_.begin(); it != channels_.end();) {
    auto waiters = std::move(it->second.waiters);
    it->second.waiters.clear();
    for (auto& w : waiters) w(absl::UnavailableError("redis connection lost"));
    if (!it->second.wanted) {
      it = channels_.erase(it);
    } else {
      it->second.state = Channel::State::kSubscribing;
      ++it;
    }
  }
  if (was_connected) log::Warn("redis subscriber disconnected");
  ScheduleReconnect();
}

void RedisSubscriber::SendCommand(const char* verb, const std::string& channel) {
  if (ac_ == nullptr || !connected_) return;  // sent again on reconnect
  std::string cmd = std::string(verb) + " %b";
  redisAsyncCommand(ac_, &RedisSubscriber::OnReplyCb, nullptr, cmd.c_str(), channel.data(), channel.size());
}

void RedisSubscriber::HandleReply(redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  std::string kind(r->element[0]->str, r->element[0]->len);
  std::string channel(r->element[1]->str, r->element[1]->len);
  if (kind == "message") {
    messages_in_.Inc();
    on_message_(channel, std::string(r->element[2]->str, r->element[2]->len));
    return;
  }
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  Channel& ch = it->second;
  if (kind == "subscribe") {
    if (!ch.wanted) {
      ch.state = Channel::State::kUnsubscribing;
      SendCommand("UNSUBSCRIBE", channel);
      return;
    }
    ch.state = Channel::State::kSubscribed;
    bool again = ch.restoring;
    ch.restoring = false;
    auto waiters = std::move(ch.waiters);
    ch.waiters.clear();
    if (on_subscribed_) on_subscribed_(channel, again);
    for (auto& w : waiters) w(absl::OkStatus());
  } else if (kind == "unsubscribe") {
    // hiredis forgets a channel's callback on this reply, so a channel wanted again meanwhile is
    // subscribed only now.
    if (ch.wanted) {
      ch.state = Channel::State::kSubscribing;
      SendCommand("SUBSCRIBE", channel);
    } else {
      channels_.erase(it);
    }
  }
}

void RedisSubscriber::Subscribe(const std::string& channel, std::function<void(absl::Status)> ready) {
  asio::post(ioc_, [this, channel, ready = std::move(ready)]() mutable {
    SubscribeHere(channel, std::move(ready));
  });
}

void RedisSubscriber::SubscribeForever(const std::string& channel) {
  asio::post(ioc_, [this, channel] {
    auto [it, created] = channels_.try_emplace(channel);
    it->second.wanted = true;
    it->second.forever = true;
    if (created && connected_) SendCommand("SUBSCRIBE", channel);
  });
}

void RedisSubscriber::Unsubscribe(const std::string& channel) {
  asio::post(ioc_, [this, channel] { UnsubscribeHere(channel); });
}

void RedisSubscriber::SubscribeHere(const std::string& channel, std::function<void(absl::Status)> ready) {
  if (!connected_) {
    if (ready) ready(absl::UnavailableError("redis is not connected"));
    return;
  }
  auto [it, created] = channels_.try_emplace(channel);
  Channel& ch = it->second;
  ch.wanted = true;
  if (created) {
    ch.state = Channel::State::kSubscribing;
    SendCommand("SUBSCRIBE", channel);
  }
  if (ch.state == Channel::State::kSubscribed) {
    if (ready) ready(absl::OkStatus());
  } else if (ready) {
    ch.waiters.push_back(std::move(ready));
  }
}

void RedisSubscriber::UnsubscribeHere(const std::string& channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end() || it->second.forever) return;
  Channel& ch = it->second;
  ch.wanted = false;
  if (ch.state == Channel::State::kSubscribed) {
    ch.state = Channel::State::kUnsubscribing;
    SendCommand("UNSUBSCRIBE", channel);
  } else if (!connected_) {
    channels_.erase(it);
  }
}

}  // namespace chat
