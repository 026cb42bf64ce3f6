#include "domain/send_batch.h"

namespace chat::messages {

void SendBatch::Add(NewMessage m) {
  auto key = std::make_pair(m.sender, m.client_id);
  auto it = slot_by_key_.find(key);
  if (it != slot_by_key_.end()) {
    slot_of_.push_back(it->second);
    repeat_.push_back(true);
    return;
  }
  size_t slot = unique_.size();
  slot_by_key_.emplace(std::move(key), slot);
  unique_.push_back(std::move(m));
  slot_of_.push_back(slot);
  repeat_.push_back(false);
}

absl::StatusOr<AppendOutcome> SendBatch::OutcomeFor(
    size_t i, const std::vector<absl::StatusOr<AppendOutcome>>& stored) const {
  const absl::StatusOr<AppendOutcome>& first = stored.at(slot_of_.at(i));
  if (!first.ok() || !repeat_[i]) return first;
  AppendOutcome again = *first;
  again.duplicate = true;
  return again;
}

}  // namespace chat::messages
