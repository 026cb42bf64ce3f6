// Assertions and small statistics shared by the e2e tests.
import assert from 'node:assert/strict';

/** Asserts that msgs are seq first, first+1, ... with no duplicate and no gap. */
export function assertConsecutive(msgs, first, who) {
  for (let k = 0; k < msgs.length; k++) {
    const seq = Number(msgs[k].seq);
    if (seq !== first + k) {
      const around = msgs.slice(Math.max(0, k - 3), k + 3).map((m) => m.seq).join(',');
      assert.fail(`${who}: message #${k} has seq ${seq}, expected ${first + k} (around: ${around})`);
    }
  }
}

/** The p-th percentile (0..100) of numbers, nearest rank; NaN for none. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** "n=3 min=.. p50=.. max=.." for a list of milliseconds. */
export function describeMs(values) {
  if (values.length === 0) return 'n=0';
  return `n=${values.length} min=${Math.min(...values)} p50=${percentile(values, 50)} max=${Math.max(...values)}`;
}

export const MiB = 1024 * 1024;
