import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { open, type Database } from '../../src/index.js';
import { codeOf, codeOfSync } from '../helpers/errors.js';
import { collect } from '../helpers/db.js';
import { tempDir } from '../helpers/tmp.js';
import { checkIndexes } from '../helpers/index_check.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const USERS = {
  columns: {
    id: 'int64',
    email: { type: 'string', nullable: true },
    city: { type: 'string', nullable: true },
    n: { type: 'int32', nullable: true },
  },
  primaryKey: 'id',
  indexes: [
    { name: 'users_email', columns: ['email'], unique: true },
    { name: 'users_city', columns: ['city'] },
  ],
} as const;

async function fresh(): Promise<{ db: Database; dir: string }> {
  const t = tempDir();
  const dir = path.join(t.dir, 'db');
  const db = await open(dir, { memory: { leakDetection: 'simple' } });
  cleanups.push(t.cleanup, () => db.close().catch(() => undefined));
  return { db, dir };
}

describe('secondary indexes in the engine', () => {
  test('declared at creation, read through, kept by writes, and unique', async () => {
    const { db } = await fresh();
    await db.createTable('users', USERS as never);
    expect(db.describeTable('users').indexes).toEqual(
      [
        { name: 'users_email', columns: ['email'], unique: true },
        { name: 'users_city', columns: ['city'] },
      ].map((i) => ({ unique: false, ...i })),
    );
    expect(db.tables()).toEqual(['users']);
    await db.insert('users', [
      { id: 1, email: 'ann@x.io', city: 'Oslo', n: 5 },
      { id: 2, email: 'bo@x.io', city: 'Bergen', n: 7 },
      { id: 3, email: null, city: 'Oslo', n: null },
      { id: 4, email: null, city: null, n: 1 },
    ]);
    expect(await db.getBy('users', 'users_email', ['bo@x.io'])).toMatchObject({ id: 2 });
    const st = db.stats().indexes;
    expect(st).toMatchObject({ count: 2, building: 0, objectLayers: 0 });
    expect(st.memtableBytes).toBeGreaterThan(0);
    expect(await db.getBy('users', 'users_email', 'nobody')).toBeUndefined();
    expect((await collect(db.scan('users', { index: 'users_city', eq: ['Oslo'] }))).map((r) => r.id)).toEqual(
      [1, 3],
    );
    expect(
      (await collect(db.scan('users', { index: 'users_city', reverse: true, columns: ['id'] }))).map(
        (r) => r.id,
      ),
    ).toEqual([3, 1, 2, 4]);
    expect(
      (await collect(db.scan('users', { index: 'users_city', gt: [null], lt: ['P'] }))).map((r) => r.id),
    ).toEqual([2, 1, 3]);
    expect(await codeOf(db.insert('users', { id: 5, email: 'ann@x.io', city: 'X', n: 0 }))).toBe(
      'DUPLICATE_KEY',
    );
    await db.update('users', 1, { email: 'ann2@x.io', city: 'Bergen' });
    expect(await db.getBy('users', 'users_email', ['ann@x.io'])).toBeUndefined();
    expect((await collect(db.scan('users', { index: 'users_city', eq: 'Bergen' }))).map((r) => r.id)).toEqual(
      [1, 2],
    );
    await db.insert('users', { id: 5, email: 'ann@x.io', city: 'X', n: 0 });
    await db.delete('users', 2);
    expect((await collect(db.scan('users', { index: 'users_city', eq: 'Bergen' }))).map((r) => r.id)).toEqual(
      [1],
    );
    // Within one transaction: swap two unique values through a free one.
    await db.transaction(async (tx) => {
      await tx.update('users', 1, { email: 'tmp' });
      await tx.update('users', 5, { email: 'ann2@x.io' });
      await tx.update('users', 1, { email: 'ann@x.io' });
      expect(await tx.getBy('users', 'users_email', ['ann2@x.io'])).toMatchObject({ id: 5 });
      expect(await codeOf(tx.insert('users', { id: 9, email: 'ann@x.io', city: null, n: null }))).toBe(
        'DUPLICATE_KEY',
      );
    });
    expect(await db.getBy('users', 'users_email', 'ann@x.io')).toMatchObject({ id: 1 });
    expect(await codeOf(db.getBy('users', 'users_city', ['Oslo']))).toBe('INVALID_ARGUMENT');
    // Values of every kind are taken as writes take them (a decimal's text is scaled once).
    await db.createTable('prices', {
      columns: {
        id: 'int32',
        p: { type: 'decimal', precision: 10, scale: 2 },
        w: { type: 'decimal', precision: 30, scale: 4 },
        at: 'timestamp',
      },
      primaryKey: 'id',
      indexes: [{ name: 'by_p_w_at', columns: ['p', 'w', 'at'], unique: true }],
    });
    await db.insert('prices', { id: 1, p: '12.50', w: '123456789012345678901.5', at: new Date(5000) });
    expect(await db.getBy('prices', 'by_p_w_at', ['12.5', '123456789012345678901.5000', 5000])).toMatchObject(
      {
        id: 1,
      },
    );
    expect(
      await collect(db.scan('prices', { index: 'by_p_w_at', eq: [12.5], gte: ['123456789012345678901'] })),
    ).toHaveLength(1);
    expect(codeOfSync(() => db.scan('prices', { index: 'by_p_w_at', eq: ['12.501'] }))).toBe(
      'INVALID_ARGUMENT',
    );
    await db.insert('prices', { id: -7, p: '-0.05', w: '-1', at: new Date(-86_400_000) });
    expect(await checkIndexes(db)).toEqual([]);
    expect(
      await db.getBy('prices', 'by_p_w_at', ['-0.05', -1, -86_400_000], { columns: ['p', 'id', 'w'] }),
    ).toEqual({
      p: '-0.05',
      id: -7,
      w: '-1.0000',
    });
    expect(await codeOf(db.getBy('users', 'nope', ['Oslo']))).toBe('NOT_FOUND');
  });

  test('createIndex builds online over flushed rows; dropIndex; reopen keeps them', async () => {
    const { db, dir } = await fresh();
    await db.createTable('t', { columns: { id: 'int64', v: 'int32', s: 'string' }, primaryKey: 'id' });
    const rows = Array.from({ length: 5000 }, (_, i) => ({ id: i, v: i % 100, s: `s${i % 7}` }));
    await db.insert('t', rows.slice(0, 3000));
    await db.flush();
    await db.insert('t', rows.slice(3000));
    await db.createIndex('t', 't_v', ['v', 's']);
    expect(await codeOf(db.createIndex('t', 't_s', ['s'], { unique: true }))).toBe('DUPLICATE_KEY');
    expect(db.describeTable('t').indexes.map((i) => i.name)).toEqual(['t_v']);
    const hit = await collect(db.scan('t', { index: 't_v', eq: [42], columns: ['id'] }));
    const bySid = (a: { s: string; id: number }, b: { s: string; id: number }) =>
      a.s < b.s ? -1 : a.s > b.s ? 1 : a.id - b.id;
    expect(hit.map((r) => r.id)).toEqual(
      rows
        .filter((r) => r.v === 42)
        .sort(bySid)
        .map((r) => r.id),
    );
    const two = await collect(db.scan('t', { index: 't_v', eq: [42, 's0'], columns: ['id'] }));
    expect(two.map((r) => r.id)).toEqual(rows.filter((r) => r.v === 42 && r.s === 's0').map((r) => r.id));
    await db.close();
    const db2 = await open(dir, { memory: { leakDetection: 'simple' } });
    cleanups.push(() => db2.close().catch(() => undefined));
    const again = await collect(db2.scan('t', { index: 't_v', gte: [98], columns: ['id', 'v'] }));
    expect(again.length).toBe(100);
    await db2.checkpoint({ global: true });
    await db2.dropIndex('t', 't_v');
    expect(db2.describeTable('t').indexes).toEqual([]);
    expect(codeOfSync(() => db2.scan('t', { index: 't_v' }))).toBe('NOT_FOUND');
    await db2.close();
  });
});

describe('index order and online builds', () => {
  test('entries order as their values, for every column type (a property over random rows)', async () => {
    const { db } = await fresh();
    const cols = {
      id: 'int32',
      i64: { type: 'int64', nullable: true },
      u64: { type: 'uint64', nullable: true },
      f: { type: 'float64', nullable: true },
      s: { type: 'string', nullable: true },
      b: { type: 'bytes', nullable: true },
      ok: { type: 'bool', nullable: true },
      at: { type: 'timestamp', nullable: true },
    } as const;
    await db.createTable('v', {
      columns: cols,
      primaryKey: 'id',
      indexes: [
        ...Object.keys(cols)
          .filter((c) => c !== 'id')
          .map((c) => ({ name: `by_${c}`, columns: [c] })),
        { name: 'by_s_f', columns: ['s', 'f'] },
        { name: 'by_ok_b_i64', columns: ['ok', 'b', 'i64'] },
      ],
    });
    const row = fc.record({
      i64: fc.option(fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.integer())),
      u64: fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
      f: fc.option(fc.double({ noNaN: true })),
      s: fc.option(fc.string({ unit: 'binary', maxLength: 6 }).filter((x) => x.isWellFormed())),
      b: fc.option(fc.uint8Array({ maxLength: 5 })),
      ok: fc.option(fc.boolean()),
      at: fc.option(fc.date({ noInvalidDate: true })),
    });
    const rows = fc.sample(row, { numRuns: 400, seed: 11 }).map((r, id) => ({ id, ...r }));
    await db.insert('v', rows.slice(0, 250));
    await db.flush();
    await db.insert('v', rows.slice(250));
    expect(await checkIndexes(db)).toEqual([]);
  });

  test('createIndex while writers change the table: the built index holds exactly the rows', async () => {
    const { db } = await fresh();
    await db.createTable('t', {
      columns: { id: 'int64', v: { type: 'int32', nullable: true } },
      primaryKey: 'id',
    });
    const N = 20_000;
    for (let i = 0; i < N; i += 5000)
      await db.insert(
        't',
        Array.from({ length: 5000 }, (_, j) => ({ id: i + j, v: (i + j) % 97 })),
      );
    await db.flush();
    let stop = false;
    let writes = 0;
    const writer = async (w: number) => {
      let x = w + 1;
      while (!stop) {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        const id = x % (N + 2000);
        try {
          await db.transaction(async (tx) => {
            if (x % 5 === 0) await tx.delete('t', id);
            else await tx.upsert('t', { id, v: x % 3 === 0 ? null : x % 101 });
          });
          writes++;
        } catch (e) {
          if ((e as { code?: string }).code !== 'CONFLICT') throw e;
        }
      }
    };
    const writers = [0, 1, 2].map(writer);
    const before = writes;
    await db.createIndex('t', 't_v', ['v']);
    const during = writes - before;
    stop = true;
    await Promise.all(writers);
    expect(during).toBeGreaterThan(0);
    expect(await checkIndexes(db)).toEqual([]);
    // A UNIQUE build over duplicates fails and leaves no index behind.
    expect(await codeOf(db.createIndex('t', 't_v_u', ['v'], { unique: true }))).toBe('DUPLICATE_KEY');
    expect(db.describeTable('t').indexes.map((i) => i.name)).toEqual(['t_v']);
  });

  test('bad arguments are TidemarkErrors with codes, and change nothing', async () => {
    const { db } = await fresh();
    await db.createTable('users', USERS as never);
    expect(await codeOf(db.createIndex('users', 'users_city', ['city']))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(db.createIndex('users', 'bad name', ['city']))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(db.createIndex('users', 'x', ['nope']))).toBe('SCHEMA');
    expect(await codeOf(db.createIndex('users', 'x', []))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(db.createIndex('users', 'x', ['city', 'city']))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(db.createIndex('nope', 'x', ['city']))).toBe('NOT_FOUND');
    expect(await codeOf(db.createIndex('users', 'x', ['city'], { unique: 'yes' } as never))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await codeOf(db.dropIndex('users', 'nope'))).toBe('NOT_FOUND');
    expect(
      await codeOf(
        db.createTable('t2', {
          columns: { id: 'int32' },
          primaryKey: 'id',
          indexes: [{ name: 'i', columns: ['x'] }],
        }),
      ),
    ).toBe('SCHEMA');
    expect(codeOfSync(() => db.scan('users', { index: 'users_city', eq: [1] }))).toBe('SCHEMA');
    expect(codeOfSync(() => db.scan('users', { eq: ['Oslo'] }))).toBe('INVALID_ARGUMENT');
    expect(codeOfSync(() => db.scanBatches('users', { index: 'users_city' } as never))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOfSync(() => db.scan('users', { index: 'users_city', eq: ['a', 'b'] }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOfSync(() => db.scan('users', { index: 'users_city', gte: ['a'], gt: ['b'] }))).toBe(
      'INVALID_ARGUMENT',
    );
    // A key past the limit on keys is refused, and the row with it is not written.
    expect(await codeOf(db.insert('users', { id: 1, email: 'x'.repeat(5000), city: null, n: null }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await db.get('users', 1)).toBeUndefined();
    expect(db.tables()).toEqual(['users']);
    // Hidden tables are not reachable by name.
    expect(await codeOf(db.get('users#users_city', 1))).toBe('NOT_FOUND');
    expect(await checkIndexes(db)).toEqual([]);
  });
});
