# shellcheck shell=bash
# Shared by the deploy checks: finds docker-compose and kubectl, installs them from Debian when CI=true
# and they are missing, and renders docker-compose.yml and the kustomizations.
# Exit code 77 means "skipped" (CTest's SKIP_RETURN_CODE for these tests).

DEPLOY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
DEPLOY_LIB=$DEPLOY_ROOT/tests/deploy/lib
# shellcheck disable=SC2034  # used by the scripts that source this file
# Every kustomization that must render: the base and each overlay.
K8S_DIRS=(deploy/k8s/base deploy/k8s/overlays/dev deploy/k8s/overlays/prod)

dlog() { printf '[%s] %s\n' "${DEPLOY_TAG:-deploy}" "$*" >&2; }

# COMPOSE: the compose command (docker-compose, or docker compose), or empty.
find_compose() {
  COMPOSE=()
  if [[ -n "${CHAT_COMPOSE:-}" ]]; then
    read -r -a COMPOSE <<<"$CHAT_COMPOSE"
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
  elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  fi
}

# KUBECTL: the kubectl binary (override with CHAT_KUBECTL), or empty.
find_kubectl() {
  KUBECTL=${CHAT_KUBECTL:-}
  if [[ -z "$KUBECTL" ]] && command -v kubectl >/dev/null 2>&1; then KUBECTL=kubectl; fi
}

# Installs the Debian packages named when running in CI as root (or with sudo).
ci_install() {
  [[ "${CI:-}" == true ]] || return 1
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || return 1
    sudo=(sudo -n)
  fi
  dlog "CI: installing $* from Debian"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q >&2 &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" >&2
}

# Finds both tools, installing the missing ones in CI. Returns 77 when one is missing outside CI
# (skip), 1 when it is missing in CI (fail).
ensure_tools() {
  find_compose
  find_kubectl
  local missing=()
  if ((${#COMPOSE[@]} == 0)); then missing+=(docker-compose); fi
  if [[ -z "$KUBECTL" ]]; then missing+=(kubernetes-client); fi
  if ((${#missing[@]} > 0)); then
    ci_install "${missing[@]}" || true
    find_compose
    find_kubectl
  fi
  if ((${#COMPOSE[@]} == 0)) || [[ -z "$KUBECTL" ]]; then
    if [[ "${CI:-}" == true ]]; then
      dlog "FAIL: docker-compose and kubectl are needed (apt-get install docker-compose kubernetes-client)"
      return 1
    fi
    dlog "SKIP: docker-compose or kubectl missing (scripts/deps.sh installs them)"
    return 77
  fi
}

# render_compose OUT: `docker-compose config` with the file's own defaults (the caller's JWT_SECRET,
# HTTP_PORT, ... do not leak in).
render_compose() {
  (cd "$DEPLOY_ROOT" &&
    env -u JWT_SECRET -u HTTP_PORT -u LOG_LEVEL -u POSTGRES_PASSWORD -u COMPOSE_FILE -u COMPOSE_PROJECT_NAME \
      "${COMPOSE[@]}" -f docker-compose.yml config) >"$1"
}

# render_k8s DIR OUT: `kubectl kustomize DIR`; kustomize's deprecation warnings are dropped.
render_k8s() {
  local err rc=0
  err=$(mktemp)
  "$KUBECTL" kustomize "$DEPLOY_ROOT/$1" >"$2" 2>"$err" || rc=$?
  grep -v "^# Warning: 'bases' is deprecated" "$err" >&2 || true
  rm -f "$err"
  # Newer kustomize prints its warnings on stdout, as YAML comments.
  sed -i "/^# Warning: /d" "$2"
  return $rc
}

flatten() { awk -f "$DEPLOY_LIB/yaml_flatten.awk" "$@"; }
