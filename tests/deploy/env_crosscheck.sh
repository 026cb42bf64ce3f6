#!/usr/bin/env bash
# Cross-checks the environment variables that docker-compose.yml and every kustomization (base and
# overlays) give the chat containers against what the C++ code reads (services/**: EnvReader's
# String/Int/Bool and getenv, parsed from the sources):
#   - every variable set for a chat-gateway/chat-messages/chat-presence container is one that process
#     reads (per process, not just "some process");
#   - the required ones are set: JWT_SECRET for the gateway, DATABASE_URL for messages;
#   - literal values parse (integers within the range the code accepts, booleans), are not empty, and
#     equal the default in code unless the variable is deployment-specific (addresses, secrets, ids);
#   - a variable has one value across the containers of one render (TEXT_LIMIT_BYTES, ...);
#   - client addresses name a Service / compose service of the render (overlays and compose), listen
#     addresses match a declared containerPort, and referenced ConfigMaps/Secrets/keys exist.
# Renders with `docker-compose config` and `kubectl kustomize` (tests/deploy/lib/tools.sh): exits 77
# (skipped) when they are missing outside CI; in CI (CI=true) it installs them from Debian.
set -euo pipefail
DEPLOY_TAG=env-crosscheck
# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
# shellcheck source=lib/code_env.sh
source "$DEPLOY_LIB/code_env.sh"

rc=0
ensure_tools || exit $?
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

code_env_table "$DEPLOY_ROOT" >"$tmp/reads.tsv"
for p in gateway messages presence; do
  if ! grep -q "^$p"$'\t' "$tmp/reads.tsv"; then
    dlog "FAIL: found no environment variable that chat-$p reads; has the config code moved?"
    exit 1
  fi
done
dlog "the code reads $(cut -f2 "$tmp/reads.tsv" | sort -u | wc -l) variables"

# check NAME MODE CHECK_ADDR FILE
check() {
  local name=$1 mode=$2 addr=$3 file=$4 out summary
  flatten "$file" >"$tmp/flat"
  awk -v MODE="$mode" -f "$DEPLOY_LIB/env_sets.awk" "$tmp/flat" "$tmp/flat" >"$tmp/sets"
  out=$(awk -v RENDER="$name" -v CHECK_ADDR="$addr" -f "$DEPLOY_LIB/env_check.awk" "$tmp/reads.tsv" "$tmp/sets")
  grep -E '^(FAIL|note)' <<<"$out" | sed 's/^/  /' >&2 || true
  summary=$(tail -n1 <<<"$out")
  read -r _ units _ vars _ fails <<<"$summary"
  if ((units == 0)); then
    dlog "FAIL $name: no chat container found"
    rc=1
  elif ((fails > 0)); then
    dlog "FAIL $name: $fails problem(s) in $units containers"
    rc=1
  else
    dlog "ok   $name: $units containers, $vars variables"
  fi
}

if render_compose "$tmp/compose.yaml"; then
  check docker-compose.yml compose 1 "$tmp/compose.yaml"
else
  dlog "FAIL docker-compose.yml: docker-compose config failed"
  rc=1
fi
for dir in "${K8S_DIRS[@]}"; do
  addr=1
  [[ "$dir" == */base ]] && addr=0 # the base alone has no Redis Service; its overlays bring one
  if render_k8s "$dir" "$tmp/k8s.yaml"; then
    check "$dir" k8s "$addr" "$tmp/k8s.yaml"
  else
    dlog "FAIL $dir: kubectl kustomize failed"
    rc=1
  fi
done
if ((rc == 0)); then dlog "env crosscheck passed"; else dlog "env crosscheck FAILED"; fi
exit $rc
