// One engine's run of the SQL workloads, in a process of its own: load TPC-H's lineitem, run Q1 and
// Q6 (a first run, then warm runs), then point selects by key through SQL with a prepared/cached
// statement (and, for tidemark, the same lookups through db.get).
// Usage: node sql_child.mjs tidemark|sqlite|duckdb [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { now, percentiles, rng } from './lib/data.mjs';
import { reporter, toMiB } from './lib/proc.mjs';
import { CREATE, dateText, lineitems, Q1, Q1_SQLITE, Q6, Q6_SQLITE } from './lib/tpch.mjs';

const engineName = process.argv[2];
const quick = process.argv.includes('--quick');
const LINES = quick ? 1_000_000 : 6_000_000;
const WARM_RUNS = 5;
const POINTS = quick ? 50_000 : 200_000;
const progress = (msg) => process.stderr.write(`    ${engineName}: ${msg}\n`);

const SETTINGS = {
  tidemark:
    "db.query (SQL through the vectorized engine); wal.sync 'batch'; memory limit 4 GiB; loaded with db.insert in 10,000-row transactions, then db.flush() and db.compact(): the data lives in objects",
  sqlite:
    'better-sqlite3 12, WAL journal, synchronous FULL, prepared statements; dates as ISO text; loaded in 10,000-row transactions',
  duckdb:
    '@duckdb/node-api 1.5.6, persistent file, default threads (one per core) and memory limit, loaded with the Appender, CHECKPOINT after the load; prepared statement for point selects',
};

const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-bench-sql-${engineName}-`));
const { out, stop } = reporter(engineName, SETTINGS[engineName]);

/** The engines behind one interface: load(chunk), q1(), q6(), point(id), close(). */
async function openEngine() {
  if (engineName === 'tidemark') {
    const { open } = await import('../dist/index.js');
    const db = await open(dir, { memory: { limitBytes: 4 * 1024 ** 3 }, checkpoint: { intervalMs: 0 } });
    await db.query(CREATE);
    return {
      load: (rows) =>
        db.insert(
          'lineitem',
          rows.map((r) => ({
            l_id: r.id,
            l_quantity: r.quantity,
            l_extendedprice: r.price,
            l_discount: r.discount,
            l_tax: r.tax,
            l_returnflag: r.returnflag,
            l_linestatus: r.linestatus,
            l_shipdate: r.shipdate,
          })),
        ),
      settle: async () => {
        await db.flush();
        await db.compact();
      },
      q1: async () => (await db.query(Q1)).rows,
      q6: async () => (await db.query(Q6)).rows,
      point: async (id) =>
        (await db.query('SELECT l_quantity, l_extendedprice FROM lineitem WHERE l_id = ?', [id])).rows,
      get: async (id) => {
        const r = await db.get('lineitem', id, { columns: ['l_quantity', 'l_extendedprice'] });
        return r === undefined ? [] : [[r.l_quantity, r.l_extendedprice]];
      },
      poolHighWater: () => db.stats().memory.highWaterBytes,
      close: () => db.close(),
    };
  }
  if (engineName === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path.join(dir, 'bench.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(CREATE.replace('DATE', 'TEXT'));
    const ins = db.prepare('INSERT INTO lineitem VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const load = db.transaction((rows) => {
      for (const r of rows)
        ins.run(
          r.id,
          r.quantity,
          r.price,
          r.discount,
          r.tax,
          r.returnflag,
          r.linestatus,
          dateText(r.shipdate),
        );
    });
    const q1 = db.prepare(Q1_SQLITE).raw();
    const q6 = db.prepare(Q6_SQLITE).raw();
    const point = db.prepare('SELECT l_quantity, l_extendedprice FROM lineitem WHERE l_id = ?').raw();
    return {
      load: async (rows) => load(rows),
      settle: async () => db.pragma('wal_checkpoint(TRUNCATE)'),
      q1: async () => q1.all(),
      q6: async () => q6.all(),
      point: async (id) => point.all(id),
      poolHighWater: () => null,
      close: async () => db.close(),
    };
  }
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(path.join(dir, 'bench.duckdb'));
  const conn = await instance.connect();
  await conn.run(CREATE);
  const point = await conn.prepare('SELECT l_quantity, l_extendedprice FROM lineitem WHERE l_id = $1');
  const { DuckDBDateValue } = await import('@duckdb/node-api');
  return {
    load: async (rows) => {
      const a = await conn.createAppender('lineitem');
      for (const r of rows) {
        a.appendBigInt(BigInt(r.id));
        a.appendDouble(r.quantity);
        a.appendDouble(r.price);
        a.appendDouble(r.discount);
        a.appendDouble(r.tax);
        a.appendVarchar(r.returnflag);
        a.appendVarchar(r.linestatus);
        a.appendDate(new DuckDBDateValue(Math.round(r.shipdate / 86_400_000)));
        a.endRow();
      }
      a.closeSync();
    },
    settle: async () => conn.run('CHECKPOINT'),
    q1: async () => (await conn.runAndReadAll(Q1)).getRows(),
    q6: async () => (await conn.runAndReadAll(Q6)).getRows(),
    point: async (id) => {
      point.bindBigInt(1, BigInt(id));
      return (await point.runAndReadAll()).getRows();
    },
    poolHighWater: () => null,
    close: async () => {
      conn.closeSync();
      instance.closeSync();
    },
  };
}

/**
 * Q1's and Q6's results, rounded to 5 significant digits (AVG of a DECIMAL(15,2) has 6 decimals, 0.050043, a DOUBLE more), to compare across engines: numbers,
 * bigints and exact DECIMALs (tidemark's Decimal, DuckDB's decimal values: compared by their text).
 */
function digest(rows) {
  const numeric = /^-?\d+(\.\d+)?$/;
  return rows
    .map((r) =>
      r
        .map((v) => {
          const t = String(v);
          return typeof v === 'number' || typeof v === 'bigint' || numeric.test(t)
            ? Number(Number(t).toPrecision(5))
            : t;
        })
        .join(','),
    )
    .join(';');
}

try {
  const db = await openEngine();
  const t0 = now();
  for (const chunk of lineitems(LINES, 10_000)) await db.load(chunk);
  await db.settle();
  const loadMs = now() - t0;
  progress(`loaded ${LINES.toLocaleString('en-US')} lines in ${(loadMs / 1000).toFixed(1)} s`);
  out({
    workload: 'load',
    name: `load lineitem (${LINES.toLocaleString('en-US')} rows)`,
    unit: 'rows/s',
    opsPerSec: LINES / (loadMs / 1000),
    p50Ms: 0,
    p99Ms: 0,
    poolHighWaterMiB: toMiB(db.poolHighWater()),
  });

  for (const [workload, run] of [
    ['q1', db.q1],
    ['q6', db.q6],
  ]) {
    const first = now();
    const rows = await run();
    const firstMs = now() - first;
    const times = new Float64Array(WARM_RUNS);
    for (let i = 0; i < WARM_RUNS; i++) {
      const s = now();
      await run();
      times[i] = now() - s;
    }
    const { p50Ms } = percentiles(times);
    progress(`${workload}: first ${firstMs.toFixed(0)} ms, warm median ${p50Ms.toFixed(0)} ms`);
    out({
      workload,
      name: `TPC-H ${workload.toUpperCase()} over ${LINES.toLocaleString('en-US')} lines (warm median of ${WARM_RUNS})`,
      unit: 'queries/s',
      opsPerSec: 1000 / p50Ms,
      p50Ms,
      p99Ms: Math.max(...times),
      firstMs,
      digest: digest(rows),
      poolHighWaterMiB: toMiB(db.poolHighWater()),
    });
  }

  const points = engineName === 'duckdb' ? Math.min(POINTS, 20_000) : POINTS;
  const ids = new Float64Array(points);
  const r = rng(9);
  // Keys of lines that exist: order k has at least line 1.
  for (let i = 0; i < points; i++) ids[i] = (1 + Math.floor(r() * (LINES / 4.5))) * 8 + 1;
  const lookups = [['point', db.point]];
  if (db.get !== undefined) lookups.push(['get', db.get]);
  for (const [workload, fn] of lookups) {
    for (let i = 0; i < Math.min(1000, points); i++) await fn(ids[i]);
    const lat = new Float64Array(points);
    const s0 = now();
    for (let i = 0; i < points; i++) {
      const s = now();
      const got = await fn(ids[i]);
      lat[i] = now() - s;
      if (got.length !== 1) throw new Error(`${workload} ${ids[i]}: ${got.length} rows`);
    }
    const ms = now() - s0;
    out({
      workload,
      name:
        workload === 'point'
          ? `point selects by key through SQL (${points.toLocaleString('en-US')})`
          : `the same lookups through db.get (${points.toLocaleString('en-US')})`,
      unit: 'lookups/s',
      opsPerSec: points / (ms / 1000),
      ...percentiles(lat),
      poolHighWaterMiB: toMiB(db.poolHighWater()),
    });
  }
  await db.close();
} finally {
  stop();
  rmSync(dir, { recursive: true, force: true });
}
