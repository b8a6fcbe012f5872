// tidemark with its objects on the local disk or in an S3-compatible bucket (moto_server on
// loopback): a bulk load, then scans after a restart. Prints one JSON line per workload.
// Usage: node objectstore_child.mjs local|s3 [ENDPOINT BUCKET] [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open } from '../dist/index.js';
import { bulkLoad, expectedSum, now, percentiles } from './lib/data.mjs';
import { reporter, toMiB } from './lib/proc.mjs';

const where = process.argv[2];
const quick = process.argv.includes('--quick');
const ROWS = quick ? 200_000 : 1_000_000;
const BATCH = 1000;
const objectStore =
  where === 's3'
    ? {
        endpoint: process.argv[3],
        bucket: process.argv[4],
        prefix: 'bench',
        accessKeyId: 'bench',
        secretAccessKey: 'bench-secret',
      }
    : undefined;
const settings =
  where === 's3'
    ? "objects and checkpoints in a bucket of moto_server on 127.0.0.1 (Python; a loopback stand-in for S3), WAL local; wal.sync 'batch'; local object cache 1 GiB, emptied at open"
    : "objects, checkpoints and WAL on the local disk; wal.sync 'batch'";
const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-bench-objstore-${where}-`));
const { out, stop } = reporter(where, settings);
const options = {
  memory: { limitBytes: 2 * 1024 ** 3 },
  checkpoint: { intervalMs: 0 },
  ...(objectStore ? { objectStore } : {}),
};

async function sum(db) {
  let s = 0;
  for await (const b of db.scanBatches('t', { columns: ['value'], batchRows: 16000, borrow: true })) {
    const v = b.columns.value;
    for (let i = 0; i < v.length; i++) s += v[i];
  }
  return s;
}

try {
  // 1. Bulk load, then flush and a checkpoint: the data is in objects, in their store.
  {
    const db = await open(dir, options);
    await db.createTable('t', {
      columns: { id: 'int64', name: 'string', value: 'float64', flag: 'bool' },
      primaryKey: 'id',
    });
    const t0 = now();
    const load = await bulkLoad((rows) => db.insert('t', rows), ROWS, BATCH);
    await db.flush();
    await db.checkpoint();
    const ms = now() - t0;
    out({
      workload: 'load',
      name: `bulk load ${ROWS.toLocaleString('en-US')} rows in ${BATCH}-row transactions, then flush and checkpoint`,
      unit: 'rows/s',
      ...load,
      opsPerSec: ROWS / (ms / 1000),
      poolHighWaterMiB: toMiB(db.stats().memory.highWaterBytes),
    });
    await db.close();
  }
  // 2. After a restart: open, a cold SUM (objects read from their store), then warm ones.
  {
    const t0 = now();
    const db = await open(dir, options);
    const openMs = now() - t0;
    const want = expectedSum(ROWS);
    const s0 = now();
    const got = await sum(db);
    const coldMs = now() - s0;
    if (Math.abs(got - want) > 1e-6 * want) throw new Error(`sum ${got}, expected ${want}`);
    out({
      workload: 'scan-cold',
      name: `SUM(value) over ${ROWS.toLocaleString('en-US')} rows after a restart, cold (open ${Math.round(openMs)} ms)`,
      unit: 'rows/s',
      opsPerSec: ROWS / (coldMs / 1000),
      p50Ms: coldMs,
      p99Ms: coldMs,
      poolHighWaterMiB: toMiB(db.stats().memory.highWaterBytes),
    });
    for (let k = 0; k < 2; k++) await sum(db);
    const lat = new Float64Array(5);
    for (let k = 0; k < 5; k++) {
      const s = now();
      await sum(db);
      lat[k] = now() - s;
    }
    const p = percentiles(lat);
    out({
      workload: 'scan-warm',
      name: `SUM(value) over ${ROWS.toLocaleString('en-US')} rows, warm (median of 5)`,
      unit: 'rows/s',
      opsPerSec: ROWS / (p.p50Ms / 1000),
      ...p,
      poolHighWaterMiB: toMiB(db.stats().memory.highWaterBytes),
    });
    await db.close();
  }
} finally {
  stop();
  rmSync(dir, { recursive: true, force: true });
}
