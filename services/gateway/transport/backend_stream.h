#pragma once
// The gateway's long-lived bidirectional gRPC stream to one backend (messages or presence), callback
// API. Requests get correlation ids; replies complete their callbacks in any order. When the stream
// breaks, every request in flight is answered Unavailable and the stream reconnects with jittered
// backoff. Thread-safe; callbacks run on gRPC threads and must not block.
//
// Batches both ways when the backend says it reads batches (common/stream_batch.h): requests that
// queue behind the write in flight go out together in the next stream message, and a message of
// batched replies completes each of its callbacks.
//
// Calls are timed from Call to reply (`chat_backend_call_duration_seconds`, labelled with the backend and
// the request's kind, the name of its `body` field): the gateway's view of a send's commit or a join's
// round trip, queueing on both sides included.

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_callback.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/stream_batch.h"

namespace chat::gateway {

template <typename Request, typename Reply>
class BackendStream {
 public:
  using Callback = std::function<void(absl::StatusOr<Reply>)>;
  using StartCall = std::function<void(grpc::ClientContext*, grpc::ClientBidiReactor<Request, Reply>*)>;

  BackendStream(std::string name, StartCall start, boost::asio::io_context& timers, MetricsRegistry& metrics)
      : name_(std::move(name)),
        metrics_(metrics),
        start_(std::move(start)),
        timer_(timers),
        backoff_(std::chrono::milliseconds(100), std::chrono::seconds(5)),
        reconnects_(metrics.GetCounter("chat_backend_stream_reconnects_total", "Backend stream (re)connects",
                                       {{"backend", name_}})),
        up_(metrics.GetGauge("chat_backend_stream_up", "1 while the backend stream is up",
                             {{"backend", name_}})),
        requests_(metrics.GetCounter("chat_backend_stream_requests_total",
                                     "Requests sent on the backend stream", {{"backend", name_}})),
        writes_(metrics.GetCounter("chat_backend_stream_writes_total",
                                   "Stream messages written to the backend (a batch of requests is one)",
                                   {{"backend", name_}})),
        calls_in_flight_(metrics.GetGauge("chat_backend_calls_in_flight",
                                          "Calls on the backend stream waiting for their reply",
                                          {{"backend", name_}})),
        calls_failed_(metrics.GetCounter("chat_backend_calls_failed_total",
                                         "Calls answered Unavailable because the backend stream broke",
                                         {{"backend", name_}})) {
    // Every kind is served from the start, at zero, so that dashboards and alerts see the series.
    if (const auto* body = Request::GetDescriptor()->FindOneofByName("body")) {
      for (int i = 0; i < body->field_count(); ++i) DurationOfLocked(body->field(i)->number());
    }
  }

  ~BackendStream() { Stop(); }

  void Start() {
    std::lock_guard lock(mu_);
    ConnectLocked();
  }

  // Cancels the stream and waits for it to end; pending callbacks get Unavailable.
  void Stop() {
    std::unique_lock lock(mu_);
    stopping_ = true;
    if (reactor_ != nullptr) reactor_->context.TryCancel();
    done_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return reactor_ == nullptr; });
  }

  bool ready() const {
    std::lock_guard lock(mu_);
    return reactor_ != nullptr && reactor_->up;
  }

  void Call(Request request, Callback done) {
    std::unique_lock lock(mu_);
    if (reactor_ == nullptr || !reactor_->up || reactor_->ending || stopping_) {
      lock.unlock();
      done(absl::UnavailableError(name_ + " is unavailable"));
      return;
    }
    uint64_t id = ++next_id_;
    request.set_correlation_id(id);
    pending_.emplace(
        id, Pending{std::move(done), Clock::now(), &DurationOfLocked(static_cast<int>(request.body_case()))});
    calls_in_flight_.Set(static_cast<int64_t>(pending_.size()));
    reactor_->WriteLocked(std::move(request));
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    Callback done;
    Clock::time_point called;
    Histogram* duration;  // of this kind of call
  };

  class Reactor : public grpc::ClientBidiReactor<Request, Reply> {
   public:
    explicit Reactor(BackendStream* owner) : owner_(owner) {}

    // With owner's mu_ held.
    void WriteLocked(Request r) {
      writes.push_back(std::move(r));
      if (!writing && !write_failed && !ending) StartWriteLocked();
    }

    // With owner's mu_ held; writes is not empty.
    void StartWriteLocked() {
      writing = true;
      owner_->requests_.Inc(TakeStreamBatch(writes, in_write, batch));
      owner_->writes_.Inc();
      this->StartWrite(&in_write);
    }

    void OnReadInitialMetadataDone(bool ok) override {
      std::lock_guard lock(owner_->mu_);
      if (ok) {
        batch = SaysStreamBatch(context.GetServerInitialMetadata());
        up = true;
        owner_->up_.Set(1);
        owner_->backoff_.Reset();
        log::Info("backend stream up", {{"backend", owner_->name_}});
      }
    }

    void OnReadDone(bool ok) override {
      if (!ok) {
        // The stream is ending; OnDone follows once the hold is gone. No write starts after this.
        {
          std::lock_guard lock(owner_->mu_);
          ending = true;
        }
        this->RemoveHold();
        return;
      }
      if (reply.batch_size() == 0) {
        Callback cb = owner_->TakeCallback(reply.correlation_id());
        if (cb) cb(std::move(reply));
      } else {
        std::vector<Callback> cbs;
        cbs.reserve(static_cast<size_t>(reply.batch_size()));
        {
          std::lock_guard lock(owner_->mu_);
          for (const Reply& r : reply.batch()) cbs.push_back(owner_->TakeCallbackLocked(r.correlation_id()));
        }
        for (int i = 0; i < reply.batch_size(); ++i) {
          if (cbs[static_cast<size_t>(i)]) cbs[static_cast<size_t>(i)](std::move(*reply.mutable_batch(i)));
        }
      }
      reply.Clear();
      this->StartRead(&reply);
    }

    void OnWriteDone(bool ok) override {
      std::lock_guard lock(owner_->mu_);
      if (!ok) {
        write_failed = true;
        writing = false;
        writes.clear();
        return;
      }
      if (!writes.empty() && !ending) {
        StartWriteLocked();
      } else {
        writing = false;
      }
    }

    void OnDone(const grpc::Status& status) override {
      owner_->OnStreamDone(this, status);
      delete this;
    }

    grpc::ClientContext context;
    Reply reply;
    std::deque<Request> writes;  // waiting for the next write
    Request in_write;            // being written while writing is true
    bool batch = false;          // the backend reads batched requests
    bool writing = false;
    bool write_failed = false;
    bool up = false;
    bool ending = false;  // the read side failed: the call is finishing

   private:
    BackendStream* owner_;
  };

  // With mu_ held.
  void ConnectLocked() {
    if (stopping_) return;
    reactor_ = new Reactor(this);
    // A dead peer must be noticed even when no request is flowing.
    reactor_->context.set_wait_for_ready(false);
    reactor_->context.AddMetadata(std::string(kStreamBatchKey), "1");
    start_(&reactor_->context, reactor_);
    // Call() starts writes from other threads, outside the reactions: the hold keeps the call from
    // finishing (and gRPC from destroying it) under such a write. Released when the read side fails.
    reactor_->AddHold();
    reactor_->StartRead(&reactor_->reply);
    reactor_->StartCall();
    reconnects_.Inc();
  }

  // With mu_ held (or from the constructor). One histogram per kind of request: the field number of
  // its `body`.
  Histogram& DurationOfLocked(int kind) {
    auto it = duration_by_kind_.find(kind);
    if (it != duration_by_kind_.end()) return *it->second;
    const auto* field = Request::GetDescriptor()->FindFieldByNumber(kind);
    Histogram& h = metrics_.GetHistogram(
        "chat_backend_call_duration_seconds", "From a call on the backend stream to its reply",
        LatencyBuckets(), {{"backend", name_}, {"call", field != nullptr ? field->name() : "none"}});
    duration_by_kind_.emplace(kind, &h);
    return h;
  }

  Callback TakeCallback(uint64_t id) {
    std::lock_guard lock(mu_);
    return TakeCallbackLocked(id);
  }

  Callback TakeCallbackLocked(uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return nullptr;
    Callback cb = std::move(it->second.done);
    it->second.duration->Observe(std::chrono::duration<double>(Clock::now() - it->second.called).count());
    pending_.erase(it);
    calls_in_flight_.Set(static_cast<int64_t>(pending_.size()));
    return cb;
  }

  void OnStreamDone(Reactor* r, const grpc::Status& status) {
    std::map<uint64_t, Pending> failed;
    {
      std::lock_guard lock(mu_);
      if (reactor_ == r) reactor_ = nullptr;
      up_.Set(0);
      failed.swap(pending_);
      calls_in_flight_.Set(0);
      calls_failed_.Inc(failed.size());
      if (!stopping_) {
        auto delay = backoff_.Next();
        log::Warn("backend stream down", {{"backend", name_},
                                          {"error", status.error_message()},
                                          {"retry_ms", static_cast<int64_t>(delay.count())}});
        // The timer belongs to its io_context's thread: arm it there.
        boost::asio::post(timer_.get_executor(), [this, delay] {
          timer_.expires_after(delay);
          timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec) return;
            std::lock_guard lock(mu_);
            if (reactor_ == nullptr) ConnectLocked();
          });
        });
      }
    }
    done_cv_.notify_all();
    for (auto& [id, call] : failed) call.done(absl::UnavailableError(name_ + " stream broke; retry"));
  }

  const std::string name_;
  MetricsRegistry& metrics_;
  StartCall start_;
  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  boost::asio::steady_timer timer_;
  Backoff backoff_;
  Reactor* reactor_ = nullptr;  // owned by gRPC until OnDone
  std::map<uint64_t, Pending> pending_;
  uint64_t next_id_ = 0;
  bool stopping_ = false;
  Counter& reconnects_;
  Gauge& up_;
  Counter& requests_;
  Counter& writes_;
  std::map<int, Histogram*> duration_by_kind_;  // by the request's body case
  Gauge& calls_in_flight_;
  Counter& calls_failed_;
};

}  // namespace chat::gateway
