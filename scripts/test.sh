#!/usr/bin/env bash
# Builds everything and runs every test twice: in build/release, then in build/asan under ASan/UBSan.
#   scripts/test.sh          deps.sh, build.sh all, ctest release, ctest asan; exit 1 if either failed.
# Env: CTEST_ARGS (extra ctest arguments, e.g. "-L e2e" or "-R messages"), SKIP_ASAN=1 (release only),
#      SKIP_DEPS=1 (do not run deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${SKIP_DEPS:-0}" != 1 ]]; then bash scripts/deps.sh; fi
if [[ "${SKIP_ASAN:-0}" == 1 ]]; then bash scripts/build.sh release; else bash scripts/build.sh all; fi

logdir=build/test-logs
mkdir -p "$logdir"
declare -A result passed failed

run_ctest() {
  local name=$1 rc=0 line total=0 nfail=0
  shift
  echo "== ctest $name" >&2
  # shellcheck disable=SC2086
  env "$@" ctest --test-dir "build/$name" --output-on-failure --no-tests=error -j1 ${CTEST_ARGS:-} \
    2>&1 | tee "$logdir/$name.log" || rc=$?
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$logdir/$name.log" | tail -n1 || true)
  if [[ -n "$line" ]]; then
    nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  fi
  if ((rc != 0 && nfail == 0)); then nfail=1; fi # ctest itself failed (no tests, bad dir, ...)
  passed[$name]=$((total - nfail > 0 ? total - nfail : 0))
  failed[$name]=$nfail
  if ((rc == 0)); then result[$name]=ok; else result[$name]=FAILED; fi
}

run_ctest release
if [[ "${SKIP_ASAN:-0}" != 1 ]]; then
  run_ctest asan \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

echo
echo "== summary"
all_p=0 all_f=0 rc=0
for name in release asan; do
  [[ -n "${result[$name]:-}" ]] || continue
  printf '  %-8s %-7s %s passed, %s failed (log: %s)\n' "$name" "${result[$name]}" \
    "${passed[$name]}" "${failed[$name]}" "$logdir/$name.log"
  all_p=$((all_p + passed[$name]))
  all_f=$((all_f + failed[$name]))
  [[ "${result[$name]}" == ok ]] || rc=1
done
echo "tests: $all_p passed, $all_f failed"
exit $rc
