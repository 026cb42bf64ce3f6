#!/usr/bin/env bash
# shellcheck disable=SC2034  # LOG_TAG is read by log() in scripts/lib/infra.sh
# docker-compose.yml's topology without Docker: real PostgreSQL and Redis, chat-messages,
# chat-presence, two chat-gateway replicas and nginx running deploy/nginx/chat.conf in front of them
# (upstream names and the listen port rewritten to 127.0.0.1 ports), everything on 127.0.0.1. Checks:
#   - the migration Job's command (chat-messages with MIGRATE_ONLY=1) exits 0;
#   - deploy/docker/chat-healthcheck (the image's HEALTHCHECK) says each service is healthy, and says
#     "unhealthy" for a stopped gateway;
#   - through nginx (tests/deploy/lb_smoke.mjs): the web page, /readyz, the dev login, WebSocket
#     upgrade to both replicas, a message from a client on one replica reaching a client on the other,
#     drain: SIGTERM to a replica closes its clients with 1001 and a reconnect through nginx lands on
#     the other replica, which exits 0;
#   - every metric the Grafana dashboard (deploy/grafana/chat-suite.json) queries is served live;
#   - no token in the services' logs or in nginx's access log.
# Env: CHAT_BIN_DIR (build/release/bin), CHAT_TEST_ENV_FILE (servers of the CTest fixture; without it
# the test starts its own with tests/support/servers.sh). Exits 77 (skipped) without nginx, node or the
# ws package outside CI.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOG_TAG="lb-smoke"
# shellcheck source=../../scripts/lib/infra.sh
source "$ROOT/scripts/lib/infra.sh"

skip() {
  if [[ "${CI:-}" == true ]]; then die "$* (needed in CI; scripts/deps.sh installs it)"; fi
  log "SKIP: $*"
  exit 77
}

BIN=${CHAT_BIN_DIR:-$ROOT/build/release/bin}
for b in chat-messages chat-presence chat-gateway; do
  [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing (scripts/build.sh release)"
done
NGINX=$(command -v nginx || true)
[[ -n "$NGINX" || ! -x /usr/sbin/nginx ]] || NGINX=/usr/sbin/nginx
[[ -n "$NGINX" ]] || skip "nginx is not installed"
command -v node >/dev/null 2>&1 || skip "node is not installed"
[[ -d "$ROOT/tests/e2e/node_modules/ws" ]] || skip "tests/e2e/node_modules/ws is missing (npm ci in tests/e2e)"
HEALTH="$ROOT/deploy/docker/chat-healthcheck"

WORK=$(mktemp -d /tmp/chat-lb-smoke.XXXXXX)
chmod 0755 "$WORK"
PIDS=()
NAMES=()
OWN_SERVERS=""
ok=0
cleanup() {
  local rc=$? i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do wait "${PIDS[i]}" 2>/dev/null || true; done
  if [[ -n "$OWN_SERVERS" ]]; then bash "$ROOT/tests/support/servers.sh" stop "$OWN_SERVERS" >/dev/null 2>&1 || true; fi
  if ((rc != 0 || ok == 0)); then
    for i in "${!NAMES[@]}"; do
      log "---- last lines of ${NAMES[i]}.log"
      tail -n 15 "$WORK/${NAMES[i]}.log" >&2 2>/dev/null || true
    done
    tail -n 15 "$WORK/nginx/error.log" >&2 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- PostgreSQL + Redis ---------------------------------------------------------------------------
env_file=${CHAT_TEST_ENV_FILE:-}
if [[ -z "$env_file" || ! -r "$env_file" ]]; then
  OWN_SERVERS="$WORK/servers"
  bash "$ROOT/tests/support/servers.sh" start "$OWN_SERVERS" >"$WORK/servers.log" 2>&1 || {
    cat "$WORK/servers.log" >&2
    die "could not start PostgreSQL and Redis"
  }
  env_file="$OWN_SERVERS/env"
fi
DATABASE_URL=$(grep -oP '^DATABASE_URL=\K.*' "$env_file")
REDIS_ADDR=$(grep -oP '^REDIS_ADDR=\K.*' "$env_file")

# ---- the services ---------------------------------------------------------------------------------
start() { # NAME BINARY VAR=VALUE...
  local name=$1 bin=$2
  shift 2
  env LOG_LEVEL=info REDIS_ADDR="$REDIS_ADDR" "$@" "$BIN/$bin" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  NAMES+=("$name")
}
# wait_healthy NAME PID SERVICE VAR=VALUE: polls chat-healthcheck SERVICE with VAR set, 60 s at most.
wait_healthy() {
  local name=$1 pid=$2 svc=$3 var=$4 i
  for ((i = 0; i < 300; i++)); do
    if env "$var" bash "$HEALTH" "$svc" 2>/dev/null; then
      log "ok - chat-healthcheck $svc: $name healthy"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || die "$name exited"
    sleep 0.2
  done
  die "$name not healthy after 60 s"
}

# The migration Job's command (deploy/k8s/base/migrate-job.yaml): chat-messages with MIGRATE_ONLY=1
# applies the migrations and exits 0 without serving.
if ! env LOG_LEVEL=info DATABASE_URL="$DATABASE_URL" MIGRATE_ONLY=1 \
  timeout 90 "$BIN/chat-messages" >"$WORK/migrate.log" 2>&1; then
  cat "$WORK/migrate.log" >&2
  die "chat-messages with MIGRATE_ONLY=1 did not exit 0"
fi
log "ok - chat-messages MIGRATE_ONLY=1 (the migration Job) exits 0"

mg=$(pick_free_port) mm=$(pick_free_port) pg=$(pick_free_port) pm=$(pick_free_port)
start messages chat-messages MESSAGES_GRPC_ADDR="127.0.0.1:$mg" MESSAGES_METRICS_ADDR="127.0.0.1:$mm" \
  DATABASE_URL="$DATABASE_URL"
wait_healthy messages "${PIDS[-1]}" messages MESSAGES_METRICS_ADDR="127.0.0.1:$mm"
start presence chat-presence PRESENCE_GRPC_ADDR="127.0.0.1:$pg" PRESENCE_METRICS_ADDR="127.0.0.1:$pm"
wait_healthy presence "${PIDS[-1]}" presence PRESENCE_METRICS_ADDR="127.0.0.1:$pm"

declare -A GW_PORT GW_PID
for id in gw-a gw-b; do
  GW_PORT[$id]=$(pick_free_port)
  start "$id" chat-gateway GATEWAY_ID="$id" GATEWAY_HTTP_ADDR="127.0.0.1:${GW_PORT[$id]}" \
    GATEWAY_GRPC_ADDR="127.0.0.1:$(pick_free_port)" MESSAGES_ADDR="127.0.0.1:$mg" PRESENCE_ADDR="127.0.0.1:$pg" \
    JWT_SECRET=lb-smoke-secret-0123456789abcdef DEV_LOGIN=1 WEB_ROOT="$ROOT/services/gateway/web"
  GW_PID[$id]=${PIDS[-1]}
done
for id in gw-a gw-b; do
  wait_healthy "$id" "${GW_PID[$id]}" gateway GATEWAY_HTTP_ADDR="127.0.0.1:${GW_PORT[$id]}"
done

# ---- nginx with deploy/nginx/chat.conf --------------------------------------------------------------
lb=$(pick_free_port)
mkdir -p "$WORK/nginx"
sed -e "s/server gateway-1:8080/server 127.0.0.1:${GW_PORT[gw-a]}/" \
  -e "s/server gateway-2:8080/server 127.0.0.1:${GW_PORT[gw-b]}/" \
  -e "s/^\([[:space:]]*\)listen 80;/\1listen 127.0.0.1:$lb;/" \
  "$ROOT/deploy/nginx/chat.conf" >"$WORK/nginx/chat.conf"
for want in "server 127.0.0.1:${GW_PORT[gw-a]}" "server 127.0.0.1:${GW_PORT[gw-b]}" "listen 127.0.0.1:$lb;"; do
  grep -qF "$want" "$WORK/nginx/chat.conf" ||
    die "deploy/nginx/chat.conf changed shape: could not rewrite it to '$want' (keep 'server gateway-1:8080', 'server gateway-2:8080', 'listen 80;')"
done
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 256; }
http {
  access_log $WORK/nginx/access.log;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  include $WORK/nginx/chat.conf;
}
CONF
"$NGINX" -t -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/test.log" 2>&1 || {
  cat "$WORK/nginx/test.log" >&2
  die "nginx -t refused deploy/nginx/chat.conf"
}
log "ok - nginx -t accepts deploy/nginx/chat.conf ($("$NGINX" -v 2>&1 | sed 's/.*: //'))"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)
NAMES+=(nginx)
for ((i = 0; i < 100; i++)); do
  (exec 3<>"/dev/tcp/127.0.0.1/$lb") 2>/dev/null && break
  sleep 0.1
done

# ---- through the load balancer ----------------------------------------------------------------------
LB_URL="http://127.0.0.1:$lb" GATEWAY_PIDS="gw-a:${GW_PID[gw-a]},gw-b:${GW_PID[gw-b]}" DRAINED_FILE="$WORK/drained" \
  METRICS_URLS="http://127.0.0.1:$mm/metrics,http://127.0.0.1:$pm/metrics" \
  node "$ROOT/tests/deploy/lb_smoke.mjs"

# The drained gateway exits by itself, with status 0, and its health check then says unhealthy.
drained=$(cat "$WORK/drained")
pid=${GW_PID[$drained]}
for ((i = 0; i < 100; i++)); do
  state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || echo gone)
  [[ "$state" == Z || "$state" == gone ]] && break
  sleep 0.1
done
[[ "$state" == Z || "$state" == gone ]] || die "$drained did not exit within 10 s of SIGTERM"
status=0
wait "$pid" || status=$?
((status == 0)) || die "$drained exited with status $status after SIGTERM"
log "ok - $drained exited 0 after draining"
if GATEWAY_HTTP_ADDR="127.0.0.1:${GW_PORT[$drained]}" bash "$HEALTH" gateway 2>/dev/null; then
  die "chat-healthcheck says the stopped gateway $drained is healthy"
fi
log "ok - chat-healthcheck gateway: the stopped $drained is unhealthy"

# No tokens in logs: the services' JSON logs and nginx's access log (chat_noquery format).
if grep -l 'eyJ[A-Za-z0-9_-]*\.eyJ' "$WORK"/{messages,presence,gw-a,gw-b,nginx}.log 2>/dev/null; then
  die "a token appears in the logs above"
fi
grep -q 'GET /ws ' "$WORK/nginx.log" || die "nginx's access log does not show the WebSocket requests"
log "ok - no token in the services' logs or nginx's access log"
ok=1
log "lb smoke passed"
