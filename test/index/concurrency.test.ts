import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { open, TidemarkError, type Database, type Transaction } from '../../src/index.js';
import { plantBug } from '../../src/util/plant.js';
import { checkIndexes } from '../helpers/index_check.js';

/**
 * UNIQUE against concurrent transactions, as strictly as primary keys: whatever the interleaving of
 * their steps, of two transactions that write the same unique value one fails with DUPLICATE_KEY,
 * and a random mix of transactions leaves the table and its indexes agreeing, unique, and equal to
 * the committed transactions' writes applied in commit order.
 */
const SPEC = {
  columns: { id: 'int64', email: { type: 'string', nullable: true }, n: 'int32' },
  primaryKey: 'id',
  indexes: [
    { name: 'by_email', columns: ['email'], unique: true },
    { name: 'by_n', columns: ['n', 'email'] },
  ],
};

async function freshDb(): Promise<Database> {
  const fs = new MemoryFileService();
  const db = await open('m', { fileService: fs, storage: { memtableRowsMax: 8, rowGroupRows: 16 } });
  await db.createTable('u', SPEC as never);
  return db;
}

const code = (e: unknown) => (e instanceof TidemarkError ? e.code : String(e));

/** A transaction driven step by step from outside db.transaction (begin, steps, commit). */
class Stepper {
  tx!: Transaction;
  error: string | undefined;
  committed = false;
  private release!: (ok: boolean) => void;
  private done!: Promise<void>;
  constructor(private readonly db: Database) {}

  begin(): Promise<void> {
    let started!: () => void;
    const began = new Promise<void>((r) => (started = r));
    const gate = new Promise<boolean>((r) => (this.release = r));
    this.done = this.db
      .transaction(async (tx) => {
        this.tx = tx;
        started();
        if (!(await gate)) throw new Error('abandoned');
      })
      .then(
        () => void (this.committed = true),
        (e: unknown) => {
          this.error ??= code(e);
        },
      );
    return began;
  }

  async step(fn: (tx: Transaction) => Promise<unknown>): Promise<void> {
    if (this.error !== undefined) return;
    try {
      await fn(this.tx);
    } catch (e) {
      this.error = code(e);
      this.release(false);
      await this.done;
    }
  }

  async commit(): Promise<void> {
    if (this.error === undefined) this.release(true);
    await this.done;
  }
}

describe('UNIQUE under concurrency', () => {
  test('two transactions writing the same unique value: one fails with DUPLICATE_KEY, whatever the timing', async () => {
    await fc.assert(
      fc.asyncProperty(
        // The six steps in any order that keeps each transaction's own order.
        fc.shuffledSubarray([0, 1, 2, 3, 4, 5], { minLength: 6, maxLength: 6 }),
        fc.constantFrom('insert', 'update', 'upsert'),
        fc.constantFrom('insert', 'update', 'upsert'),
        fc.boolean(),
        async (order, how1, how2, flushed) => {
          const db = await freshDb();
          try {
            // Rows 1 and 2 exist (updates move them onto the value); the value may sit in objects.
            await db.insert('u', [
              { id: 1, email: 'one', n: 1 },
              { id: 2, email: 'two', n: 2 },
              { id: 9, email: 'taken-before', n: 9 },
            ]);
            await db.delete('u', 9);
            if (flushed) await db.flush();
            const steps = [new Stepper(db), new Stepper(db)];
            const write = (i: number, how: string) => (tx: Transaction) => {
              const id = i + 1;
              if (how === 'update') return tx.update('u', id, { email: 'same' });
              if (how === 'upsert') return tx.upsert('u', { id, email: 'same', n: id });
              return tx.insert('u', { id: 10 + id, email: 'same', n: id });
            };
            // Steps: a transaction's begin, write, commit happen in that order: sort each one's.
            const seq = order.map((s) => s % 2);
            const stage = [0, 0];
            for (const who of seq) {
              const s = steps[who]!;
              const st = stage[who]!++;
              if (st === 0) await s.begin();
              else if (st === 1) await s.step(write(who, who === 0 ? how1 : how2));
              else await s.commit();
            }
            const ok = steps.filter((s) => s.committed).length;
            const dup = steps.filter((s) => s.error === 'DUPLICATE_KEY').length;
            expect({ ok, dup, errors: steps.map((s) => s.error) }).toMatchObject({ ok: 1, dup: 1 });
            const holders = [];
            for await (const r of db.scan('u')) if (r['email'] === 'same') holders.push(r['id']);
            expect(holders.length).toBe(1);
            expect(await checkIndexes(db)).toEqual([]);
          } finally {
            await db.close();
          }
        },
      ),
      { numRuns: Number(process.env['TIDEMARK_INDEX_RUNS'] ?? 120) },
    );
  }, 300_000);

  type Op = { kind: 'insert' | 'update' | 'upsert' | 'delete'; id: number; email: string | null; n: number };
  const op = fc.record({
    kind: fc.constantFrom('insert', 'update', 'upsert', 'delete'),
    id: fc.integer({ min: 0, max: 5 }),
    email: fc.constantFrom('a', 'b', 'c', null),
    n: fc.integer({ min: 0, max: 2 }),
  }) as fc.Arbitrary<Op>;

  async function randomMix(txns: Op[][], schedule: number[]): Promise<string[]> {
    const db = await freshDb();
    const problems: string[] = [];
    try {
      await db.insert('u', [
        { id: 0, email: 'a', n: 0 },
        { id: 1, email: null, n: 1 },
      ]);
      const steppers = txns.map(() => new Stepper(db));
      const pos = txns.map(() => -1);
      /** Per transaction: the rows it leaves for the ids it touched, read just before its commit. */
      const effects = txns.map(() => new Map<number, Record<string, unknown> | undefined>());
      const commitOrder: number[] = [];
      const written = txns.map(() => new Set<number>());
      const advance = async (i: number) => {
        const s = steppers[i]!;
        const p = pos[i]!++;
        if (p === -1) return s.begin();
        if (p < txns[i]!.length) {
          const o = txns[i]![p]!;
          return s.step(async (tx) => {
            let wrote = true;
            if (o.kind === 'insert') await tx.insert('u', { id: o.id, email: o.email, n: o.n });
            else if (o.kind === 'upsert') await tx.upsert('u', { id: o.id, email: o.email, n: o.n });
            else if (o.kind === 'update') wrote = await tx.update('u', o.id, { email: o.email });
            else wrote = await tx.delete('u', o.id);
            if (wrote) written[i]!.add(o.id);
          });
        }
        if (p === txns[i]!.length) {
          await s.step(async (tx) => {
            for (const id of written[i]!) effects[i]!.set(id, await tx.get('u', id));
          });
          await s.commit();
          if (s.committed) commitOrder.push(i);
        }
      };
      for (const who of schedule) if (pos[who]! <= txns[who]!.length) await advance(who);
      for (let i = 0; i < txns.length; i++) while (pos[i]! <= txns[i]!.length) await advance(i);
      for (const s of steppers)
        if (s.error !== undefined && s.error !== 'DUPLICATE_KEY' && s.error !== 'CONFLICT')
          problems.push(`a transaction failed with ${s.error}`);
      // The committed writes, in commit order, over the starting rows.
      const model = new Map<number, Record<string, unknown>>([
        [0, { id: 0, email: 'a', n: 0 }],
        [1, { id: 1, email: null, n: 1 }],
      ]);
      for (const i of commitOrder)
        for (const [id, row] of effects[i]!) {
          if (row === undefined) model.delete(id);
          else model.set(id, row);
        }
      const rows: Record<string, unknown>[] = [];
      for await (const r of db.scan('u')) rows.push(r);
      const want = [...model.values()].sort((a, b) => (a['id'] as number) - (b['id'] as number));
      if (JSON.stringify(rows) !== JSON.stringify(want))
        problems.push(`table ${JSON.stringify(rows)}, committed writes make ${JSON.stringify(want)}`);
      problems.push(...(await checkIndexes(db)));
    } finally {
      await db.close();
    }
    return problems;
  }

  const mix = fc.tuple(
    fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 4 }),
    fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 30 }),
  );

  test('random concurrent transactions: table and indexes agree, values stay unique, commits apply in order', async () => {
    await fc.assert(
      fc.asyncProperty(mix, async ([txns, schedule]) => {
        expect(
          await randomMix(
            txns,
            schedule.map((s) => s % txns.length),
          ),
        ).toEqual([]);
      }),
      { numRuns: Number(process.env['TIDEMARK_INDEX_RUNS'] ?? 150) },
    );
  }, 300_000);

  test('proven able to fail: without the commit-time check of index entries, or with stale entries, they go red', async () => {
    const race = fc.sample(mix, { numRuns: 400, seed: 7 });
    for (const bug of ['index-unique-race', 'index-stale-entry'] as const) {
      plantBug(bug);
      try {
        let red = false;
        for (const [txns, schedule] of race) {
          if (
            (
              await randomMix(
                txns,
                schedule.map((s) => s % txns.length),
              )
            ).length > 0
          ) {
            red = true;
            break;
          }
        }
        expect(red, bug).toBe(true);
      } finally {
        plantBug(undefined);
      }
    }
  }, 300_000);
});
