#include "transport/presence_grpc_service.h"

#include "common/correlated_stream_reactor.h"
#include "common/error_codes.h"

namespace chat::presence {
namespace {

using chat::v1::PresenceReply;
using chat::v1::PresenceRequest;

class GatewayPresenceReactor : public CorrelatedStreamReactor<PresenceRequest, PresenceReply> {
 public:
  GatewayPresenceReactor(grpc::CallbackServerContext* context, PresenceLogic& logic, StreamMetrics& metrics)
      : CorrelatedStreamReactor(context, metrics), logic_(logic) {
    Begin();
  }

 protected:
  void Handle(const PresenceRequest& req, ReplyFn reply) override {
    uint64_t cid = req.correlation_id();
    logic_.Handle(req, [cid, reply = std::move(reply)](absl::StatusOr<PresenceReply> result) {
      PresenceReply r;
      if (result.ok()) {
        r = std::move(*result);
      } else {
        r.mutable_error()->set_code(std::string(ErrorCodeFor(result.status())));
        r.mutable_error()->set_message(std::string(result.status().message()));
      }
      r.set_correlation_id(cid);
      reply(std::move(r));
    });
  }

 private:
  PresenceLogic& logic_;
};

}  // namespace

PresenceGrpcService::PresenceGrpcService(PresenceLogic& logic, WatchHub& watchers, MetricsRegistry& metrics)
    : logic_(logic), watchers_(watchers), stream_metrics_(metrics) {}

grpc::ServerBidiReactor<PresenceRequest, PresenceReply>* PresenceGrpcService::Connect(
    grpc::CallbackServerContext* ctx) {
  return new GatewayPresenceReactor(ctx, logic_, stream_metrics_);
}

grpc::ServerUnaryReactor* PresenceGrpcService::GetRoomOnline(grpc::CallbackServerContext* ctx,
                                                             const chat::v1::GetRoomOnlineRequest* req,
                                                             chat::v1::RoomOnline* reply) {
  auto* reactor = ctx->DefaultReactor();
  logic_.RoomOnline(req->room(), [reactor, reply](absl::StatusOr<chat::v1::RoomOnline> r) {
    if (r.ok()) *reply = std::move(*r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* PresenceGrpcService::GetUsers(grpc::CallbackServerContext* ctx,
                                                        const chat::v1::GetUsersRequest* req,
                                                        chat::v1::GetUsersReply* reply) {
  auto* reactor = ctx->DefaultReactor();
  std::vector<std::string> users(req->users().begin(), req->users().end());
  logic_.Users(users, [reactor, reply](absl::StatusOr<chat::v1::GetUsersReply> r) {
    if (r.ok()) *reply = std::move(*r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerWriteReactor<chat::v1::RoomEvent>* PresenceGrpcService::Watch(grpc::CallbackServerContext*,
                                                                          const chat::v1::WatchRequest* req) {
  return watchers_.Open(*req);
}

}  // namespace chat::presence
