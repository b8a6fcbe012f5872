import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { open, TidemarkError, type Transaction } from '../../src/index.js';
import { codeOf } from '../helpers/errors.js';
import { ACCOUNTS, collect, memDb } from '../helpers/db.js';
import { tempDir } from '../helpers/tmp.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('the public API', () => {
  test('the DESIGN example runs as written, and survives a restart on disk', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const dir = path.join(t.dir, 'data');
    let db = await open(dir, {
      checkpoint: { intervalMs: 60_000, incrementalsPerGlobal: 10, walBytesMax: 256 << 20 },
      memory: { limitBytes: 1 << 30, leakDetection: 'simple' },
      wal: { sync: 'batch' },
    });
    expect(existsSync(path.join(dir, 'LOCK'))).toBe(true);
    await db.createTable('accounts', ACCOUNTS);
    expect(db.tables()).toEqual(['accounts']);
    await db.transaction(async (tx) => {
      await tx.insert('accounts', [{ id: 1, owner: 'ann', balance: 10, active: true }]);
      expect(await tx.update('accounts', 1, { balance: 20 })).toBe(true);
      expect(await tx.delete('accounts', 2)).toBe(false);
      await tx.upsert('accounts', { id: 3, owner: 'bo', balance: 0, active: null });
      expect(await tx.get('accounts', 1)).toEqual({ id: 1, owner: 'ann', balance: 20, active: true });
      const scanned = await collect(
        tx.scan('accounts', { gte: 1, lt: 100, columns: ['id', 'balance'], limit: 10 }),
      );
      expect(scanned).toEqual([
        { id: 1, balance: 20 },
        { id: 3, balance: 0 },
      ]);
      const batches = await collect(tx.scanBatches('accounts', { columns: ['balance'] }));
      expect(batches).toHaveLength(1);
      expect(batches[0]!.columns['balance']).toEqual(new Float64Array([20, 0]));
    });
    await db.insert('accounts', [{ id: 4, owner: 'cy', balance: 1.5, active: false }]);
    expect(await db.get('accounts', 1)).toEqual({ id: 1, owner: 'ann', balance: 20, active: true });
    const s = db.stats();
    expect(s.memory.limitBytes).toBe(1 << 30);
    expect(s.wal.durableLsn).toBe(3);
    expect(s.transactions.committed).toBe(2);
    await db.close();
    db = await open(dir);
    expect(await collect(db.scan('accounts'))).toEqual([
      { id: 1, owner: 'ann', balance: 20, active: true },
      { id: 3, owner: 'bo', balance: 0, active: null },
      { id: 4, owner: 'cy', balance: 1.5, active: false },
    ]);
    await db.close();
  });

  test('every column type round-trips through memory and through WAL replay', async () => {
    const { db, reopen } = await memDb();
    await db.createTable('everything', {
      columns: {
        k: 'string',
        i32: 'int32',
        i64: 'int64',
        f: 'float64',
        b: 'bool',
        s: { type: 'string', nullable: true },
        by: 'bytes',
        ts: 'timestamp',
      },
      primaryKey: 'k',
    });
    const when = new Date('2026-11-26T12:00:00.123Z');
    const rows = [
      {
        k: 'a',
        i32: -2147483648,
        i64: 9007199254740991,
        f: -0.5,
        b: true,
        s: 'héllo 🌊',
        by: new Uint8Array([0, 255, 7]),
        ts: when,
      },
      {
        k: 'b',
        i32: 2147483647,
        i64: -9007199254740991n,
        f: 1e300,
        b: false,
        s: null,
        by: new Uint8Array(0),
        ts: 0,
      },
      { k: '', i32: 0, i64: 0, f: Number.NaN, b: false, s: '', by: new Uint8Array([1]), ts: when.getTime() },
    ];
    await db.insert('everything', rows);
    const expected = [
      { k: '', i32: 0, i64: 0, f: Number.NaN, b: false, s: '', by: new Uint8Array([1]), ts: when },
      {
        k: 'a',
        i32: -2147483648,
        i64: 9007199254740991,
        f: -0.5,
        b: true,
        s: 'héllo 🌊',
        by: new Uint8Array([0, 255, 7]),
        ts: when,
      },
      {
        k: 'b',
        i32: 2147483647,
        i64: -9007199254740991,
        f: 1e300,
        b: false,
        s: null,
        by: new Uint8Array(0),
        ts: new Date(0),
      },
    ];
    expect(await collect(db.scan('everything'))).toEqual(expected);
    const [batch] = await collect(db.scanBatches('everything'));
    expect(batch!.columns['i32']).toEqual(new Int32Array([0, -2147483648, 2147483647]));
    expect(batch!.columns['i64']).toEqual([0, 9007199254740991, -9007199254740991]);
    expect(batch!.columns['b']).toEqual(new Uint8Array([0, 1, 0]));
    expect(batch!.columns['s']).toEqual(['', 'héllo 🌊', null]);
    expect(batch!.nulls).toEqual({ s: new Uint8Array([0, 0, 1]) });
    expect(batch!.columns['ts']).toEqual(new Float64Array([when.getTime(), when.getTime(), 0]));
    // Bytes handed out are copies: changing them changes nothing stored.
    const got = await db.get('everything', 'a');
    (got!['by'] as Uint8Array)[0] = 99;
    expect((await db.get('everything', 'a'))!['by']).toEqual(new Uint8Array([0, 255, 7]));
    await db.close();
    const again = await reopen();
    expect(await collect(again.scan('everything'))).toEqual(expected);
    await again.close();
  });

  test('strings keep a leading byte order mark (U+FEFF) in memory, in objects and through WAL replay', async () => {
    // No checkpoint at close: the reopen replays the WAL.
    const { db, reopen } = await memDb({ checkpoint: { onClose: false, intervalMs: 0 } });
    await db.createTable('marks', { columns: { k: 'string', s: 'string' }, primaryKey: 'k' });
    const bom = '\uFEFF';
    const rows = [
      { k: `${bom}a`, s: `${bom}x` },
      { k: `${bom}b`, s: `${bom}${'long value, past the short-string path '.repeat(3)}` },
      { k: 'c', s: `${bom}é` },
    ];
    await db.insert('marks', rows);
    const sorted = (r: Record<string, unknown>[]) =>
      [...r].sort((x, y) => (String(x.k) < String(y.k) ? -1 : 1));
    expect(sorted(await collect(db.scan('marks')))).toEqual(sorted(rows));
    expect(await db.get('marks', `${bom}b`)).toEqual(rows[1]);
    await db.close();
    // Replayed from the WAL, then read from objects after a flush.
    const again = await reopen();
    expect(sorted(await collect(again.scan('marks')))).toEqual(sorted(rows));
    await again.flush();
    expect(sorted(await collect(again.scan('marks')))).toEqual(sorted(rows));
    expect((await collect(again.scanBatches('marks')))[0]!.columns['s']).toContain(`${bom}x`);
    await again.close();
  });

  test('bytes, bool and timestamp primary keys are ordered; scan bounds and limit work', async () => {
    const { db } = await memDb();
    await db.createTable('blobs', { columns: { k: 'bytes', v: 'int32' }, primaryKey: 'k' });
    for (const [i, k] of [[3], [1, 2], [1], [], [255]].entries())
      await db.insert('blobs', { k: new Uint8Array(k), v: i });
    const keys = (await collect(db.scan('blobs'))).map((r) => [...(r['k'] as Uint8Array)]);
    expect(keys).toEqual([[], [1], [1, 2], [3], [255]]);
    const ranged = await collect(db.scan('blobs', { gte: new Uint8Array([1]), lt: new Uint8Array([3]) }));
    expect(ranged.map((r) => r['v'])).toEqual([2, 1]);
    await db.createTable('events', { columns: { at: 'timestamp', what: 'string' }, primaryKey: 'at' });
    await db.insert('events', [
      { at: new Date(2000), what: 'b' },
      { at: 1000, what: 'a' },
    ]);
    expect((await collect(db.scan('events', { limit: 1 })))[0]).toEqual({ at: new Date(1000), what: 'a' });
    expect(await db.get('events', new Date(2000))).toEqual({ at: new Date(2000), what: 'b' });
    await db.createTable('flags', { columns: { f: 'bool', n: 'int32' }, primaryKey: 'f' });
    await db.insert('flags', [
      { f: true, n: 1 },
      { f: false, n: 0 },
    ]);
    expect((await collect(db.scan('flags'))).map((r) => r['f'])).toEqual([false, true]);
    expect(await db.update('flags', true, { n: 5 })).toBe(true);
    expect(await db.get('flags', true)).toEqual({ f: true, n: 5 });
    await db.close();
  });

  test('empty bytes values, also as the first values of a memtable block (they needed no data buffer)', async () => {
    const { db } = await memDb();
    await db.createTable('e', { columns: { id: 'int64', b: 'bytes', s: 'string' }, primaryKey: 'id' });
    await db.insert('e', [
      { id: 1, b: new Uint8Array(0), s: '' },
      { id: 2, b: new Uint8Array(0), s: '' },
    ]);
    await db.insert('e', { id: 3, b: new Uint8Array([7]), s: 'x' });
    const want = [
      { id: 1, b: new Uint8Array(0), s: '' },
      { id: 2, b: new Uint8Array(0), s: '' },
      { id: 3, b: new Uint8Array([7]), s: 'x' },
    ];
    expect(await collect(db.scan('e'))).toEqual(want);
    await db.flush();
    expect(await collect(db.scan('e'))).toEqual(want);
    await db.close();
  });

  test('large scans come in batches and see one snapshot despite concurrent commits', async () => {
    const { db } = await memDb({ memory: { leakDetection: 'simple' } });
    await db.createTable('t', { columns: { id: 'int32', x: 'float64' }, primaryKey: 'id' });
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ id: i, x: i / 2 }));
    for (let i = 0; i < rows.length; i += 1000) await db.insert('t', rows.slice(i, i + 1000));
    let seen = 0;
    let sum = 0;
    let batches = 0;
    for await (const b of db.scanBatches('t', { columns: ['x'], batchRows: 3000 })) {
      batches++;
      const xs = b.columns['x'] as Float64Array;
      for (const v of xs) sum += v;
      seen += b.length;
      // Commits during the scan are not seen by it.
      if (batches === 2) {
        await db.insert('t', { id: 50_000, x: 1e9 });
        await db.delete('t', 19_999);
      }
    }
    expect(batches).toBe(7);
    expect(seen).toBe(20_000);
    expect(sum).toBe((19_999 * 20_000) / 4);
    expect(await db.get('t', 19_999)).toBeUndefined();
    let n = 0;
    for await (const _row of db.scan('t', { gte: 19_990 })) {
      n++;
      if (n === 3) break; // an abandoned scan ends its snapshot
    }
    expect(db.stats().transactions.active).toBe(0);
    await db.close();
  });

  test('dropTable makes the table unknown; a snapshot taken before still reads it; its memory is freed', async () => {
    const { db, reopen } = await memDb();
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', { id: 1, owner: 'x', balance: 1 });
    let release!: () => void;
    const holding = db.transaction(async (tx) => {
      await new Promise<void>((r) => (release = r));
      return tx.get('a', 1);
    });
    await new Promise((r) => setTimeout(r, 5));
    await db.dropTable('a');
    expect(db.tables()).toEqual([]);
    expect(await codeOf(db.get('a', 1))).toBe('NOT_FOUND');
    release();
    expect(await holding).toMatchObject({ id: 1 });
    expect(db.stats().memory.pools['memtable']!.bytes).toBe(0);
    await db.createTable('a', { columns: { k: 'string' }, primaryKey: 'k' });
    await db.insert('a', { k: 'new' });
    await db.close();
    const again = await reopen();
    expect(again.tables()).toEqual(['a']);
    expect(await collect(again.scan('a'))).toEqual([{ k: 'new' }]);
    expect(again.describeTable('a')).toEqual({ columns: { k: 'string' }, primaryKey: 'k', indexes: [] });
    await again.close();
  });

  test('close releases everything: a second open of the same directory works only after it', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const db = await open(t.dir);
    expect(await codeOf(open(t.dir))).toBe('LOCKED');
    await db.createTable('x', ACCOUNTS);
    await db.close();
    await db.close(); // idempotent
    expect(await codeOf(db.get('x', 1))).toBe('CLOSED');
    const db2 = await open(t.dir);
    expect(db2.tables()).toEqual(['x']);
    await db2.close();
  });

  test('a thrown value comes out of transaction() unchanged, after the rollback', async () => {
    const { db } = await memDb();
    await db.createTable('a', ACCOUNTS);
    const thrown = { mine: true };
    let captured: unknown;
    try {
      await db.transaction(async (tx) => {
        await tx.insert('a', { id: 1, owner: 'x', balance: 1 });
        // A plain object, not an Error: whatever is thrown must come out as it is.
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw thrown;
      });
    } catch (e) {
      captured = e;
    }
    expect(captured).toBe(thrown);
    expect(await db.get('a', 1)).toBeUndefined();
    let escaped: Transaction | undefined;
    await db.transaction(async (tx) => {
      escaped = tx;
    });
    expect(await codeOf(escaped!.get('a', 1))).toBe('CLOSED');
    expect(await codeOf(escaped!.insert('a', { id: 2, owner: 'y', balance: 0 }))).toBe('CLOSED');
    expect(() => escaped!.scan('a')).toThrow(TidemarkError);
    await db.close();
  });
});
