#!/usr/bin/env bash
# shellcheck disable=SC2034  # LOG_TAG is read by log() in scripts/lib/infra.sh
# Throwaway PostgreSQL + Redis for tests.
#
#   servers.sh start DIR   creates DIR, starts PostgreSQL (data in DIR/pg, trust auth, fsync off,
#                          127.0.0.1 on a free port, database "chat" owned by role "chat") and Redis
#                          (DIR/redis, free port, nothing on disk), waits until both accept connections,
#                          and writes DIR/env (KEY=VALUE lines: DATABASE_URL, REDIS_ADDR, PG_PORT,
#                          REDIS_PORT, PG_BIN, PG_DATA). Exit 0 when both run; on failure it stops what
#                          it started and exits non-zero. Leftovers of an interrupted run in DIR are
#                          stopped and removed first.
#   servers.sh stop DIR    stops both (best effort, always exits 0) and removes DIR.
#
# Several copies may run at once with different DIRs. As root, PostgreSQL runs as the "postgres" user.
set -euo pipefail

LOG_TAG=servers.sh # read by log() in scripts/lib/infra.sh
# shellcheck source=../../scripts/lib/infra.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib" && pwd)/infra.sh"

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2
[[ -n "$dir" && "$dir" != / ]] || usage

# The real location of the PostgreSQL data dir: DIR/pg, or where the DIR/pg symlink points when DIR
# was not reachable for the postgres user.
pg_data_of() {
  if [[ -L "$1/pg" ]]; then readlink "$1/pg"; else echo "$1/pg"; fi
}

stop_all() {
  local d=$1 data
  data=$(pg_data_of "$d")
  if [[ -d "$data" ]]; then pg_stop "$data"; fi
  if [[ -d "$d/redis" ]]; then redis_stop "$d/redis"; fi
  if [[ -L "$d/pg" && "$data" == */chat-pg.* ]]; then rm -rf "$(dirname "$data")"; fi
  rm -rf "$d"
}

start_all() {
  local d=$1
  if [[ -e "$d/pg" || -e "$d/env" || -e "$d/redis" ]]; then
    # Left over by a run that was interrupted before its stop: DIR is ours, so clear it.
    log "stopping and removing leftovers in $d"
    stop_all "$d"
  fi
  mkdir -p "$d"
  d=$(cd "$d" && pwd)
  chmod 0755 "$d"

  local pg_bin data
  pg_bin=$(find_pg_bin) || die "PostgreSQL server binaries not found (install postgresql)"
  data="$d/pg"
  if ! pg_can_enter "$d"; then
    # A parent of DIR is closed to the postgres user: keep the cluster in /tmp, linked from DIR/pg.
    local outer
    outer=$(mktemp -d /tmp/chat-pg.XXXXXX)
    chmod 0755 "$outer"
    data="$outer/pg"
    ln -s "$data" "$d/pg"
  fi

  pg_init "$data" || die "initdb failed"
  local pg_port redis_port
  pg_port=$(pg_start_retry "$data" "" fast) || die "PostgreSQL did not start; see $data/postgres.log"
  pg_ensure_chat_db "$pg_port" || die "could not create database chat"
  redis_port=$(redis_start_retry "$d/redis" "") || die "Redis did not start; see $d/redis/redis.log"

  cat >"$d/env.tmp" <<EOF
DATABASE_URL=postgresql://chat@127.0.0.1:$pg_port/chat
REDIS_ADDR=127.0.0.1:$redis_port
PG_PORT=$pg_port
REDIS_PORT=$redis_port
PG_BIN=$pg_bin
PG_DATA=$data
EOF
  mv "$d/env.tmp" "$d/env"
  log "postgres on 127.0.0.1:$pg_port, redis on 127.0.0.1:$redis_port ($d/env)"
}

case "$cmd" in
  start)
    trap 'rc=$?; if ((rc != 0)); then stop_all "$dir" || true; fi' EXIT
    start_all "$dir"
    ;;
  stop)
    [[ -e "$dir" ]] || exit 0
    stop_all "$dir" || true
    ;;
  *) usage ;;
esac
