#pragma once
// Which local connections are in which room, for fan-out. Thread-safe (one mutex); Members copies the
// room's member list under the lock so delivery happens outside it, as in Beast's chat server.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "domain/seq_orderer.h"

namespace chat::gateway {

// One encoded server frame for a room's members; seq is the message's seq, 0 for events without one
// (typing, presence); origin: a live message's sender and clientId.
struct Delivery {
  std::string room;
  int64_t seq = 0;
  std::shared_ptr<const std::string> bytes;
  std::shared_ptr<const MessageOrigin> origin;
};

// A connection as fan-out sees it. Deliver is thread-safe and never blocks (it queues).
//
// A member that lives on one of the gateway's io threads also names it (its lane): fan-out then hands
// each lane one batch with every local member of the room on it, and the lane's thread calls
// DeliverOnLane for each, instead of one cross-thread post (and wake-up) per member and message.
class RoomMember {
 public:
  static constexpr size_t kNoLane = static_cast<size_t>(-1);

  virtual ~RoomMember() = default;
  virtual void Deliver(std::shared_ptr<const Delivery> delivery) = 0;
  virtual size_t lane() const { return kNoLane; }
  // Runs on the member's lane thread only.
  virtual void DeliverOnLane(const Delivery& delivery) {
    Deliver(std::make_shared<const Delivery>(delivery));
  }
};

class RoomRegistry {
 public:
  // Returns true when `connection_id` is the room's first local member (the room needs a subscription).
  bool Add(const std::string& room, const std::string& connection_id, std::weak_ptr<RoomMember> member);
  // Returns true when the room has no local member left (the subscription can go).
  bool Remove(const std::string& room, const std::string& connection_id);
  // The live members of the room now.
  std::vector<std::shared_ptr<RoomMember>> Members(const std::string& room) const;
  bool Contains(const std::string& room, const std::string& connection_id) const;
  size_t RoomCount() const;
  std::vector<std::string> Rooms() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, std::weak_ptr<RoomMember>>> rooms_;
};

}  // namespace chat::gateway
