#include "storage/redis_presence_store.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/text_rules.h"
#include "google/protobuf/util/time_util.h"

namespace chat::presence {
namespace {

constexpr const char* kPrefix = "chat:presence:";

// Shared by every script. ARGV[1] is always the key prefix.
constexpr const char* kPrelude = R"lua(
local P = ARGV[1]
-- A room's members live on a handful of gateways: ask Redis once per gateway and script run, not once
-- per member (joining a room of 100 made 100 EXISTS calls, most of Redis's CPU in a join storm).
local alive_now = {}
local function alive(gw)
  local a = alive_now[gw]
  if a == nil then
    a = redis.call('EXISTS', P .. 'gw:' .. gw) == 1
    alive_now[gw] = a
  end
  return a
end
-- Set members are '|'-joined ids that never hold '|' themselves (user, gateway and connection ids are
-- validated): plain finds split them for a fraction of a pattern's cost, and room_online splits every
-- member of the room on each join.
local find, sub = string.find, string.sub
local function first_part(m)
  local i = find(m, '|', 1, true)
  if i then return sub(m, 1, i - 1) end
  return nil
end
local function first_two_parts(m)
  local i = find(m, '|', 1, true)
  if not i then return nil end
  local j = find(m, '|', i + 1, true)
  if not j then return nil end
  return sub(m, 1, i - 1), sub(m, i + 1, j - 1)
end
local function heartbeat(gw, now, ttl)
  redis.call('SET', P .. 'gw:' .. gw, '1', 'PX', ttl)
  redis.call('ZADD', P .. 'gws', now + ttl, gw)
  alive_now[gw] = true
end
local function live_in_room(room, user)
  local k = P .. 'uroom:' .. room .. '|' .. user
  local live = false
  for _, m in ipairs(redis.call('SMEMBERS', k)) do
    local gw = first_part(m)
    if gw and alive(gw) then live = true else redis.call('SREM', k, m) end
  end
  return live
end
-- Who is online in a room, without reading every member on each join: 'ronline:<room>' counts each
-- user's connections in the room set and 'rgws:<room>' each gateway's. They change only together with
-- the set (a member added or removed), so they describe it exactly; room_online checks that against
-- SCARD and reads the set itself when they disagree (data written before the counts existed, or by an
-- older replica during an upgrade) or when a gateway of the room is dead, and counts again.
local function room_count(room, user, gw, delta)
  local ku, kg = P .. 'ronline:' .. room, P .. 'rgws:' .. room
  if redis.call('HINCRBY', ku, user, delta) <= 0 then redis.call('HDEL', ku, user) end
  if redis.call('HINCRBY', kg, gw, delta) <= 0 then redis.call('HDEL', kg, gw) end
end
local function room_add(room, user, gw, conn)
  if redis.call('SADD', P .. 'room:' .. room, user .. '|' .. gw .. '|' .. conn) == 1 then
    room_count(room, user, gw, 1)
  end
end
local function room_remove(room, user, gw, conn)
  if redis.call('SREM', P .. 'room:' .. room, user .. '|' .. gw .. '|' .. conn) == 1 then
    room_count(room, user, gw, -1)
  end
end
local function exit_room(gw, conn, user, room, now, grace)
  room_remove(room, user, gw, conn)
  redis.call('SREM', P .. 'uroom:' .. room .. '|' .. user, gw .. '|' .. conn)
  redis.call('SREM', P .. 'connrooms:' .. gw .. '|' .. conn, room)
  if not live_in_room(room, user) and redis.call('SISMEMBER', P .. 'announced:' .. room, user) == 1 then
    redis.call('ZADD', P .. 'pending', now + grace, room .. '|' .. user)
  end
end
local function user_live_count(user)
  local live = 0
  for _, m in ipairs(redis.call('SMEMBERS', P .. 'user:' .. user)) do
    local g = first_part(m)
    if g and alive(g) then live = live + 1 else redis.call('SREM', P .. 'user:' .. user, m) end
  end
  return live
end
local function close_conn(gw, conn, user, now, grace)
  for _, room in ipairs(redis.call('SMEMBERS', P .. 'connrooms:' .. gw .. '|' .. conn)) do
    exit_room(gw, conn, user, room, now, grace)
  end
  redis.call('DEL', P .. 'connrooms:' .. gw .. '|' .. conn)
  redis.call('SREM', P .. 'conns:' .. gw, user .. '|' .. conn)
  redis.call('SREM', P .. 'user:' .. user, gw .. '|' .. conn)
  if user_live_count(user) == 0 then redis.call('HSET', P .. 'lastseen', user, now) end
end
-- HSET of names[i] -> counts[names[i]], a few hundred fields a call: Lua unpacks at most ~8000
-- values into one call, and a room may have more members than that.
local function hset_counts(key, names, counts)
  local args = {}
  for i, name in ipairs(names) do
    args[#args + 1] = name
    args[#args + 1] = counts[name]
    if #args == 512 or i == #names then
      redis.call('HSET', key, unpack(args))
      args = {}
    end
  end
end
-- The long way: every member, dropping those of dead gateways, and the counts made again.
local function room_online_scan(room)
  local users, per_user, gws, per_gw = {}, {}, {}, {}
  for _, m in ipairs(redis.call('SMEMBERS', P .. 'room:' .. room)) do
    local u, g = first_two_parts(m)
    if g and alive(g) then
      if not per_user[u] then per_user[u] = 0; users[#users + 1] = u end
      per_user[u] = per_user[u] + 1
      if not per_gw[g] then per_gw[g] = 0; gws[#gws + 1] = g end
      per_gw[g] = per_gw[g] + 1
    else
      redis.call('SREM', P .. 'room:' .. room, m)
    end
  end
  local ku, kg = P .. 'ronline:' .. room, P .. 'rgws:' .. room
  redis.call('DEL', ku, kg)
  hset_counts(ku, users, per_user)
  hset_counts(kg, gws, per_gw)
  return users
end
local function room_online(room)
  local per_gw = redis.call('HGETALL', P .. 'rgws:' .. room)
  local counted = 0
  for i = 1, #per_gw, 2 do
    if not alive(per_gw[i]) then return room_online_scan(room) end
    counted = counted + tonumber(per_gw[i + 1])
  end
  if counted ~= redis.call('SCARD', P .. 'room:' .. room) then return room_online_scan(room) end
  return redis.call('HKEYS', P .. 'ronline:' .. room)
end
)lua";

// ARGV: P, gw, conn, user, now, ttl. Returns 1 for the user's first live connection.
constexpr const char* kOpen = R"lua(
local gw, conn, user, now, ttl = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
heartbeat(gw, now, ttl)
redis.call('SADD', P .. 'conns:' .. gw, user .. '|' .. conn)
redis.call('SADD', P .. 'user:' .. user, gw .. '|' .. conn)
return user_live_count(user) == 1 and 1 or 0
)lua";

// ARGV: P, gw, conn, user, now, grace.
constexpr const char* kClose = R"lua(
close_conn(ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1
)lua";

// ARGV: P, gw, conn, user, room, now, ttl. Returns {announce, online users}.
constexpr const char* kEnter = R"lua(
local gw, conn, user, room, now, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
heartbeat(gw, now, ttl)
redis.call('SADD', P .. 'conns:' .. gw, user .. '|' .. conn)
redis.call('SADD', P .. 'user:' .. user, gw .. '|' .. conn)
redis.call('SADD', P .. 'connrooms:' .. gw .. '|' .. conn, room)
room_add(room, user, gw, conn)
redis.call('SADD', P .. 'uroom:' .. room .. '|' .. user, gw .. '|' .. conn)
-- Back within the grace: the pending offline is cancelled and nobody hears of it.
redis.call('ZREM', P .. 'pending', room .. '|' .. user)
local announce = redis.call('SADD', P .. 'announced:' .. room, user)
return {announce, room_online(room)}
)lua";

// ARGV: P, gw, conn, user, room, now, grace.
constexpr const char* kExit = R"lua(
exit_room(ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]))
return 1
)lua";

// ARGV: P, gw, now, ttl, connections, users, rooms, messages/s.
constexpr const char* kHeartbeat = R"lua(
heartbeat(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
local k = P .. 'stats:' .. ARGV[2]
redis.call('HSET', k, 'connections', ARGV[5], 'users', ARGV[6], 'rooms', ARGV[7], 'mps', ARGV[8])
redis.call('PEXPIRE', k, ARGV[4])
return 1
)lua";

// ARGV: P. Returns {gateways, connections, users, rooms, messages/s} over live gateways.
constexpr const char* kClusterStats = R"lua(
local g, c, u, r, m = 0, 0, 0, 0, 0
for _, gw in ipairs(redis.call('ZRANGE', P .. 'gws', 0, -1)) do
  if alive(gw) then
    g = g + 1
    local v = redis.call('HMGET', P .. 'stats:' .. gw, 'connections', 'users', 'rooms', 'mps')
    c = c + (tonumber(v[1]) or 0); u = u + (tonumber(v[2]) or 0); r = r + (tonumber(v[3]) or 0)
    m = m + (tonumber(v[4]) or 0)
  end
end
return {g, c, u, r, tostring(m)}
)lua";

// ARGV: P, room, user, active, clear, now, expire, throttle. Returns 0 nothing, 1 announce typing,
// 2 announce stopped.
constexpr const char* kTyping = R"lua(
local key = ARGV[2] .. '|' .. ARGV[3]
local active, clear, now = ARGV[4] == '1', ARGV[5] == '1', tonumber(ARGV[6])
if clear then
  redis.call('ZREM', P .. 'typing', key)
  redis.call('DEL', P .. 'typing_pub:' .. key)
  return 0
end
if active then
  redis.call('ZADD', P .. 'typing', now + tonumber(ARGV[7]), key)
  if redis.call('SET', P .. 'typing_pub:' .. key, '1', 'PX', ARGV[8], 'NX') then return 1 end
  return 0
end
if redis.call('ZREM', P .. 'typing', key) == 1 then
  redis.call('DEL', P .. 'typing_pub:' .. key)
  return 2
end
return 0
)lua";

// ARGV: P, now, grace. Returns a flat list of kind, room, user, millis.
constexpr const char* kSweep = R"lua(
local now, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for _, gw in ipairs(redis.call('ZRANGEBYSCORE', P .. 'gws', '-inf', now)) do
  if not alive(gw) then
    for _, uc in ipairs(redis.call('SMEMBERS', P .. 'conns:' .. gw)) do
      local user, conn = string.match(uc, '^([^|]*)|(.*)$')
      if user then close_conn(gw, conn, user, now, grace) end
    end
    redis.call('DEL', P .. 'conns:' .. gw)
    redis.call('ZREM', P .. 'gws', gw)
  end
end
for _, ru in ipairs(redis.call('ZRANGEBYSCORE', P .. 'pending', '-inf', now, 'WITHSCORES')) do
  table.insert(out, ru)
end
local due = {}
for i = 1, #out, 2 do due[#due + 1] = {out[i], tonumber(out[i + 1])} end
out = {}
for _, d in ipairs(due) do
  if redis.call('ZREM', P .. 'pending', d[1]) == 1 then
    local room, user = string.match(d[1], '^([^|]*)|(.*)$')
    if room and not live_in_room(room, user) and redis.call('SREM', P .. 'announced:' .. room, user) == 1 then
      out[#out + 1] = 'offline'; out[#out + 1] = room; out[#out + 1] = user
      out[#out + 1] = tostring(math.floor(d[2] - grace))
    end
  end
end
for _, ru in ipairs(redis.call('ZRANGEBYSCORE', P .. 'typing', '-inf', now)) do
  if redis.call('ZREM', P .. 'typing', ru) == 1 then
    redis.call('DEL', P .. 'typing_pub:' .. ru)
    local room, user = string.match(ru, '^([^|]*)|(.*)$')
    if room then
      out[#out + 1] = 'typing_end'; out[#out + 1] = room; out[#out + 1] = user; out[#out + 1] = tostring(now)
    end
  end
end
return out
)lua";

// ARGV: P, room.
constexpr const char* kRoomOnline = R"lua(
return room_online(ARGV[2])
)lua";

// ARGV: P, user. Returns {live count, lastseen or false}.
constexpr const char* kUserStatus = R"lua(
return {user_live_count(ARGV[2]), redis.call('HGET', P .. 'lastseen', ARGV[2])}
)lua";

std::vector<std::string> Sorted(const RedisValue& list) {
  std::set<std::string> users;
  for (const auto& e : list.elements) users.insert(e.str);
  return {users.begin(), users.end()};
}

PresenceChange OnlineChange(const std::string& room, const std::string& user, bool online, int64_t seen_ms) {
  PresenceChange c;
  c.room = room;
  auto* p = c.event.mutable_presence();
  p->set_room(room);
  p->set_user(user);
  p->set_online(online);
  if (!online) *p->mutable_last_seen() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(seen_ms);
  return c;
}

PresenceChange TypingChange(const std::string& room, const std::string& user, bool active) {
  PresenceChange c;
  c.room = room;
  auto* t = c.event.mutable_typing();
  t->set_room(room);
  t->set_user(user);
  t->set_active(active);
  return c;
}

}  // namespace

RedisPresenceStore::RedisPresenceStore(std::string host, int port, PresenceTimings timings)
    : redis_(std::move(host), port, std::chrono::milliseconds(2000)), timings_(timings) {}

std::vector<absl::StatusOr<RedisValue>> RedisPresenceStore::RunAll(const std::vector<ScriptCall>& calls) {
  // EVALSHA, not EVAL: with the prelude a script is ~2.5 KB that Redis would read and hash on every call.
  // The digest comes from SCRIPT LOAD; NOSCRIPT (Redis restarted, SCRIPT FLUSH) loads it again and runs
  // the refused calls once more. Redis empties its whole cache at once, so in practice the refused calls
  // are all of a pipeline's calls and order holds; only a SCRIPT FLUSH landing inside a pipeline could
  // run a refused call after a later one.
  std::vector<absl::StatusOr<RedisValue>> out(calls.size(), absl::InternalError("redis: not run"));
  std::vector<size_t> todo(calls.size());
  for (size_t i = 0; i < todo.size(); ++i) todo[i] = i;
  for (int attempt = 0; attempt < 2 && !todo.empty(); ++attempt) {
    std::vector<std::vector<std::string>> cmds;
    cmds.reserve(todo.size());
    for (size_t i : todo) {
      std::string& sha = script_shas_[calls[i].body];
      if (sha.empty()) {
        auto loaded = redis_.Command({"SCRIPT", "LOAD", std::string(kPrelude) + calls[i].body});
        absl::Status st = loaded.status();
        if (st.ok() && loaded->type != RedisValue::Type::kString) {
          st = absl::InternalError(absl::StrCat("redis: SCRIPT LOAD: ", loaded->str));
        }
        if (!st.ok()) {
          for (size_t j : todo) out[j] = st;
          return out;
        }
        sha = loaded->str;
      }
      std::vector<std::string> argv = {"EVALSHA", sha, "0", kPrefix};
      argv.insert(argv.end(), calls[i].args.begin(), calls[i].args.end());
      cmds.push_back(std::move(argv));
    }
    auto replies = redis_.Pipeline(cmds);
    if (!replies.ok()) {
      for (size_t j : todo) out[j] = replies.status();
      return out;
    }
    std::vector<size_t> refused;
    for (size_t k = 0; k < todo.size(); ++k) {
      RedisValue& v = (*replies)[k];
      size_t i = todo[k];
      if (v.type == RedisValue::Type::kError && absl::StartsWith(v.str, "NOSCRIPT")) {
        script_shas_[calls[i].body].clear();
        refused.push_back(i);
        out[i] = absl::InternalError("redis: the script cache was emptied twice in a row");
      } else if (v.type == RedisValue::Type::kError) {
        out[i] = absl::InternalError(absl::StrCat("redis: ", v.str));
      } else {
        out[i] = std::move(v);
      }
    }
    todo = std::move(refused);
  }
  return out;
}

absl::StatusOr<RedisValue> RedisPresenceStore::Run(const char* body, std::vector<std::string> args) {
  return std::move(RunAll({ScriptCall{body, std::move(args)}}).front());
}

RedisPresenceStore::ScriptCall RedisPresenceStore::CallFor(const ConnectionEvent& e, int64_t now_ms) const {
  const auto& c = e.conn;
  std::string now = std::to_string(now_ms);
  switch (e.kind) {
    case ConnectionEvent::Kind::kOpen:
      return {kOpen, {c.gateway(), c.connection(), c.user(), now, std::to_string(timings_.ttl_ms)}};
    case ConnectionEvent::Kind::kClose:
      return {kClose, {c.gateway(), c.connection(), c.user(), now, std::to_string(timings_.grace_ms)}};
    case ConnectionEvent::Kind::kEnter:
      return {kEnter, {c.gateway(), c.connection(), c.user(), e.room, now, std::to_string(timings_.ttl_ms)}};
    case ConnectionEvent::Kind::kExit:
      return {kExit, {c.gateway(), c.connection(), c.user(), e.room, now, std::to_string(timings_.grace_ms)}};
    case ConnectionEvent::Kind::kHeartbeat: {
      const auto& h = e.heartbeat;
      return {
          kHeartbeat,
          {h.gateway(), now, std::to_string(timings_.ttl_ms), std::to_string(h.connections()),
           std::to_string(h.users()), std::to_string(h.rooms()), std::to_string(h.messages_per_second())}};
    }
  }
  return {kHeartbeat, {}};  // unreachable: every kind is handled above
}

ConnectionEventResult RedisPresenceStore::ResultOf(const ConnectionEvent& e, absl::StatusOr<RedisValue> v,
                                                   int64_t now_ms) {
  ConnectionEventResult r;
  if (!v.ok()) {
    r.status = v.status();
    return r;
  }
  if (e.kind == ConnectionEvent::Kind::kOpen) r.first = v->integer == 1;
  if (e.kind == ConnectionEvent::Kind::kEnter) {
    if (v->elements.size() != 2) {
      r.status = absl::InternalError("redis: unexpected enter reply");
      return r;
    }
    r.enter.online = Sorted(v->elements[1]);
    if (v->elements[0].integer == 1)
      r.enter.changes.push_back(OnlineChange(e.room, e.conn.user(), true, now_ms));
  }
  return r;
}

std::vector<ConnectionEventResult> RedisPresenceStore::Apply(const std::vector<ConnectionEvent>& events,
                                                             int64_t now_ms) {
  std::vector<ScriptCall> calls;
  calls.reserve(events.size());
  for (const auto& e : events) calls.push_back(CallFor(e, now_ms));
  auto replies = RunAll(calls);
  std::vector<ConnectionEventResult> out;
  out.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i)
    out.push_back(ResultOf(events[i], std::move(replies[i]), now_ms));
  return out;
}

absl::StatusOr<chat::v1::ClusterStats> RedisPresenceStore::ClusterStats() {
  auto v = Run(kClusterStats, {});
  if (!v.ok()) return v.status();
  if (v->elements.size() != 5) return absl::InternalError("redis: unexpected stats reply");
  chat::v1::ClusterStats out;
  out.set_gateways(v->elements[0].integer);
  out.set_connections(v->elements[1].integer);
  out.set_users(v->elements[2].integer);
  out.set_rooms(v->elements[3].integer);
  double mps = 0;
  (void)absl::SimpleAtod(v->elements[4].str, &mps);
  out.set_messages_per_second(mps);
  return out;
}

absl::StatusOr<std::vector<PresenceChange>> RedisPresenceStore::Typing(const chat::v1::TypingUpdate& u,
                                                                       int64_t now_ms) {
  auto v = Run(kTyping, {u.room(), u.conn().user(), u.active() ? "1" : "0", u.clear() ? "1" : "0",
                         std::to_string(now_ms), std::to_string(timings_.typing_expire_ms),
                         std::to_string(timings_.typing_throttle_ms)});
  if (!v.ok()) return v.status();
  std::vector<PresenceChange> out;
  if (v->integer == 1) out.push_back(TypingChange(u.room(), u.conn().user(), true));
  if (v->integer == 2) out.push_back(TypingChange(u.room(), u.conn().user(), false));
  return out;
}

absl::StatusOr<std::vector<PresenceChange>> RedisPresenceStore::Sweep(int64_t now_ms) {
  auto v = Run(kSweep, {std::to_string(now_ms), std::to_string(timings_.grace_ms)});
  if (!v.ok()) return v.status();
  std::vector<PresenceChange> out;
  const auto& e = v->elements;
  for (size_t i = 0; i + 3 < e.size(); i += 4) {
    int64_t ms = 0;
    (void)absl::SimpleAtoi(e[i + 3].str, &ms);
    if (e[i].str == "offline") out.push_back(OnlineChange(e[i + 1].str, e[i + 2].str, false, ms));
    if (e[i].str == "typing_end") out.push_back(TypingChange(e[i + 1].str, e[i + 2].str, false));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> RedisPresenceStore::RoomOnline(const std::string& room) {
  auto v = Run(kRoomOnline, {room});
  if (!v.ok()) return v.status();
  return Sorted(*v);
}

absl::StatusOr<std::vector<chat::v1::UserPresence>> RedisPresenceStore::Users(
    const std::vector<std::string>& users) {
  std::vector<chat::v1::UserPresence> out;
  for (const auto& u : users) {
    auto v = Run(kUserStatus, {u});
    if (!v.ok()) return v.status();
    chat::v1::UserPresence s;
    s.set_user(u);
    if (v->elements.size() == 2) {
      s.set_online(v->elements[0].integer > 0);
      int64_t ms = 0;
      if (v->elements[1].type == RedisValue::Type::kString && absl::SimpleAtoi(v->elements[1].str, &ms)) {
        *s.mutable_last_seen() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(ms);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

absl::Status RedisPresenceStore::Publish(const std::vector<PresenceChange>& changes) {
  if (changes.empty()) return absl::OkStatus();
  std::vector<std::vector<std::string>> cmds;
  for (const auto& c : changes) {
    std::string payload = c.event.SerializeAsString();
    if (timings_.room_presence_events || !c.event.has_presence()) {
      cmds.push_back({"PUBLISH", RoomChannel(c.room), payload});
    }
    cmds.push_back({"PUBLISH", kPresenceEventsChannel, payload});
  }
  auto r = redis_.Pipeline(cmds);
  return r.status();
}

}  // namespace chat::presence
