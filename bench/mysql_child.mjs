// One server's run of the sysbench-like workloads through the mysql2 driver, in a process of its
// own; the server runs in another process (tidemark serve, or mariadbd with durable settings).
// Usage: node mysql_child.mjs tidemark|mariadb [--quick]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { now, percentiles, rng } from './lib/data.mjs';
import { freePort, reporter } from './lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const engineName = process.argv[2];
const quick = process.argv.includes('--quick');
const ROWS = quick ? 20_000 : 100_000;
const CONNECTIONS = 16;
const POINT_SELECTS = quick ? 40_000 : 200_000;
const WARMUP_TRANSACTIONS = quick ? 500 : 2_000;
const TRANSACTIONS = quick ? 1_000 : 10_000;
const progress = (msg) => process.stderr.write(`    ${engineName}: ${msg}\n`);

const SETTINGS = {
  tidemark:
    "tidemark serve in its own process (wal.sync 'batch': every commit fdatasynced, shared by group commit), caching_sha2_password",
  mariadb:
    'mariadbd (Debian 10.11) in its own process, innodb_flush_log_at_trx_commit=1 (every commit fsynced), 1 GiB buffer pool, binary log off, secondary index k_1 maintained',
};

const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-bench-mysql-${engineName}-`));
const { out, stop } = reporter(engineName, SETTINGS[engineName]);

async function waitConnect(port, user, password) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user, password });
      await c.end();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Start the server under test; resolves with its port, the account, and stop(). */
async function startServer() {
  const port = await freePort();
  if (engineName === 'tidemark') {
    const child = spawn(
      process.execPath,
      [
        path.join(here, '..', 'bin', 'tidemark.js'),
        'serve',
        '--dir',
        path.join(dir, 'data'),
        '--port',
        '0',
        '--mysql-port',
        String(port),
        '--password',
        'bench',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await waitConnect(port, 'root', 'bench');
    return {
      port,
      stop: () => stopChild(child),
    };
  }
  const data = path.join(dir, 'mariadb');
  const sbin = (p) => `/usr/sbin/${p}`;
  await new Promise((resolve, reject) => {
    const c = spawn(
      'mariadb-install-db',
      [
        '--no-defaults',
        `--datadir=${data}`,
        `--user=${os.userInfo().username}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ],
      { stdio: 'ignore' },
    );
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mariadb-install-db exited ${code}`))));
  });
  const child = spawn(
    sbin('mariadbd'),
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--user=${os.userInfo().username}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${path.join(dir, 'mariadb.sock')}`,
      `--pid-file=${path.join(dir, 'mariadb.pid')}`,
      '--innodb-flush-log-at-trx-commit=1',
      '--innodb-buffer-pool-size=1G',
      '--skip-name-resolve',
      '--max-connections=200',
    ],
    { stdio: 'ignore' },
  );
  await waitConnect(port, 'root', '');
  const admin = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '' });
  await admin.query("SET PASSWORD = PASSWORD('bench')");
  await admin.query('CREATE DATABASE tidemark');
  await admin.end();
  return {
    port,
    stop: () => stopChild(child),
  };
}

/** SIGTERM a server process; resolves once it has exited. */
function stopChild(child) {
  return new Promise((r) => {
    child.on('exit', r);
    child.kill('SIGTERM');
  });
}

const pad = (s, n) => s.padEnd(n, 'x').slice(0, n);

try {
  const server = await startServer();
  const pool = mysql.createPool({
    host: '127.0.0.1',
    port: server.port,
    user: 'root',
    password: 'bench',
    database: 'tidemark',
    connectionLimit: CONNECTIONS,
  });
  try {
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
    progress(`loaded ${ROWS.toLocaleString('en-US')} rows`);

    // oltp_point_select: SELECT c FROM sbtest1 WHERE id = ?, prepared, from 16 connections.
    {
      const r = rng(5);
      const ids = Array.from({ length: POINT_SELECTS }, () => 1 + Math.floor(r() * ROWS));
      for (let i = 0; i < 2000; i++) await pool.execute('SELECT c FROM sbtest1 WHERE id = ?', [ids[i]]);
      const lat = new Float64Array(POINT_SELECTS);
      let next = 0;
      const t0 = now();
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          const conn = await pool.getConnection();
          try {
            for (let i = next++; i < POINT_SELECTS; i = next++) {
              const s = now();
              const [rows] = await conn.execute('SELECT c FROM sbtest1 WHERE id = ?', [ids[i]]);
              lat[i] = now() - s;
              if (rows.length !== 1) throw new Error(`point select ${ids[i]}: ${rows.length} rows`);
            }
          } finally {
            conn.release();
          }
        }),
      );
      const ms = now() - t0;
      progress(`point selects: ${Math.round(POINT_SELECTS / (ms / 1000))}/s`);
      out({
        workload: 'point_select',
        name: `oltp_point_select, ${CONNECTIONS} connections (${POINT_SELECTS.toLocaleString('en-US')})`,
        unit: 'selects/s',
        opsPerSec: POINT_SELECTS / (ms / 1000),
        ...percentiles(lat),
        poolHighWaterMiB: null,
      });
    }

    // oltp_read_write: 10 point selects, 4 range queries, 2 updates, a delete and an insert, durable.
    // A warm-up run first (as sysbench's --warmup-time): until a JIT has compiled the server's
    // paths, a Node server runs slower; its figure is reported on a row of its own.
    const readWrite = async (transactions, seed) => {
      const r = rng(seed);
      const lat = new Float64Array(transactions);
      let next = 0;
      let retries = 0;
      const t0 = now();
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          const conn = await pool.getConnection();
          try {
            for (let i = next++; i < transactions; i = next++) {
              const s = now();
              for (;;) {
                try {
                  await conn.query('BEGIN');
                  for (let q = 0; q < 10; q++)
                    await conn.execute('SELECT c FROM sbtest1 WHERE id = ?', [1 + Math.floor(r() * ROWS)]);
                  const lo = 1 + Math.floor(r() * (ROWS - 100));
                  await conn.execute('SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?', [lo, lo + 99]);
                  await conn.execute('SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN ? AND ?', [lo, lo + 99]);
                  await conn.execute('SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c', [
                    lo,
                    lo + 99,
                  ]);
                  await conn.execute('SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c', [
                    lo,
                    lo + 99,
                  ]);
                  await conn.execute('UPDATE sbtest1 SET k = k + 1 WHERE id = ?', [
                    1 + Math.floor(r() * ROWS),
                  ]);
                  const u = 1 + Math.floor(r() * ROWS);
                  await conn.execute('UPDATE sbtest1 SET c = ? WHERE id = ?', [pad(`u${u}-${i}-`, 119), u]);
                  const d = 1 + Math.floor(r() * ROWS);
                  await conn.execute('DELETE FROM sbtest1 WHERE id = ?', [d]);
                  await conn.execute('INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)', [
                    d,
                    Math.floor(r() * ROWS),
                    pad(`c${d}-`, 119),
                    pad(`p${d}-`, 59),
                  ]);
                  await conn.query('COMMIT');
                  break;
                } catch (e) {
                  await conn.query('ROLLBACK').catch(() => undefined);
                  // Conflicts and deadlocks are retried, as sysbench does.
                  if (e.errno !== 1213 && e.errno !== 1205 && e.errno !== 1062) throw e;
                  retries++;
                }
              }
              lat[i] = now() - s;
            }
          } finally {
            conn.release();
          }
        }),
      );
      return { ms: now() - t0, lat, retries };
    };
    const report = (workload, label, transactions, { ms, lat, retries }) => {
      progress(`${label}: ${Math.round(transactions / (ms / 1000))} transactions/s (${retries} retries)`);
      out({
        workload,
        name: `${label}, ${CONNECTIONS} connections (${transactions.toLocaleString('en-US')} transactions)`,
        unit: 'transactions/s',
        opsPerSec: transactions / (ms / 1000),
        retries,
        ...percentiles(lat),
        poolHighWaterMiB: null,
      });
    };
    report(
      'read_write_warmup',
      'oltp_read_write warm-up',
      WARMUP_TRANSACTIONS,
      await readWrite(WARMUP_TRANSACTIONS, 7),
    );
    report('read_write', 'oltp_read_write', TRANSACTIONS, await readWrite(TRANSACTIONS, 11));
  } finally {
    await pool.end();
    await server.stop();
  }
} finally {
  stop();
  rmSync(dir, { recursive: true, force: true });
}
