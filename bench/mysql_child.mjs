// The sysbench-like workloads through the mysql2 driver against both servers, each in a process of
// its own (tidemark serve; mariadbd with durable settings), this client in a third. Both servers
// are up for the whole run and measured in alternating rounds (tidemark, MariaDB, tidemark, ...):
// on a shared machine whose load drifts, each engine then sees the same conditions, and each
// figure is the median of its rounds.
// Usage: node mysql_child.mjs [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import mysql from 'mysql2/promise';
import { now, percentiles, rng } from './lib/data.mjs';
import { PASSWORD, peakRssMiB, startServer } from './lib/servers.mjs';

const quick = process.argv.includes('--quick');
const ENGINES = ['tidemark', 'mariadb'];
const ROWS = quick ? 20_000 : 100_000;
const CONNECTIONS = 16;
const ROUNDS = 3;
const POINT_SELECTS = quick ? 15_000 : 70_000; // per round
const WARMUP_TRANSACTIONS = quick ? 500 : 2_000;
const TRANSACTIONS = quick ? 500 : 4_000; // per round
const progress = (engine, msg) => process.stderr.write(`    ${engine}: ${msg}\n`);

const SETTINGS = {
  tidemark:
    "tidemark serve in its own process (wal.sync 'batch': every commit fdatasynced, shared by group commit), caching_sha2_password",
  mariadb:
    'mariadbd (Debian 10.11) in its own process, innodb_flush_log_at_trx_commit=1 (every commit fsynced), 1 GiB buffer pool, binary log off, secondary index k_1 maintained',
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-mysql-'));

const pad = (s, n) => s.padEnd(n, 'x').slice(0, n);

/** `count` operations over CONNECTIONS connections, `op(conn, i)` each; time and latencies. */
async function run(pool, count, op) {
  const lat = new Float64Array(count);
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      const conn = await pool.getConnection();
      try {
        for (let i = next++; i < count; i = next++) {
          const s = now();
          await op(conn, i);
          lat[i] = now() - s;
        }
      } finally {
        conn.release();
      }
    }),
  );
  return { ms: now() - t0, lat };
}

/** oltp_point_select: SELECT c FROM sbtest1 WHERE id = ?, prepared. */
function pointSelect(seed) {
  const r = rng(seed);
  return async (conn) => {
    const id = 1 + Math.floor(r() * ROWS);
    const [rows] = await conn.execute('SELECT c FROM sbtest1 WHERE id = ?', [id]);
    if (rows.length !== 1) throw new Error(`point select ${id}: ${rows.length} rows`);
  };
}

/**
 * oltp_read_write: 10 point selects, a range, a range SUM, a range ORDER BY, a range DISTINCT, two
 * updates, a delete and an insert, durable. Conflicts and deadlocks are retried, as sysbench does.
 */
function readWrite(seed, counts) {
  const r = rng(seed);
  return async (conn, i) => {
    for (;;) {
      try {
        await conn.query('BEGIN');
        for (let q = 0; q < 10; q++)
          await conn.execute('SELECT c FROM sbtest1 WHERE id = ?', [1 + Math.floor(r() * ROWS)]);
        const lo = 1 + Math.floor(r() * (ROWS - 100));
        await conn.execute('SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?', [lo, lo + 99]);
        await conn.execute('SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN ? AND ?', [lo, lo + 99]);
        await conn.execute('SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c', [lo, lo + 99]);
        await conn.execute('SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c', [
          lo,
          lo + 99,
        ]);
        await conn.execute('UPDATE sbtest1 SET k = k + 1 WHERE id = ?', [1 + Math.floor(r() * ROWS)]);
        const u = 1 + Math.floor(r() * ROWS);
        await conn.execute('UPDATE sbtest1 SET c = ? WHERE id = ?', [pad(`u${u}-${seed}-${i}-`, 119), u]);
        const d = 1 + Math.floor(r() * ROWS);
        await conn.execute('DELETE FROM sbtest1 WHERE id = ?', [d]);
        await conn.execute('INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)', [
          d,
          Math.floor(r() * ROWS),
          pad(`c${d}-`, 119),
          pad(`p${d}-`, 59),
        ]);
        await conn.query('COMMIT');
        return;
      } catch (e) {
        await conn.query('ROLLBACK').catch(() => undefined);
        if (e.errno !== 1213 && e.errno !== 1205 && e.errno !== 1062) throw e;
        counts.retries++;
      }
    }
  };
}

const servers = {};
const pools = {};
try {
  for (const engine of ENGINES) {
    servers[engine] = await startServer(engine, engine === 'tidemark' ? path.join(dir, 'data') : dir);
    pools[engine] = mysql.createPool({
      host: '127.0.0.1',
      port: servers[engine].port,
      user: 'root',
      password: PASSWORD,
      database: 'tidemark',
      connectionLimit: CONNECTIONS,
    });
  }
  for (const engine of ENGINES) {
    const pool = pools[engine];
    await pool.query(
      "CREATE TABLE sbtest1 (id INT NOT NULL AUTO_INCREMENT, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', PRIMARY KEY (id))",
    );
    await pool.query('CREATE INDEX k_1 ON sbtest1 (k)');
    const r0 = rng(3);
    for (let b = 0; b < ROWS; b += 1000) {
      const values = [];
      for (let i = b + 1; i <= b + 1000; i++)
        values.push(`(${i}, ${Math.floor(r0() * ROWS)}, '${pad(`c${i}-`, 119)}', '${pad(`p${i}-`, 59)}')`);
      await pool.query(`INSERT INTO sbtest1 (id, k, c, pad) VALUES ${values.join(', ')}`);
    }
    progress(engine, `loaded ${ROWS.toLocaleString('en-US')} rows`);
  }

  const emit = (engine, r) =>
    process.stdout.write(
      JSON.stringify({
        engine,
        settings: SETTINGS[engine],
        peakRssMiB: peakRssMiB(servers[engine].pid),
        ...r,
      }) + '\n',
    );
  /** Per engine: the median round's throughput, latencies over every round. */
  const summary = (rounds, count) => {
    const rates = rounds.map((x) => count / (x.ms / 1000));
    const lat = new Float64Array(rounds.length * count);
    rounds.forEach((x, k) => lat.set(x.lat, k * count));
    return {
      opsPerSec: [...rates].sort((a, b) => a - b)[rates.length >> 1],
      rounds: rates.map((x) => Math.round(x)),
      ...percentiles(lat),
    };
  };

  // Point selects: a warm-up of 2,000 each, then alternating rounds.
  const points = { tidemark: [], mariadb: [] };
  for (const engine of ENGINES) await run(pools[engine], 2000, pointSelect(4));
  for (let round = 0; round < ROUNDS; round++) {
    for (const engine of ENGINES) {
      const x = await run(pools[engine], POINT_SELECTS, pointSelect(5 + round));
      points[engine].push(x);
      progress(engine, `point selects, round ${round + 1}: ${Math.round(POINT_SELECTS / (x.ms / 1000))}/s`);
    }
  }
  for (const engine of ENGINES) {
    emit(engine, {
      workload: 'point_select',
      name: `oltp_point_select, ${CONNECTIONS} connections (${ROUNDS} rounds of ${POINT_SELECTS.toLocaleString('en-US')})`,
      unit: 'selects/s',
      ...summary(points[engine], POINT_SELECTS),
      poolHighWaterMiB: null,
    });
  }

  // Read-write: a warm-up each (as sysbench's --warmup-time: a Node server runs slower until V8
  // has compiled its paths), reported on rows of its own; then alternating rounds.
  for (const engine of ENGINES) {
    const counts = { retries: 0 };
    const x = await run(pools[engine], WARMUP_TRANSACTIONS, readWrite(7, counts));
    progress(engine, `read-write warm-up: ${Math.round(WARMUP_TRANSACTIONS / (x.ms / 1000))} transactions/s`);
    emit(engine, {
      workload: 'read_write_warmup',
      name: `oltp_read_write warm-up, ${CONNECTIONS} connections (${WARMUP_TRANSACTIONS.toLocaleString('en-US')} transactions)`,
      unit: 'transactions/s',
      opsPerSec: WARMUP_TRANSACTIONS / (x.ms / 1000),
      retries: counts.retries,
      ...percentiles(x.lat),
      poolHighWaterMiB: null,
    });
  }
  const rw = { tidemark: [], mariadb: [] };
  const retries = { tidemark: { retries: 0 }, mariadb: { retries: 0 } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const engine of ENGINES) {
      const x = await run(pools[engine], TRANSACTIONS, readWrite(11 + round, retries[engine]));
      rw[engine].push(x);
      progress(
        engine,
        `read-write, round ${round + 1}: ${Math.round(TRANSACTIONS / (x.ms / 1000))} transactions/s`,
      );
    }
  }
  for (const engine of ENGINES) {
    emit(engine, {
      workload: 'read_write',
      name: `oltp_read_write, ${CONNECTIONS} connections (${ROUNDS} rounds of ${TRANSACTIONS.toLocaleString('en-US')} transactions)`,
      unit: 'transactions/s',
      ...summary(rw[engine], TRANSACTIONS),
      retries: retries[engine].retries,
      poolHighWaterMiB: null,
    });
  }
} finally {
  for (const engine of ENGINES) await pools[engine]?.end();
  for (const engine of ENGINES) await servers[engine]?.stop();
  rmSync(dir, { recursive: true, force: true });
}
