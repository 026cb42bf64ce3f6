#include "storage/redis_presence_store.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace chat::presence {
namespace {

constexpr const char* kLastSeen = "chat:presence:lastseen";
std::string GatewayKey(const std::string& gw) { return absl::StrCat("chat:presence:gw:", gw); }
std::string UserKey(const std::string& u) { return absl::StrCat("chat:presence:user:", u); }
std::string RoomKey(const std::string& r) { return absl::StrCat("chat:presence:room:", r); }

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// KEYS: user set, gateway key. ARGV: "{gw}|{conn}", ttl seconds, gateway key prefix.
// Drops the user's entries of dead gateways, adds this one; returns 1 if it is the only live one.
constexpr const char* kOpenScript = R"lua(
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local gw = string.match(m, '^(.*)|[^|]*$')
  if redis.call('EXISTS', ARGV[3] .. gw) == 0 then redis.call('SREM', KEYS[1], m) end
end
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('SCARD', KEYS[1]) == 1 and 1 or 0
)lua";

// KEYS: user set, lastseen hash. ARGV: "{gw}|{conn}", user, now ms, gateway key prefix.
// Returns 1 when no live connection of the user is left (and records last seen).
constexpr const char* kCloseScript = R"lua(
redis.call('SREM', KEYS[1], ARGV[1])
local live = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local gw = string.match(m, '^(.*)|[^|]*$')
  if redis.call('EXISTS', ARGV[4] .. gw) == 1 then live = live + 1 else redis.call('SREM', KEYS[1], m) end
end
if live == 0 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
)lua";

// KEYS: room set, gateway key of the member ('' for none). ARGV: member to add ('' for none), gateway
// key prefix, ttl seconds. Entering counts as a heartbeat of the member's gateway. Drops entries of
// dead gateways; returns the users of the live ones.
constexpr const char* kRoomOnlineScript = R"lua(
if ARGV[1] ~= '' then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
end
local users = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local user, gw = string.match(m, '^([^|]*)|(.*)|[^|]*$')
  if gw and redis.call('EXISTS', ARGV[2] .. gw) == 1 then
    users[#users + 1] = user
  else
    redis.call('SREM', KEYS[1], m)
  end
end
return users
)lua";

// KEYS: user set. ARGV: gateway key prefix. Number of live connections.
constexpr const char* kLiveCountScript = R"lua(
local live = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local gw = string.match(m, '^(.*)|[^|]*$')
  if redis.call('EXISTS', ARGV[1] .. gw) == 1 then live = live + 1 end
end
return live
)lua";

std::string ConnMember(const chat::v1::ConnectionRef& c) {
  return absl::StrCat(c.gateway(), "|", c.connection());
}
std::string RoomMember(const chat::v1::ConnectionRef& c) {
  return absl::StrCat(c.user(), "|", c.gateway(), "|", c.connection());
}

absl::Status ErrorOf(const RedisValue& v) {
  if (v.type == RedisValue::Type::kError) return absl::InternalError(absl::StrCat("redis: ", v.str));
  return absl::OkStatus();
}

}  // namespace

RedisPresenceStore::RedisPresenceStore(std::string host, int port, std::chrono::seconds ttl)
    : redis_(std::move(host), port, std::chrono::milliseconds(2000)), ttl_(ttl) {}

absl::StatusOr<RedisValue> RedisPresenceStore::Eval(const std::string& script,
                                                    const std::vector<std::string>& keys,
                                                    const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"EVAL", script, std::to_string(keys.size())};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  auto v = redis_.Command(argv);
  if (!v.ok()) return v.status();
  if (auto st = ErrorOf(*v); !st.ok()) return st;
  return v;
}

absl::StatusOr<bool> RedisPresenceStore::Open(const chat::v1::ConnectionRef& conn) {
  auto v = Eval(kOpenScript, {UserKey(conn.user()), GatewayKey(conn.gateway())},
                {ConnMember(conn), std::to_string(ttl_.count()), GatewayKey("")});
  if (!v.ok()) return v.status();
  return v->integer == 1;
}

absl::StatusOr<bool> RedisPresenceStore::Close(const chat::v1::ConnectionRef& conn) {
  auto v = Eval(kCloseScript, {UserKey(conn.user()), kLastSeen},
                {ConnMember(conn), conn.user(), std::to_string(NowMillis()), GatewayKey("")});
  if (!v.ok()) return v.status();
  return v->integer == 1;
}

absl::StatusOr<std::vector<std::string>> RedisPresenceStore::Enter(const chat::v1::ConnectionRef& conn,
                                                                   const std::string& room) {
  auto v = Eval(kRoomOnlineScript, {RoomKey(room), GatewayKey(conn.gateway())},
                {RoomMember(conn), GatewayKey(""), std::to_string(ttl_.count())});
  if (!v.ok()) return v.status();
  std::set<std::string> users;
  for (const auto& e : v->elements) users.insert(e.str);
  return std::vector<std::string>(users.begin(), users.end());
}

absl::Status RedisPresenceStore::Exit(const chat::v1::ConnectionRef& conn, const std::string& room) {
  auto v = redis_.Command({"SREM", RoomKey(room), RoomMember(conn)});
  if (!v.ok()) return v.status();
  return ErrorOf(*v);
}

absl::Status RedisPresenceStore::Heartbeat(const std::string& gateway) {
  auto v = redis_.Command({"SET", GatewayKey(gateway), "1", "EX", std::to_string(ttl_.count())});
  if (!v.ok()) return v.status();
  return ErrorOf(*v);
}

absl::StatusOr<std::vector<std::string>> RedisPresenceStore::RoomOnline(const std::string& room) {
  auto v = Eval(kRoomOnlineScript, {RoomKey(room), GatewayKey("")}, {"", GatewayKey(""), "0"});
  if (!v.ok()) return v.status();
  std::set<std::string> users;
  for (const auto& e : v->elements) users.insert(e.str);
  return std::vector<std::string>(users.begin(), users.end());
}

absl::StatusOr<std::vector<chat::v1::UserStatus>> RedisPresenceStore::Users(
    const std::vector<std::string>& users) {
  std::vector<chat::v1::UserStatus> out;
  for (const auto& u : users) {
    chat::v1::UserStatus s;
    s.set_user(u);
    auto live = Eval(kLiveCountScript, {UserKey(u)}, {GatewayKey("")});
    if (!live.ok()) return live.status();
    s.set_online(live->integer > 0);
    auto seen = redis_.Command({"HGET", kLastSeen, u});
    if (!seen.ok()) return seen.status();
    if (seen->type == RedisValue::Type::kString) {
      *s.mutable_last_seen() =
          google::protobuf::util::TimeUtil::MillisecondsToTimestamp(std::stoll(seen->str));
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace chat::presence
