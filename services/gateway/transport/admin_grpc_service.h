#pragma once
// chat.v1.GatewayAdmin: what internal services may ask of this gateway. Thread-safe.

#include "chat/v1/gateway_admin.grpc.pb.h"

namespace chat::gateway {

class GatewayContext;

class AdminGrpcService final : public chat::v1::GatewayAdmin::CallbackService {
 public:
  explicit AdminGrpcService(GatewayContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx, const chat::v1::StatsRequest* req,
                                  chat::v1::StatsReply* reply) override;

 private:
  GatewayContext& ctx_;
};

}  // namespace chat::gateway
