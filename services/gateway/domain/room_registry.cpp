#include "domain/room_registry.h"

namespace chat::gateway {

bool RoomRegistry::Add(const std::string& room, const std::string& connection_id,
                       std::weak_ptr<RoomMember> member) {
  std::lock_guard lock(mu_);
  auto& members = rooms_[room];
  bool first = members.empty();
  members[connection_id] = std::move(member);
  return first;
}

bool RoomRegistry::Remove(const std::string& room, const std::string& connection_id) {
  std::lock_guard lock(mu_);
  auto it = rooms_.find(room);
  if (it == rooms_.end()) return false;
  if (it->second.erase(connection_id) == 0) return false;
  if (!it->second.empty()) return false;
  rooms_.erase(it);
  return true;
}

std::vector<std::shared_ptr<RoomMember>> RoomRegistry::Members(const std::string& room) const {
  std::vector<std::shared_ptr<RoomMember>> out;
  std::lock_guard lock(mu_);
  auto it = rooms_.find(room);
  if (it == rooms_.end()) return out;
  out.reserve(it->second.size());
  for (const auto& [id, weak] : it->second) {
    if (auto m = weak.lock()) out.push_back(std::move(m));
  }
  return out;
}

bool RoomRegistry::Contains(const std::string& room, const std::string& connection_id) const {
  std::lock_guard lock(mu_);
  auto it = rooms_.find(room);
  return it != rooms_.end() && it->second.count(connection_id) > 0;
}

size_t RoomRegistry::RoomCount() const {
  std::lock_guard lock(mu_);
  return rooms_.size();
}

std::vector<std::string> RoomRegistry::Rooms() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [room, m] : rooms_) out.push_back(room);
  return out;
}

}  // namespace chat::gateway
