#!/usr/bin/env bash
# Builds everything and runs every test twice: in build/release, then in build/asan under ASan/UBSan.
#   scripts/test.sh          deps.sh, build.sh all, ctest release, ctest asan; exit 1 if either failed.
# Env: CTEST_ARGS (extra ctest arguments, e.g. "-L e2e" or "-R messages"), SKIP_ASAN=1 (release only),
#      SKIP_DEPS=1 (do not run deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${SKIP_DEPS:-0}" != 1 ]]; then bash scripts/deps.sh; fi
if [[ "${SKIP_ASAN:-0}" == 1 ]]; then bash scripts/build.sh release; else bash scripts/build.sh all; fi
# Screenshots and other artifacts of the browser tests land under build/test-artifacts/.

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
  # Under the sanitizers: everything but the checks that exercise no more of our code than release does
  # (deploy renderers) or that are dominated by waiting (presence timing, the browser); override with
  # ASAN_CTEST_EXCLUDE=''.
  asan_exclude=${ASAN_CTEST_EXCLUDE-^(deploy_|e2e_presence|web_browser)}
  CTEST_ARGS="${CTEST_ARGS:-}${asan_exclude:+ -E $asan_exclude}" run_ctest asan \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

# The frame fuzzer (libFuzzer, ASan + UBSan) for a bounded time from the seed corpus in the repo.
if [[ "${SKIP_FUZZ:-0}" != 1 && "${SKIP_ASAN:-0}" != 1 ]]; then
  echo "== fuzz frame_fuzzer for ${FUZZ_SECONDS:-60} s" >&2
  rm -rf build/fuzz/corpus && mkdir -p build/fuzz/corpus build/fuzz/artifacts
  if build/fuzz/bin/frame_fuzzer -max_total_time="${FUZZ_SECONDS:-60}" -print_final_stats=1 \
      -artifact_prefix=build/fuzz/artifacts/ build/fuzz/corpus tests/fuzz/corpus \
      >"$logdir/fuzz.log" 2>&1; then
    result[fuzz]=ok passed[fuzz]=1 failed[fuzz]=0
  else
    result[fuzz]=FAILED passed[fuzz]=0 failed[fuzz]=1
    tail -40 "$logdir/fuzz.log"
  fi
  grep -E 'stat::(number_of_executed_units|new_units_added)|cov:' "$logdir/fuzz.log" | tail -3 >&2 || true
fi

echo
echo "== summary"
all_p=0 all_f=0 rc=0
for name in release asan fuzz; do
  [[ -n "${result[$name]:-}" ]] || continue
  printf '  %-8s %-7s %s passed, %s failed (log: %s)\n' "$name" "${result[$name]}" \
    "${passed[$name]}" "${failed[$name]}" "$logdir/$name.log"
  all_p=$((all_p + passed[$name]))
  all_f=$((all_f + failed[$name]))
  [[ "${result[$name]}" == ok ]] || rc=1
done
echo "tests: $all_p passed, $all_f failed"
exit $rc
