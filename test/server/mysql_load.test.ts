import type * as net from 'node:net';
import mysql from 'mysql2/promise';
import { expect, it } from 'vitest';
import { accountFor } from '../../src/server/mysql/auth.js';
import { MysqlServer } from '../../src/server/mysql/server.js';
import { memDb } from '../helpers/db.js';

/**
 * A load test on loopback: 64 connections run a mixed workload (point selects, range sums,
 * transfers between accounts in transactions, inserts) for a bounded time, while one client asks
 * for a large result and never reads it. Every error must be an expected conflict (1213); the money
 * adds up; afterwards the pools are back to baseline and the database closes clean.
 */
it('64 connections, mixed reads and writes: only expected conflicts, totals kept, nothing leaked', async () => {
  const { db } = await memDb({ memory: { leakDetection: 'paranoid' } });
  const server = await MysqlServer.start(db, { port: 0, accounts: [accountFor('root', 'secret')] });
  const baseline = db.stats().memory.pools;
  const ACCOUNTS = 200;
  const pool = mysql.createPool({
    host: '127.0.0.1',
    port: server.port,
    user: 'root',
    password: 'secret',
    connectionLimit: 64,
  });
  let stalled: net.Socket | undefined;
  try {
    await pool.query('CREATE TABLE acc (id INT PRIMARY KEY, balance INT NOT NULL)');
    await pool.query('CREATE TABLE log (id INT PRIMARY KEY AUTO_INCREMENT, note VARCHAR(40))');
    await pool.query(
      `INSERT INTO acc VALUES ${Array.from({ length: ACCOUNTS }, (_, i) => `(${i}, 100)`).join(', ')}`,
    );
    await pool.query(
      `INSERT INTO log (note) VALUES ${Array.from({ length: 3000 }, () => `('${'x'.repeat(36)}')`).join(', ')}`,
    );

    // A client that asks for about 8 MiB of rows and never reads them: it holds up only itself.
    stalled = await stalledReader(server.port);

    const counts = { ok: 0, conflicts: 0 };
    const unexpected: string[] = [];
    const until = performance.now() + 4000;
    let seed = 1;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const worker = async (w: number): Promise<void> => {
      while (performance.now() < until) {
        const kind = rnd(10);
        const conn = await pool.getConnection();
        try {
          if (kind < 5) {
            await conn.execute('SELECT balance FROM acc WHERE id = ?', [rnd(ACCOUNTS)]);
          } else if (kind < 7) {
            await conn.query('SELECT sum(balance) AS s FROM acc WHERE id BETWEEN ? AND ?', [10, 60]);
          } else if (kind < 9) {
            const from = rnd(ACCOUNTS);
            const to = (from + 1 + rnd(ACCOUNTS - 1)) % ACCOUNTS;
            await conn.beginTransaction();
            try {
              await conn.execute('UPDATE acc SET balance = balance - 1 WHERE id = ?', [from]);
              await conn.execute('UPDATE acc SET balance = balance + 1 WHERE id = ?', [to]);
              await conn.commit();
            } catch (e) {
              await conn.rollback().catch(() => undefined);
              throw e;
            }
          } else {
            await conn.execute('INSERT INTO log (note) VALUES (?)', [`worker ${w}`]);
          }
          counts.ok++;
        } catch (e) {
          if ((e as { errno?: number }).errno === 1213) counts.conflicts++;
          else unexpected.push(String((e as Error).message));
        } finally {
          conn.release();
        }
      }
    };
    await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w)));
    expect(unexpected).toEqual([]);
    expect(counts.ok).toBeGreaterThan(500);
    // Transfers move money; they never make or lose it.
    const [[sum]] = (await pool.query('SELECT sum(balance) AS s, count(*) AS n FROM acc')) as unknown as [
      [{ s: number; n: number }],
    ];
    expect(sum).toEqual({ s: ACCOUNTS * 100, n: ACCOUNTS });
    expect(server.stats().connections).toBeGreaterThanOrEqual(64);
  } finally {
    await pool.end();
    stalled?.destroy();
    await server.close();
  }
  // Every connection gone: the pools are back where they were.
  const after = db.stats().memory.pools;
  expect(after.io).toMatchObject({ bytes: baseline.io!.bytes, handles: baseline.io!.handles });
  expect(after.query!.bytes).toBe(0);
  await db.close();
}, 120_000);

/** A connection that logs in, sends a query with a large result, and never reads the answer. */
async function stalledReader(port: number): Promise<net.Socket> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: 'secret' });
  // mysql2's socket, paused: the server's writes back up on it.
  const socket = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
  socket.pause();
  void c.query('SELECT a.note, b.balance FROM log a CROSS JOIN acc b LIMIT 200000').catch(() => undefined);
  return socket;
}
