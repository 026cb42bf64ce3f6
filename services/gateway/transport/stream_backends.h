#pragma once
// The connection logic's backends over the gateway's long-lived gRPC streams.

#include "chat/v1/messages.grpc.pb.h"
#include "chat/v1/presence.grpc.pb.h"
#include "domain/backends.h"
#include "transport/backend_stream.h"

namespace chat::gateway {

using MessagesStream = BackendStream<chat::v1::GatewayRequest, chat::v1::GatewayReply>;
using PresenceStream = BackendStream<chat::v1::PresenceRequest, chat::v1::PresenceReply>;

class MessagesStreamBackend : public MessagesBackend {
 public:
  explicit MessagesStreamBackend(MessagesStream& stream) : stream_(stream) {}
  void Call(chat::v1::GatewayRequest request, Callback<chat::v1::GatewayReply> done) override {
    stream_.Call(std::move(request), std::move(done));
  }

 private:
  MessagesStream& stream_;
};

class PresenceStreamBackend : public PresenceBackend {
 public:
  explicit PresenceStreamBackend(PresenceStream& stream) : stream_(stream) {}
  void Call(chat::v1::PresenceRequest request, Callback<chat::v1::PresenceReply> done) override {
    stream_.Call(std::move(request), std::move(done));
  }

 private:
  PresenceStream& stream_;
};

}  // namespace chat::gateway
