import * as net from 'node:net';
import mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import type { Database, OpenOptions } from '../../src/index.js';
import { accountFor, NATIVE, SHA2 } from '../../src/server/mysql/auth.js';
import { MysqlServer, type MysqlServerOptions } from '../../src/server/mysql/server.js';
import { memDb } from '../helpers/db.js';

/** A database and its MySQL server on a free loopback port; closed after each test. */
let opened: { db: Database; server: MysqlServer } | undefined;

async function start(
  options: Partial<MysqlServerOptions> = {},
  dbOptions: OpenOptions = {},
): Promise<{ db: Database; server: MysqlServer }> {
  const { db } = await memDb(dbOptions);
  const server = await MysqlServer.start(db, {
    port: 0,
    accounts: [accountFor('root', 'secret'), accountFor('ann', 'pw2')],
    authFailureDelayMs: 50,
    ...options,
  });
  opened = { db, server };
  return opened;
}

afterEach(async () => {
  if (opened === undefined) return;
  const { db, server } = opened;
  opened = undefined;
  await server.close();
  // Every connection's buffers came from the io pool: all returned.
  expect(db.stats().memory.pools.io).toMatchObject({ bytes: 0, handles: 0 });
  await db.close();
});

const connect = (server: MysqlServer, o: Partial<mysql.ConnectionOptions> = {}) =>
  mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root', password: 'secret', ...o });

async function errnoOf(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return (e as { errno?: number }).errno ?? String(e);
  }
}

/** A raw socket's bytes until it closes (or `ms` pass). */
function rawExchange(
  port: number,
  send: (s: net.Socket, greeting: Buffer) => void,
  ms = 3000,
): Promise<{ closed: boolean; data: Buffer }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let greeted = false;
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ closed: false, data });
    }, ms);
    s.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (!greeted) {
        greeted = true;
        send(s, d);
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, data });
    });
  });
}

describe('the MySQL server, with the mysql2 driver', () => {
  it('DECIMAL and 64-bit integers both ways: supportBigNumbers, bigNumberStrings, decimalNumbers', async () => {
    const { server } = await start();
    const big = '1234567890123456789';
    const plain = await connect(server, { database: 'tidemark' });
    try {
      await plain.query('CREATE TABLE acct (id BIGINT PRIMARY KEY, u BIGINT UNSIGNED, price DECIMAL(15,2))');
      // Text protocol in, binary protocol (prepared, with a bigint and a DECIMAL text) in.
      await plain.query(`INSERT INTO acct VALUES (${big}, 18446744073709551615, 0.10)`);
      await plain.execute('INSERT INTO acct VALUES (?, ?, ?)', [9007199254740993n, 2n ** 63n, '0.20']);
      const [rows] = await plain.query('SELECT id, u, price FROM acct ORDER BY id');
      // Without supportBigNumbers mysql2 gives BIGINTs as numbers (rounded past 2^53, its choice),
      // DECIMALs as text.
      expect((rows as { price: unknown }[]).map((r) => r.price)).toEqual(['0.20', '0.10']);
      const [sum] = await plain.query('SELECT SUM(price) AS s, SUM(price) = 0.30 AS ok FROM acct');
      expect(sum).toEqual([{ s: '0.30', ok: 1 }]);
      // A DECIMAL column's integers carry its scale, as MySQL's do (text and binary protocols).
      const mixed = 'SELECT x FROM (SELECT 1.50 AS x UNION ALL SELECT 2) t ORDER BY x';
      expect((await plain.query(mixed))[0]).toEqual([{ x: '1.50' }, { x: '2.00' }]);
      expect((await plain.execute(mixed))[0]).toEqual([{ x: '1.50' }, { x: '2.00' }]);
    } finally {
      await plain.end();
    }
    for (const prepared of [false, true]) {
      const c = await connect(server, {
        database: 'tidemark',
        supportBigNumbers: true,
        bigNumberStrings: true,
        decimalNumbers: false,
      });
      try {
        const sql = 'SELECT id, u, price FROM acct WHERE id >= ? ORDER BY id';
        const [rows] = prepared
          ? await c.execute(sql, ['9007199254740993'])
          : await c.query(sql, ['9007199254740993']);
        expect(rows, `prepared: ${prepared}`).toEqual([
          { id: '9007199254740993', u: '9223372036854775808', price: '0.20' },
          { id: big, u: '18446744073709551615', price: '0.10' },
        ]);
      } finally {
        await c.end();
      }
    }
    const d = await connect(server, { database: 'tidemark', decimalNumbers: true });
    try {
      const [rows] = await d.query('SELECT price, price * 3 AS triple FROM acct ORDER BY id');
      expect(rows).toEqual([
        { price: 0.2, triple: 0.6 },
        { price: 0.1, triple: 0.3 },
      ]);
    } finally {
      await d.end();
    }
  });

  it.each([SHA2, NATIVE])('authenticates with %s; text queries give typed values', async (plugin) => {
    const { server } = await start({ authPlugin: plugin as typeof SHA2 });
    const c = await connect(server, { database: 'tidemark' });
    try {
      const [rows] = await c.query(
        'SELECT 1 + 1 AS two, 2.5 AS half, @@version_comment AS v, DATABASE() AS db, NULL AS n',
      );
      // 2.5 is a DECIMAL literal: mysql2 gives DECIMALs as text unless decimalNumbers is set, as for MySQL.
      expect(rows).toEqual([{ two: 2, half: '2.5', v: 'tidemark', db: 'tidemark', n: null }]);
      await c.query(
        'CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, s VARCHAR(10), d DOUBLE, at DATETIME, b BLOB)',
      );
      const [ins] = (await c.query(
        "INSERT INTO t (s, d, at, b) VALUES ('a', 1.5, '2024-01-02 03:04:05', x'0102'), (NULL, 2, NULL, NULL)",
      )) as [mysql.ResultSetHeader, unknown];
      expect(ins).toMatchObject({ affectedRows: 2, insertId: 1 });
      const [all] = await c.query('SELECT * FROM t ORDER BY id');
      expect(all).toEqual([
        { id: 1, s: 'a', d: 1.5, at: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)), b: Buffer.from([1, 2]) },
        { id: 2, s: null, d: 2, at: null, b: null },
      ]);
      // Several statements in one query: a result set each.
      const [multi] = await c.query({ sql: 'SELECT 1 AS a; SELECT 2 AS b' });
      expect(multi).toEqual([[{ a: 1 }], [{ b: 2 }]]);
      // Session statements among them too (what some clients send on connect).
      const [withSet] = (await c.query({ sql: "SET NAMES utf8mb4; SELECT 'x' AS c" })) as [
        unknown[],
        unknown,
      ];
      expect(withSet[1]).toEqual([{ c: 'x' }]);
      await c.ping();
    } finally {
      await c.end();
    }
  });

  it('a response the io pool cannot hold fails its command with MEMORY_LIMIT; the connection goes on', async () => {
    const { server } = await start({}, { memory: { limitBytes: 8 * 1024 * 1024 } });
    const c = await connect(server);
    try {
      // 15 MB of result: refused before anything of it is sent, not after.
      expect(await errnoOf(c.query("SELECT REPEAT('x', 15000000) AS big"))).toBe(1041);
      const [rows] = await c.query('SELECT 1 AS one');
      expect(rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('prepared statements: parameters of every kind, results in the binary protocol', async () => {
    const { server } = await start();
    const c = await connect(server);
    try {
      await c.query(
        'CREATE TABLE t (id BIGINT PRIMARY KEY, s TEXT, d DOUBLE, at DATETIME, ok BOOLEAN, b BLOB)',
      );
      const at = new Date(Date.UTC(2020, 5, 7, 8, 9, 10));
      const [r] = (await c.execute('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)', [
        7,
        "it's",
        -3.25,
        at,
        true,
        Buffer.from([9, 8]),
      ])) as [mysql.ResultSetHeader, unknown];
      expect(r.affectedRows).toBe(1);
      await c.execute('INSERT INTO t (id, s) VALUES (?, ?)', [8, null]);
      const [rows] = await c.execute('SELECT id, s, d, at, ok, b FROM t WHERE id >= ? ORDER BY id', [7]);
      expect(rows).toEqual([
        { id: 7, s: "it's", d: -3.25, at, ok: 1, b: Buffer.from([9, 8]) },
        { id: 8, s: null, d: null, at: null, ok: null, b: null },
      ]);
      // The same statement again (cached by the driver and by tidemark), other values.
      expect((await c.execute('SELECT s FROM t WHERE id = ?', [8]))[0]).toEqual([{ s: null }]);
      expect(await errnoOf(c.execute('SELECT nope FROM t WHERE id = ?', [1]))).toBe(1054);
      expect(await errnoOf(c.prepare('SELEC ?'))).toBe(1064);
    } finally {
      await c.end();
    }
  });

  it('maps errors to MySQL error numbers, and the connection goes on', async () => {
    const { server } = await start();
    const a = await connect(server);
    const b = await connect(server);
    try {
      await a.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
      await a.query('INSERT INTO t VALUES (1, 1)');
      expect(await errnoOf(a.query('INSERT INTO t VALUES (1, 2)'))).toBe(1062);
      expect(await errnoOf(a.query('SELECT * FROM nowhere'))).toBe(1146);
      expect(await errnoOf(a.query('SELEC 1'))).toBe(1064);
      expect(await errnoOf(a.query('SELECT nope FROM t'))).toBe(1054);
      expect(await errnoOf(a.query('USE other'))).toBe(1049);
      // A write-write conflict: the second to commit gets 1213 (SQLSTATE 40001).
      await a.beginTransaction();
      await b.beginTransaction();
      await a.query('UPDATE t SET v = 10 WHERE id = 1');
      await b.query('UPDATE t SET v = 20 WHERE id = 1');
      await a.commit();
      const e = await b.commit().catch((x: unknown) => x as { errno: number; sqlState: string });
      expect(e).toMatchObject({ errno: 1213, sqlState: '40001' });
      expect((await a.query('SELECT v FROM t'))[0]).toEqual([{ v: 10 }]);
      // Rollback and autocommit off.
      await a.beginTransaction();
      await a.query('INSERT INTO t VALUES (2, 2)');
      await a.rollback();
      await a.query('SET autocommit = 0');
      await a.query('INSERT INTO t VALUES (3, 3)');
      expect((await b.query('SELECT count(*) AS n FROM t'))[0]).toEqual([{ n: 1 }]);
      await a.query('COMMIT');
      expect((await b.query('SELECT count(*) AS n FROM t'))[0]).toEqual([{ n: 2 }]);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('UNIQUE secondary keys over the protocol: 1062 with SQLSTATE 23000 (at the write and at commit), SHOW INDEX, IGNORE and ON DUPLICATE KEY UPDATE counts', async () => {
    const { server } = await start();
    const a = await connect(server);
    const b = await connect(server);
    try {
      await a.query(
        'CREATE TABLE g (id INT PRIMARY KEY, email VARCHAR(64) UNIQUE, city VARCHAR(20), KEY (city))',
      );
      await a.query("INSERT INTO g VALUES (1, 'a@x', 'Oslo'), (2, 'b@x', 'Oslo')");
      const e = await a
        .query("INSERT INTO g VALUES (3, 'a@x', 'Rome')")
        .catch((x: unknown) => x as { errno: number; sqlState: string; message: string });
      expect(e).toMatchObject({ errno: 1062, sqlState: '23000' });
      expect((e as { message: string }).message).toMatch(/key 'email'/);
      expect(await errnoOf(a.execute('UPDATE g SET email = ? WHERE id = ?', ['a@x', 2]))).toBe(1062);
      // Two transactions taking the same value: the second to commit gets 1062.
      await a.beginTransaction();
      await b.beginTransaction();
      await a.query("INSERT INTO g VALUES (4, 'same@x', 'Rome')");
      await b.query("INSERT INTO g VALUES (5, 'same@x', 'Rome')");
      await a.commit();
      expect(await errnoOf(b.commit())).toBe(1062);
      const [ignored] = await a.query("INSERT IGNORE INTO g VALUES (6, 'a@x', 'x'), (7, 'c@x', 'x')");
      expect(ignored).toMatchObject({ affectedRows: 1 });
      const [updated] = await a.query(
        "INSERT INTO g VALUES (8, 'c@x', 'y') ON DUPLICATE KEY UPDATE city = VALUES(city)",
      );
      expect(updated).toMatchObject({ affectedRows: 2 });
      const [keys] = await a.query('SHOW INDEX FROM g');
      expect(
        (keys as { Key_name: string; Column_name: string; Non_unique: number }[]).map((k) => [
          k.Key_name,
          k.Column_name,
          k.Non_unique,
        ]),
      ).toEqual([
        ['PRIMARY', 'id', 0],
        ['email', 'email', 0],
        ['city', 'city', 1],
      ]);
      const [found] = await a.execute('SELECT id FROM g WHERE email = ?', ['c@x']);
      expect(found).toEqual([{ id: 7 }]);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('a pool of 50 connections runs queries side by side', async () => {
    const { server } = await start();
    const pool = mysql.createPool({
      host: '127.0.0.1',
      port: server.port,
      user: 'ann',
      password: 'pw2',
      connectionLimit: 50,
    });
    try {
      await pool.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
      await Promise.all(
        Array.from({ length: 500 }, (_, i) => pool.execute('INSERT INTO t VALUES (?, ?)', [i, i])),
      );
      const reads = await Promise.all(
        Array.from({ length: 500 }, (_, i) => pool.execute('SELECT v FROM t WHERE id = ?', [i])),
      );
      expect(reads.map(([r]) => (r as { v: number }[])[0]!.v)).toEqual(
        Array.from({ length: 500 }, (_, i) => i),
      );
      expect(server.stats().connections).toBe(50);
      const [[who]] = (await pool.query('SELECT USER() AS u')) as unknown as [[{ u: string }]];
      expect(who.u).toBe('ann@localhost');
    } finally {
      await pool.end();
    }
  });
});

describe('the MySQL server: credentials, limits and bad traffic', () => {
  it('refuses wrong credentials with 1045 after a delay; no account without a password', async () => {
    const { server } = await start({ authFailureDelayMs: 200 });
    const started = performance.now();
    expect(await errnoOf(connect(server, { password: 'wrong' }))).toBe(1045);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect(await errnoOf(connect(server, { user: 'nobody' }))).toBe(1045);
    expect(await errnoOf(connect(server, { password: '' }))).toBe(1045);
    expect(await errnoOf(connect(server, { database: 'other' }))).toBe(1049);
    expect(server.stats().authFailures).toBe(3);
    const c = await connect(server);
    await c.end();
  });

  it('refuses connections past the limit with 1040, and serves again when one leaves', async () => {
    const { server } = await start({ maxConnections: 2 });
    const a = await connect(server);
    const b = await connect(server);
    expect(await errnoOf(connect(server))).toBe(1040);
    await a.end();
    for (let i = 0; i < 50 && server.stats().connections > 1; i++)
      await new Promise((r) => setTimeout(r, 20));
    const c = await connect(server);
    expect((await c.query('SELECT 1 AS one'))[0]).toEqual([{ one: 1 }]);
    await b.end();
    await c.end();
    expect(server.stats().refused).toBe(1);
  });

  it('random bytes, a truncated packet, a stalled handshake and a huge packet close only their own connection', async () => {
    const { server } = await start({ idleTimeoutMs: 500, maxPacketBytes: 1024 * 1024 });
    const good = await connect(server);
    // The good connection stays busy (the idle limit is short here, for the stalled handshake).
    const keepAlive = setInterval(() => void good.ping().catch(() => undefined), 100);
    try {
      // Random bytes instead of the handshake response.
      const random = await rawExchange(server.port, (s) =>
        s.write(Buffer.from('\x05\x00\x00\x01garbage-and-more-garbage')),
      );
      expect(random.closed).toBe(true);
      // A packet announcing 100 bytes, 10 sent, then the client half-closes.
      const truncated = await rawExchange(server.port, (s) => {
        s.write(Buffer.concat([Buffer.from([100, 0, 0, 1]), Buffer.alloc(10)]));
        s.end();
      });
      expect(truncated.closed).toBe(true);
      // The handshake never answered: the idle limit closes it.
      const stalled = await rawExchange(server.port, () => undefined);
      expect(stalled.closed).toBe(true);
      // A packet announcing 1 GiB (16 MiB packets in a row, past max_allowed_packet): error 1153, closed.
      const huge = await rawExchange(server.port, (s) => s.write(Buffer.from([0xff, 0xff, 0xff, 1, 0, 0])));
      expect(huge.closed).toBe(true);
      expect(huge.data.includes(Buffer.from('max_allowed_packet'))).toBe(true);
      expect(server.stats().protocolErrors).toBeGreaterThanOrEqual(2);
      // The good connection went on through all of it.
      expect((await good.query('SELECT 2 AS two'))[0]).toEqual([{ two: 2 }]);
    } finally {
      clearInterval(keepAlive);
      await good.end();
    }
  });
});
