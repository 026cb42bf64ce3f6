#!/usr/bin/env bash
# Installs what building, running and testing the chat suite needs on Debian 12; idempotent.
#   scripts/deps.sh        apt-get installs the missing packages (apt-get update only when something is
#                          missing; sudo only when not root), then the npm packages of the e2e and the
#                          web tests when tests/e2e/node_modules or tests/web/node_modules is missing.
# Set CHAT_SKIP_NPM=1 to skip the npm step. CHAT_DEPS=build installs only what building needs (the
# Dockerfile's build stage uses that, so CI and the image build from the same list); the default, all,
# adds the test servers, Node, and the deploy checks' tools (tests/deploy: docker-compose, kubectl,
# nginx).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[deps] %s\n' "$*" >&2; }

deps=${CHAT_DEPS:-all}
case "$deps" in
  all | build) ;;
  *) log "CHAT_DEPS must be all or build, not '$deps'"; exit 2 ;;
esac

# Building (also the Dockerfile's build stage).
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libpqxx-dev libhiredis-dev libboost-dev libjwt-dev libssl-dev
)
if [[ "$deps" == all ]]; then
  # Tests: unit test framework, the servers the pg/redis/e2e tests start.
  packages+=(libgtest-dev libgmock-dev postgresql redis-server)
  # The TLS tests make a throwaway certificate with the openssl command.
  packages+=(openssl)
  # Browser tests (tests/web): Debian's headless-capable Chromium, driven by playwright-core from npm.
  packages+=(chromium)
  # The libFuzzer target (fuzz/): clang and its fuzzer runtime.
  packages+=(clang libclang-rt-14-dev)
  # Node may come from elsewhere (e.g. NodeSource's nodejs bundles npm): only ask Debian when missing.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
  fi
  # Deploy checks (tests/deploy), each only when no such tool is there yet: `docker-compose config`
  # (Debian's docker-compose 1.29; a Docker CLI with the compose plugin does as well), `kubectl
  # kustomize` (Debian's kubernetes-client, kubectl 1.20 with kustomize v2.0.3; a newer kubectl does
  # as well), nginx for the load-balancer smoke test. Debian starts nginx on port 80 when installed
  # outside a container; the test runs its own copy and leaves that one alone.
  if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    packages+=(docker-compose)
  fi
  if ! command -v kubectl >/dev/null 2>&1; then packages+=(kubernetes-client); fi
  if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then packages+=(nginx); fi
fi

missing=()
for p in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  log "installing: ${missing[*]}"
  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then SUDO=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "Debian packages: all present"
fi

# The Debian postgresql package starts a system cluster on 5432; we never use it, and leave it alone.

for dir in tests/e2e tests/web; do
  if [[ "$deps" == all && "${CHAT_SKIP_NPM:-0}" != 1 && ! -d "$dir/node_modules" ]]; then
    log "installing the npm packages of $dir"
    if [[ -f "$dir/package-lock.json" ]]; then
      (cd "$dir" && npm ci --no-audit --no-fund)
    else
      (cd "$dir" && npm install --no-audit --no-fund)
    fi
  fi
done
