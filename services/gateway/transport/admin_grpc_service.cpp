#include "transport/admin_grpc_service.h"

#include <set>

#include "transport/gateway_context.h"
#include "transport/websocket_session.h"

namespace chat::gateway {

grpc::ServerUnaryReactor* AdminGrpcService::Stats(grpc::CallbackServerContext* ctx,
                                                  const chat::v1::StatsRequest*,
                                                  chat::v1::StatsReply* reply) {
  reply->set_gateway(ctx_.config.gateway_id);
  reply->set_connections(ctx_.connections.Value());
  std::set<std::string> users;
  for (const auto& s : ctx_.sessions.All()) users.insert(s->user());
  reply->set_users(static_cast<int64_t>(users.size()));
  reply->set_rooms(static_cast<int64_t>(ctx_.rooms.RoomCount()));
  reply->set_frames_out(static_cast<int64_t>(ctx_.frames_out.Value()));
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace chat::gateway
