#pragma once
// Server side of a gateway's long-lived bidirectional stream: requests carry correlation ids and are
// answered in any order, from any thread. Subclasses implement Handle, which must not block and must
// call `reply` exactly once (from any thread). The outbox outlives the reactor, so a reply that arrives
// after the stream ended is dropped safely. Follows gRPC's WatchReactor: one write in flight, the
// queue and flags under one mutex, Finish exactly once, OnDone frees.
//
// Batches both ways (common/stream_batch.h): a stream message with `batch` set is read as its
// requests, and to a gateway that asked for it, replies that queue behind the write in flight go out
// together in the next one (a commit answers many sends at once).

#include <grpcpp/support/server_callback.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "common/stream_batch.h"
#include "common/stream_metrics.h"

namespace chat {

template <typename Request, typename Reply>
class CorrelatedStreamReactor : public grpc::ServerBidiReactor<Request, Reply> {
 public:
  using ReplyFn = std::function<void(Reply)>;

  CorrelatedStreamReactor(grpc::CallbackServerContext* context, StreamMetrics& metrics)
      : context_(context), metrics_(metrics), outbox_(std::make_shared<Outbox>(metrics)) {
    outbox_->reactor = this;
    outbox_->batch = SaysStreamBatch(context->client_metadata());
    metrics_.open.Add(1);
  }

  // Call last in the subclass constructor. Initial metadata goes out at once so the gateway learns the
  // stream is up (and that we read batches) before its first request.
  void Begin() {
    context_->AddInitialMetadata(std::string(kStreamBatchKey), "1");
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
    const int n = request_.batch_size();
    {
      std::lock_guard lock(outbox_->mu);
      outbox_->in_flight += n > 0 ? n : 1;
    }
    auto reply = [outbox = outbox_](Reply r) { outbox->Push(std::move(r)); };
    if (n > 0) {
      metrics_.requests.Inc(static_cast<uint64_t>(n));
      for (const Request& r : request_.batch()) Handle(r, reply);
    } else {
      metrics_.requests.Inc();
      Handle(request_, std::move(reply));
    }
    this->StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(outbox_->mu);
    if (!ok) {
      // The stream broke: the gateway answers its requests in flight itself and reconnects.
      outbox_->queue.clear();
      outbox_->writing = false;
      outbox_->FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    if (!outbox_->queue.empty() && !outbox_->finished) {
      outbox_->StartWriteLocked();
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
    metrics_.open.Add(-1);
    delete this;
  }

 protected:
  virtual void Handle(const Request& request, ReplyFn reply) = 0;

 private:
  struct Outbox {
    explicit Outbox(StreamMetrics& m) : metrics(m) {}
    std::mutex mu;
    StreamMetrics& metrics;
    CorrelatedStreamReactor* reactor = nullptr;  // null once the RPC is done
    std::deque<Reply> queue;                     // waiting for the next write
    Reply in_write;                              // the message being written while writing is true
    bool batch = false;                          // the gateway reads batched replies
    bool writing = false;
    bool read_done = false;
    bool finished = false;
    int64_t in_flight = 0;

    void Push(Reply reply) {
      std::lock_guard lock(mu);
      --in_flight;
      if (reactor == nullptr || finished) return;
      queue.push_back(std::move(reply));
      if (!writing) StartWriteLocked();
    }
    void StartWriteLocked() {
      writing = true;
      metrics.replies.Inc(TakeStreamBatch(queue, in_write, batch));
      metrics.writes.Inc();
      reactor->StartWrite(&in_write);
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

  grpc::CallbackServerContext* context_;
  StreamMetrics& metrics_;
  std::shared_ptr<Outbox> outbox_;
  Request request_;
};

}  // namespace chat
