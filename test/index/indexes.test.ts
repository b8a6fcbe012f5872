import * as path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { open, type Database } from '../../src/index.js';
import { codeOf, codeOfSync } from '../helpers/errors.js';
import { collect } from '../helpers/db.js';
import { tempDir } from '../helpers/tmp.js';

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
