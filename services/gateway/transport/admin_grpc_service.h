#pragma once
// chat.v1.GatewayAdmin: what internal services may ask of the gateways. Kicks and broadcasts go to
// every replica through the control channel (published by messages); cluster stats come from what
// each gateway reports to presence. Thread-safe; reactors never block.

#include "chat/v1/gateway_admin.grpc.pb.h"

namespace chat::gateway {

class GatewayContext;

class AdminGrpcService final : public chat::v1::GatewayAdmin::CallbackService {
 public:
  explicit AdminGrpcService(GatewayContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx, const chat::v1::StatsRequest* req,
                                  chat::v1::StatsReply* reply) override;
  grpc::ServerUnaryReactor* ClusterStats(grpc::CallbackServerContext* ctx,
                                         const chat::v1::ClusterStatsRequest* req,
                                         chat::v1::ClusterStats* reply) override;
  grpc::ServerUnaryReactor* Kick(grpc::CallbackServerContext* ctx, const chat::v1::KickRequest* req,
                                 chat::v1::AdminReply* reply) override;
  grpc::ServerUnaryReactor* Broadcast(grpc::CallbackServerContext* ctx, const chat::v1::BroadcastRequest* req,
                                      chat::v1::AdminReply* reply) override;

 private:
  grpc::ServerUnaryReactor* PublishControl(grpc::CallbackServerContext* ctx, chat::v1::ControlEvent event);
  GatewayContext& ctx_;
};

}  // namespace chat::gateway
