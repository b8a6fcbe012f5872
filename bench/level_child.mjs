// One engine's run of the abstract-level workloads: TidemarkLevel (tidemark/level, from this
// repository's build) or classic-level, the same calls through the same interface. Prints one JSON
// line per workload. Usage: node level_child.mjs tidemark|level [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { concurrently, now, percentiles, rng } from './lib/data.mjs';
import { reporter, toMiB } from './lib/proc.mjs';

const engineName = process.argv[2];
const quick = process.argv.includes('--quick');
const ENTRIES = quick ? 50_000 : 200_000;
const BATCH = 1000;
const GETS = quick ? 50_000 : 200_000;
const PUTS = quick ? 5_000 : 20_000;
const CALLERS = 64;

const SETTINGS = {
  tidemark:
    "TidemarkLevel (tidemark/level) on tidemark: wal.sync 'batch' (every write durable when it resolves, group commit), memory limit 2 GiB, checkpoints off; utf8 keys and values",
  level: 'classic-level 3 (LevelDB), sync: true on every write (each one fsynced); utf8 keys and values',
};

async function make(dir) {
  if (engineName === 'tidemark') {
    const { TidemarkLevel } = await import('../dist/level/index.js');
    const db = new TidemarkLevel(dir, {
      tidemark: { memory: { limitBytes: 2 * 1024 ** 3 }, checkpoint: { intervalMs: 0 } },
    });
    await db.open();
    return { db, write: {}, poolHighWater: () => db.tidemark.stats().memory.highWaterBytes };
  }
  const { ClassicLevel } = await import('classic-level');
  const db = new ClassicLevel(dir);
  await db.open();
  return { db, write: { sync: true }, poolHighWater: () => null };
}

const key = (i) => `k${String(i).padStart(9, '0')}`;
const value = (i) => `value-${i}-`.padEnd(100, 'x');

const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-bench-level-${engineName}-`));
const { out, stop } = reporter(engineName, SETTINGS[engineName]);
try {
  const { db, write, poolHighWater } = await make(dir);
  const emit = (r) => out({ ...r, poolHighWaterMiB: toMiB(poolHighWater()) });

  // 1. Batch puts: ENTRIES entries in BATCH-entry batches, one after another.
  {
    const lat = new Float64Array(ENTRIES / BATCH);
    const t0 = now();
    for (let b = 0; b < ENTRIES / BATCH; b++) {
      const ops = new Array(BATCH);
      for (let i = 0; i < BATCH; i++)
        ops[i] = { type: 'put', key: key(b * BATCH + i), value: value(b * BATCH + i) };
      const s = now();
      await db.batch(ops, write);
      lat[b] = now() - s;
    }
    emit({
      workload: 'lbatch',
      name: `batch put, ${ENTRIES.toLocaleString('en-US')} entries in ${BATCH}-entry batches`,
      unit: 'entries/s',
      opsPerSec: ENTRIES / ((now() - t0) / 1000),
      ...percentiles(lat),
    });
  }

  // 2. Single puts, from one caller and from 64 concurrent callers.
  for (const callers of [1, CALLERS]) {
    const n = callers === 1 ? Math.min(PUTS, 3000) : PUTS;
    const base = callers === 1 ? 10_000_000 : 20_000_000;
    emit({
      workload: callers === 1 ? 'lput1' : 'lput64',
      name: `put, ${callers} ${callers === 1 ? 'caller' : 'concurrent callers'}`,
      unit: 'puts/s',
      ...(await concurrently(n, callers, (i) => db.put(key(base + i), value(i), write))),
    });
  }

  // 3. Random gets over the batch-loaded entries.
  {
    const r = rng(9);
    const ids = Array.from({ length: GETS }, () => Math.floor(r() * ENTRIES));
    for (let i = 0; i < 1000; i++) await db.get(key(ids[i]));
    const lat = new Float64Array(GETS);
    const t0 = now();
    for (let i = 0; i < GETS; i++) {
      const s = now();
      const v = await db.get(key(ids[i]));
      lat[i] = now() - s;
      if (v !== value(ids[i])) throw new Error(`get ${key(ids[i])} returned ${v}`);
    }
    emit({
      workload: 'lget',
      name: `random gets (${GETS.toLocaleString('en-US')})`,
      unit: 'gets/s',
      opsPerSec: GETS / ((now() - t0) / 1000),
      ...percentiles(lat),
    });
  }

  // 4. Iteration over every entry, forward and in reverse: median of 5 after 1 unmeasured.
  for (const reverse of [false, true]) {
    const runs = 5;
    const lat = new Float64Array(runs);
    let entries = 0;
    for (let k = -1; k < runs; k++) {
      const s = now();
      entries = 0;
      for await (const [kk, v] of db.iterator({ reverse }))
        if (kk !== undefined && v !== undefined) entries++;
      if (k >= 0) lat[k] = now() - s;
    }
    const p = percentiles(lat);
    emit({
      workload: reverse ? 'literrev' : 'liter',
      name: `iterate all ${entries.toLocaleString('en-US')} entries${reverse ? ', in reverse' : ''} (median of 5)`,
      unit: 'entries/s',
      opsPerSec: entries / (p.p50Ms / 1000),
      ...p,
    });
  }
  await db.close();
} finally {
  stop();
  rmSync(dir, { recursive: true, force: true });
}
