import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/random.js';
import type { Row } from '../../src/index.js';
import { collect, memDb } from '../helpers/db.js';
import { codeOfSync } from '../helpers/errors.js';

/** A seeded PRNG: a function giving floats in [0, 1). */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

const SMALL = {
  // Small memtables and row groups: the data spreads over many objects, row groups and leaves.
  storage: { memtableBytesMax: 256 * 1024, rowGroupRows: 64, mergeMinObjects: 0 },
  checkpoint: { intervalMs: 0 },
};

describe('reverse scans', () => {
  it('give exactly the forward scan reversed, over memtables, objects, tombstones and own writes', async () => {
    const { db } = await memDb(SMALL);
    await db.createTable('t', { columns: { id: 'int64', v: 'int32' }, primaryKey: 'id' });
    const r = rng(11);
    const model = new Map<number, number>();
    for (let round = 0; round < 12; round++) {
      await db.transaction(async (tx) => {
        for (let i = 0; i < 300; i++) {
          const id = Math.floor(r() * 3000);
          if (r() < 0.25) {
            await tx.delete('t', id);
            model.delete(id);
          } else {
            await tx.upsert('t', { id, v: round * 1000 + i });
            model.set(id, round * 1000 + i);
          }
        }
      });
      if (round % 3 === 0) await db.flush();
      if (round === 7) await db.compact();
    }
    const ids = [...model.keys()].sort((a, b) => a - b);
    const rev = await collect(db.scan('t', { reverse: true }));
    expect(rev.map((x) => x['id'])).toEqual([...ids].reverse());
    expect(rev.map((x) => x['v'])).toEqual([...ids].reverse().map((id) => model.get(id)));
    // Ranges and limits, against the model.
    for (let k = 0; k < 40; k++) {
      const a = Math.floor(r() * 3200) - 100;
      const b = a + Math.floor(r() * 800);
      const limit = r() < 0.5 ? undefined : Math.floor(r() * 50);
      const want = ids.filter((id) => id >= a && id < b).reverse();
      const got = await collect(db.scan('t', { gte: a, lt: b, reverse: true, limit, columns: ['id'] }));
      expect(got.map((x) => x['id'])).toEqual(limit === undefined ? want : want.slice(0, limit));
      expect(Object.keys(got[0] ?? { id: 0 })).toEqual(['id']);
    }
    // A transaction's own writes are merged in, in reverse too.
    await db
      .transaction(async (tx) => {
        await tx.upsert('t', { id: -5, v: 1 });
        await tx.delete('t', ids[ids.length - 1]!);
        await tx.upsert('t', { id: 99_999, v: 2 });
        const got = (await collect(tx.scan('t', { reverse: true }))).map((x) => x['id']);
        expect(got).toEqual([99_999, ...ids.slice(0, -1).reverse(), -5]);
        throw new Error('roll back');
      })
      .catch((e: unknown) => expect((e as Error).message).toBe('roll back'));
    expect(db.stats().storage.objects).toBeGreaterThanOrEqual(2);
    await db.close();
  });

  it('order bytes keys as unsigned bytes, and string keys, in reverse', async () => {
    const { db } = await memDb(SMALL);
    await db.createTable('b', { columns: { k: 'bytes', v: 'int32' }, primaryKey: 'k' });
    await db.createTable('s', { columns: { k: 'string', v: 'int32' }, primaryKey: 'k' });
    const r = rng(5);
    const keys: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const k = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 4) }, () => Math.floor(r() * 256)));
      keys.push(k);
    }
    for (let i = 0; i < keys.length; i += 100)
      await db.upsert(
        'b',
        keys.slice(i, i + 100).map((k, j) => ({ k, v: i + j })),
      );
    await db.flush();
    await db.upsert('b', { k: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]), v: -1 });
    const uniq = [...new Map(keys.map((k) => [k.toString('hex'), k])).values()];
    uniq.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]));
    uniq.sort(Buffer.compare);
    const got = await collect(db.scan('b', { reverse: true, columns: ['k'] }));
    expect(got.map((x) => Buffer.from(x['k'] as Uint8Array).toString('hex'))).toEqual(
      uniq.reverse().map((k) => k.toString('hex')),
    );
    await db.upsert(
      's',
      ['b', 'a', 'ab', 'é', 'z', ''].map((k, v) => ({ k, v })),
    );
    const s = await collect(db.scan('s', { reverse: true, gte: 'a', columns: ['k'] }));
    expect(s.map((x) => x['k'])).toEqual(['é', 'z', 'b', 'ab', 'a']);
    await db.close();
  });

  it('see one snapshot even when flushes and merges change the layers between windows', async () => {
    const { db } = await memDb(SMALL);
    await db.createTable('t', { columns: { id: 'int64', v: 'int32' }, primaryKey: 'id' });
    for (let i = 0; i < 4000; i += 500)
      await db.insert(
        't',
        Array.from({ length: 500 }, (_, j) => ({ id: i + j, v: 0 })),
      );
    await db.flush();
    const snap = db.snapshot();
    const it = snap.scan('t', { reverse: true });
    const first: Row[] = [];
    for (let i = 0; i < 100; i++) first.push((await it.next()).value as Row);
    // Meanwhile: every row changes, some go, the layers are flushed and merged.
    for (let i = 0; i < 4000; i += 500)
      await db.upsert(
        't',
        Array.from({ length: 500 }, (_, j) => ({ id: i + j, v: 1 })),
      );
    for (let i = 0; i < 4000; i += 7) await db.delete('t', i);
    await db.flush();
    await db.compact();
    const rest = await collect({ [Symbol.asyncIterator]: () => it });
    const all = [...first, ...rest];
    expect(all.map((x) => x['id'])).toEqual(Array.from({ length: 4000 }, (_, i) => 3999 - i));
    expect(all.every((x) => x['v'] === 0)).toBe(true);
    snap.release();
    expect((await collect(db.scan('t', { reverse: true, limit: 1 })))[0]).toEqual({ id: 3999, v: 1 });
    await db.close();
  });

  it('reject a reverse that is not a boolean', async () => {
    const { db } = await memDb();
    await db.createTable('t', { columns: { id: 'int64' }, primaryKey: 'id' });
    expect(codeOfSync(() => db.scan('t', { reverse: 'yes' as unknown as boolean }))).toBe('INVALID_ARGUMENT');
    await db.close();
  });
});

describe('db.snapshot()', () => {
  it('reads one state until released, then gives CLOSED', async () => {
    const { db } = await memDb(SMALL);
    await db.createTable('t', { columns: { id: 'int64', v: 'int32' }, primaryKey: 'id' });
    await db.insert('t', [
      { id: 1, v: 1 },
      { id: 2, v: 2 },
    ]);
    const snap = db.snapshot();
    const pending = db.upsert('t', { id: 1, v: 10 }); // not awaited: taken after the snapshot
    await pending;
    await db.delete('t', 2);
    await db.insert('t', { id: 3, v: 3 });
    await db.flush();
    await db.compact();
    expect(await snap.get('t', 1)).toEqual({ id: 1, v: 1 });
    expect(await snap.get('t', 2)).toEqual({ id: 2, v: 2 });
    expect(await snap.get('t', 3)).toBeUndefined();
    expect(await collect(snap.scan('t'))).toEqual([
      { id: 1, v: 1 },
      { id: 2, v: 2 },
    ]);
    let n = 0;
    for await (const b of snap.scanBatches('t')) n += b.length;
    expect(n).toBe(2);
    expect(await db.get('t', 1)).toEqual({ id: 1, v: 10 });
    expect(snap.released).toBe(false);
    snap.release();
    snap.release();
    expect(snap.released).toBe(true);
    expect(codeOfSync(() => snap.get('t', 1))).toBe('CLOSED');
    expect(codeOfSync(() => snap.scan('t'))).toBe('CLOSED');
    await db.close();
  });

  it('has no timeout, and ends when the database closes, without a leak', async () => {
    const { db } = await memDb({ transaction: { timeoutMs: 30 } });
    await db.createTable('t', { columns: { id: 'int64' }, primaryKey: 'id' });
    await db.insert(
      't',
      Array.from({ length: 2000 }, (_, id) => ({ id })),
    );
    const snap = db.snapshot();
    const it = snap.scan('t');
    await it.next();
    await new Promise((r) => setTimeout(r, 120));
    expect(await snap.get('t', 1)).toEqual({ id: 1 });
    await db.close(); // resolves: nothing leaked although the snapshot was not released
    expect(snap.released).toBe(true);
    expect(codeOfSync(() => snap.get('t', 1))).toBe('CLOSED');
    // The rows already fetched may come; then the scan ends with CLOSED.
    await expect(collect({ [Symbol.asyncIterator]: () => it })).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
