# shellcheck shell=bash
# Helpers shared by scripts/run.sh and tests/support/servers.sh: find PostgreSQL, pick free ports,
# create/start/stop a private PostgreSQL cluster and a private Redis. Source it; it defines functions only.

log() { printf '[%s] %s\n' "${LOG_TAG:-chat}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# PostgreSQL server binaries are not on PATH on Debian; PG_BIN overrides.
find_pg_bin() {
  if [[ -n "${PG_BIN:-}" && -x "$PG_BIN/initdb" ]]; then echo "$PG_BIN"; return 0; fi
  local d
  for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -Vr); do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
  return 1
}

# True when nothing listens on 127.0.0.1:PORT (TCP).
port_is_free() {
  local port=$1
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 1; fi
  if command -v ss >/dev/null 2>&1; then
    [[ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]] || return 1
  fi
  return 0
}

# Prints a random free port in 20000-60000, outside the kernel's ephemeral range when that leaves room
# (an outgoing connection can otherwise grab the port between our probe and the server's bind).
pick_free_port() {
  local lo=20000 hi=60000 elo=32768 port i
  if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
    read -r elo _ </proc/sys/net/ipv4/ip_local_port_range || true
  fi
  local below=$((elo - lo))
  for ((i = 0; i < 200; i++)); do
    if ((below >= 2000)); then
      port=$((lo + (RANDOM * 32768 + RANDOM) % below))
    else
      port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
    fi
    if port_is_free "$port"; then echo "$port"; return 0; fi
  done
  return 1
}

# Use PORT when it is free, else a random free one.
port_or_free() {
  if [[ -n "${1:-}" ]] && port_is_free "$1"; then echo "$1"; else pick_free_port; fi
}

is_root() { [[ "$(id -u)" == 0 ]]; }

# Runs a PostgreSQL server command as the postgres system user when we are root (postgres refuses root).
as_pg() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# True when the user that runs PostgreSQL can enter DIR (every parent needs +x for it).
pg_can_enter() {
  if is_root; then (cd / && runuser -u postgres -- test -x "$1" -a -r "$1"); else test -x "$1"; fi
}

# Unix socket paths are limited to 107 bytes; prints DIR when its socket fits, else nothing (TCP only).
pg_socket_dir_for() {
  local dir=$1 port=$2
  if (( ${#dir} + ${#port} + 10 < 100 )); then echo "$dir"; else echo ""; fi
}

# pg_init DATA: initdb a trust-auth, UTF-8 cluster into DATA (created, owned by the server user).
pg_init() {
  local data=$1 bin
  bin=$(find_pg_bin) || die "PostgreSQL server binaries not found (install postgresql)"
  mkdir -p "$data"
  if is_root; then chown postgres: "$data"; fi
  chmod 0700 "$data"
  as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
    --no-instructions >"$data.initdb.log" 2>&1 || { cat "$data.initdb.log" >&2; return 1; }
  rm -f "$data.initdb.log"
  cat >>"$data/postgresql.conf" <<'EOF'

# chat: private cluster settings
listen_addresses = '127.0.0.1'
max_connections = 100
shared_buffers = 64MB
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
}

# pg_start DATA PORT [fast]: starts the cluster on 127.0.0.1:PORT and waits until it accepts
# connections. "fast" turns off fsync (throwaway clusters). Returns non-zero when it did not start
# (for example the port was taken meanwhile); the reason is at the end of DATA/postgres.log.
pg_start() {
  local data=$1 port=$2 mode=${3:-} bin sock opts
  bin=$(find_pg_bin) || die "PostgreSQL server binaries not found"
  sock=$(pg_socket_dir_for "$data" "$port")
  opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sock'"
  if [[ "$mode" == fast ]]; then
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  as_pg "$bin/pg_ctl" start -D "$data" -w -t 60 -l "$data/postgres.log" -o "$opts" >/dev/null 2>&1 || return 1
  local i
  for ((i = 0; i < 100; i++)); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U postgres; then return 0; fi
    sleep 0.1
  done
  return 1
}

# pg_stop DATA: fast shutdown; quiet and successful when it is not running.
pg_stop() {
  local data=$1 bin
  bin=$(find_pg_bin) || return 0
  [[ -f "$data/postmaster.pid" ]] || return 0
  as_pg "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null 2>&1 ||
    as_pg "$bin/pg_ctl" stop -D "$data" -m immediate -w -t 30 >/dev/null 2>&1 || true
}

# pg_start_retry DATA PREFERRED_PORT [fast]: starts on PREFERRED_PORT (or a free one), trying new free
# ports when the start fails because of a port race. Prints the port it listens on.
pg_start_retry() {
  local data=$1 want=${2:-} mode=${3:-} port try
  for ((try = 1; try <= 8; try++)); do
    if ((try == 1)); then port=$(port_or_free "$want"); else port=$(pick_free_port); fi
    [[ -n "$port" ]] || continue
    if pg_start "$data" "$port" "$mode"; then echo "$port"; return 0; fi
    log "postgres did not start on port $port (try $try); log tail:"
    tail -n 5 "$data/postgres.log" >&2 2>/dev/null || true
    pg_stop "$data"
  done
  return 1
}

# pg_ensure_chat_db PORT: role "chat" and database "chat" owned by it (idempotent).
pg_ensure_chat_db() {
  local port=$1 bin psql
  bin=$(find_pg_bin) || die "PostgreSQL client not found"
  psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres -tA)
  if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='chat'")" != 1 ]]; then
    "${psql[@]}" -c "CREATE ROLE chat LOGIN" >/dev/null
  fi
  if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='chat'")" != 1 ]]; then
    "${psql[@]}" -c "CREATE DATABASE chat OWNER chat" >/dev/null
  fi
}

# redis_start DIR PORT [persist]: starts redis-server daemonized on 127.0.0.1:PORT with its files in
# DIR and waits until that very process answers. Without "persist" it keeps nothing on disk.
redis_start() {
  local dir=$1 port=$2 mode=${3:-} i pid
  mkdir -p "$dir"
  rm -f "$dir/redis.pid"
  local persist=(--save "" --appendonly no)
  if [[ "$mode" == persist ]]; then persist=(--save "60 1" --appendonly no --dbfilename dump.rdb); fi
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$dir" \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "${persist[@]}" >/dev/null 2>&1 || return 1
  for ((i = 0; i < 100; i++)); do
    pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      # Make sure the server on that port is ours, not another one that won a port race.
      if [[ "$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r' |
        sed -n 's/^process_id://p')" == "$pid" ]]; then
        return 0
      fi
    elif ((i > 20)); then
      return 1
    fi
    sleep 0.1
  done
  redis_stop "$dir"
  return 1
}

redis_stop() {
  local dir=$1 pid i
  pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/redis.pid"
}

redis_start_retry() {
  local dir=$1 want=${2:-} mode=${3:-} port try
  for ((try = 1; try <= 8; try++)); do
    if ((try == 1)); then port=$(port_or_free "$want"); else port=$(pick_free_port); fi
    [[ -n "$port" ]] || continue
    if redis_start "$dir" "$port" "$mode"; then echo "$port"; return 0; fi
    log "redis did not start on port $port (try $try); log tail:"
    tail -n 5 "$dir/redis.log" >&2 2>/dev/null || true
  done
  return 1
}
