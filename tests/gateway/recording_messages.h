#pragma once
// A MessagesBackend for tests: records each request and keeps its callback, so the test answers when
// and how it likes.

#include <vector>

#include "domain/backends.h"

namespace chat::gateway {

struct RecordingMessages : MessagesBackend {
  void Call(chat::v1::GatewayRequest r, Callback<chat::v1::GatewayReply> done) override {
    requests.push_back(r);
    callbacks.push_back(std::move(done));
  }
  void Answer(size_t i, absl::StatusOr<chat::v1::GatewayReply> reply) { callbacks.at(i)(std::move(reply)); }
  std::vector<chat::v1::GatewayRequest> requests;
  std::vector<Callback<chat::v1::GatewayReply>> callbacks;
};

}  // namespace chat::gateway
