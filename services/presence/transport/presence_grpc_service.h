#pragma once
// chat.v1.Presence over gRPC's callback API; reactors hand work to PresenceLogic and never block.

#include "chat/v1/presence.grpc.pb.h"
#include "common/metrics.h"
#include "common/stream_metrics.h"
#include "domain/presence_logic.h"
#include "transport/presence_watch.h"

namespace chat::presence {

class PresenceGrpcService final : public chat::v1::Presence::CallbackService {
 public:
  PresenceGrpcService(PresenceLogic& logic, WatchHub& watchers, MetricsRegistry& metrics);

  grpc::ServerBidiReactor<chat::v1::PresenceRequest, chat::v1::PresenceReply>* Connect(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* GetRoomOnline(grpc::CallbackServerContext* ctx,
                                          const chat::v1::GetRoomOnlineRequest* req,
                                          chat::v1::RoomOnline* reply) override;
  grpc::ServerUnaryReactor* GetUsers(grpc::CallbackServerContext* ctx, const chat::v1::GetUsersRequest* req,
                                     chat::v1::GetUsersReply* reply) override;

  grpc::ServerWriteReactor<chat::v1::RoomEvent>* Watch(grpc::CallbackServerContext* ctx,
                                                       const chat::v1::WatchRequest* req) override;

 private:
  PresenceLogic& logic_;
  WatchHub& watchers_;
  StreamMetrics stream_metrics_;
};

}  // namespace chat::presence
