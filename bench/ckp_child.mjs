// Commit latency with background checkpoints against the same workload without them (tidemark).
// 64 callers commit durable 1-row transactions while a loader writes 1000-row transactions into
// another table (so that every checkpoint has memtables to flush). Prints one JSON line per mode.
// Usage: node ckp_child.mjs on|off [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open } from '../dist/index.js';
import { now, percentiles, row } from './lib/data.mjs';
import { reporter, toMiB } from './lib/proc.mjs';

const mode = process.argv[2];
const quick = process.argv.includes('--quick');
const SECONDS = quick ? 6 : 20;
const CALLERS = 64;
const checkpoint =
  mode === 'on' ? { intervalMs: 1000, incrementalsPerGlobal: 5, minChanges: 1 } : { intervalMs: 0 };
const settings = `wal.sync 'batch'; checkpoints ${mode === 'on' ? 'every 1 s (a global every 5th)' : 'off'}; memtables of 100,000 rows; a loader writes 1000-row transactions into another table meanwhile`;
const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-bench-ckp-${mode}-`));
const { out, stop } = reporter('tidemark', settings);
try {
  const db = await open(dir, { checkpoint, storage: { memtableRowsMax: 100_000 } });
  const spec = { columns: { id: 'int64', name: 'string', value: 'float64', flag: 'bool' }, primaryKey: 'id' };
  await db.createTable('c', spec);
  await db.createTable('t', spec);
  const end = now() + SECONDS * 1000;
  const lat = [];
  let next = 0;
  let loaded = 0;
  const loader = (async () => {
    while (now() < end) {
      const rows = Array.from({ length: 1000 }, (_, i) => row(loaded + i));
      await db.insert('t', rows);
      loaded += 1000;
    }
  })();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (now() < end) {
        const i = next++;
        const s = now();
        await db.insert('c', row(i));
        lat.push(now() - s);
      }
    }),
  );
  await loader;
  const samples = Float64Array.from(lat);
  const p = percentiles(samples);
  const sorted = samples.sort();
  const ck = db.stats().checkpoints;
  out({
    workload: `ckp-${mode}`,
    name: `durable 1-row commits, ${CALLERS} callers, checkpoints ${mode}`,
    unit: 'txn/s',
    opsPerSec: lat.length / SECONDS,
    ...p,
    p999Ms: sorted[Math.floor(sorted.length * 0.999)] ?? 0,
    checkpoints: ck.incremental + ck.global,
    loadedRows: loaded,
    poolHighWaterMiB: toMiB(db.stats().memory.highWaterBytes),
  });
  await db.close();
} finally {
  stop();
  rmSync(dir, { recursive: true, force: true });
}
