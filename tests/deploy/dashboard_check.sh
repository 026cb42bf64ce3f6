#!/usr/bin/env bash
# Checks deploy/grafana/chat-suite.json against the code: it is valid JSON with unique panel ids, every
# chat_* metric its queries use is one the services register (GetCounter/GetGauge/GetHistogram in
# services/, histograms with their _bucket/_sum/_count series), and every label it groups by is a
# label the code sets (or le, instance, job). Lists the registered metrics no panel shows (a note, not
# a failure). tests/deploy/lb_smoke.sh checks the same names against live /metrics.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dash=$ROOT/deploy/grafana/chat-suite.json
log() { printf '[dashboard-check] %s\n' "$*" >&2; }

command -v node >/dev/null 2>&1 || { log "SKIP: node is not installed"; exit 77; }
# Queries, one a line; fails on invalid JSON or duplicate panel ids.
# shellcheck disable=SC2016  # JavaScript, not shell
exprs=$(node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (!d.uid || !d.title || !Array.isArray(d.panels) || d.panels.length === 0) throw new Error("uid, title and panels are required");
  const ids = new Set();
  for (const p of d.panels) {
    if (ids.has(p.id)) throw new Error(`duplicate panel id ${p.id}`);
    ids.add(p.id);
    if (!p.gridPos) throw new Error(`panel ${p.id} has no gridPos`);
    for (const t of p.targets || []) console.log(t.expr);
  }' "$dash")

code=$(find "$ROOT/services" -type f \( -name '*.cpp' -o -name '*.h' \) -exec cat {} + | tr '\n' ' ')
registered=$(grep -oP 'Get(Counter|Gauge|Histogram)\(\s*"\Kchat_[a-z0-9_]+' <<<"$code" | sort -u)
histograms=$(grep -oP 'GetHistogram\(\s*"\Kchat_[a-z0-9_]+' <<<"$code" | sort -u)
series=$( (
  echo "$registered"
  for h in $histograms; do printf '%s_bucket\n%s_sum\n%s_count\n' "$h" "$h" "$h"; done
) | sort -u)
labels=$( (
  grep -oP '\{\{\s*"\K[a-z_]+(?="\s*,)' <<<"$code"
  # The second pair of a two-label list: {{"backend", name_}, {"call", ...}}.
  grep -oP '\{\{\s*"[a-z_]+"\s*,[^{}]*\}\s*,\s*\{\s*"\K[a-z_]+(?="\s*,)' <<<"$code"
  printf 'le\ninstance\njob\n'
) | sort -u)

failures=0
used=$(grep -oP '\bchat_[a-z0-9_]+' <<<"$exprs" | sort -u)
for m in $used; do
  if ! grep -qx "$m" <<<"$series"; then
    log "FAIL: the dashboard queries $m, which no service registers"
    failures=$((failures + 1))
  fi
done
for l in $(grep -oP '\bby \(\K[^)]*' <<<"$exprs" | tr -s ', ' '\n' | sed '/^$/d' | sort -u); do
  if ! grep -qx "$l" <<<"$labels"; then
    log "FAIL: the dashboard groups by label '$l', which the code never sets"
    failures=$((failures + 1))
  fi
done
unshown=()
for m in $registered; do
  grep -qP "\b${m}(_bucket|_sum|_count)?\b" <<<"$exprs" || unshown+=("$m")
done
if ((${#unshown[@]} > 0)); then log "note: no panel shows ${unshown[*]}"; fi
if ((failures > 0)); then
  log "$failures problem(s)"
  exit 1
fi
log "ok: $(wc -l <<<"$used") metrics in $(grep -c . <<<"$exprs") queries, all registered by the code"
