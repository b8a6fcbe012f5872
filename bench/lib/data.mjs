// The benchmark data, the same for every engine: deterministic from a seed.

/** A small fast PRNG (mulberry32). */
export function rng(seed) {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Row i of the 4-column table: id int64 (primary key), name string, value float64, flag bool. */
export function row(i) {
  return {
    id: i,
    name: `name-${(i * 2654435761) % 1000003}`.padEnd(16, '.'),
    value: (i % 1000) / 8,
    flag: i % 3 === 0,
  };
}

/** The expected SUM(value) over rows 0..n-1. */
export function expectedSum(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += (i % 1000) / 8;
  return s;
}

/** Latency percentiles (ms) from a Float64Array of samples, sorted in place. */
export function percentiles(samples, n = samples.length) {
  const a = samples.subarray(0, n).sort();
  return { p50Ms: a[Math.floor(n * 0.5)] ?? 0, p99Ms: a[Math.floor(n * 0.99)] ?? 0 };
}

export function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Row i of the 2-column analytical table: id int64 (primary key), value float64 (a price, 2 decimals). */
export function sumRow(i) {
  return { id: i, value: ((i * 7919) % 100_000) / 100 };
}

/** The expected SUM(value) over sumRow(0..n-1). */
export function expectedSumRows(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += ((i * 7919) % 100_000) / 100;
  return s;
}

/** The filtered aggregate's threshold: about 10% of sumRow values are at or above it. */
export const FILTER_MIN = 900;

/** The expected COUNT and SUM of value over sumRow(0..n-1) where value >= FILTER_MIN. */
export function expectedFiltered(n) {
  let count = 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = ((i * 7919) % 100_000) / 100;
    if (v >= FILTER_MIN) {
      count++;
      sum += v;
    }
  }
  return { count, sum };
}

/**
 * `n` operations from `callers` concurrent callers, each awaiting its operation before taking the
 * next index: `op(i)` for i in [0, n). Resolves with the throughput and the latency percentiles.
 */
export async function concurrently(n, callers, op) {
  const lat = new Float64Array(n);
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const s = now();
        await op(i);
        lat[i] = now() - s;
      }
    }),
  );
  return { opsPerSec: n / ((now() - t0) / 1000), ...percentiles(lat) };
}

/**
 * Bulk load: `rows` rows (row(i)) in `batch`-row transactions, one after another, through
 * `insertBatch(rows)`. Resolves with the throughput (rows/s) and the per-transaction percentiles.
 */
export async function bulkLoad(insertBatch, rows, batch) {
  const lat = new Float64Array(rows / batch);
  const t0 = now();
  for (let b = 0; b < rows / batch; b++) {
    const chunk = new Array(batch);
    for (let i = 0; i < batch; i++) chunk[i] = row(b * batch + i);
    const s = now();
    await insertBatch(chunk);
    lat[b] = now() - s;
  }
  return { opsPerSec: rows / ((now() - t0) / 1000), ...percentiles(lat) };
}
