// The secondary-index workloads at one table size (bench/lib/gtable.mjs), in one of three modes:
//   node indexes_child.mjs inproc tidemark|sqlite ROWS [--quick]
//       in-process: tidemark through db.query (SQL), or better-sqlite3 with prepared statements
//   node indexes_child.mjs mysql ROWS [--quick]
//       through the MySQL protocol (mysql2, prepared statements) against tidemark serve and MariaDB,
//       both up for the whole run, measured in alternating rounds
//   node indexes_child.mjs load DIR ROWS
//       load a tidemark database for `tidemark serve` (used by the mysql mode)
// Every operation runs for a time budget, not a fixed count (an engine without the indexes scans
// the table at every lookup), after a short warm-up (before the first round only); every lookup's
// row count is checked. The INSERTs add rows past `rows`, deleted again (not timed) after every
// rows/5 of them (at least 2,000), so that every run sees a table of `rows` to 1.2 x `rows` rows.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { now, percentiles, rng } from './lib/data.mjs';
import {
  CREATE_INDEXES,
  CREATE_TABLE,
  CREATE_TABLE_SQLITE,
  gRow,
  gRows,
  loadTidemark,
  lookups,
  OPS,
  Q,
} from './lib/gtable.mjs';
import { reporter, runJsonLines, toMiB } from './lib/proc.mjs';
import { PASSWORD, peakRssMiB, SERVER_SETTINGS, startServer } from './lib/servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const mode = process.argv[2];
const quick = process.argv.includes('--quick');
const BUDGET_MS = quick ? 1500 : 5000; // per measured run
const WARMUP_MS = quick ? 300 : 1000; // before each measured run, not measured
const ROUNDS = quick ? 1 : 3; // mysql mode: alternating rounds per operation
const LOOKUP_CONNECTIONS = 16; // mysql mode, as the mysql suite's point selects
const CALLERS = { city: 1, email: 1, range: 1, insert1: 1, insert64: 64 };
const fmt = (x) => x.toLocaleString('en-US');

/**
 * Run `op(i)` from `callers` concurrent callers, each awaiting its operation before taking the next,
 * until `budgetMs` has passed or `maxOps` were started; operations in flight at the deadline finish
 * and count. Resolves with the count, the time, the throughput and the latencies.
 */
async function timed(budgetMs, maxOps, callers, op) {
  const lat = new Float64Array(maxOps);
  let next = 0;
  const t0 = now();
  const deadline = t0 + budgetMs;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < maxOps && now() < deadline) {
        const i = next++;
        const s = now();
        await op(i);
        lat[i] = now() - s;
      }
    }),
  );
  const ms = now() - t0;
  return { ops: next, ms, opsPerSec: next / (ms / 1000), lat: lat.subarray(0, next) };
}

/** Several runs' operation counts and latencies together. */
function merged(runs) {
  const ops = runs.reduce((a, x) => a + x.ops, 0);
  const lat = new Float64Array(ops);
  let at = 0;
  for (const x of runs) {
    lat.set(x.lat, at);
    at += x.ops;
  }
  return { ops, lat };
}

/** Rows returned by a lookup must be what the data says. */
function check(what, got, want) {
  if (got !== want) throw new Error(`${what}: ${got} rows, expected ${want}`);
}

/**
 * The five operations over `exec` ({ lookup(op, params) -> rows, insert(row), cleanup(maxId) }):
 * run(op, seed, budget, callers) measures one run of one operation.
 */
function workloads(rows, exec) {
  let nextId = rows + 1; // inserts take fresh ids, never reused even after the cleanup
  const insertCap = Math.max(2000, rows / 5);
  return async (op, seed, budgetMs, callers) => {
    const r = rng(seed);
    if (op.startsWith('insert')) {
      // Spans of at most insertCap inserts, each followed by the cleanup (not timed), until the
      // budget is spent: the table holds between rows and rows + insertCap rows throughout.
      const spans = [];
      let ms = 0;
      while (ms < budgetMs) {
        const x = await timed(budgetMs - ms, insertCap, callers, async () => {
          const affected = await exec.insert(gRow(rows, nextId++));
          check('insert', affected, 1);
        });
        await exec.cleanup(rows);
        spans.push(x);
        ms += x.ms;
      }
      const { ops, lat } = merged(spans);
      return { ops, ms, opsPerSec: ops / (ms / 1000), lat };
    }
    return timed(budgetMs, 1 << 22, callers, async () => {
      const [params, want] = lookups[op](rows, r);
      check(`${op} ${params.join('..')}`, await exec.lookup(op, params), want);
    });
  };
}

const opName = (op, callers, who) =>
  `${OPS.find(([o]) => o === op)[1]}, ${callers} ${who}${callers === 1 ? '' : 's'}`;

// ---------------------------------------------------------------------------------------------
// in-process: tidemark (db.query) or better-sqlite3

const INPROC_SETTINGS = {
  tidemark:
    "in-process, db.query (SQL, parameters, the plan cache); wal.sync 'batch' (every commit fdatasynced, group commit); memory limit 2 GiB; loaded with db.insert in 10,000-row transactions, indexes made after the load, then db.flush() and db.compact(): the data lives in objects",
  sqlite:
    'better-sqlite3 12, journal_mode=WAL, synchronous=FULL (every commit fsynced), prepared statements; loaded in 10,000-row transactions, indexes made after the load',
};

async function inproc(engineName, rows) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-bench-indexes-${engineName}-`));
  const { out, stop } = reporter(engineName, INPROC_SETTINGS[engineName]);
  const progress = (msg) =>
    process.stderr.write(`    ${engineName} (in-process, ${fmt(rows)} rows): ${msg}\n`);
  try {
    let exec;
    let close;
    let poolHighWater = () => null;
    let load;
    if (engineName === 'tidemark') {
      const { db, loadMs, indexMs } = await loadTidemark(dir, rows);
      load = { loadMs, indexMs };
      exec = {
        lookup: async (op, params) => (await db.query(Q[op], params)).rows.length,
        insert: async (g) => (await db.query(Q.insert, [g.id, g.email, g.city, g.n])).affectedRows,
        cleanup: async (maxId) => db.query(Q.cleanup, [maxId]),
      };
      poolHighWater = () => db.stats().memory.highWaterBytes;
      close = () => db.close();
    } else {
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(path.join(dir, 'bench.sqlite'));
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      const t0 = now();
      db.exec(CREATE_TABLE_SQLITE);
      const ins = db.prepare(Q.insert);
      const batch = db.transaction((chunk) => {
        for (const g of chunk) ins.run(g.id, g.email, g.city, g.n);
      });
      for (const chunk of gRows(rows)) batch(chunk);
      const t1 = now();
      for (const s of CREATE_INDEXES) db.exec(s);
      load = { loadMs: t1 - t0, indexMs: now() - t1 };
      db.pragma('wal_checkpoint(TRUNCATE)');
      const stmts = { city: db.prepare(Q.city), email: db.prepare(Q.email), range: db.prepare(Q.range) };
      const del = db.prepare(Q.cleanup);
      exec = {
        lookup: async (op, params) => stmts[op].all(...params).length,
        insert: async (g) => ins.run(g.id, g.email, g.city, g.n).changes,
        cleanup: async (maxId) => del.run(maxId),
      };
      close = async () => db.close();
    }
    progress(
      `loaded in ${(load.loadMs / 1000).toFixed(1)} s, indexes made in ${(load.indexMs / 1000).toFixed(1)} s`,
    );
    out({
      via: 'in-process',
      rows,
      workload: 'load',
      name: `load ${fmt(rows)} rows, then CREATE the 3 indexes (not measured: for information)`,
      unit: 'rows/s',
      opsPerSec: rows / (load.loadMs / 1000),
      ...load,
      p50Ms: 0,
      p99Ms: 0,
      poolHighWaterMiB: toMiB(poolHighWater()),
    });
    const run = workloads(rows, exec);
    for (const [k, [op]] of OPS.entries()) {
      const callers = CALLERS[op];
      await run(op, 100 + k, WARMUP_MS, callers);
      const x = await run(op, 200 + k, BUDGET_MS, callers);
      progress(`${op}: ${fmt(Math.round(x.opsPerSec))}/s (${fmt(x.ops)} in ${(x.ms / 1000).toFixed(1)} s)`);
      out({
        via: 'in-process',
        rows,
        workload: op,
        name: opName(op, callers, 'caller'),
        unit: 'ops/s',
        callers,
        ops: x.ops,
        opsPerSec: x.opsPerSec,
        ...percentiles(x.lat),
        poolHighWaterMiB: toMiB(poolHighWater()),
      });
    }
    await close();
  } finally {
    stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// through the MySQL protocol: tidemark serve and MariaDB

const ENGINES = ['tidemark', 'mariadb'];
const MYSQL_SETTINGS = {
  tidemark: `${SERVER_SETTINGS.tidemark}; the database loaded in-process (db.insert in 10,000-row transactions, the indexes, db.flush() and db.compact()) before serve opened it`,
  mariadb: `${SERVER_SETTINGS.mariadb}; loaded with 1,000-row INSERTs, the indexes made after the load, the dirty pages written out (innodb_max_dirty_pages_pct=0 until none) before anything is measured`,
};

async function overMysql(rows) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-indexes-mysql-'));
  const progress = (engine, msg) =>
    process.stderr.write(`    ${engine} (MySQL protocol, ${fmt(rows)} rows): ${msg}\n`);
  const servers = {};
  const pools = {};
  const loads = {};
  try {
    // tidemark: loaded in-process (a child of its own), then served.
    const tdir = path.join(dir, 'tidemark');
    const [l] = await runJsonLines(path.join(here, 'indexes_child.mjs'), ['load', tdir, String(rows)]);
    loads.tidemark = l;
    servers.tidemark = await startServer('tidemark', tdir);
    servers.mariadb = await startServer('mariadb', dir);
    for (const engine of ENGINES) {
      pools[engine] = mysql.createPool({
        host: '127.0.0.1',
        port: servers[engine].port,
        user: 'root',
        password: PASSWORD,
        database: 'tidemark',
        connectionLimit: 64,
        maxIdle: 64, // none closed for idleness
        connectTimeout: 120_000,
      });
      // Every connection opened now: a server busy with slow statements may not accept new ones
      // within the driver's timeout in the middle of a run.
      const conns = await Promise.all(Array.from({ length: 64 }, () => pools[engine].getConnection()));
      for (const c of conns) c.release();
    }
    // MariaDB: multi-row INSERTs of 1,000 rows, then the indexes.
    {
      const pool = pools.mariadb;
      const t0 = now();
      await pool.query(CREATE_TABLE);
      for (const chunk of gRows(rows, 1000)) {
        const values = chunk.map((g) => `(${g.id}, '${g.email}', '${g.city}', ${g.n})`);
        await pool.query(`INSERT INTO g_t (id, email, city, n) VALUES ${values.join(', ')}`);
      }
      const t1 = now();
      for (const s of CREATE_INDEXES) await pool.query(s);
      loads.mariadb = { loadMs: t1 - t0, indexMs: now() - t1 };
      // Settle, as the other engines do after their loads (tidemark's compaction, SQLite's WAL
      // checkpoint): the buffer pool's dirty pages written out before anything is measured.
      const [[{ pct }]] = await pool.query('SELECT @@GLOBAL.innodb_max_dirty_pages_pct AS pct');
      await pool.query('SET GLOBAL innodb_max_dirty_pages_pct = 0');
      for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
        const [[{ Value }]] = await pool.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'");
        if (Number(Value) === 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      await pool.query(`SET GLOBAL innodb_max_dirty_pages_pct = ${Number(pct)}`);
    }
    for (const engine of ENGINES)
      progress(
        engine,
        `loaded in ${(loads[engine].loadMs / 1000).toFixed(1)} s, indexes made in ${(loads[engine].indexMs / 1000).toFixed(1)} s`,
      );

    const emit = (engine, r) =>
      process.stdout.write(
        JSON.stringify({
          engine,
          settings: MYSQL_SETTINGS[engine],
          via: 'mysql',
          rows,
          peakRssMiB: peakRssMiB(servers[engine].pid),
          poolHighWaterMiB: null,
          ...r,
        }) + '\n',
      );
    for (const engine of ENGINES)
      emit(engine, {
        workload: 'load',
        name: `load ${fmt(rows)} rows, then CREATE the 3 indexes (not measured: for information)`,
        unit: 'rows/s',
        opsPerSec: rows / (loads[engine].loadMs / 1000),
        loadMs: loads[engine].loadMs,
        indexMs: loads[engine].indexMs,
        p50Ms: 0,
        p99Ms: 0,
      });

    const runs = {};
    for (const engine of ENGINES) {
      const pool = pools[engine];
      runs[engine] = workloads(rows, {
        lookup: async (op, params) => (await pool.execute(Q[op], params))[0].length,
        insert: async (g) => (await pool.execute(Q.insert, [g.id, g.email, g.city, g.n]))[0].affectedRows,
        cleanup: async (maxId) => pool.query(Q.cleanup, [maxId]),
      });
    }
    for (const [k, [op]] of OPS.entries()) {
      const callers = op.startsWith('insert') ? CALLERS[op] : LOOKUP_CONNECTIONS;
      const results = { tidemark: [], mariadb: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const engine of ENGINES) {
          if (round === 0) await runs[engine](op, 100 + k, WARMUP_MS, callers);
          const x = await runs[engine](op, 200 + 10 * k + round, BUDGET_MS, callers);
          results[engine].push(x);
          progress(
            engine,
            `${op}, round ${round + 1}: ${fmt(Math.round(x.opsPerSec))}/s (${fmt(x.ops)} in ${(x.ms / 1000).toFixed(1)} s)`,
          );
        }
      }
      for (const engine of ENGINES) {
        const rs = results[engine];
        const rates = rs.map((x) => x.opsPerSec);
        const { ops, lat } = merged(rs);
        emit(engine, {
          workload: op,
          name: `${opName(op, callers, 'connection')}${ROUNDS > 1 ? ` (median of ${ROUNDS} rounds)` : ''}`,
          unit: 'ops/s',
          callers,
          ops,
          opsPerSec: [...rates].sort((a, b) => a - b)[rates.length >> 1],
          rounds: rates.map((x) => Math.round(x)),
          ...percentiles(lat),
        });
      }
    }
  } finally {
    for (const engine of ENGINES) await pools[engine]?.end().catch(() => undefined);
    for (const engine of ENGINES) await servers[engine]?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

if (mode === 'inproc') await inproc(process.argv[3], Number(process.argv[4]));
else if (mode === 'mysql') await overMysql(Number(process.argv[3]));
else if (mode === 'load') {
  const rows = Number(process.argv[4]);
  const { db, loadMs, indexMs } = await loadTidemark(process.argv[3], rows);
  await db.close();
  process.stdout.write(JSON.stringify({ loadMs, indexMs }) + '\n');
} else {
  process.stderr.write(
    'usage: node indexes_child.mjs inproc tidemark|sqlite ROWS | mysql ROWS | load DIR ROWS\n',
  );
  process.exit(2);
}
