#pragma once
// chat.v1.Messages over gRPC's callback API. Reactors only parse, hand work to MessagesLogic and write
// replies; they never block. Thread-safe.

#include "chat/v1/messages.grpc.pb.h"
#include "common/metrics.h"
#include "common/stream_metrics.h"
#include "domain/messages_logic.h"

namespace chat::messages {

class MessagesGrpcService final : public chat::v1::Messages::CallbackService {
 public:
  MessagesGrpcService(MessagesLogic& logic, MetricsRegistry& metrics);

  grpc::ServerBidiReactor<chat::v1::GatewayRequest, chat::v1::GatewayReply>* Connect(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* PostMessage(grpc::CallbackServerContext* ctx,
                                        const chat::v1::PostMessageRequest* req,
                                        chat::v1::PostMessageReply* reply) override;
  grpc::ServerUnaryReactor* History(grpc::CallbackServerContext* ctx, const chat::v1::HistoryRequest* req,
                                    chat::v1::HistoryReply* reply) override;
  grpc::ServerUnaryReactor* GetRoom(grpc::CallbackServerContext* ctx, const chat::v1::GetRoomRequest* req,
                                    chat::v1::RoomInfo* reply) override;
  grpc::ServerUnaryReactor* CreateRoom(grpc::CallbackServerContext* ctx,
                                       const chat::v1::CreateRoomRequest* req,
                                       chat::v1::RoomInfo* reply) override;

  grpc::ServerUnaryReactor* AddMember(grpc::CallbackServerContext* ctx, const chat::v1::MemberRequest* req,
                                      chat::v1::RoomInfo* reply) override;
  grpc::ServerUnaryReactor* RemoveMember(grpc::CallbackServerContext* ctx, const chat::v1::MemberRequest* req,
                                         chat::v1::RoomInfo* reply) override;
  grpc::ServerUnaryReactor* Mute(grpc::CallbackServerContext* ctx, const chat::v1::MuteRequest* req,
                                 chat::v1::Empty* reply) override;
  grpc::ServerUnaryReactor* Unmute(grpc::CallbackServerContext* ctx, const chat::v1::MuteRequest* req,
                                   chat::v1::Empty* reply) override;
  grpc::ServerUnaryReactor* Clear(grpc::CallbackServerContext* ctx, const chat::v1::ClearRequest* req,
                                  chat::v1::ClearReply* reply) override;

 private:
  MessagesLogic& logic_;
  StreamMetrics stream_metrics_;
};

}  // namespace chat::messages
