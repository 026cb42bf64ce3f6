#pragma once
// chat.v1.Presence over gRPC's callback API; reactors hand work to PresenceLogic and never block.

#include "chat/v1/presence.grpc.pb.h"
#include "common/metrics.h"
#include "domain/presence_logic.h"

namespace chat::presence {

class PresenceGrpcService final : public chat::v1::Presence::CallbackService {
 public:
  PresenceGrpcService(PresenceLogic& logic, MetricsRegistry& metrics);

  grpc::ServerBidiReactor<chat::v1::PresenceRequest, chat::v1::PresenceReply>* Connect(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* GetRoomOnline(grpc::CallbackServerContext* ctx,
                                          const chat::v1::GetRoomOnlineRequest* req,
                                          chat::v1::RoomOnline* reply) override;
  grpc::ServerUnaryReactor* GetUsers(grpc::CallbackServerContext* ctx, const chat::v1::GetUsersRequest* req,
                                     chat::v1::GetUsersReply* reply) override;

 private:
  PresenceLogic& logic_;
  Gauge& streams_;
};

}  // namespace chat::presence
