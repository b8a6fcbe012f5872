import { describe, expect, test } from 'vitest';
import { FaultFileService } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import type { Database, Transaction } from '../../src/index.js';
import { codeOf } from '../helpers/errors.js';
import { ACCOUNTS, collect, memDb } from '../helpers/db.js';

/** Begin a transaction and hand it out, with a function to finish it (commit) later. */
function hold(db: Database): Promise<{ tx: Transaction; commit: () => Promise<void> }> {
  return new Promise((ready) => {
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const result = db.transaction(async (tx) => {
      ready({
        tx,
        commit: async () => {
          finish();
          await result;
        },
      });
      await done;
    });
    result.catch(() => undefined);
  });
}

async function setup() {
  const m = await memDb();
  await m.db.createTable('a', ACCOUNTS);
  await m.db.insert('a', [
    { id: 1, owner: 'ann', balance: 100 },
    { id: 2, owner: 'bo', balance: 100 },
  ]);
  return m;
}

describe('snapshot isolation', () => {
  test('lost update is prevented: the later committer gets CONFLICT', async () => {
    const { db } = await setup();
    const t1 = await hold(db);
    const t2 = await hold(db);
    const b1 = (await t1.tx.get('a', 1))!['balance'] as number;
    const b2 = (await t2.tx.get('a', 1))!['balance'] as number;
    await t1.tx.update('a', 1, { balance: b1 + 10 });
    await t2.tx.update('a', 1, { balance: b2 + 20 });
    await t1.commit();
    expect(await codeOf(t2.commit())).toBe('CONFLICT');
    expect((await db.get('a', 1))!['balance']).toBe(110);
    expect(db.stats().transactions.conflicts).toBe(1);
    await db.close();
  });

  test('a write to a key committed by another after our snapshot fails early with CONFLICT', async () => {
    const { db } = await setup();
    const t1 = await hold(db);
    await db.update('a', 1, { balance: 1 });
    expect(await codeOf(t1.tx.update('a', 1, { balance: 2 }))).toBe('CONFLICT');
    expect(await codeOf(t1.tx.delete('a', 1))).toBe('CONFLICT');
    expect(await codeOf(t1.tx.upsert('a', { id: 1, owner: 'z', balance: 3 }))).toBe('CONFLICT');
    await t1.commit();
    await db.close();
  });

  test('one-statement writes to a hot key from many callers retry their conflicts: all succeed', async () => {
    const { db } = await memDb();
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', { id: 1, owner: 'x', balance: 0 });
    // 32 callers update the same row 20 times each: they take turns, and none conflicts.
    await Promise.all(
      Array.from({ length: 32 }, async (_, c) => {
        for (let k = 0; k < 20; k++) expect(await db.update('a', 1, { balance: c * 100 + k })).toBe(true);
      }),
    );
    expect(db.stats().transactions.conflicts).toBe(0);
    // With explicit transactions writing the row too, statements meet real conflicts: retried.
    const explicit = Array.from({ length: 4 }, async () => {
      for (let k = 0; k < 20; k++) {
        for (;;) {
          const done = await db
            .transaction(async (tx) => {
              const r = await tx.get('a', 1);
              await tx.update('a', 1, { balance: (r!['balance'] as number) + 1 });
            })
            .then(() => true)
            .catch((e: unknown) => {
              if ((e as { code?: string }).code !== 'CONFLICT') throw e;
              return false; // the caller's to retry
            });
          if (done) break;
        }
      }
    });
    const statements = Array.from({ length: 16 }, async (_, c) => {
      for (let k = 0; k < 20; k++) expect(await db.update('a', 1, { owner: `c${c}` })).toBe(true);
    });
    await Promise.all([...explicit, ...statements]);
    expect(db.stats().transactions.conflicts).toBeGreaterThan(0); // they met, and were retried
    // An explicit transaction is the caller's to retry: it still gets CONFLICT.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const mine = db.transaction(async (tx) => {
      await tx.update('a', 1, { balance: -1 });
      await gate;
    });
    await db.update('a', 1, { balance: -2 });
    release();
    expect(await codeOf(mine)).toBe('CONFLICT');
    await db.close();
  });

  test('reads see their own writes, and nothing of others', async () => {
    const { db } = await setup();
    const t1 = await hold(db);
    await t1.tx.insert('a', { id: 3, owner: 'cy', balance: 5 });
    await t1.tx.delete('a', 2);
    await t1.tx.update('a', 1, { owner: 'anne' });
    expect(await t1.tx.get('a', 3)).toMatchObject({ balance: 5 });
    expect(await t1.tx.get('a', 2)).toBeUndefined();
    expect((await collect(t1.tx.scan('a'))).map((r) => [r['id'], r['owner']])).toEqual([
      [1, 'anne'],
      [3, 'cy'],
    ]);
    const [b] = await collect(t1.tx.scanBatches('a', { columns: ['id', 'owner'] }));
    expect(b!.columns['id']).toEqual([1, 3]);
    expect(b!.columns['owner']).toEqual(['anne', 'cy']);
    // Outside, nothing yet.
    expect(await db.get('a', 3)).toBeUndefined();
    expect(await db.get('a', 2)).toBeDefined();
    await t1.commit();
    expect(await db.get('a', 3)).toBeDefined();
    expect(await db.get('a', 2)).toBeUndefined();
    await db.close();
  });

  test('a snapshot is stable while others commit', async () => {
    const { db } = await setup();
    const reader = await hold(db);
    const before = await collect(reader.tx.scan('a'));
    for (let i = 0; i < 20; i++) {
      await db.insert('a', { id: 100 + i, owner: 'w', balance: i });
      await db.update('a', 1, { balance: i });
    }
    await db.delete('a', 2);
    expect(await collect(reader.tx.scan('a'))).toEqual(before);
    expect(await reader.tx.get('a', 2)).toEqual(before[1]);
    await reader.commit();
    expect((await collect(db.scan('a'))).length).toBe(21);
    await db.close();
  });

  test('write skew is allowed, as snapshot isolation allows', async () => {
    const { db } = await setup();
    // Invariant the application wants: balance(1) + balance(2) >= 100. Each checks, then withdraws.
    const t1 = await hold(db);
    const t2 = await hold(db);
    const sum = async (tx: Transaction) =>
      ((await tx.get('a', 1))!['balance'] as number) + ((await tx.get('a', 2))!['balance'] as number);
    expect(await sum(t1.tx)).toBe(200);
    expect(await sum(t2.tx)).toBe(200);
    await t1.tx.update('a', 1, { balance: 0 });
    await t2.tx.update('a', 2, { balance: 0 });
    await t1.commit();
    await t2.commit(); // disjoint write sets: both commit
    expect(
      ((await db.get('a', 1))!['balance'] as number) + ((await db.get('a', 2))!['balance'] as number),
    ).toBe(0);
    await db.close();
  });

  test('inserting an existing key is DUPLICATE_KEY, also against a concurrent commit', async () => {
    const { db } = await setup();
    expect(await codeOf(db.insert('a', { id: 1, owner: 'again', balance: 0 }))).toBe('DUPLICATE_KEY');
    expect(
      await codeOf(
        db.insert('a', [
          { id: 9, owner: 'x', balance: 0 },
          { id: 9, owner: 'y', balance: 0 },
        ]),
      ),
    ).toBe('DUPLICATE_KEY');
    expect(await db.get('a', 9)).toBeUndefined(); // the failed call inserted nothing
    const t1 = await hold(db);
    const t2 = await hold(db);
    await t1.tx.insert('a', { id: 7, owner: 't1', balance: 0 });
    await t2.tx.insert('a', { id: 7, owner: 't2', balance: 0 });
    await t1.commit();
    expect(await codeOf(t2.commit())).toBe('DUPLICATE_KEY');
    expect((await db.get('a', 7))!['owner']).toBe('t1');
    // Concurrent commits in flight at the same moment: exactly one wins.
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => db.insert('a', { id: 50, owner: `c${i}`, balance: i })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('DUPLICATE_KEY');
    }
    await db.close();
  });

  test('insert after delete in one transaction, and delete of own insert, behave as written', async () => {
    const { db } = await setup();
    await db.transaction(async (tx) => {
      expect(await tx.delete('a', 1)).toBe(true);
      await tx.insert('a', { id: 1, owner: 'reborn', balance: 1 });
      await tx.insert('a', { id: 5, owner: 'temp', balance: 1 });
      expect(await tx.delete('a', 5)).toBe(true);
      expect(await tx.delete('a', 5)).toBe(false);
      expect(await tx.update('a', 5, { balance: 2 })).toBe(false);
    });
    expect((await db.get('a', 1))!['owner']).toBe('reborn');
    expect(await db.get('a', 5)).toBeUndefined();
    await db.close();
  });

  test('a transaction left open past its timeout is rolled back; its calls then get CLOSED', async () => {
    const { db } = await memDb({ transaction: { timeoutMs: 50 } });
    await db.createTable('a', ACCOUNTS);
    const baseline = db.stats().memory.pools['memtable']!.bytes;
    const t = await hold(db);
    await t.tx.insert('a', { id: 1, owner: 'x', balance: 0 });
    expect(db.stats().memory.pools['memtable']!.bytes).toBeGreaterThan(baseline); // its write set
    await new Promise((r) => setTimeout(r, 150));
    const err = await t.tx.get('a', 1).catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe('CLOSED');
    expect((err as Error).message).toContain('timed out');
    expect(await codeOf(t.commit())).toBe('CLOSED');
    expect(await db.get('a', 1)).toBeUndefined();
    expect(db.stats().transactions.active).toBe(0);
    // The rolled-back write set's memory went back to the pool.
    expect(db.stats().memory.pools['memtable']!.bytes).toBe(baseline);
    await db.close();
  });

  test('a transaction holds at most maxWriteBytes of writes: past it, MEMORY_LIMIT, and the database goes on', async () => {
    const { db } = await memDb({ transaction: { maxWriteBytes: 64 * 1024 } });
    await db.createTable('a', ACCOUNTS);
    const big = 'x'.repeat(10_000);
    const err = await db
      .transaction(async (tx) => {
        for (let i = 0; i < 100; i++) await tx.insert('a', { id: i, owner: big, balance: 0 });
      })
      .catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe('MEMORY_LIMIT');
    expect(await db.get('a', 0)).toBeUndefined();
    await db.insert('a', { id: 1, owner: 'small', balance: 0 });
    await db.close();
  });

  test('a failed WAL append leaves no trace in memory, and the database refuses writes until reopened', async () => {
    const mem = new MemoryFileService();
    const fault = new FaultFileService(mem);
    const { db, reopen } = await memDb({}, fault);
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', { id: 1, owner: 'kept', balance: 1 });
    fault.addRule({ op: 'write', nth: 1, errno: 'EIO', path: 'wal/' });
    const err = (await db.insert('a', { id: 2, owner: 'lost', balance: 2 }).catch((e: unknown) => e)) as {
      code: string;
    };
    expect(err.code).toBe('IO');
    expect(await db.get('a', 2)).toBeUndefined();
    expect((await collect(db.scan('a'))).length).toBe(1);
    expect(await codeOf(db.insert('a', { id: 3, owner: 'later', balance: 3 }))).toBe('IO');
    expect(db.stats().wal.failed).toBe(true);
    expect(await db.get('a', 1)).toBeDefined(); // reads still work
    await db.close();
    fault.clearRules();
    const again = await reopen();
    expect((await collect(again.scan('a'))).map((r) => r['id'])).toEqual([1]);
    await again.insert('a', { id: 2, owner: 'now', balance: 2 });
    await again.close();
  });
});
