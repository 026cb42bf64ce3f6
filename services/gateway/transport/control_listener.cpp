#include "transport/control_listener.h"

#include "common/log.h"
#include "domain/frame_codec.h"
#include "transport/gateway_context.h"
#include "transport/websocket_session.h"

namespace chat::gateway {

ControlListener::ControlListener(GatewayContext& ctx, MetricsRegistry& metrics)
    : ctx_(ctx),
      kicks_(metrics.GetCounter("chat_kicked_connections_total", "Connections closed with 4003 by a kick")),
      broadcasts_(metrics.GetCounter("chat_broadcasts_total", "Broadcast notices fanned out")) {}

void ControlListener::OnMessage(const std::string& payload) {
  chat::v1::ControlEvent event;
  if (!event.ParseFromString(payload)) {
    log::Warn("undecodable control event");
    return;
  }
  switch (event.body_case()) {
    case chat::v1::ControlEvent::kKickUser: {
      auto sessions = ctx_.sessions.OfUser(event.kick_user());
      for (auto& s : sessions) {
        s->CloseFromAnyThread(4003, "kicked");
      }
      kicks_.Inc(sessions.size());
      log::Info("kick",
                {{"user", event.kick_user()}, {"connections", static_cast<int64_t>(sessions.size())}});
      break;
    }
    case chat::v1::ControlEvent::kBroadcast: {
      chat::v1::ServerFrame f;
      *f.mutable_notice() = event.broadcast();
      auto bytes = std::make_shared<const std::string>(EncodeServerFrame(f));
      for (auto& s : ctx_.sessions.All()) s->DeliverRaw(bytes);
      broadcasts_.Inc();
      break;
    }
    case chat::v1::ControlEvent::kInvite: {
      for (auto& s : ctx_.sessions.OfUser(event.invite().user())) s->JoinFromAnyThread(event.invite().room());
      break;
    }
    default:
      break;
  }
}

}  // namespace chat::gateway
