#include "storage/pg_message_store.h"

#include <algorithm>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "google/protobuf/util/time_util.h"
#include "storage/migrations.h"

namespace chat::messages {
namespace {

using chat::v1::RoomKind;

// Prepared statements: name and SQL side by side.
constexpr const char* kRoomAccess = "room_access";
constexpr const char* kRoomAccessSql =
    "SELECT r.kind, m.user_id IS NOT NULL FROM rooms r "
    "LEFT JOIN room_members m ON m.room = r.id AND m.user_id = $2 WHERE r.id = $1";

// migrations/002_append_batch.sql: a whole batch in one round trip.
constexpr const char* kAppendBatch = "append_batch";
constexpr const char* kAppendBatchSql =
    "SELECT o_outcome, o_room, o_seq, o_id, o_client_id, o_sender, o_body, o_kind, o_us "
    "FROM append_batch($1::text[], $2::text[], $3::text[], $4::text[])";

// migrations/003_join_room.sql: a join in one round trip.
constexpr const char* kJoinRoom = "join_room";
constexpr const char* kJoinRoomSql =
    "SELECT o_outcome, o_kind, o_last_seq, o_cleared_seq, o_members FROM join_room($1, $2)";

// migrations/006_join_rooms.sql: many joins in one round trip.
constexpr const char* kJoinRooms = "join_rooms";
constexpr const char* kJoinRoomsSql =
    "SELECT o_outcome, o_kind, o_last_seq, o_cleared_seq FROM join_rooms($1::text[], $2::text[])";

constexpr const char* kRoomInfo = "room_info";
constexpr const char* kRoomInfoSql =
    "SELECT r.kind, r.last_seq, r.cleared_seq, "
    "(SELECT count(*) FROM room_members m WHERE m.room = r.id) FROM rooms r WHERE r.id = $1";

constexpr const char* kAddMember = "add_member";
constexpr const char* kAddMemberSql =
    "INSERT INTO room_members (room, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

constexpr const char* kCreateRoom = "create_room";
constexpr const char* kCreateRoomSql = "INSERT INTO rooms (id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING";

constexpr const char* kHistoryBefore = "history_before";
constexpr const char* kHistoryBeforeSql =
    "SELECT room, seq, id::text, client_id, sender, body, kind, "
    "(extract(epoch FROM created_at) * 1000000)::bigint FROM messages "
    "WHERE room = $1 AND seq < $2 AND seq > $3 ORDER BY seq DESC LIMIT $4";

constexpr const char* kHistoryAfter = "history_after";
constexpr const char* kHistoryAfterSql =
    "SELECT room, seq, id::text, client_id, sender, body, kind, "
    "(extract(epoch FROM created_at) * 1000000)::bigint FROM messages "
    "WHERE room = $1 AND seq > $2 AND seq > $3 ORDER BY seq ASC LIMIT $4";

constexpr const char* kRemoveMember = "remove_member";
constexpr const char* kRemoveMemberSql = "DELETE FROM room_members WHERE room = $1 AND user_id = $2";

constexpr const char* kMute = "mute";
constexpr const char* kMuteSql =
    "INSERT INTO mutes (room, user_id, until, created_by) VALUES ($1, $2, "
    "CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 second' ELSE NULL END, $4) "
    "ON CONFLICT (room, user_id) DO UPDATE SET until = excluded.until, created_by = excluded.created_by";

constexpr const char* kUnmute = "unmute";
constexpr const char* kUnmuteSql = "DELETE FROM mutes WHERE user_id = $2 AND (room = $1 OR $1 = '*')";

constexpr const char* kClear = "clear";
constexpr const char* kClearSql =
    "UPDATE rooms SET cleared_seq = last_seq WHERE id = $1 RETURNING cleared_seq";

constexpr const char* kMarkRead = "mark_read";
constexpr const char* kMarkReadSql =
    "UPDATE room_members m SET last_read_seq = LEAST($3::bigint, r.last_seq) FROM rooms r "
    "WHERE m.room = $1 AND m.user_id = $2 AND r.id = m.room AND m.last_read_seq < LEAST($3::bigint, "
    "r.last_seq) "
    "RETURNING m.last_read_seq";

constexpr const char* kReadPosition = "read_position";
constexpr const char* kReadPositionSql =
    "SELECT last_read_seq FROM room_members WHERE room = $1 AND user_id = $2";

RoomKind KindFromText(const std::string& s) {
  if (s == "public") return chat::v1::ROOM_KIND_PUBLIC;
  if (s == "private") return chat::v1::ROOM_KIND_PRIVATE;
  if (s == "dm") return chat::v1::ROOM_KIND_DM;
  return chat::v1::ROOM_KIND_UNSPECIFIED;
}

const char* KindToText(RoomKind k) {
  switch (k) {
    case chat::v1::ROOM_KIND_PRIVATE:
      return "private";
    case chat::v1::ROOM_KIND_DM:
      return "dm";
    default:
      return "public";
  }
}

// The refusals every statement that checks access answers with.
absl::Status RoomNotFound(const std::string& room) {
  return absl::NotFoundError(absl::StrCat("room '", room, "' does not exist"));
}
absl::Status NotAMember(const std::string& room) {
  return absl::PermissionDeniedError(absl::StrCat("not a member of '", room, "'"));
}

// A text[] literal for a prepared statement's parameter (libpqxx 6 has no array conversion): every
// element double-quoted, with backslash and double quote escaped, so any text goes through unchanged.
std::string TextArrayLiteral(const std::vector<std::string_view>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

chat::v1::ChatMessage MessageFromRow(const pqxx::row& r) {
  chat::v1::ChatMessage m;
  m.set_room(r[0].as<std::string>());
  m.set_seq(r[1].as<int64_t>());
  m.set_id(r[2].as<std::string>());
  m.set_client_id(r[3].as<std::string>());
  m.set_from(r[4].as<std::string>());
  m.set_text(r[5].as<std::string>());
  m.set_kind(r[6].as<std::string>());
  *m.mutable_ts() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(r[7].as<int64_t>());
  return m;
}

absl::StatusOr<chat::v1::RoomInfo> ReadRoomInfo(pqxx::transaction_base& tx, const std::string& room) {
  pqxx::result r = tx.exec_prepared(kRoomInfo, room);
  if (r.empty()) return RoomNotFound(room);
  chat::v1::RoomInfo info;
  info.set_room(room);
  info.set_kind(KindFromText(r[0][0].as<std::string>()));
  info.set_last_seq(r[0][1].as<int64_t>());
  info.set_cleared_seq(r[0][2].as<int64_t>());
  info.set_member_count(r[0][3].as<int64_t>());
  return info;
}

}  // namespace

struct PgMessageStore::Connection {
  explicit Connection(const std::string& conninfo) : c(conninfo) {}
  pqxx::connection c;
};

PgMessageStore::PgMessageStore(std::string conninfo) : conninfo_(std::move(conninfo)) {}
PgMessageStore::~PgMessageStore() = default;

absl::Status PgMessageStore::Connect() {
  try {
    auto conn = std::make_unique<Connection>(conninfo_);
    pqxx::connection* c = &conn->c;
    c->prepare(kRoomAccess, kRoomAccessSql);
    c->prepare(kAppendBatch, kAppendBatchSql);
    c->prepare(kJoinRoom, kJoinRoomSql);
    c->prepare(kJoinRooms, kJoinRoomsSql);
    c->prepare(kRoomInfo, kRoomInfoSql);
    c->prepare(kAddMember, kAddMemberSql);
    c->prepare(kCreateRoom, kCreateRoomSql);
    c->prepare(kHistoryBefore, kHistoryBeforeSql);
    c->prepare(kHistoryAfter, kHistoryAfterSql);
    c->prepare(kRemoveMember, kRemoveMemberSql);
    c->prepare(kMute, kMuteSql);
    c->prepare(kUnmute, kUnmuteSql);
    c->prepare(kClear, kClearSql);
    c->prepare(kMarkRead, kMarkReadSql);
    c->prepare(kReadPosition, kReadPositionSql);
    conn_ = std::move(conn);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    conn_.reset();
    return absl::UnavailableError(absl::StrCat("postgres connect: ", e.what()));
  }
}

absl::Status PgMessageStore::EnsureConnected() {
  if (conn_ && conn_->c.is_open()) return absl::OkStatus();
  return Connect();
}

// Runs fn, turning libpqxx's exceptions into statuses at this boundary. A broken connection is dropped
// so the next call reconnects.
template <typename Fn>
auto PgMessageStore::Guarded(const char* what, Fn&& fn) -> decltype(fn()) {
  if (auto st = EnsureConnected(); !st.ok()) return st;
  try {
    return fn();
  } catch (const pqxx::broken_connection& e) {
    conn_.reset();
    return absl::UnavailableError(absl::StrCat(what, ": connection lost: ", e.what()));
  } catch (const pqxx::in_doubt_error& e) {
    conn_.reset();
    return absl::UnavailableError(absl::StrCat(what, ": commit in doubt: ", e.what()));
  } catch (const pqxx::unique_violation& e) {
    return absl::AbortedError(absl::StrCat(what, ": concurrent insert: ", e.what()));
  } catch (const pqxx::transaction_rollback& e) {
    return absl::AbortedError(absl::StrCat(what, ": rolled back: ", e.what()));
  } catch (const pqxx::sql_error& e) {
    // Postgres shutting down or restarting (57P01 admin_shutdown and friends) is "unavailable".
    if (e.sqlstate().rfind("57", 0) == 0 || e.sqlstate().rfind("08", 0) == 0) {
      conn_.reset();
      return absl::UnavailableError(absl::StrCat(what, ": ", e.what()));
    }
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  } catch (const std::exception& e) {
    if (conn_ && !conn_->c.is_open()) conn_.reset();
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

absl::StatusOr<std::vector<absl::StatusOr<AppendOutcome>>> PgMessageStore::AppendBatch(
    const std::vector<NewMessage>& batch) {
  using Result = absl::StatusOr<std::vector<absl::StatusOr<AppendOutcome>>>;
  return Guarded("append", [&]() -> Result {
    std::vector<absl::StatusOr<AppendOutcome>> out(batch.size(), absl::InternalError("unset"));
    // Rows are locked room by room in name order, so two writers (replicas) never deadlock; a stable
    // sort keeps each room's messages in arrival order, which is their seq order.
    std::vector<size_t> order(batch.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return batch[a].room < batch[b].room; });
    std::vector<std::string_view> rooms, senders, client_ids, bodies;
    for (size_t i : order) {
      rooms.push_back(batch[i].room);
      senders.push_back(batch[i].sender);
      client_ids.push_back(batch[i].client_id);
      bodies.push_back(batch[i].text);
    }
    // One statement in autocommit is its own transaction: atomic, committed when exec returns, and one
    // round trip instead of three (BEGIN, the call, COMMIT) on the writer's critical path.
    pqxx::nontransaction tx(conn_->c);
    pqxx::result rows = tx.exec_prepared(kAppendBatch, TextArrayLiteral(rooms), TextArrayLiteral(senders),
                                         TextArrayLiteral(client_ids), TextArrayLiteral(bodies));
    if (rows.size() != order.size()) {
      return absl::InternalError(
          absl::StrCat("append_batch answered ", rows.size(), " rows for ", order.size()));
    }
    for (size_t k = 0; k < order.size(); ++k) {
      const pqxx::row r = rows[static_cast<pqxx::result::size_type>(k)];
      const NewMessage& m = batch[order[k]];
      auto outcome = r[0].as<std::string>();
      absl::StatusOr<AppendOutcome>& slot = out[order[k]];
      if (outcome == "not_found") {
        slot = RoomNotFound(m.room);
      } else if (outcome == "forbidden") {
        slot = NotAMember(m.room);
      } else if (outcome == "muted") {
        slot = absl::FailedPreconditionError("you are muted");
      } else {
        chat::v1::ChatMessage msg;
        msg.set_room(r[1].as<std::string>());
        msg.set_seq(r[2].as<int64_t>());
        msg.set_id(r[3].as<std::string>());
        msg.set_client_id(r[4].as<std::string>());
        msg.set_from(r[5].as<std::string>());
        msg.set_text(r[6].is_null() ? m.text : r[6].as<std::string>());
        msg.set_kind(r[7].as<std::string>());
        *msg.mutable_ts() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(r[8].as<int64_t>());
        slot = AppendOutcome{std::move(msg), outcome == "duplicate"};
      }
    }
    return out;
  });
}

absl::StatusOr<chat::v1::RoomInfo> PgMessageStore::Join(const std::string& room, const std::string& user) {
  return Guarded("join", [&]() -> absl::StatusOr<chat::v1::RoomInfo> {
    // One statement is its own transaction: no BEGIN/COMMIT round trips.
    pqxx::nontransaction tx(conn_->c);
    pqxx::result r = tx.exec_prepared(kJoinRoom, room, user);
    auto outcome = r.empty() ? std::string("not_found") : r[0][0].as<std::string>();
    if (outcome == "not_found") return RoomNotFound(room);
    if (outcome == "forbidden") return NotAMember(room);
    chat::v1::RoomInfo info;
    info.set_room(room);
    info.set_kind(KindFromText(r[0][1].as<std::string>()));
    info.set_last_seq(r[0][2].as<int64_t>());
    info.set_cleared_seq(r[0][3].as<int64_t>());
    info.set_member_count(r[0][4].as<int64_t>());
    return info;
  });
}

absl::StatusOr<std::vector<absl::StatusOr<chat::v1::RoomInfo>>> PgMessageStore::JoinBatch(
    const std::vector<RoomJoin>& joins) {
  using Result = absl::StatusOr<std::vector<absl::StatusOr<chat::v1::RoomInfo>>>;
  return Guarded("join_batch", [&]() -> Result {
    std::vector<std::string_view> rooms, users;
    for (const auto& j : joins) {
      rooms.push_back(j.room);
      users.push_back(j.user);
    }
    // One statement in autocommit: its own transaction, one round trip.
    pqxx::nontransaction tx(conn_->c);
    pqxx::result rows = tx.exec_prepared(kJoinRooms, TextArrayLiteral(rooms), TextArrayLiteral(users));
    if (rows.size() != joins.size()) {
      return absl::InternalError(
          absl::StrCat("join_rooms answered ", rows.size(), " rows for ", joins.size()));
    }
    std::vector<absl::StatusOr<chat::v1::RoomInfo>> out;
    out.reserve(joins.size());
    for (size_t i = 0; i < joins.size(); ++i) {
      const pqxx::row r = rows[static_cast<pqxx::result::size_type>(i)];
      auto outcome = r[0].as<std::string>();
      if (outcome == "not_found") {
        out.push_back(RoomNotFound(joins[i].room));
      } else if (outcome == "forbidden") {
        out.push_back(NotAMember(joins[i].room));
      } else {
        chat::v1::RoomInfo info;
        info.set_room(joins[i].room);
        info.set_kind(KindFromText(r[1].as<std::string>()));
        info.set_last_seq(r[2].as<int64_t>());
        info.set_cleared_seq(r[3].as<int64_t>());
        out.push_back(std::move(info));
      }
    }
    return out;
  });
}

absl::StatusOr<chat::v1::HistoryPage> PgMessageStore::History(const chat::v1::HistoryRequest& req) {
  return Guarded("history", [&]() -> absl::StatusOr<chat::v1::HistoryPage> {
    pqxx::read_transaction tx(conn_->c);
    pqxx::result access = tx.exec_prepared(kRoomAccess, req.room(), req.user());
    if (access.empty()) return RoomNotFound(req.room());
    bool is_public = access[0][0].as<std::string>() == "public";
    if (!req.user().empty() && !is_public && !access[0][1].as<bool>()) {
      return NotAMember(req.room());
    }
    auto info = ReadRoomInfo(tx, req.room());
    if (!info.ok()) return info.status();
    int64_t limit = std::max<int64_t>(1, req.limit());
    chat::v1::HistoryPage page;
    page.set_room(req.room());
    pqxx::result rows;
    bool forward = req.before_seq() <= 0 && req.after_seq() > 0;
    if (forward) {
      rows = tx.exec_prepared(kHistoryAfter, req.room(), req.after_seq(), info->cleared_seq(), limit + 1);
    } else {
      int64_t before = req.before_seq() > 0 ? req.before_seq() : info->last_seq() + 1;
      rows = tx.exec_prepared(kHistoryBefore, req.room(), before, info->cleared_seq(), limit + 1);
    }
    size_t n = std::min<size_t>(rows.size(), static_cast<size_t>(limit));
    page.set_has_more(rows.size() > n);
    for (size_t i = 0; i < n; ++i) {
      // Backward pages come newest first from the index; clients always get ascending seq.
      const pqxx::row& r = forward ? rows[i] : rows[n - 1 - i];
      *page.add_messages() = MessageFromRow(r);
    }
    return page;
  });
}

absl::StatusOr<chat::v1::RoomInfo> PgMessageStore::GetRoom(const std::string& room) {
  return Guarded("get_room", [&]() -> absl::StatusOr<chat::v1::RoomInfo> {
    pqxx::read_transaction tx(conn_->c);
    return ReadRoomInfo(tx, room);
  });
}

absl::StatusOr<chat::v1::RoomInfo> PgMessageStore::CreateRoom(const std::string& room,
                                                              chat::v1::RoomKind kind,
                                                              const std::vector<std::string>& members) {
  return Guarded("create_room", [&]() -> absl::StatusOr<chat::v1::RoomInfo> {
    pqxx::work tx(conn_->c);
    tx.exec_prepared(kCreateRoom, room, KindToText(kind));
    for (const auto& u : members) tx.exec_prepared(kAddMember, room, u);
    auto info = ReadRoomInfo(tx, room);
    tx.commit();
    return info;
  });
}

absl::StatusOr<chat::v1::RoomInfo> PgMessageStore::AddMember(const std::string& room,
                                                             const std::string& user) {
  return Guarded("add_member", [&]() -> absl::StatusOr<chat::v1::RoomInfo> {
    pqxx::work tx(conn_->c);
    auto info = ReadRoomInfo(tx, room);
    if (!info.ok()) return info;
    tx.exec_prepared(kAddMember, room, user);
    info = ReadRoomInfo(tx, room);
    tx.commit();
    return info;
  });
}

absl::StatusOr<chat::v1::RoomInfo> PgMessageStore::RemoveMember(const std::string& room,
                                                                const std::string& user) {
  return Guarded("remove_member", [&]() -> absl::StatusOr<chat::v1::RoomInfo> {
    pqxx::work tx(conn_->c);
    auto info = ReadRoomInfo(tx, room);
    if (!info.ok()) return info;
    tx.exec_prepared(kRemoveMember, room, user);
    info = ReadRoomInfo(tx, room);
    tx.commit();
    return info;
  });
}

absl::Status PgMessageStore::Mute(const std::string& room, const std::string& user, int64_t seconds,
                                  const std::string& by) {
  return Guarded("mute", [&]() -> absl::Status {
    pqxx::work tx(conn_->c);
    tx.exec_prepared(kMute, room, user, seconds, by);
    tx.commit();
    return absl::OkStatus();
  });
}

absl::Status PgMessageStore::Unmute(const std::string& room, const std::string& user) {
  return Guarded("unmute", [&]() -> absl::Status {
    pqxx::work tx(conn_->c);
    tx.exec_prepared(kUnmute, room, user);
    tx.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> PgMessageStore::Clear(const std::string& room) {
  return Guarded("clear", [&]() -> absl::StatusOr<int64_t> {
    pqxx::work tx(conn_->c);
    pqxx::result r = tx.exec_prepared(kClear, room);
    if (r.empty()) return RoomNotFound(room);
    tx.commit();
    return r[0][0].as<int64_t>();
  });
}

absl::StatusOr<std::pair<int64_t, bool>> PgMessageStore::MarkRead(const std::string& room,
                                                                  const std::string& user, int64_t seq) {
  using Result = absl::StatusOr<std::pair<int64_t, bool>>;
  return Guarded("mark_read", [&]() -> Result {
    pqxx::work tx(conn_->c);
    pqxx::result moved = tx.exec_prepared(kMarkRead, room, user, seq);
    if (!moved.empty()) {
      tx.commit();
      return std::make_pair(moved[0][0].as<int64_t>(), true);
    }
    pqxx::result pos = tx.exec_prepared(kReadPosition, room, user);
    if (pos.empty()) return NotAMember(room);
    return std::make_pair(pos[0][0].as<int64_t>(), false);
  });
}

absl::Status ApplyMigrations(const std::string& conninfo) {
  try {
    pqxx::connection c(conninfo);
    pqxx::nontransaction admin(c);
    // One id for this service's migration lock, arbitrary but fixed.
    admin.exec("SELECT pg_advisory_lock(727274001)");
    admin.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())");
    pqxx::result done = admin.exec("SELECT version FROM schema_migrations");
    std::vector<int> applied;
    for (const auto& r : done) applied.push_back(r[0].as<int>());
    admin.commit();
    for (const Migration& m : AllMigrations()) {
      if (std::find(applied.begin(), applied.end(), m.version) != applied.end()) continue;
      pqxx::work tx(c);
      tx.exec(std::string(m.sql));
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                     std::string(m.name));
      tx.commit();
      log::Info("migration applied", {{"version", m.version}, {"name", m.name}});
    }
    pqxx::nontransaction unlock(c);
    unlock.exec("SELECT pg_advisory_unlock(727274001)");
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("migrations: ", e.what()));
  }
}

}  // namespace chat::messages
