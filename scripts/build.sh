#!/usr/bin/env bash
# Configures (when needed) and builds the chat suite with ccache.
#   scripts/build.sh [release|asan|fuzz|all]    default: release
#     release -> build/release (RelWithDebInfo)
#     asan    -> build/asan    (RelWithDebInfo, -DCHAT_SANITIZE=ON: AddressSanitizer + UBSan)
#     (release also builds bench/'s load generator, chat-loadgen)
# Binaries land in build/<kind>/bin/. Env: JOBS (default 2), CCACHE_DIR (default ~/.ccache),
# CMAKE_ARGS (extra configure arguments).
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-release}
case "$kind" in
  release | asan | fuzz | all) ;;
  *) echo "usage: $0 [release|asan|fuzz|all]" >&2; exit 2 ;;
esac

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.ccache}
mkdir -p "$CCACHE_DIR"
jobs=${JOBS:-2}

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache); fi

build_one() {
  local name=$1 dir="build/$1"
  shift
  local t0=$SECONDS
  echo "== build $name ($dir)" >&2
  # Configure once; re-running cmake on an existing tree is cheap, but a generator switch is not allowed.
  if [[ ! -f "$dir/CMakeCache.txt" ]]; then
    # shellcheck disable=SC2086
    cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" "$@" ${CMAKE_ARGS:-}
  else
    # shellcheck disable=SC2086
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" "$@" ${CMAKE_ARGS:-} >/dev/null
  fi
  cmake --build "$dir" -j"$jobs"
  echo "== built $name in $((SECONDS - t0)) s" >&2
}

if [[ "$kind" == release || "$kind" == all ]]; then build_one release; fi
# The benchmark load generator (bench/) is built in release only: it measures, it is not tested.
if [[ "$kind" == asan || "$kind" == all ]]; then build_one asan -DCHAT_SANITIZE=ON -DCHAT_BUILD_BENCH=OFF; fi
if [[ "$kind" == fuzz || "$kind" == all ]]; then
  # The libFuzzer target needs clang; only the fuzzer and what it links are built.
  t0=$SECONDS
  echo "== build fuzz (build/fuzz)" >&2
  if [[ ! -f build/fuzz/CMakeCache.txt ]]; then
    CC=clang CXX=clang++ cmake -S . -B build/fuzz "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      "${launcher[@]}" -DCHAT_FUZZ=ON -DCHAT_BUILD_TESTS=OFF -DCHAT_BUILD_BENCH=OFF
  fi
  cmake --build build/fuzz -j"$jobs" --target frame_fuzzer
  echo "== built fuzz in $((SECONDS - t0)) s" >&2
fi
if command -v ccache >/dev/null 2>&1; then ccache -s 2>/dev/null | grep -Ei 'hits|misses' | head -4 >&2 || true; fi
