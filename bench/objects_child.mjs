// One engine's run of the "data in objects" workloads, in a process of its own.
// Usage: node objects_child.mjs ENGINE load|read DIR [--quick]
//   load: create the tables in DIR, load them, let the engine settle its files, close.
//   read: reopen DIR (the parent drops the OS page cache first where it may), then point gets with a
//         cold engine cache, the same again warm, and SUM(value) cold then warm. One JSON line each.
import {
  expectedFiltered,
  expectedSumRows,
  FILTER_MIN,
  now,
  percentiles,
  rng,
  row,
  sumRow,
} from './lib/data.mjs';
import { reporter, toMiB } from './lib/proc.mjs';

const [engineName, phase, dir] = process.argv.slice(2);
const quick = process.argv.includes('--quick');
const GET_ROWS = quick ? 200_000 : 1_000_000;
const SUM_ROWS = quick ? 1_000_000 : 10_000_000;
const GETS = quick ? 50_000 : 200_000;
const SUM_RUNS = quick ? 5 : 10;
const SUM_WARMUP = 3;

const { objects: engine } = await import(`./engines/${engineName}.mjs`);
const { out, stop } = reporter(engineName, engine.settings);
const progress = (msg) => process.stderr.write(`    ${engineName}: ${msg}\n`);

try {
  if (phase === 'load') {
    const t0 = now();
    const db = await engine.open(dir);
    if (engine.supports.gets) {
      for (let b = 0; b < GET_ROWS; b += 1000) {
        const rows = new Array(1000);
        for (let i = 0; i < 1000; i++) rows[i] = row(b + i);
        await db.loadGets(rows);
      }
      progress(`loaded ${GET_ROWS.toLocaleString('en-US')} rows for point gets`);
    }
    if (engine.supports.sum) {
      const BATCH = 10_000;
      for (let b = 0; b < SUM_ROWS; b += BATCH) {
        const rows = new Array(BATCH);
        for (let i = 0; i < BATCH; i++) rows[i] = sumRow(b + i);
        await db.loadSum(rows);
        if ((b + BATCH) % 2_000_000 === 0)
          progress(`loaded ${(b + BATCH).toLocaleString('en-US')} rows for SUM`);
      }
    }
    await db.settle();
    const storage = db.storage?.();
    await db.close();
    out({ phase: 'load', ms: now() - t0, storage });
  } else if (phase === 'read') {
    const t0 = now();
    const db = await engine.open(dir);
    const openMs = now() - t0;
    if (engine.supports.gets) {
      const r = rng(7);
      const ids = new Float64Array(GETS);
      for (let i = 0; i < GETS; i++) ids[i] = Math.floor(r() * GET_ROWS);
      for (const cache of ['cold', 'warm']) {
        const lat = new Float64Array(GETS);
        const start = now();
        for (let i = 0; i < GETS; i++) {
          const s = now();
          const got = await db.get(ids[i]);
          lat[i] = now() - s;
          if (got === undefined || got.id !== ids[i] || got.name !== row(ids[i]).name)
            throw new Error(`get ${ids[i]} returned ${JSON.stringify(got)}`);
        }
        const ms = now() - start;
        out({
          workload: `get-${cache}`,
          name: `random point gets after a restart, ${cache} cache (${GETS.toLocaleString('en-US')} over ${GET_ROWS.toLocaleString('en-US')} rows)`,
          unit: 'gets/s',
          opsPerSec: GETS / (ms / 1000),
          ...percentiles(lat),
          openMs,
          poolHighWaterMiB: toMiB(db.poolHighWater()),
        });
      }
    }
    if (engine.supports.sum) {
      const want = expectedSumRows(SUM_ROWS);
      const check = (got) => {
        if (Math.abs(got - want) > 1e-9 * want) throw new Error(`sum ${got}, expected ${want}`);
      };
      const s0 = now();
      check(await db.sum());
      const coldMs = now() - s0;
      out({
        workload: 'sum-cold',
        name: `SUM(value) over ${SUM_ROWS.toLocaleString('en-US')} rows after a restart, cold cache`,
        unit: 'rows/s',
        opsPerSec: SUM_ROWS / (coldMs / 1000),
        p50Ms: coldMs,
        p99Ms: coldMs,
        openMs,
        poolHighWaterMiB: toMiB(db.poolHighWater()),
      });
      // Steady state: a few unmeasured runs first (the JIT and the GC settle), for every engine.
      for (let k = 0; k < SUM_WARMUP; k++) check(await db.sum());
      const lat = new Float64Array(SUM_RUNS);
      for (let k = 0; k < SUM_RUNS; k++) {
        const s = now();
        check(await db.sum());
        lat[k] = now() - s;
      }
      const p = percentiles(lat);
      out({
        workload: 'sum-warm',
        name: `SUM(value) over ${SUM_ROWS.toLocaleString('en-US')} rows, warm cache (median of ${SUM_RUNS}, after ${SUM_WARMUP} unmeasured)`,
        unit: 'rows/s',
        opsPerSec: SUM_ROWS / (p.p50Ms / 1000),
        ...p,
        openMs,
        poolHighWaterMiB: toMiB(db.poolHighWater()),
      });
      // A filtered aggregate: COUNT and SUM of the values at or above FILTER_MIN (about 10%).
      const wantF = expectedFiltered(SUM_ROWS);
      const checkF = (got) => {
        if (got.count !== wantF.count || Math.abs(got.sum - wantF.sum) > 1e-9 * wantF.sum)
          throw new Error(`filtered ${JSON.stringify(got)}, expected ${JSON.stringify(wantF)}`);
      };
      for (let k = 0; k < SUM_WARMUP; k++) checkF(await db.filtered(FILTER_MIN));
      const latF = new Float64Array(SUM_RUNS);
      for (let k = 0; k < SUM_RUNS; k++) {
        const s = now();
        checkF(await db.filtered(FILTER_MIN));
        latF[k] = now() - s;
      }
      const pF = percentiles(latF);
      out({
        workload: 'filter-warm',
        name: `COUNT, SUM(value) WHERE value >= ${FILTER_MIN} over ${SUM_ROWS.toLocaleString('en-US')} rows, warm cache`,
        unit: 'rows/s',
        opsPerSec: SUM_ROWS / (pF.p50Ms / 1000),
        ...pF,
        openMs,
        poolHighWaterMiB: toMiB(db.poolHighWater()),
      });
    }
    await db.close();
  } else {
    throw new Error(`unknown phase ${phase}`);
  }
} finally {
  stop();
}
