#pragma once
// The REST side of the fallback for clients that cannot hold a WebSocket (a proxy that blocks
// upgrades): `POST /api/rooms/{room}/messages` and `GET /api/rooms/{room}/messages`, with the same
// checks, limits and guarantees as the `send` and `history` frames. Without sockets: the HTTP session
// parses the request line and hands the parts here. Thread-safe.
//
// A REST client has no connection to hold its rate limiter, so the buckets are kept per user (the same
// rates as a connection's), and a flood is answered 429 with Retry-After, never by closing.

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "domain/backends.h"
#include "domain/chat_connection.h"
#include "domain/send_limiter.h"

namespace chat::gateway {

struct RestReply {
  unsigned status = 200;
  std::string body;  // one JSON object: {"ack":…}, {"history":…} or {"error":…}
  uint32_t retry_after_ms = 0;
};

// The HTTP status of a client-visible error code.
unsigned HttpStatusFor(std::string_view code);

class RestApi {
 public:
  using Done = std::function<void(RestReply)>;

  RestApi(ConnectionLimits limits, MessagesBackend& messages, ConnectionMetrics& metrics);

  // `body` is {"clientId": "...", "text": "..."}; answers {"ack":{room, seq, id, ts, duplicate}} once the
  // message is committed. `done` runs on some thread, or inline when refused at once.
  void PostMessage(const ConnectionIdentity& who, const std::string& room, std::string_view body, Done done);
  // `query` is the request target's query string: beforeSeq (0 or absent: the newest) and limit.
  void GetHistory(const ConnectionIdentity& who, const std::string& room, std::string_view query, Done done);

  // Users with a bucket kept (idle ones are dropped as the table grows).
  size_t TrackedUsers() const;

 private:
  struct Buckets {
    SendLimiter send;
    SendLimiter query;
    SendLimiter::Clock::time_point last_used;
  };
  // Takes a token from the user's bucket, or returns the retry delay in ms.
  std::optional<uint32_t> Admit(const std::string& user, SendLimiter Buckets::*bucket);
  RestReply Error(const absl::Status& status, uint32_t retry_after_ms = 0);

  ConnectionLimits limits_;
  MessagesBackend& messages_;
  ConnectionMetrics& metrics_;
  mutable std::mutex mu_;
  std::map<std::string, Buckets> buckets_;
  SendLimiter::Clock::time_point last_prune_{};
};

}  // namespace chat::gateway
