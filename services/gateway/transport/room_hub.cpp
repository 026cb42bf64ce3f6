#include "transport/room_hub.h"

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "common/text_rules.h"
#include "domain/frame_codec.h"
#include "google/protobuf/util/time_util.h"

namespace chat::gateway {

RoomHub::RoomHub(RoomRegistry& registry, MetricsRegistry& metrics)
    : registry_(registry),
      deliveries_(
          metrics.GetCounter("chat_fanout_deliveries_total", "Frames queued on local members by fan-out")),
      events_(metrics.GetCounter("chat_fanout_events_total", "Room events received for fan-out")),
      bad_events_(
          metrics.GetCounter("chat_fanout_bad_events_total", "Room events that could not be decoded")),
      delivery_latency_(metrics.GetHistogram("chat_message_fanout_latency_seconds",
                                             "From commit timestamp to fan-out on this gateway",
                                             LatencyBuckets())) {}

void RoomHub::Enter(const std::string& room, const std::string& connection_id,
                    std::weak_ptr<RoomMember> member, std::function<void(absl::Status)> ready) {
  registry_.Add(room, connection_id, std::move(member));
  subscriber_->Subscribe(RoomChannel(room), std::move(ready));
}

void RoomHub::Exit(const std::string& room, const std::string& connection_id) {
  if (!registry_.Remove(room, connection_id)) return;
  boost::asio::post(subscriber_->context(), [this, room] {
    if (registry_.Members(room).empty()) subscriber_->UnsubscribeHere(RoomChannel(room));
  });
}

void RoomHub::OnChannelMessage(const std::string& channel, const std::string& payload) {
  constexpr std::string_view kPrefix = "chat:room:";
  if (channel.rfind(kPrefix, 0) != 0) return;
  std::string room = channel.substr(kPrefix.size());
  chat::v1::RoomEvent event;
  if (!event.ParseFromString(payload)) {
    bad_events_.Inc();
    log::Warn("undecodable room event", {{"room", room}});
    return;
  }
  events_.Inc();
  chat::v1::ServerFrame frame;
  switch (event.body_case()) {
    case chat::v1::RoomEvent::kMessage: {
      auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
      auto lag = google::protobuf::util::TimeUtil::DurationToMicroseconds(now - event.message().ts());
      delivery_latency_.Observe(static_cast<double>(lag) / 1e6);
      *frame.mutable_message() = std::move(*event.mutable_message());
      break;
    }
    case chat::v1::RoomEvent::kTyping:
      *frame.mutable_typing() = std::move(*event.mutable_typing());
      break;
    case chat::v1::RoomEvent::kPresence:
      *frame.mutable_presence() = std::move(*event.mutable_presence());
      break;
    case chat::v1::RoomEvent::kRead:
      *frame.mutable_read() = std::move(*event.mutable_read());
      break;
    default:
      bad_events_.Inc();
      return;
  }
  // Encoded once; every member queues the same bytes.
  auto bytes = std::make_shared<const std::string>(EncodeServerFrame(frame));
  auto members = registry_.Members(room);
  for (auto& m : members) m->Deliver(bytes);
  deliveries_.Inc(members.size());
}

}  // namespace chat::gateway
