#include "transport/presence_watch.h"

namespace chat::presence {

class WatchReactor : public grpc::ServerWriteReactor<chat::v1::RoomEvent> {
 public:
  WatchReactor(WatchHub& hub, const chat::v1::WatchRequest& req)
      : hub_(hub),
        rooms_(req.rooms().begin(), req.rooms().end()),
        users_(req.users().begin(), req.users().end()) {
    StartSendInitialMetadata();
  }

  bool Matches(const chat::v1::RoomEvent& e) const {
    if (rooms_.empty() && users_.empty()) return true;
    std::string room, user;
    if (e.has_presence()) {
      room = e.presence().room();
      user = e.presence().user();
    } else if (e.has_typing()) {
      room = e.typing().room();
      user = e.typing().user();
    }
    return rooms_.count(room) > 0 || users_.count(user) > 0;
  }

  // From the subscriber thread. Returns false when the watcher was dropped for being too slow.
  bool Push(const chat::v1::RoomEvent& e) {
    std::lock_guard lock(mu_);
    if (finished_) return true;
    if (queue_.size() >= 1000) {
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "watcher too slow"));
      return false;
    }
    queue_.push_back(e);
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
    return true;
  }

  void End() {
    std::lock_guard lock(mu_);
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    queue_.pop_front();
    if (!ok || finished_) {
      writing_ = false;
      return;
    }
    if (!queue_.empty()) {
      StartWrite(&queue_.front());
    } else {
      writing_ = false;
    }
  }

  void OnCancel() override { End(); }

  void OnDone() override {
    hub_.Remove(this);
    delete this;
  }

 private:
  WatchHub& hub_;
  std::set<std::string> rooms_, users_;
  std::mutex mu_;
  std::deque<chat::v1::RoomEvent> queue_;
  bool writing_ = false;
  bool finished_ = false;
};

WatchHub::WatchHub(MetricsRegistry& metrics)
    : open_(metrics.GetGauge("chat_presence_watchers", "Open Presence/Watch streams")),
      sent_(metrics.GetCounter("chat_presence_watch_events_total", "Events queued on Watch streams")),
      dropped_watchers_(metrics.GetCounter("chat_presence_watchers_dropped_total",
                                           "Watch streams ended for falling too far behind")) {}

grpc::ServerWriteReactor<chat::v1::RoomEvent>* WatchHub::Open(const chat::v1::WatchRequest& request) {
  auto* r = new WatchReactor(*this, request);
  std::lock_guard lock(mu_);
  watchers_.insert(r);
  open_.Add(1);
  return r;
}

void WatchHub::Remove(WatchReactor* r) {
  std::lock_guard lock(mu_);
  if (watchers_.erase(r) > 0) open_.Add(-1);
}

void WatchHub::Dispatch(const std::string& payload) {
  chat::v1::RoomEvent e;
  if (!e.ParseFromString(payload)) return;
  std::lock_guard lock(mu_);
  for (auto* w : watchers_) {
    if (!w->Matches(e)) continue;
    if (w->Push(e)) {
      sent_.Inc();
    } else {
      dropped_watchers_.Inc();
    }
  }
}

void WatchHub::CloseAll() {
  std::lock_guard lock(mu_);
  for (auto* w : watchers_) w->End();
}

}  // namespace chat::presence
