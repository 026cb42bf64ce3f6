#pragma once
// Collapses one group-commit batch so each (sender, client_id) is stored once. A later request with a
// key seen earlier in the same batch gets the first one's message, marked duplicate. Plain data; one
// thread.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "storage/message_store.h"

namespace chat::messages {

class SendBatch {
 public:
  void Add(NewMessage m);

  // What to store: one entry per distinct key, in arrival order.
  const std::vector<NewMessage>& unique() const { return unique_; }
  size_t size() const { return slot_of_.size(); }

  // The outcome of request i, given the outcomes of unique().
  absl::StatusOr<AppendOutcome> OutcomeFor(size_t i,
                                           const std::vector<absl::StatusOr<AppendOutcome>>& stored) const;

 private:
  std::vector<NewMessage> unique_;
  std::map<std::pair<std::string, std::string>, size_t> slot_by_key_;
  std::vector<size_t> slot_of_;
  std::vector<bool> repeat_;
};

}  // namespace chat::messages
