import { createHash } from 'node:crypto';
import * as net from 'node:net';
import mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/index.js';
import { accountFor, NATIVE } from '../../src/server/mysql/auth.js';
import { CLIENT, PacketWriter, Reader, TYPE } from '../../src/server/mysql/protocol.js';
import { MysqlServer } from '../../src/server/mysql/server.js';
import { memDb } from '../helpers/db.js';

// Prepared statements as MySQL answers them: COM_STMT_PREPARE declares the parameters and the
// columns of the result set the statement's executions give, and each execution's result has those
// columns. Clients read an execution's result by the declared count: libmariadb (sysbench, the C
// and PHP connectors) reads no result set for a statement declared with none.

let opened: { db: Database; server: MysqlServer } | undefined;

async function start(): Promise<{ db: Database; server: MysqlServer }> {
  const { db } = await memDb();
  const server = await MysqlServer.start(db, {
    port: 0,
    accounts: [accountFor('root', 'secret')],
    authPlugin: NATIVE,
  });
  opened = { db, server };
  await db.query('CREATE TABLE sb (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120), pad DECIMAL(6,2))');
  for (let i = 1; i <= 20; i++)
    await db.query('INSERT INTO sb VALUES (?, ?, ?, ?)', [i, i * 10, `c${i}`, i / 4]);
  return opened;
}

afterEach(async () => {
  if (opened === undefined) return;
  const { db, server } = opened;
  opened = undefined;
  await server.close();
  expect(db.stats().memory.pools.io).toMatchObject({ bytes: 0, handles: 0 });
  await db.close();
});

interface Column {
  name: string;
  type: number;
  flags: number;
  decimals: number;
}

const EOF_STATUS_CURSOR_EXISTS = 0x40;

/**
 * A client of the protocol itself, reading responses as libmariadb does: each packet in sequence,
 * a result set only where a count says one follows, EOF packets unless DEPRECATE_EOF was agreed.
 */
class RawClient {
  private data = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private seq = 0;
  private closed = false;

  private constructor(
    private readonly socket: net.Socket,
    readonly deprecateEof: boolean,
  ) {
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  static async connect(port: number, deprecateEof: boolean): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawClient(socket, deprecateEof);
    try {
      await c.handshake();
    } catch (e) {
      socket.destroy();
      throw e;
    }
    return c;
  }

  /** The greeting, an answer with mysql_native_password, the OK. */
  private async handshake(): Promise<void> {
    const hello = new Reader(await this.packet());
    expect(hello.int1()).toBe(10);
    hello.zstr();
    hello.int4();
    const scramble1 = hello.raw(8);
    hello.raw(1 + 2 + 1 + 2 + 2 + 1 + 10);
    const scramble = Buffer.concat([scramble1, hello.raw(12)]);
    const pw = Buffer.from('secret');
    const sha1 = (b: Buffer) => createHash('sha1').update(b).digest();
    const mask = sha1(Buffer.concat([scramble, sha1(sha1(pw))]));
    const answer = Buffer.from(sha1(pw).map((b, i) => b ^ mask[i]!));
    const caps =
      CLIENT.LONG_FLAG |
      CLIENT.PROTOCOL_41 |
      CLIENT.TRANSACTIONS |
      CLIENT.SECURE_CONNECTION |
      CLIENT.MULTI_RESULTS |
      CLIENT.PS_MULTI_RESULTS |
      CLIENT.PLUGIN_AUTH |
      (this.deprecateEof ? CLIENT.DEPRECATE_EOF : 0);
    const w = new PacketWriter(this.seq)
      .begin()
      .int4(caps)
      .int4(1 << 24)
      .int1(45)
      .zeros(23)
      .zstr('root')
      .int1(answer.length)
      .bytes(answer)
      .zstr(NATIVE)
      .end();
    this.socket.write(w.payload());
    this.seq++;
    const ok = await this.packet();
    expect(ok[0]).toBe(0);
  }

  /** The next packet's payload (its sequence number checked). */
  async packet(): Promise<Buffer> {
    for (;;) {
      if (this.data.length >= 4) {
        const n = this.data.readUIntLE(0, 3);
        if (this.data.length >= 4 + n) {
          expect(this.data[3]).toBe(this.seq & 0xff);
          this.seq++;
          const p = this.data.subarray(4, 4 + n);
          this.data = this.data.subarray(4 + n);
          return p;
        }
      }
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((r) => (this.waiting = r));
      this.waiting = undefined;
    }
  }

  /** Bytes received and not read: a client that read its responses whole has none. */
  get unread(): number {
    return this.data.length;
  }

  command(body: Buffer): void {
    this.seq = 0;
    this.socket.write(new PacketWriter(0).begin().bytes(body).end().payload());
    this.seq = 1;
  }

  private async columns(n: number): Promise<Column[]> {
    const out: Column[] = [];
    for (let i = 0; i < n; i++) {
      const r = new Reader(await this.packet());
      expect(r.lbytes().toString()).toBe('def');
      r.lbytes();
      r.lbytes();
      r.lbytes();
      const name = r.lbytes().toString();
      r.lbytes();
      r.lenenc();
      r.int2();
      r.int4();
      out.push({ name, type: r.int1(), flags: r.int2(), decimals: r.int1() });
    }
    if (n > 0 && !this.deprecateEof) expect(await this.eof()).toBeGreaterThanOrEqual(0);
    return out;
  }

  /** An EOF packet's status flags. */
  private async eof(): Promise<number> {
    const p = await this.packet();
    expect(p[0]).toBe(0xfe);
    expect(p.length).toBeLessThan(9);
    return p.readUInt16LE(3);
  }

  async prepare(sql: string): Promise<{ id: number; params: number; columns: Column[] }> {
    this.command(Buffer.concat([Buffer.of(0x16), Buffer.from(sql)]));
    const r = new Reader(await this.packet());
    expect(r.int1()).toBe(0);
    const id = r.int4();
    const ncols = r.int2();
    const params = r.int2();
    await this.columns(params);
    return { id, params, columns: await this.columns(ncols) };
  }

  /**
   * COM_STMT_EXECUTE with integer or string parameters (types sent unless `sameTypes`); the result
   * read as libmariadb reads it: a result set only when the prepare declared columns.
   */
  async execute(
    st: { id: number; columns: Column[] },
    params: (number | string)[],
    o: { cursor?: boolean; sameTypes?: boolean } = {},
  ): Promise<{ columns: Column[]; rows: unknown[][]; status: number } | { affected: number }> {
    const w = new PacketWriter(0)
      .begin()
      .int1(0x17)
      .int4(st.id)
      .int1(o.cursor === true ? 1 : 0)
      .int4(1);
    if (params.length > 0) {
      w.zeros((params.length + 7) >> 3).int1(o.sameTypes === true ? 0 : 1);
      if (o.sameTypes !== true)
        for (const p of params) w.int2(typeof p === 'number' ? TYPE.LONGLONG : TYPE.VAR_STRING);
      for (const p of params) {
        if (typeof p === 'number') w.int64(p);
        else w.lstr(p);
      }
    }
    this.seq = 0;
    this.socket.write(w.end().payload());
    this.seq = 1;
    const first = await this.packet();
    if (first[0] === 0xff) throw new Error(`error ${first.readUInt16LE(1)}: ${first.subarray(9).toString()}`);
    if (st.columns.length === 0) {
      // Declared without a result set: the answer is one OK packet.
      expect(first[0]).toBe(0);
      return { affected: new Reader(first.subarray(1)).lenenc()! };
    }
    const columns = await this.columns(new Reader(first).lenenc()!);
    const rows: unknown[][] = [];
    for (;;) {
      const p = await this.packet();
      if (p[0] === 0xfe && p.length < 9) {
        const status = this.deprecateEof ? okStatus(p) : p.readUInt16LE(3);
        return { columns, rows, status };
      }
      const r = new Reader(p);
      expect(r.int1()).toBe(0);
      const nulls = r.raw((columns.length + 9) >> 3);
      rows.push(
        columns.map((c, i) => {
          if ((nulls[(i + 2) >> 3]! & (1 << ((i + 2) & 7))) !== 0) return null;
          if (c.type === TYPE.LONGLONG) return r.int64((c.flags & 0x20) !== 0);
          if (c.type === TYPE.DOUBLE) return r.double();
          return r.lbytes().toString();
        }),
      );
    }
  }

  async ping(): Promise<void> {
    this.command(Buffer.of(0x0e));
    expect((await this.packet())[0]).toBe(0);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** An OK packet's status flags (header byte, affected rows, insert id, status). */
function okStatus(p: Buffer): number {
  const r = new Reader(p.subarray(1));
  r.lenenc();
  r.lenenc();
  return r.int2();
}

const meta = (cols: Column[]) => cols.map((c) => [c.name, c.type, c.flags & 0x20, c.decimals]);

describe('prepared statements declare their result columns', () => {
  it.each([false, true])(
    'a client reading by the declared count runs different statements in turn (DEPRECATE_EOF %s)',
    async (deprecateEof) => {
      const { server } = await start();
      const c = await RawClient.connect(server.port, deprecateEof);
      try {
        const range = await c.prepare('SELECT c FROM sb WHERE id BETWEEN ? AND ?');
        expect(range.params).toBe(2);
        expect(meta(range.columns)).toEqual([['c', TYPE.VAR_STRING, 0, 31]]);
        const point = await c.prepare('SELECT id, k, c, pad, k / 2 AS half FROM sb WHERE id = ?');
        expect(meta(point.columns)).toEqual([
          ['id', TYPE.LONGLONG, 0, 0],
          ['k', TYPE.LONGLONG, 0, 0],
          ['c', TYPE.VAR_STRING, 0, 31],
          ['pad', TYPE.NEWDECIMAL, 0, 2],
          ['half', TYPE.NEWDECIMAL, 0, 4],
        ]);
        const sum = await c.prepare('SELECT SUM(k), COUNT(*) FROM sb WHERE id BETWEEN ? AND ?');
        expect(meta(sum.columns)).toEqual([
          ['SUM(k)', TYPE.LONGLONG, 0, 0],
          ['COUNT(*)', TYPE.LONGLONG, 0, 0],
        ]);
        const update = await c.prepare('UPDATE sb SET k = k + 1 WHERE id = ?');
        expect(update.columns).toEqual([]);
        for (let round = 0; round < 3; round++) {
          const a = await c.execute(range, [3, 5]);
          expect(a).toMatchObject({ rows: [['c3'], ['c4'], ['c5']] });
          // Each execution's columns are the ones declared.
          expect(meta((a as { columns: Column[] }).columns)).toEqual(meta(range.columns));
          const b = await c.execute(point, [4]);
          expect(b).toMatchObject({ rows: [[4, 40 + round, 'c4', '1.00', ((40 + round) / 2).toFixed(4)]] });
          expect(meta((b as { columns: Column[] }).columns)).toEqual(meta(point.columns));
          const s = await c.execute(sum, [1, 2]);
          expect(s).toMatchObject({ rows: [[30, 2]] });
          expect(await c.execute(update, [4])).toEqual({ affected: 1 });
          // An execution that finds nothing: the columns, then the end.
          expect(await c.execute(range, [100, 200])).toMatchObject({ rows: [] });
        }
        await c.ping();
        expect(c.unread).toBe(0);
      } finally {
        c.close();
      }
    },
  );

  it('a cursor asked for is not opened: the whole result follows, without CURSOR_EXISTS', async () => {
    const { server } = await start();
    const c = await RawClient.connect(server.port, false);
    try {
      const st = await c.prepare('SELECT id FROM sb WHERE id < ? ORDER BY id');
      const r = (await c.execute(st, [4], { cursor: true })) as { rows: unknown[][]; status: number };
      expect(r.rows).toEqual([[1], [2], [3]]);
      expect(r.status & EOF_STATUS_CURSOR_EXISTS).toBe(0);
      await c.ping();
    } finally {
      c.close();
    }
  });

  it('a column whose type the values decide is declared VARCHAR and described by its values when executed', async () => {
    const { server } = await start();
    const c = await RawClient.connect(server.port, false);
    try {
      const st = await c.prepare('SELECT ?, k FROM sb WHERE id = 1');
      expect(meta(st.columns)).toEqual([
        ['?', TYPE.VAR_STRING, 0, 31],
        ['k', TYPE.LONGLONG, 0, 0],
      ]);
      const n = (await c.execute(st, [7])) as { columns: Column[]; rows: unknown[][] };
      expect(meta(n.columns)[0]).toEqual(['?', TYPE.LONGLONG, 0, 0]);
      expect(n.rows).toEqual([[7, 10]]);
      // The types of the last execution that sent them.
      const again = (await c.execute(st, [8], { sameTypes: true })) as { rows: unknown[][] };
      expect(again.rows).toEqual([[8, 10]]);
      const s = (await c.execute(st, ['x'])) as { columns: Column[]; rows: unknown[][] };
      expect(meta(s.columns)[0]).toEqual(['?', TYPE.VAR_STRING, 0, 31]);
      expect(s.rows).toEqual([['x', 10]]);
      await c.ping();
    } finally {
      c.close();
    }
  });

  it('mysql2: prepare gives the columns, each execution the same fields; an unknown column fails the prepare', async () => {
    const { server } = await start();
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: server.port,
      user: 'root',
      password: 'secret',
    });
    try {
      const st = await c.prepare('SELECT id, c, pad FROM sb WHERE id BETWEEN ? AND ?');
      // The driver keeps the prepare response's columns with the statement.
      const declared = (st as unknown as { statement: { columns: mysql.FieldPacket[] } }).statement.columns;
      expect(declared.map((f) => [f.name, f.columnType])).toEqual([
        ['id', TYPE.LONGLONG],
        ['c', TYPE.VAR_STRING],
        ['pad', TYPE.NEWDECIMAL],
      ]);
      const [rows, fields] = await st.execute([2, 3]);
      expect(rows).toEqual([
        { id: 2, c: 'c2', pad: '0.50' },
        { id: 3, c: 'c3', pad: '0.75' },
      ]);
      expect(fields.map((f) => [f.name, f.columnType, f.decimals])).toEqual(
        declared.map((f) => [f.name, f.columnType, f.decimals]),
      );
      await st.close();
      await expect(c.prepare('SELECT nope FROM sb WHERE id = ?')).rejects.toMatchObject({ errno: 1054 });
      expect((await c.execute('SELECT k FROM sb WHERE id = ?', [5]))[0]).toEqual([{ k: 50 }]);
    } finally {
      await c.end();
    }
  });
});
