#include "transport/admin_grpc_service.h"

#include "common/error_codes.h"
#include "common/text_rules.h"
#include "common/wall_clock.h"
#include "transport/gateway_context.h"

namespace chat::gateway {

grpc::ServerUnaryReactor* AdminGrpcService::Stats(grpc::CallbackServerContext* ctx,
                                                  const chat::v1::StatsRequest*,
                                                  chat::v1::StatsReply* reply) {
  reply->set_gateway(ctx_.config.gateway_id);
  reply->set_connections(ctx_.connections.Value());
  reply->set_users(static_cast<int64_t>(ctx_.sessions.users()));
  reply->set_rooms(static_cast<int64_t>(ctx_.rooms.RoomCount()));
  reply->set_frames_out(static_cast<int64_t>(ctx_.frames_out.Value()));
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminGrpcService::ClusterStats(grpc::CallbackServerContext* ctx,
                                                         const chat::v1::ClusterStatsRequest*,
                                                         chat::v1::ClusterStats* reply) {
  auto* reactor = ctx->DefaultReactor();
  chat::v1::PresenceRequest req;
  req.mutable_cluster_stats();
  ctx_.presence.Call(std::move(req), [reactor, reply](absl::StatusOr<chat::v1::PresenceReply> r) {
    absl::Status st = r.ok() ? (r->has_error() ? StatusFromErrorCode(r->error().code(), r->error().message())
                                               : absl::OkStatus())
                             : r.status();
    if (st.ok()) *reply = r->stats();
    reactor->Finish(ToGrpcStatus(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminGrpcService::PublishControl(grpc::CallbackServerContext* ctx,
                                                           chat::v1::ControlEvent event) {
  auto* reactor = ctx->DefaultReactor();
  chat::v1::GatewayRequest req;
  *req.mutable_control() = std::move(event);
  ctx_.messages.Call(std::move(req), [reactor](absl::StatusOr<chat::v1::GatewayReply> r) {
    absl::Status st = r.ok() ? (r->has_error() ? StatusFromErrorCode(r->error().code(), r->error().message())
                                               : absl::OkStatus())
                             : r.status();
    reactor->Finish(ToGrpcStatus(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminGrpcService::Kick(grpc::CallbackServerContext* ctx,
                                                 const chat::v1::KickRequest* req, chat::v1::AdminReply*) {
  if (auto st = ValidateUserId(req->user()); !st.ok()) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }
  chat::v1::ControlEvent event;
  event.set_kick_user(req->user());
  return PublishControl(ctx, std::move(event));
}

grpc::ServerUnaryReactor* AdminGrpcService::Broadcast(grpc::CallbackServerContext* ctx,
                                                      const chat::v1::BroadcastRequest* req,
                                                      chat::v1::AdminReply*) {
  if (req->text().empty() || req->text().size() > static_cast<size_t>(ctx_.config.text_limit_bytes) ||
      !IsValidUtf8(req->text())) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "text must be 1 byte to the text limit, UTF-8"));
    return reactor;
  }
  chat::v1::ControlEvent event;
  event.mutable_broadcast()->set_text(req->text());
  *event.mutable_broadcast()->mutable_ts() = WallClockNow();
  return PublishControl(ctx, std::move(event));
}

}  // namespace chat::gateway
