#include "transport/messages_grpc_service.h"

#include "common/correlated_stream_reactor.h"
#include "common/error_codes.h"
#include "common/log.h"

namespace chat::messages {
namespace {

using chat::v1::GatewayReply;
using chat::v1::GatewayRequest;

void SetError(GatewayReply& reply, const absl::Status& st) {
  reply.mutable_error()->set_code(std::string(ErrorCodeFor(st)));
  reply.mutable_error()->set_message(std::string(st.message()));
}

// Turns a domain result into the stream reply with the request's correlation id.
template <typename T, typename Fill>
std::function<void(absl::StatusOr<T>)> Answer(uint64_t cid, std::function<void(GatewayReply)> reply,
                                              Fill fill) {
  return [cid, reply = std::move(reply), fill](absl::StatusOr<T> result) {
    GatewayReply r;
    r.set_correlation_id(cid);
    if (result.ok()) {
      fill(r, std::move(*result));
    } else {
      SetError(r, result.status());
    }
    reply(std::move(r));
  };
}

// One gateway's stream: each request goes to MessagesLogic; the reply carries its correlation id.
class GatewayStreamReactor : public CorrelatedStreamReactor<GatewayRequest, GatewayReply> {
 public:
  GatewayStreamReactor(grpc::CallbackServerContext* context, MessagesLogic& logic, StreamMetrics& metrics)
      : CorrelatedStreamReactor(context, metrics), logic_(logic) {
    Begin();
  }

 protected:
  void Handle(const GatewayRequest& req, ReplyFn reply) override {
    uint64_t cid = req.correlation_id();
    switch (req.body_case()) {
      case GatewayRequest::kJoin:
        logic_.Join(req.join(),
                    Answer<chat::v1::JoinReply>(cid, std::move(reply), [](GatewayReply& r, auto v) {
                      *r.mutable_joined() = std::move(v);
                    }));
        break;
      case GatewayRequest::kSend:
        logic_.Post(req.send(),
                    Answer<chat::v1::PostMessageReply>(cid, std::move(reply), [](GatewayReply& r, auto v) {
                      *r.mutable_sent() = std::move(v);
                    }));
        break;
      case GatewayRequest::kHistory:
        logic_.History(req.history(),
                       Answer<chat::v1::HistoryReply>(cid, std::move(reply), [](GatewayReply& r, auto v) {
                         *r.mutable_history() = std::move(v);
                       }));
        break;
      case GatewayRequest::kRead:
        logic_.MarkRead(req.read(),
                        Answer<chat::v1::ReadReply>(cid, std::move(reply), [](GatewayReply& r, auto v) {
                          *r.mutable_read() = std::move(v);
                        }));
        break;
      case GatewayRequest::kOpenDm:
        logic_.OpenDm(req.open_dm(),
                      Answer<chat::v1::RoomInfo>(cid, std::move(reply), [](GatewayReply& r, auto v) {
                        *r.mutable_room() = std::move(v);
                      }));
        break;
      case GatewayRequest::kMute:
        logic_.Mute(req.mute(), Answer<chat::v1::Empty>(cid, std::move(reply),
                                                        [](GatewayReply& r, auto) { r.mutable_done(); }));
        break;
      case GatewayRequest::kUnmute:
        logic_.Unmute(req.unmute(), Answer<chat::v1::Empty>(cid, std::move(reply),
                                                            [](GatewayReply& r, auto) { r.mutable_done(); }));
        break;
      case GatewayRequest::kControl:
        logic_.PublishControl(
            req.control(),
            Answer<chat::v1::Empty>(cid, std::move(reply), [](GatewayReply& r, auto) { r.mutable_done(); }));
        break;
      case GatewayRequest::kClear:
        logic_.Clear(req.clear(),
                     Answer<chat::v1::ClearReply>(cid, std::move(reply), [](GatewayReply& r, auto v) {
                       *r.mutable_cleared() = std::move(v);
                     }));
        break;
      default: {
        GatewayReply r;
        r.set_correlation_id(cid);
        SetError(r, absl::InvalidArgumentError("request has no body"));
        reply(std::move(r));
      }
    }
  }

 private:
  MessagesLogic& logic_;
};

template <typename T>
auto FinishWith(grpc::ServerUnaryReactor* reactor, T* out) {
  return [reactor, out](absl::StatusOr<T> result) {
    if (result.ok()) *out = std::move(*result);
    reactor->Finish(ToGrpcStatus(result.status()));
  };
}

}  // namespace

MessagesGrpcService::MessagesGrpcService(MessagesLogic& logic, MetricsRegistry& metrics)
    : logic_(logic), stream_metrics_(metrics) {}

grpc::ServerBidiReactor<GatewayRequest, GatewayReply>* MessagesGrpcService::Connect(
    grpc::CallbackServerContext* ctx) {
  return new GatewayStreamReactor(ctx, logic_, stream_metrics_);
}

grpc::ServerUnaryReactor* MessagesGrpcService::PostMessage(grpc::CallbackServerContext* ctx,
                                                           const chat::v1::PostMessageRequest* req,
                                                           chat::v1::PostMessageReply* reply) {
  auto* reactor = ctx->DefaultReactor();
  logic_.Post(*req, FinishWith(reactor, reply));
  return reactor;
}

grpc::ServerUnaryReactor* MessagesGrpcService::History(grpc::CallbackServerContext* ctx,
                                                       const chat::v1::HistoryRequest* req,
                                                       chat::v1::HistoryReply* reply) {
  auto* reactor = ctx->DefaultReactor();
  logic_.History(*req, FinishWith(reactor, reply));
  return reactor;
}

grpc::ServerUnaryReactor* MessagesGrpcService::GetRoom(grpc::CallbackServerContext* ctx,
                                                       const chat::v1::GetRoomRequest* req,
                                                       chat::v1::RoomInfo* reply) {
  auto* reactor = ctx->DefaultReactor();
  logic_.GetRoom(*req, FinishWith(reactor, reply));
  return reactor;
}

grpc::ServerUnaryReactor* MessagesGrpcService::CreateRoom(grpc::CallbackServerContext* ctx,
                                                          const chat::v1::CreateRoomRequest* req,
                                                          chat::v1::RoomInfo* reply) {
  auto* reactor = ctx->DefaultReactor();
  logic_.CreateRoom(*req, FinishWith(reactor, reply));
  return reactor;
}

#define CHAT_UNARY(Method, Req, Reply)                                                                    \
  grpc::ServerUnaryReactor* MessagesGrpcService::Method(grpc::CallbackServerContext* ctx, const Req* req, \
                                                        Reply* reply) {                                   \
    auto* reactor = ctx->DefaultReactor();                                                                \
    logic_.Method(*req, FinishWith(reactor, reply));                                                      \
    return reactor;                                                                                       \
  }

CHAT_UNARY(AddMember, chat::v1::MemberRequest, chat::v1::RoomInfo)
CHAT_UNARY(RemoveMember, chat::v1::MemberRequest, chat::v1::RoomInfo)
CHAT_UNARY(Mute, chat::v1::MuteRequest, chat::v1::Empty)
CHAT_UNARY(Unmute, chat::v1::MuteRequest, chat::v1::Empty)
CHAT_UNARY(Clear, chat::v1::ClearRequest, chat::v1::ClearReply)
#undef CHAT_UNARY

}  // namespace chat::messages
