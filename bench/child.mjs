// One engine's run of the core workloads, in a process of its own. Prints one JSON line per
// workload. Usage: node child.mjs ENGINE [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bulkLoad, concurrently, expectedSum, now, percentiles, rng, row } from './lib/data.mjs';
import { reporter, toMiB } from './lib/proc.mjs';

const engineName = process.argv[2];
const quick = process.argv.includes('--quick');
const ROWS = quick ? 200_000 : 1_000_000;
const BATCH = 1000;
const GETS = quick ? 50_000 : 200_000;
const COMMITS = quick ? 5_000 : 20_000;
const CALLERS = 64;

const engine = await import(`./engines/${engineName}.mjs`);
const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-bench-${engineName}-`));
const { out, stop } = reporter(engineName, engine.settings);

try {
  const db = await engine.create(dir);

  // 1. Bulk load in 1000-row transactions.
  out({
    workload: 'bulk',
    name: `bulk load ${ROWS.toLocaleString('en-US')} rows in ${BATCH}-row transactions`,
    unit: 'rows/s',
    ...(await bulkLoad(db.insertBatch, ROWS, BATCH)),
    poolHighWaterMiB: toMiB(db.poolHighWater()),
  });

  // 2. Random point gets by primary key.
  {
    const r = rng(42);
    const ids = new Float64Array(GETS);
    for (let i = 0; i < GETS; i++) ids[i] = Math.floor(r() * ROWS);
    for (let i = 0; i < 1000; i++) await db.get(ids[i]); // warm up
    const lat = new Float64Array(GETS);
    const t0 = now();
    for (let i = 0; i < GETS; i++) {
      const s = now();
      const got = await db.get(ids[i]);
      lat[i] = now() - s;
      if (got === undefined || got.id !== ids[i])
        throw new Error(`get ${ids[i]} returned ${JSON.stringify(got)}`);
    }
    const ms = now() - t0;
    out({
      workload: 'get',
      name: `random point gets by primary key (${GETS.toLocaleString('en-US')})`,
      unit: 'gets/s',
      opsPerSec: GETS / (ms / 1000),
      ...percentiles(lat),
      poolHighWaterMiB: toMiB(db.poolHighWater()),
    });
  }

  // 3. SUM of a float64 column over all rows.
  {
    const want = expectedSum(ROWS);
    // Steady state: a few unmeasured runs first (the JIT and the GC settle), for every engine.
    for (let k = 0; k < 3; k++) await db.sum();
    const runs = 10;
    const lat = new Float64Array(runs);
    for (let k = 0; k < runs; k++) {
      const s = now();
      const got = await db.sum();
      lat[k] = now() - s;
      if (Math.abs(got - want) > 1e-6 * want) throw new Error(`sum ${got}, expected ${want}`);
    }
    const p = percentiles(lat);
    out({
      workload: 'sum',
      name: `SUM(value) over ${ROWS.toLocaleString('en-US')} rows`,
      unit: 'rows/s',
      opsPerSec: ROWS / (p.p50Ms / 1000),
      ...p,
      poolHighWaterMiB: toMiB(db.poolHighWater()),
    });
  }

  // 4. Durable 1-row transactions from one caller, then from 64 concurrent callers.
  for (const callers of [1, CALLERS]) {
    const commits = callers === 1 ? Math.min(COMMITS, 3000) : COMMITS;
    const base = callers === 1 ? 10_000_000 : 0; // distinct keys for each run
    out({
      workload: callers === 1 ? 'commit1' : 'commit64',
      name: `durable 1-row transactions, ${callers} ${callers === 1 ? 'caller' : 'concurrent callers'}`,
      ...(await commitRun(db, db.insertOne, callers, commits, base)),
    });
  }
  // An engine whose commits resolve before they are durable (lmdb's overlappingSync) runs the 64
  // callers again, each waiting until its commit is durable: the like-for-like comparison.
  if (db.insertOneDurable !== undefined) {
    out({
      engine: `${engineName}-durable`,
      settings: db.durableSettings,
      workload: 'commit64',
      name: `durable 1-row transactions, ${CALLERS} concurrent callers`,
      ...(await commitRun(db, db.insertOneDurable, CALLERS, COMMITS, 20_000_000)),
    });
  }
  await db.close();
} finally {
  stop();
  rmSync(dir, { recursive: true, force: true });
}

/** `commits` 1-row transactions from `callers` concurrent callers; throughput and latencies. */
async function commitRun(db, insertOne, callers, commits, base) {
  return {
    unit: 'txn/s',
    ...(await concurrently(commits, callers, (i) => insertOne(row(base + i)))),
    poolHighWaterMiB: toMiB(db.poolHighWater()),
  };
}
