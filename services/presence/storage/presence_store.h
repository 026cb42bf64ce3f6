#pragma once
// Presence state: which connections are alive, on which gateway, in which rooms; who has been announced
// online per room; typing; last seen. Time is passed in (unix milliseconds) so tests drive it. One
// instance per Redis connection, used by one thread at a time.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "chat/v1/presence.pb.h"

namespace chat::presence {

// A change to tell the room about.
struct PresenceChange {
  std::string room;
  chat::v1::RoomEvent event;
};

struct EnterResult {
  std::vector<std::string> online;      // who is online in the room now, sorted
  std::vector<PresenceChange> changes;  // the user's online event, if this entry made them online
};

// A change to a connection from a gateway's stream. Several go to Redis in one round trip
// (PresenceStore::Apply): in a connect or join storm that is one write and one read for a batch instead
// of a wake-up and a round trip per request.
struct ConnectionEvent {
  enum class Kind { kOpen, kClose, kEnter, kExit, kHeartbeat };
  Kind kind = Kind::kOpen;
  chat::v1::ConnectionRef conn;          // every kind but kHeartbeat
  std::string room;                      // kEnter, kExit
  chat::v1::GatewayHeartbeat heartbeat;  // kHeartbeat

  static ConnectionEvent Open(chat::v1::ConnectionRef conn) { return {Kind::kOpen, std::move(conn), {}, {}}; }
  static ConnectionEvent Close(chat::v1::ConnectionRef conn) {
    return {Kind::kClose, std::move(conn), {}, {}};
  }
  static ConnectionEvent Enter(chat::v1::ConnectionRef conn, std::string room) {
    return {Kind::kEnter, std::move(conn), std::move(room), {}};
  }
  static ConnectionEvent Exit(chat::v1::ConnectionRef conn, std::string room) {
    return {Kind::kExit, std::move(conn), std::move(room), {}};
  }
  static ConnectionEvent Heartbeat(chat::v1::GatewayHeartbeat heartbeat) {
    return {Kind::kHeartbeat, {}, {}, std::move(heartbeat)};
  }
};

struct ConnectionEventResult {
  absl::Status status;
  bool first = false;  // kOpen: the user's first live connection
  EnterResult enter;   // kEnter
};

struct PresenceTimings {
  int64_t ttl_ms = 30000;             // a gateway's connections live this long after its last heartbeat
  int64_t grace_ms = 5000;            // offline is announced only after this long without a connection
  int64_t typing_expire_ms = 5000;    // typing without refresh ends after this long
  int64_t typing_throttle_ms = 1000;  // at most one typing event per user and room this often
  // Online/offline changes go to the room's members as `presence` frames. In big rooms that is N
  // frames per join, N² to fill a room; off, members learn who is online from `joined` and queries.
  // The Watch stream gets every change either way.
  bool room_presence_events = true;
};

class PresenceStore {
 public:
  virtual ~PresenceStore() = default;

  // Opens, closes, room entries and exits of connections, and gateway heartbeats: applied in order, one
  // result per event, in one round trip. Each event is its own atomic step, so one that fails leaves the
  // others applied. An open is also a heartbeat of its gateway, and so is an entry (a new gateway's first
  // connection may enter before its open or heartbeat is seen). A close leaves the connection's rooms;
  // offline follows after the grace, from Sweep.
  virtual std::vector<ConnectionEventResult> Apply(const std::vector<ConnectionEvent>& events,
                                                   int64_t now_ms) = 0;
  // The live gateways' last reported numbers, summed.
  virtual absl::StatusOr<chat::v1::ClusterStats> ClusterStats() = 0;
  // active/stop/clear of one user's typing in a room; returns the event to publish, if any.
  virtual absl::StatusOr<std::vector<PresenceChange>> Typing(const chat::v1::TypingUpdate& update,
                                                             int64_t now_ms) = 0;
  // Due work: connections of gateways that stopped heartbeating are closed, offline announcements whose
  // grace has passed go out, typing that expired ends. Safe to run on every replica at once: each change
  // is claimed atomically by one of them.
  virtual absl::StatusOr<std::vector<PresenceChange>> Sweep(int64_t now_ms) = 0;

  virtual absl::StatusOr<std::vector<std::string>> RoomOnline(const std::string& room) = 0;
  virtual absl::StatusOr<std::vector<chat::v1::UserPresence>> Users(
      const std::vector<std::string>& users) = 0;
  // Publishes changes on their rooms' channels and on the presence events channel.
  virtual absl::Status Publish(const std::vector<PresenceChange>& changes) = 0;
};

// Where every presence and typing change is also published, for chat.v1.Presence/Watch.
inline constexpr const char* kPresenceEventsChannel = "chat:presence:events";

}  // namespace chat::presence
