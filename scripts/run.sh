#!/usr/bin/env bash
# shellcheck disable=SC2034  # LOG_TAG is read by log() in scripts/lib/infra.sh
# Runs the whole chat suite locally: PostgreSQL + Redis (data kept in ./.data between runs),
# chat-messages, chat-presence and one chat-gateway with DEV_LOGIN=1. Ctrl-C stops everything.
#
#   scripts/run.sh
#
# Env: HTTP_PORT (8080), PG_PORT (55432), REDIS_PORT (56379): used when free, else a free port is picked.
#      DATA_DIR (./.data), SKIP_DEPS=1, SKIP_BUILD=1, CHAT_BIN_DIR (build/release/bin), LOG_LEVEL (info).
# Files: .data/pg (cluster), .data/redis, .data/jwt_secret (made once), .data/logs/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOG_TAG=run # read by log() in lib/infra.sh
# shellcheck source=lib/infra.sh
source scripts/lib/infra.sh

if [[ "${SKIP_DEPS:-0}" != 1 ]]; then bash scripts/deps.sh; fi
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then bash scripts/build.sh release; fi

BIN=${CHAT_BIN_DIR:-$ROOT/build/release/bin}
for b in chat-messages chat-presence chat-gateway; do
  [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing (build with scripts/build.sh release)"
done

DATA=${DATA_DIR:-$ROOT/.data}
mkdir -p "$DATA/logs"
DATA=$(cd "$DATA" && pwd)
chmod 0755 "$DATA"

# ---- stop everything on exit ----------------------------------------------------------------------
PIDS=() # service pids, in start order
NAMES=()
PG_DATA=""
stopping=0
cleanup() {
  ((stopping)) && return
  stopping=1
  trap - INT TERM
  log "stopping"
  local i pid n
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do # gateway first, messages last
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || true
    for ((n = 0; n < 100; n++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "${NAMES[i]} did not stop in 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  redis_stop "$DATA/redis"
  if [[ -n "$PG_DATA" ]]; then pg_stop "$PG_DATA"; fi
  log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- PostgreSQL -----------------------------------------------------------------------------------
PG_DATA="$DATA/pg"
if [[ -L "$PG_DATA" ]]; then
  PG_DATA=$(readlink "$PG_DATA")
elif [[ ! -e "$PG_DATA" ]] && ! pg_can_enter "$DATA"; then
  # The postgres user cannot reach ./.data (a parent folder is closed): keep the cluster in /var/tmp.
  outer="/var/tmp/chat-data-$(printf '%s' "$DATA" | sha1sum | cut -c1-12)"
  mkdir -p "$outer"
  chmod 0755 "$outer"
  ln -s "$outer/pg" "$DATA/pg"
  PG_DATA="$outer/pg"
fi
if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
  log "creating the PostgreSQL cluster in $PG_DATA (first run)"
  rm -rf "$PG_DATA"
  pg_init "$PG_DATA" || die "initdb failed"
fi
pg_stop "$PG_DATA" # left running by a run that was killed
pg_port=$(pg_start_retry "$PG_DATA" "${PG_PORT:-55432}") || die "PostgreSQL did not start; see $PG_DATA/postgres.log"
pg_ensure_chat_db "$pg_port" || die "could not create the chat database"
log "postgres on 127.0.0.1:$pg_port (data $PG_DATA)"

# ---- Redis ----------------------------------------------------------------------------------------
redis_stop "$DATA/redis"
redis_port=$(redis_start_retry "$DATA/redis" "${REDIS_PORT:-56379}" persist) || die "Redis did not start; see $DATA/redis/redis.log"
log "redis on 127.0.0.1:$redis_port"

# ---- secret, ports --------------------------------------------------------------------------------
if [[ ! -s "$DATA/jwt_secret" ]]; then
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$DATA/jwt_secret")
fi
JWT_SECRET=$(cat "$DATA/jwt_secret")

http_port=$(port_or_free "${HTTP_PORT:-8080}")
[[ "$http_port" == "${HTTP_PORT:-8080}" ]] || log "port ${HTTP_PORT:-8080} is busy; the gateway uses $http_port"
messages_port=$(port_or_free 50051)
presence_port=$(port_or_free 50052)
gateway_grpc_port=$(port_or_free 9090)
messages_metrics=$(port_or_free 9101)
presence_metrics=$(port_or_free 9102)

common=(LOG_LEVEL="${LOG_LEVEL:-info}" REDIS_ADDR="127.0.0.1:$redis_port")

# start NAME BINARY VAR=VALUE...: runs BINARY in the background with its output in .data/logs/NAME.log.
start() {
  local name=$1 bin=$2
  shift 2
  printf '\n===== %s start %s =====\n' "$name" "$(date -Is)" >>"$DATA/logs/$name.log"
  env "${common[@]}" "$@" "$BIN/$bin" >>"$DATA/logs/$name.log" 2>&1 &
  PIDS+=($!)
  NAMES+=("$name")
  log "$name started (pid $!, log $DATA/logs/$name.log)"
}

# HTTP status of GET http://127.0.0.1:PORT/PATH, or 000 when nothing answers.
http_status() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1$2" || true
  else
    local line
    line=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3 &&
      timeout 2 head -n1 <&3) 2>/dev/null || true)
    line=${line#HTTP/1.? }
    echo "${line:0:3}"
  fi
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until NAME PID SECONDS COMMAND...: polls COMMAND until it succeeds; fails if PID exits.
wait_until() {
  local name=$1 pid=$2 secs=$3 i
  shift 3
  for ((i = 0; i < secs * 5; i++)); do
    if "$@"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited; last lines of $DATA/logs/$name.log:"
      tail -n 20 "$DATA/logs/$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
  log "$name not ready after $secs s; last lines of $DATA/logs/$name.log:"
  tail -n 20 "$DATA/logs/$name.log" >&2
  return 1
}

# A port that was free when checked can be taken before the service binds it: the defaults (50051,
# 50052, 9090, ...) lie in the kernel's ephemeral range, where outgoing connections get their ports
# (seen here: presence could not listen on 50052 right after messages had connected to its servers).
# A service that says it could not listen is started again on freshly picked ports, up to 3 times.
could_not_listen() { tail -n 5 "$DATA/logs/$1.log" | grep -qE '"msg":"cannot (listen|serve metrics)"'; }
retry_ports() { # NAME ATTEMPT: true if NAME may be started again (its failed start forgotten)
  ((${2} < 3)) && could_not_listen "$1" || return 1
  unset 'PIDS[-1]' 'NAMES[-1]'
}

for attempt in 1 2 3; do
  start messages chat-messages \
    MESSAGES_GRPC_ADDR="0.0.0.0:$messages_port" MESSAGES_METRICS_ADDR="0.0.0.0:$messages_metrics" \
    DATABASE_URL="postgresql://chat@127.0.0.1:$pg_port/chat"
  wait_until messages "${PIDS[-1]}" 60 tcp_open "$messages_port" && break
  retry_ports messages "$attempt" || exit 1
  messages_port=$(pick_free_port) && messages_metrics=$(pick_free_port) || die "no free port"
  log "messages: trying again on ports $messages_port, $messages_metrics"
done

for attempt in 1 2 3; do
  start presence chat-presence \
    PRESENCE_GRPC_ADDR="0.0.0.0:$presence_port" PRESENCE_METRICS_ADDR="0.0.0.0:$presence_metrics"
  wait_until presence "${PIDS[-1]}" 60 tcp_open "$presence_port" && break
  retry_ports presence "$attempt" || exit 1
  presence_port=$(pick_free_port) && presence_metrics=$(pick_free_port) || die "no free port"
  log "presence: trying again on ports $presence_port, $presence_metrics"
done

ready() { [[ "$(http_status "$http_port" /readyz)" == 200 ]]; }
for attempt in 1 2 3; do
  start gateway chat-gateway \
    GATEWAY_HTTP_ADDR="0.0.0.0:$http_port" GATEWAY_GRPC_ADDR="0.0.0.0:$gateway_grpc_port" \
    GATEWAY_ID="gateway-$(hostname)-local" \
    MESSAGES_ADDR="127.0.0.1:$messages_port" PRESENCE_ADDR="127.0.0.1:$presence_port" \
    JWT_SECRET="$JWT_SECRET" DEV_LOGIN=1 WEB_ROOT="$ROOT/services/gateway/web"
  wait_until gateway "${PIDS[-1]}" 60 ready && break
  retry_ports gateway "$attempt" || exit 1
  http_port=$(pick_free_port) && gateway_grpc_port=$(pick_free_port) || die "no free port"
  log "gateway: trying again on ports $http_port (HTTP), $gateway_grpc_port (gRPC)"
done

# A token for "alice", valid 24 h, signed like the gateway expects (HS256).
token=$(JWT_SECRET="$JWT_SECRET" node -e '
  const c = require("crypto"); const b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const h = b({ alg: "HS256", typ: "JWT" }), p = b({ sub: "alice", exp: Math.floor(Date.now() / 1000) + 86400 });
  const s = c.createHmac("sha256", process.env.JWT_SECRET).update(h + "." + p).digest("base64url");
  console.log(h + "." + p + "." + s);' 2>/dev/null || true)

cat <<EOF

  Chat is running:  http://localhost:$http_port/

  messages gRPC 127.0.0.1:$messages_port, presence gRPC 127.0.0.1:$presence_port, gateway gRPC 127.0.0.1:$gateway_grpc_port
  postgres postgresql://chat@127.0.0.1:$pg_port/chat, redis 127.0.0.1:$redis_port
  logs: $DATA/logs/

  Dev login:  curl -s -X POST -H 'Content-Type: application/json' -d '{"user":"bob"}' http://localhost:$http_port/api/login
  Token for alice (24 h):
    $token
  Try it:
    npx wscat -c "ws://localhost:$http_port/ws?token=$token"
    > {"ref":1,"join":{"room":"general"}}
    > {"ref":2,"send":{"room":"general","clientId":"$(cat /proc/sys/kernel/random/uuid)","text":"hello"}}

  Ctrl-C stops everything.
EOF

# Run until Ctrl-C / SIGTERM, or until a service dies.
set +e
wait -n "${PIDS[@]}"
rc=$?
for i in "${!PIDS[@]}"; do
  if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
    log "${NAMES[i]} exited (status $rc); last lines of $DATA/logs/${NAMES[i]}.log:"
    tail -n 20 "$DATA/logs/${NAMES[i]}.log" >&2
  fi
done
exit 1
