#include "domain/rest_api.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/error_codes.h"
#include "common/text_rules.h"
#include "domain/frame_codec.h"
#include "domain/query_string.h"
#include "domain/slash_command.h"

namespace chat::gateway {

namespace {

// Buckets idle this long are as good as full again, so they can be dropped.
constexpr std::chrono::seconds kIdleBucket{60};
constexpr size_t kPruneAbove = 10000;
// With more active users than kPruneAbove, a scan per request would put O(users) on every request:
// scan at most this often.
constexpr std::chrono::seconds kPruneEvery{1};

}  // namespace

unsigned HttpStatusFor(std::string_view code) {
  if (code == code::kBadRequest) return 400;
  if (code == code::kUnauthorized) return 401;
  if (code == code::kForbidden || code == code::kMuted) return 403;
  if (code == code::kNotFound) return 404;
  if (code == code::kTooLarge) return 413;
  if (code == code::kRateLimited) return 429;
  if (code == code::kUnavailable) return 503;
  return 500;
}

RestApi::RestApi(ConnectionLimits limits, MessagesBackend& messages, ConnectionMetrics& metrics)
    : limits_(limits), messages_(messages), metrics_(metrics) {}

RestReply RestApi::Error(const absl::Status& status, uint32_t retry_after_ms) {
  std::string_view code = ErrorCodeFor(status);
  metrics_.Error(code).Inc();
  RestReply r;
  r.status = HttpStatusFor(code);
  r.retry_after_ms = retry_after_ms;
  r.body = EncodeServerFrame(
      ErrorFrame(std::nullopt, code, SanitizeUtf8(std::string(status.message())), retry_after_ms));
  return r;
}

std::optional<uint32_t> RestApi::Admit(const std::string& user, SendLimiter Buckets::*bucket) {
  auto now = SendLimiter::Clock::now();
  std::lock_guard lock(mu_);
  if (buckets_.size() > kPruneAbove && now - last_prune_ >= kPruneEvery) {
    last_prune_ = now;
    std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.last_used > kIdleBucket; });
  }
  auto it = buckets_.find(user);
  if (it == buckets_.end()) {
    it = buckets_
             .emplace(user, Buckets{SendLimiter(limits_.send_rate_per_second, limits_.send_burst),
                                    SendLimiter(limits_.query_rate_per_second, limits_.query_burst), now})
             .first;
  }
  it->second.last_used = now;
  uint32_t retry_ms = 0;
  if ((it->second.*bucket).TryAcquire(now, retry_ms)) return std::nullopt;
  metrics_.rate_limited.Inc();
  return retry_ms;
}

size_t RestApi::TrackedUsers() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

void RestApi::PostMessage(const ConnectionIdentity& who, const std::string& room, std::string_view body,
                          Done done) {
  if (auto st = ValidateRoomName(room); !st.ok()) return done(Error(st));
  chat::v1::SendMessage send;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!IsValidUtf8(body)) return done(Error(absl::InvalidArgumentError("body is not valid UTF-8")));
  if (auto st = google::protobuf::util::JsonStringToMessage(std::string(body), &send, options); !st.ok()) {
    return done(Error(absl::InvalidArgumentError(
        absl::StrCat("expected {\"clientId\":\"…\",\"text\":\"…\"}: ", std::string(st.message())))));
  }
  if (auto st = ValidateClientId(send.client_id()); !st.ok()) return done(Error(st));
  if (send.text().empty()) return done(Error(absl::InvalidArgumentError("text is empty")));
  if (send.text().size() > limits_.text_max_bytes) {
    return done(
        Error(absl::OutOfRangeError(absl::StrCat("text is over ", limits_.text_max_bytes, " bytes"))));
  }
  if (auto retry = Admit(who.user, &Buckets::send)) {
    return done(Error(absl::ResourceExhaustedError("too many requests, slow down"), *retry));
  }
  if (auto cmd = ParseSlashCommand(send.text())) {
    if (!who.admin) return done(Error(absl::PermissionDeniedError("slash commands are for admins")));
    return done(Error(absl::InvalidArgumentError("slash commands need a WebSocket connection")));
  }
  chat::v1::GatewayRequest req;
  auto* s = req.mutable_send();
  s->set_room(room);
  s->set_sender(who.user);
  s->set_client_id(send.client_id());
  s->set_text(send.text());
  messages_.Call(std::move(req), [this, done = std::move(done)](absl::StatusOr<chat::v1::GatewayReply> r) {
    if (absl::Status st = Outcome(r); !st.ok()) return done(Error(st));
    metrics_.sends_acked.Inc();
    done(RestReply{200, EncodeServerFrame(AckFrame(r->sent())), 0});
  });
}

void RestApi::GetHistory(const ConnectionIdentity& who, const std::string& room, std::string_view query,
                         Done done) {
  if (auto st = ValidateRoomName(room); !st.ok()) return done(Error(st));
  int64_t before_seq = 0;
  uint32_t limit = 0;
  if (auto v = QueryParam(query, "beforeSeq");
      v && !v->empty() && (!absl::SimpleAtoi(*v, &before_seq) || before_seq < 0)) {
    return done(Error(absl::InvalidArgumentError("beforeSeq must be a non-negative integer")));
  }
  if (auto v = QueryParam(query, "limit"); v && !v->empty() && !absl::SimpleAtoi(*v, &limit)) {
    return done(Error(absl::InvalidArgumentError("limit must be a non-negative integer")));
  }
  if (auto retry = Admit(who.user, &Buckets::query)) {
    return done(Error(absl::ResourceExhaustedError("too many requests, slow down"), *retry));
  }
  chat::v1::GatewayRequest req;
  auto* h = req.mutable_history();
  h->set_room(room);
  h->set_user(who.user);
  h->set_before_seq(before_seq);
  h->set_limit(limit);
  messages_.Call(std::move(req), [this, done = std::move(done)](absl::StatusOr<chat::v1::GatewayReply> r) {
    if (absl::Status st = Outcome(r); !st.ok()) return done(Error(st));
    chat::v1::ServerFrame f;
    *f.mutable_history() = std::move(*r->mutable_history()->mutable_page());
    done(RestReply{200, EncodeServerFrame(f), 0});
  });
}

}  // namespace chat::gateway
