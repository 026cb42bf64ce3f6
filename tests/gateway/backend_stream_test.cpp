// The gateway's backend stream against a real in-process gRPC server: every call gets its own reply
// when both sides batch, and each side falls back to one request (reply) per stream message when the
// other is of a version that does not read batches (a rolling upgrade).
#include "transport/backend_stream.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "chat/v1/presence.grpc.pb.h"
#include "common/correlated_stream_reactor.h"
#include "common/stream_batch.h"

namespace chat::gateway {
namespace {

using chat::v1::PresenceReply;
using chat::v1::PresenceRequest;
using Stream = BackendStream<PresenceRequest, PresenceReply>;

// Answers each request with the room it named, once `hold` requests have come (then all at once, in
// reverse order, from one thread), or at once when hold is 0.
class HoldingReactor : public CorrelatedStreamReactor<PresenceRequest, PresenceReply> {
 public:
  HoldingReactor(grpc::CallbackServerContext* ctx, StreamMetrics& metrics, size_t hold)
      : CorrelatedStreamReactor(ctx, metrics), hold_(hold) {
    Begin();
  }

 protected:
  void Handle(const PresenceRequest& req, ReplyFn reply) override {
    PresenceReply r;
    r.set_correlation_id(req.correlation_id());
    r.mutable_online()->set_room(req.typing().room());
    if (hold_ == 0) return reply(std::move(r));
    held_.emplace_back(std::move(r), std::move(reply));
    if (held_.size() < hold_) return;
    for (auto it = held_.rbegin(); it != held_.rend(); ++it) it->second(std::move(it->first));
    held_.clear();
  }

 private:
  size_t hold_;
  std::vector<std::pair<PresenceReply, ReplyFn>> held_;  // reads come one at a time: no lock needed
};

class HoldingService : public chat::v1::Presence::CallbackService {
 public:
  HoldingService(MetricsRegistry& metrics, size_t hold) : metrics_(metrics), hold_(hold) {}
  grpc::ServerBidiReactor<PresenceRequest, PresenceReply>* Connect(
      grpc::CallbackServerContext* ctx) override {
    return new HoldingReactor(ctx, metrics_, hold_);
  }

 private:
  StreamMetrics metrics_;
  size_t hold_;
};

// A backend of the version before batching: one reply per request, no metadata; it notes any request
// that came batched.
class OldBackendReactor : public grpc::ServerBidiReactor<PresenceRequest, PresenceReply> {
 public:
  explicit OldBackendReactor(std::atomic<int>* batched) : batched_(batched) {
    StartSendInitialMetadata();
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    if (request_.batch_size() > 0) ++*batched_;
    PresenceReply r;
    r.set_correlation_id(request_.correlation_id());
    r.mutable_online()->set_room(request_.typing().room());
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(r));
      if (queue_.size() == 1) StartWrite(&queue_.front());
    }
    StartRead(&request_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    queue_.pop_front();
    if (ok && !queue_.empty()) StartWrite(&queue_.front());
  }
  void OnDone() override { delete this; }

 private:
  std::atomic<int>* batched_;
  PresenceRequest request_;
  std::mutex mu_;
  std::deque<PresenceReply> queue_;  // the front is being written
};

class OldBackendService : public chat::v1::Presence::CallbackService {
 public:
  grpc::ServerBidiReactor<PresenceRequest, PresenceReply>* Connect(grpc::CallbackServerContext*) override {
    return new OldBackendReactor(&batched);
  }
  std::atomic<int> batched{0};
};

struct Server {
  explicit Server(grpc::Service* service) {
    grpc::ServerBuilder builder;
    builder.RegisterService(service);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    server = builder.BuildAndStart();
  }
  ~Server() { server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2)); }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port); }
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

// gRPC 1.51 polls callback-API work on a process-wide completion queue (`nexting_thread`s) that it
// creates on first use and tears down when its last user (server or channel) goes; that teardown races
// with the next test creating it again (ASan: a double free in grpc_cq_internal_unref, ~1 run in 15).
// Our services keep their servers and channels for their whole life, so the tests do the same: one
// callback server holds the queue from the first test to the end of the binary.
class KeepCallbackQueue : public ::testing::Environment {
 public:
  void SetUp() override {
    holder_ = std::make_unique<chat::v1::Presence::CallbackService>();
    grpc::ServerBuilder builder;
    builder.RegisterService(holder_.get());
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    server_ = builder.BuildAndStart();
  }
  void TearDown() override {
    server_->Shutdown();
    server_.reset();
    holder_.reset();
  }

 private:
  std::unique_ptr<chat::v1::Presence::CallbackService> holder_;
  std::unique_ptr<grpc::Server> server_;
};
const auto* const kKeepCallbackQueue = ::testing::AddGlobalTestEnvironment(new KeepCallbackQueue);

// Sends `n` calls from three threads and waits for every answer; each answer must name the room of
// its own request.
void CallAndCheck(Stream& stream, int n) {
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  int wrong = 0;
  auto send = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      PresenceRequest req;
      std::string room = "room-" + std::to_string(i);
      req.mutable_typing()->set_room(room);
      stream.Call(std::move(req), [&, room](absl::StatusOr<PresenceReply> r) {
        std::lock_guard lock(mu);
        if (!r.ok() || r->online().room() != room || r->batch_size() != 0) ++wrong;
        ++answered;
        cv.notify_all();
      });
    }
  };
  std::thread a(send, 0, n / 3), b(send, n / 3, 2 * n / 3);
  send(2 * n / 3, n);
  a.join();
  b.join();
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return answered == n; }))
      << answered << " of " << n << " answered";
  EXPECT_EQ(wrong, 0);
}

std::unique_ptr<Stream> Connect(const std::string& addr, boost::asio::io_context& io, MetricsRegistry& m) {
  auto stub = std::shared_ptr<chat::v1::Presence::Stub>(
      chat::v1::Presence::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials())));
  auto stream = std::make_unique<Stream>(
      "test", [stub](grpc::ClientContext* ctx, auto* reactor) { stub->async()->Connect(ctx, reactor); }, io,
      m);
  stream->Start();
  for (int i = 0; i < 500 && !stream->ready(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return stream;
}

uint64_t CounterValue(MetricsRegistry& m, const std::string& name, const Labels& labels = {}) {
  return m.GetCounter(name, "", labels).Value();
}

TEST(BackendStream, BatchesBothWaysAndAnswersEveryCall) {
  MetricsRegistry server_metrics;
  HoldingService service(server_metrics, 300);
  Server server(&service);
  boost::asio::io_context io;
  MetricsRegistry client_metrics;
  auto stream = Connect(server.addr(), io, client_metrics);
  ASSERT_TRUE(stream->ready());
  CallAndCheck(*stream, 300);
  stream->Stop();
  EXPECT_EQ(CounterValue(client_metrics, "chat_backend_stream_requests_total", {{"backend", "test"}}), 300u);
  EXPECT_EQ(CounterValue(server_metrics, "chat_stream_requests_total"), 300u);
  EXPECT_EQ(CounterValue(server_metrics, "chat_stream_replies_total"), 300u);
  // The 300 replies were ready at once: all but the first queue behind a write and go out batched.
  EXPECT_LT(CounterValue(server_metrics, "chat_stream_writes_total"), 300u);
  // Every call was timed from Call to its reply, under its kind; the other kinds are served at zero.
  const Labels test{{"backend", "test"}};
  auto durations = [&](const std::string& call) -> const Histogram& {
    return client_metrics.GetHistogram("chat_backend_call_duration_seconds", "", {},
                                       {{"backend", "test"}, {"call", call}});
  };
  EXPECT_EQ(durations("typing").Count(), 300u);
  EXPECT_GT(durations("typing").Sum(), 0.0);
  EXPECT_EQ(durations("opened").Count(), 0u);
  const std::string text = client_metrics.RenderText();
  EXPECT_NE(text.find("chat_backend_call_duration_seconds_count{backend=\"test\",call=\"typing\"} 300"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("chat_backend_call_duration_seconds_count{backend=\"test\",call=\"cluster_stats\"} 0"),
            std::string::npos);
  EXPECT_EQ(client_metrics.GetGauge("chat_backend_calls_in_flight", "", test).Value(), 0);
  EXPECT_EQ(CounterValue(client_metrics, "chat_backend_calls_failed_total", test), 0u);
}

TEST(BackendStream, CallsCutOffByABrokenStreamAreCountedNotTimed) {
  MetricsRegistry server_metrics;
  auto service = std::make_unique<HoldingService>(server_metrics, 3);  // answers nothing until 3 come
  auto server = std::make_unique<Server>(service.get());
  boost::asio::io_context io;
  MetricsRegistry client_metrics;
  auto stream = Connect(server->addr(), io, client_metrics);
  ASSERT_TRUE(stream->ready());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<absl::Status> answers;
  for (int i = 0; i < 2; ++i) {
    PresenceRequest req;
    req.mutable_typing()->set_room("r");
    stream->Call(std::move(req), [&](absl::StatusOr<PresenceReply> r) {
      std::lock_guard lock(mu);
      answers.push_back(r.status());
      cv.notify_all();
    });
  }
  const Labels test{{"backend", "test"}};
  EXPECT_EQ(client_metrics.GetGauge("chat_backend_calls_in_flight", "", test).Value(), 2);
  server.reset();  // the server goes away with both calls unanswered
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return answers.size() == 2; }));
  for (const absl::Status& s : answers) EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  lock.unlock();
  stream->Stop();
  EXPECT_EQ(CounterValue(client_metrics, "chat_backend_calls_failed_total", test), 2u);
  EXPECT_EQ(client_metrics.GetGauge("chat_backend_calls_in_flight", "", test).Value(), 0);
  EXPECT_EQ(client_metrics
                .GetHistogram("chat_backend_call_duration_seconds", "", {},
                              {{"backend", "test"}, {"call", "typing"}})
                .Count(),
            0u);
}

TEST(BackendStream, OldBackendGetsOneRequestPerMessage) {
  OldBackendService service;
  Server server(&service);
  boost::asio::io_context io;
  MetricsRegistry client_metrics;
  auto stream = Connect(server.addr(), io, client_metrics);
  ASSERT_TRUE(stream->ready());
  CallAndCheck(*stream, 600);
  stream->Stop();
  EXPECT_EQ(service.batched.load(), 0);
  EXPECT_EQ(CounterValue(client_metrics, "chat_backend_stream_writes_total", {{"backend", "test"}}), 600u);
}

TEST(BackendStream, OldGatewayGetsOneReplyPerMessage) {
  MetricsRegistry server_metrics;
  HoldingService service(server_metrics, 50);
  Server server(&service);
  auto stub =
      chat::v1::Presence::NewStub(grpc::CreateChannel(server.addr(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;  // no chat-stream-batch: a gateway of the version before batching
  auto rw = stub->Connect(&ctx);
  rw->WaitForInitialMetadata();
  EXPECT_TRUE(SaysStreamBatch(ctx.GetServerInitialMetadata()));  // the backend reads batches itself
  for (int i = 1; i <= 50; ++i) {
    PresenceRequest req;
    req.set_correlation_id(static_cast<uint64_t>(i));
    req.mutable_typing()->set_room("r" + std::to_string(i));
    ASSERT_TRUE(rw->Write(req));
  }
  std::set<uint64_t> seen;
  PresenceReply reply;
  while (seen.size() < 50 && rw->Read(&reply)) {
    EXPECT_EQ(reply.batch_size(), 0);
    EXPECT_EQ(reply.online().room(), "r" + std::to_string(reply.correlation_id()));
    seen.insert(reply.correlation_id());
  }
  EXPECT_EQ(seen.size(), 50u);
  rw->WritesDone();
  EXPECT_TRUE(rw->Finish().ok());
  EXPECT_EQ(CounterValue(server_metrics, "chat_stream_writes_total"), 50u);
}

TEST(StreamBatch, TakesWithinLimits) {
  std::deque<PresenceReply> queue;
  PresenceReply out;
  // Alone, a message goes as it is, not wrapped in a batch.
  queue.emplace_back().set_correlation_id(7);
  EXPECT_EQ(TakeStreamBatch(queue, out, true), 1u);
  EXPECT_EQ(out.correlation_id(), 7u);
  EXPECT_EQ(out.batch_size(), 0);
  // Without batching, one at a time.
  for (int i = 0; i < 3; ++i) queue.emplace_back().set_correlation_id(static_cast<uint64_t>(i));
  EXPECT_EQ(TakeStreamBatch(queue, out, false), 1u);
  EXPECT_EQ(out.correlation_id(), 0u);
  EXPECT_EQ(queue.size(), 2u);
  queue.clear();
  // At most kStreamBatchMaxItems, in order.
  for (size_t i = 0; i < kStreamBatchMaxItems + 10; ++i) queue.emplace_back().set_correlation_id(i + 1);
  EXPECT_EQ(TakeStreamBatch(queue, out, true), kStreamBatchMaxItems);
  ASSERT_EQ(out.batch_size(), static_cast<int>(kStreamBatchMaxItems));
  EXPECT_EQ(out.batch(0).correlation_id(), 1u);
  EXPECT_EQ(out.correlation_id(), 0u);
  EXPECT_EQ(TakeStreamBatch(queue, out, true), 10u);
  EXPECT_EQ(out.batch(9).correlation_id(), kStreamBatchMaxItems + 10);
  // At most kStreamBatchMaxBytes; a bigger message goes alone.
  std::string big(kStreamBatchMaxBytes / 3, 'x');
  for (int i = 0; i < 4; ++i) queue.emplace_back().mutable_online()->set_room(big);
  queue.emplace_back().mutable_online()->set_room(std::string(kStreamBatchMaxBytes + 1, 'y'));
  EXPECT_EQ(TakeStreamBatch(queue, out, true), 2u);
  EXPECT_EQ(TakeStreamBatch(queue, out, true), 2u);
  EXPECT_EQ(TakeStreamBatch(queue, out, true), 1u);
  EXPECT_EQ(out.online().room().size(), kStreamBatchMaxBytes + 1);
  EXPECT_TRUE(queue.empty());
}

}  // namespace
}  // namespace chat::gateway
