#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine:
#   - both stages are Debian 12; the build stage installs with scripts/deps.sh (CHAT_DEPS=build) and
#     builds with scripts/build.sh release, tests off, as README and CI do;
#   - the runtime stage's apt packages exist in Debian and cover every shared library that the built
#     binaries link directly (ldd/readelf + dpkg -S on this Debian 12 machine), so the image's own
#     `ldd | grep 'not found'` step will pass;
#   - non-root USER, HEALTHCHECK with chat-healthcheck, EXPOSE of every port the services listen on by
#     default (read from the code), the web files copied to the WEB_ROOT that the image, compose and
#     deploy/k8s set, COPY sources present and not excluded by .dockerignore;
#   - deploy/docker/chat-healthcheck parses.
# Env: CHAT_BIN_DIR (default build/release/bin): the library check is skipped when no binaries are
# there.
set -euo pipefail
DEPLOY_TAG=image-check
# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
# shellcheck source=lib/code_env.sh
source "$DEPLOY_LIB/code_env.sh"
cd "$DEPLOY_ROOT"

failures=0
fail() { dlog "FAIL: $*"; failures=$((failures + 1)); }
df=Dockerfile
[[ -f "$df" ]] || { dlog "FAIL: no Dockerfile"; exit 1; }
# The Dockerfile with continuation lines joined, comments dropped.
joined=$(grep -v '^[[:space:]]*#' "$df" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')

# ---- stages ---------------------------------------------------------------------------------------
base=$(grep -oP '^ARG DEBIAN_IMAGE=\K\S+' <<<"$joined" || true)
[[ "$base" =~ ^debian:(12|bookworm)(-slim)?$ ]] || fail "ARG DEBIAN_IMAGE is '$base', not Debian 12"
[[ $(grep -cP '^FROM \$\{DEBIAN_IMAGE\} AS (build|runtime)$' <<<"$joined") == 2 ]] ||
  fail "expected two stages, FROM \${DEBIAN_IMAGE} AS build / AS runtime"
build_stage=$(awk '/^FROM .* AS build$/ {on = 1} /^FROM .* AS runtime$/ {on = 0} on' <<<"$joined")
runtime_stage=$(awk '/^FROM .* AS runtime$/ {on = 1} on' <<<"$joined")
grep -qP 'CHAT_DEPS=build bash scripts/deps\.sh' <<<"$build_stage" || fail "build stage does not run CHAT_DEPS=build scripts/deps.sh"
grep -qP 'CMAKE_ARGS=-DCHAT_BUILD_TESTS=OFF bash scripts/build\.sh release' <<<"$build_stage" ||
  fail "build stage does not run scripts/build.sh release with CMAKE_ARGS=-DCHAT_BUILD_TESTS=OFF"
grep -q 'CHAT_DEPS' scripts/deps.sh || fail "scripts/deps.sh does not know CHAT_DEPS"

# ---- runtime user, health check, ports, web root ------------------------------------------------
user=$(grep -oP '^USER \K\S+' <<<"$runtime_stage" | sed -n '$p' || true)
[[ -n "$user" && "${user%%:*}" =~ ^[0-9]+$ && "${user%%:*}" != 0 ]] ||
  fail "runtime USER is '$user', not a numeric non-root uid (runAsNonRoot needs a numeric one)"
grep -qP '^HEALTHCHECK .*CMD \["chat-healthcheck"\]' <<<"$runtime_stage" || fail "no HEALTHCHECK running chat-healthcheck"
grep -q 'chat-healthcheck' <<<"$build_stage" || fail "the build stage does not install chat-healthcheck"
bash -n deploy/docker/chat-healthcheck || fail "deploy/docker/chat-healthcheck does not parse"
[[ -x deploy/docker/chat-healthcheck ]] || fail "deploy/docker/chat-healthcheck is not executable"
exposed=" $(grep -oP '^EXPOSE \K.*' <<<"$runtime_stage" | tr '\n' ' ') "
while IFS=$'\t' read -r proc name _ def _; do
  [[ "$name" =~ _(HTTP|GRPC|METRICS)_ADDR$ && "$def" =~ :([0-9]+)$ ]] || continue
  [[ "$exposed" == *" ${BASH_REMATCH[1]} "* ]] || fail "EXPOSE lacks ${BASH_REMATCH[1]} ($name of chat-$proc)"
done < <(code_env_table "$DEPLOY_ROOT")
web_root=$(grep -oP 'WEB_ROOT=\K\S+' <<<"$runtime_stage" | sed -n 1p || true)
[[ -n "$web_root" ]] || fail "runtime stage sets no WEB_ROOT"
grep -qP "^COPY services/gateway/web/ ${web_root%/}/?$" <<<"$runtime_stage" || fail "web files are not copied to WEB_ROOT $web_root"
for f in docker-compose.yml deploy/k8s/base/kustomization.yaml; do
  while IFS= read -r v; do
    [[ "$v" == "$web_root" ]] || fail "$f sets WEB_ROOT $v, the image has $web_root"
  done < <(grep -oP 'WEB_ROOT[:=]\s*\K\S+' "$f")
done
[[ -f services/gateway/web/index.html ]] || fail "services/gateway/web/index.html is missing"

# ---- COPY sources vs .dockerignore --------------------------------------------------------------
while IFS= read -r src; do
  [[ -e "$src" ]] || fail "COPY source $src does not exist"
  while IFS= read -r pat; do
    [[ -z "$pat" || "$pat" == \#* ]] && continue
    pat=${pat%/}
    pat=${pat#\*\*/}
    case "/$src" in */"$pat" | */"$pat"/*) fail "COPY source $src is excluded by .dockerignore ($pat)" ;; esac
  done <.dockerignore
done < <(grep -oP '^COPY (?!--from)\K\S+(?= )' <<<"$joined" | grep -v '^\.$')
for must in CMakeLists.txt proto services scripts/build.sh scripts/deps.sh; do
  while IFS= read -r pat; do
    [[ -z "$pat" || "$pat" == \#* ]] && continue
    pat=${pat%/}
    [[ "$must" == "$pat" || "$must" == "$pat"/* ]] && fail ".dockerignore excludes $must, which the build needs"
  done <.dockerignore
done

# ---- runtime packages vs the binaries' libraries ------------------------------------------------
pkgs=$(grep -oP 'apt-get install -y --no-install-recommends \K[^&]*' <<<"$runtime_stage" | sed -n 1p | xargs)
[[ -n "$pkgs" ]] || fail "no apt-get install in the runtime stage"
if apt-cache show libc6 >/dev/null 2>&1; then
  for p in $pkgs; do
    apt-cache show "$p" >/dev/null 2>&1 || fail "runtime package $p is not in this machine's Debian package lists"
  done
else
  dlog "note: no apt package lists here (apt-get update): the package name check was skipped"
fi
bin=${CHAT_BIN_DIR:-$DEPLOY_ROOT/build/release/bin}
if [[ -x "$bin/chat-gateway" && -x "$bin/chat-messages" && -x "$bin/chat-presence" ]] && command -v dpkg >/dev/null; then
  # In Debian 12's base image already (apt itself needs them).
  have=" $pkgs libc6 libgcc-s1 libstdc++6 "
  n=0
  while IFS= read -r lib; do
    case "$lib" in libasan.so* | libubsan.so* | liblsan.so* | libtsan.so*) continue ;; esac
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && p == "" { p = $NF } END { print p }')
    if [[ -z "$path" ]]; then fail "$lib (needed by the binaries) is not installed here"; continue; fi
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | sed -n 1p | cut -d: -f1 || true)
    [[ -n "$pkg" ]] || pkg=$(dpkg -S "$path" 2>/dev/null | sed -n 1p | cut -d: -f1 || true)
    n=$((n + 1))
    [[ "$have" == *" $pkg "* ]] || fail "the binaries need $lib from package '$pkg', which the runtime stage does not install"
  done < <(for b in chat-gateway chat-messages chat-presence; do
    readelf -d "$bin/$b" | grep -oP 'NEEDED.*\[\K[^]]+'
  done | sort -u)
  dlog "runtime packages cover the $n libraries the binaries in $bin link"
else
  dlog "note: no built binaries in $bin: the runtime library check was skipped"
fi

if ((failures > 0)); then
  dlog "Dockerfile check: $failures problem(s)"
  exit 1
fi
dlog "Dockerfile check passed"
