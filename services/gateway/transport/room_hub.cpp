#include "transport/room_hub.h"

#include <boost/asio/post.hpp>
#include <set>
#include <string_view>

#include "common/log.h"
#include "common/text_rules.h"
#include "common/wall_clock.h"
#include "domain/frame_codec.h"
#include "google/protobuf/util/time_util.h"

namespace chat::gateway {

namespace {
constexpr std::string_view kRoomPrefix = "chat:room:";
}

RoomHub::RoomHub(RoomRegistry& registry, MessagesBackend& messages, std::chrono::milliseconds refetch_after,
                 MetricsRegistry& metrics)
    : registry_(registry),
      messages_(messages),
      refetch_after_(refetch_after),
      deliveries_(
          metrics.GetCounter("chat_fanout_deliveries_total", "Frames queued on local members by fan-out")),
      events_(metrics.GetCounter("chat_fanout_events_total", "Room events received for fan-out")),
      bad_events_(
          metrics.GetCounter("chat_fanout_bad_events_total", "Room events that could not be decoded")),
      gap_fetches_(metrics.GetCounter("chat_gap_fetches_total", "Fetches of missing messages from storage",
                                      {{"level", "room"}})),
      redis_duplicates_(
          metrics.GetCounter("chat_fanout_duplicates_dropped_total",
                             "Messages from pub/sub dropped because they were fanned out already")),
      delivery_latency_(metrics.GetHistogram("chat_message_fanout_latency_seconds",
                                             "From commit timestamp to fan-out on this gateway",
                                             LatencyBuckets())) {}

void RoomHub::Attach(RedisSubscriber* subscriber) {
  subscriber_ = subscriber;
  subscriber->SetOnReadDone([this] { OnReadDone(); });
  tick_ = std::make_unique<boost::asio::steady_timer>(subscriber->context());
}

void RoomHub::StartTicking() {
  boost::asio::post(subscriber_->context(), [this] {
    ticking_ = true;
    Tick();
  });
}

void RoomHub::StopTicking() {
  boost::asio::post(subscriber_->context(), [this] {
    ticking_ = false;
    tick_->cancel();
  });
}

void RoomHub::Tick() {
  if (!ticking_) return;
  auto now = SeqOrderer::Clock::now();
  for (auto& [room, order] : orders_) {
    if (order.fetching()) Apply(room, order.OnTick(now));
  }
  tick_->expires_after(std::chrono::milliseconds(250));
  tick_->async_wait([this](boost::system::error_code ec) {
    if (!ec) Tick();
  });
}

void RoomHub::Enter(const std::string& room, const std::string& connection_id,
                    std::weak_ptr<RoomMember> member, std::function<void(absl::Status)> ready) {
  registry_.Add(room, connection_id, std::move(member));
  subscriber_->Subscribe(RoomChannel(room), std::move(ready));
}

void RoomHub::Exit(const std::string& room, const std::string& connection_id) {
  if (!registry_.Remove(room, connection_id)) return;
  boost::asio::post(subscriber_->context(), [this, room] {
    if (!registry_.Members(room).empty()) return;
    subscriber_->UnsubscribeHere(RoomChannel(room));
    orders_.erase(room);
  });
}

SeqOrderer& RoomHub::OrderOf(const std::string& room) {
  auto it = orders_.find(room);
  if (it != orders_.end()) return it->second;
  SeqOrderer::Options o;
  o.start_on_first_frame = true;
  o.refetch_after = refetch_after_;
  // Filled gaps go to every member at once: pages of 100 keep the burst within their queues.
  o.fetch_limit = 100;
  return orders_.emplace(room, SeqOrderer(o)).first->second;
}

void RoomHub::OnSubscribed(const std::string& channel, bool again) {
  if (!again || channel.rfind(kRoomPrefix, 0) != 0) return;
  // Back after a lost connection: whatever was published meanwhile is fetched now, not when the next
  // message happens to come.
  std::string room = channel.substr(kRoomPrefix.size());
  auto it = orders_.find(room);
  if (it != orders_.end()) Apply(room, it->second.Probe(SeqOrderer::Clock::now()));
}

void RoomHub::OnChannelMessage(const std::string& channel, const std::string& payload) {
  if (channel.rfind(kRoomPrefix, 0) != 0) return;
  // Held for OnReadDone only when the subscriber calls it (Attach).
  in_read_ = subscriber_ != nullptr;
  std::string room = channel.substr(kRoomPrefix.size());
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
      auto now = WallClockNow();
      auto lag = google::protobuf::util::TimeUtil::DurationToMicroseconds(now - event.message().ts());
      delivery_latency_.Observe(static_cast<double>(lag) / 1e6);
      int64_t seq = event.message().seq();
      auto origin = std::make_shared<const MessageOrigin>(
          MessageOrigin{event.message().from(), event.message().client_id()});
      *frame.mutable_message() = std::move(*event.mutable_message());
      // Encoded once; every member queues the same bytes.
      auto bytes = std::make_shared<const std::string>(EncodeServerFrame(frame));
      SeqOrderer& order = OrderOf(room);
      uint64_t dups = order.duplicates();
      auto step = order.OnLive(SeqFrame{seq, std::move(bytes), std::move(origin)}, SeqOrderer::Clock::now());
      if (order.duplicates() != dups) redis_duplicates_.Inc();
      return Apply(room, std::move(step));
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
    case chat::v1::RoomEvent::kCleared:
      *frame.mutable_cleared() = std::move(*event.mutable_cleared());
      break;
    default:
      bad_events_.Inc();
      return;
  }
  FanOut(room, SeqFrame{0, std::make_shared<const std::string>(EncodeServerFrame(frame)), nullptr});
}

void RoomHub::Apply(const std::string& room, SeqOrderer::Step step) {
  for (auto& f : step.deliver) FanOut(room, std::move(f));
  if (step.fetch) Fetch(room, *step.fetch);
}

void RoomHub::Fetch(const std::string& room, GapFetch gap) {
  gap_fetches_.Inc();
  log::Info("room gap fetch",
            {{"room", room}, {"after_seq", gap.after_seq}, {"limit", static_cast<int64_t>(gap.limit)}});
  chat::v1::GatewayRequest req;
  auto* h = req.mutable_history();
  h->set_room(room);
  h->set_after_seq(gap.after_seq);
  h->set_limit(gap.limit);
  h->set_replay(true);
  messages_.Call(std::move(req), [this, room](absl::StatusOr<chat::v1::GatewayReply> r) {
    boost::asio::post(subscriber_->context(), [this, room, r = std::move(r)] {
      auto it = orders_.find(room);
      if (it == orders_.end()) return;  // unsubscribed meanwhile
      auto now = SeqOrderer::Clock::now();
      if (!r.ok() || r->has_error()) {
        // The tick asks again once refetch_after has passed.
        it->second.OnFetchFailed(now);
        return;
      }
      std::vector<SeqFrame> frames;
      for (const auto& m : r->history().page().messages()) {
        chat::v1::ServerFrame f;
        *f.mutable_message() = m;
        frames.push_back(
            SeqFrame{m.seq(), std::make_shared<const std::string>(EncodeServerFrame(f)), nullptr});
      }
      Apply(room, it->second.OnFetched(std::move(frames), now));
    });
  });
}

void RoomHub::SetLanes(std::vector<boost::asio::io_context*> lanes, std::vector<LaneFlusher*> flushers) {
  lanes_ = std::move(lanes);
  flushers_ = std::move(flushers);
  by_lane_.resize(lanes_.size());
  pending_by_lane_.resize(lanes_.size());
}

void RoomHub::FanOut(const std::string& room, SeqFrame frame) {
  auto delivery = std::make_shared<const Delivery>(
      Delivery{room, frame.seq, std::move(frame.bytes), std::move(frame.origin)});
  auto members = registry_.Members(room);
  deliveries_.Inc(members.size());
  for (auto& m : members) {
    size_t lane = m->lane();
    if (lane < by_lane_.size()) {
      if (by_lane_[lane].empty()) by_lane_[lane].reserve(members.size());
      by_lane_[lane].push_back(std::move(m));
    } else {
      m->Deliver(delivery);
    }
  }
  for (size_t lane = 0; lane < by_lane_.size(); ++lane) {
    if (by_lane_[lane].empty()) continue;
    LaneDelivery d{delivery, std::move(by_lane_[lane])};
    by_lane_[lane] = {};
    if (in_read_) {
      pending_by_lane_[lane].push_back(std::move(d));
    } else {
      std::vector<LaneDelivery> one;
      one.push_back(std::move(d));
      PostToLane(lane, std::move(one));
    }
  }
}

void RoomHub::OnReadDone() {
  in_read_ = false;
  for (size_t lane = 0; lane < pending_by_lane_.size(); ++lane) {
    auto& batch = pending_by_lane_[lane];
    if (batch.empty()) continue;
    if (batch.size() > 1) {
      std::set<std::string_view> later;
      for (size_t i = batch.size(); i-- > 0;) {
        batch[i].more_for_room = !later.insert(batch[i].delivery->room).second;
      }
    }
    PostToLane(lane, std::move(batch));
    pending_by_lane_[lane] = {};
  }
}

void RoomHub::PostToLane(size_t lane, std::vector<LaneDelivery> batch) {
  LaneFlusher* flusher = lane < flushers_.size() ? flushers_[lane] : nullptr;
  if (flusher) flusher->BatchPosted();
  boost::asio::post(*lanes_[lane], [batch = std::move(batch), flusher] {
    if (flusher) flusher->BeginPostedBatch();
    for (const auto& d : batch) {
      if (flusher) flusher->SetMoreForRoom(d.more_for_room);
      for (const auto& m : d.members) m->DeliverOnLane(*d.delivery);
    }
    if (flusher) flusher->EndBatch();
  });
}

}  // namespace chat::gateway
