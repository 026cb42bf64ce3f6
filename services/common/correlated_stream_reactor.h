#pragma once
// Server side of a gateway's long-lived bidirectional stream: requests carry correlation ids and are
// answered in any order, from any thread. Subclasses implement Handle, which must not block and must
// call `reply` exactly once (from any thread). The outbox outlives the reactor, so a reply that arrives
// after the stream ended is dropped safely. Follows gRPC's WatchReactor: one write in flight, the
// queue and flags under one mutex, Finish exactly once, OnDone frees.

#include <grpcpp/support/server_callback.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "common/metrics.h"

namespace chat {

template <typename Request, typename Reply>
class CorrelatedStreamReactor : public grpc::ServerBidiReactor<Request, Reply> {
 public:
  using ReplyFn = std::function<void(Reply)>;

  explicit CorrelatedStreamReactor(Gauge& open_streams)
      : open_streams_(open_streams), outbox_(std::make_shared<Outbox>()) {
    outbox_->reactor = this;
    open_streams_.Add(1);
  }

  // Call last in the subclass constructor. Initial metadata goes out at once so the gateway learns the
  // stream is up before its first request.
  void Begin() {
    this->StartSendInitialMetadata();
    this->StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard lock(outbox_->mu);
      outbox_->read_done = true;
      outbox_->MaybeFinishLocked();
      return;
    }
    {
      std::lock_guard lock(outbox_->mu);
      ++outbox_->in_flight;
    }
    Handle(request_, [outbox = outbox_](Reply reply) { outbox->Push(std::move(reply)); });
    this->StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(outbox_->mu);
    outbox_->queue.pop_front();
    if (!ok) {
      // The stream broke: the gateway answers its requests in flight itself and reconnects.
      outbox_->queue.clear();
      outbox_->writing = false;
      outbox_->FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    if (!outbox_->queue.empty() && !outbox_->finished) {
      this->StartWrite(&outbox_->queue.front());
    } else {
      outbox_->writing = false;
      outbox_->MaybeFinishLocked();
    }
  }

  void OnCancel() override {
    std::lock_guard lock(outbox_->mu);
    outbox_->FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    {
      std::lock_guard lock(outbox_->mu);
      outbox_->reactor = nullptr;
    }
    open_streams_.Add(-1);
    delete this;
  }

 protected:
  virtual void Handle(const Request& request, ReplyFn reply) = 0;

 private:
  struct Outbox {
    std::mutex mu;
    CorrelatedStreamReactor* reactor = nullptr;  // null once the RPC is done
    std::deque<Reply> queue;                     // the front is being written while writing is true
    bool writing = false;
    bool read_done = false;
    bool finished = false;
    int64_t in_flight = 0;

    void Push(Reply reply) {
      std::lock_guard lock(mu);
      --in_flight;
      if (reactor == nullptr || finished) return;
      queue.push_back(std::move(reply));
      if (!writing) {
        writing = true;
        reactor->StartWrite(&queue.front());
      }
    }
    void FinishLocked(grpc::Status status) {
      if (finished || reactor == nullptr) return;
      finished = true;
      reactor->Finish(std::move(status));
    }
    // The stream ends once the gateway stopped sending and every reply went out.
    void MaybeFinishLocked() {
      if (!read_done || writing || in_flight > 0) return;
      FinishLocked(grpc::Status::OK);
    }
  };

  Gauge& open_streams_;
  std::shared_ptr<Outbox> outbox_;
  Request request_;
};

}  // namespace chat
