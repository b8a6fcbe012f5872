import { afterEach, expect, test } from 'vitest';
import { open, TidemarkError, type Database } from '../../src/index.js';
import { Rng } from '../../src/util/random.js';
import { tempDir } from '../helpers/tmp.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const ACCOUNTS = 50;
const START = 1000;

async function total(db: Database): Promise<number> {
  let sum = 0;
  for await (const b of db.scanBatches('bank', { columns: ['balance'] }))
    for (const v of b.columns['balance'] as number[]) sum += v;
  return sum;
}

/** Transfer with retries on CONFLICT, as an application would. */
async function transfer(db: Database, rng: Rng): Promise<number> {
  const from = rng.int(ACCOUNTS);
  let to = rng.int(ACCOUNTS - 1);
  if (to >= from) to++;
  const amount = 1 + rng.int(50);
  for (let attempt = 0; ; attempt++) {
    try {
      await db.transaction(async (tx) => {
        const a = (await tx.get('bank', from))!['balance'] as number;
        const b = (await tx.get('bank', to))!['balance'] as number;
        if (a < amount) return;
        await tx.update('bank', from, { balance: a - amount });
        // Yield between the two writes so that transfers really interleave.
        await new Promise((r) => setImmediate(r));
        await tx.update('bank', to, { balance: b + amount });
      });
      return attempt;
    } catch (e) {
      if (!(e instanceof TidemarkError) || e.code !== 'CONFLICT') throw e;
    }
  }
}

test('many concurrent transfers never change the total, before and after a restart', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  let db = await open(t.dir);
  await db.createTable('bank', { columns: { id: 'int32', balance: 'int64' }, primaryKey: 'id' });
  await db.insert(
    'bank',
    Array.from({ length: ACCOUNTS }, (_, id) => ({ id, balance: START })),
  );
  const rng = new Rng(7);
  let retries = 0;
  let audits = 0;
  let stop = false;
  // An auditor reads the total at its own snapshot, again and again, while transfers run.
  const auditor = (async () => {
    while (!stop) {
      expect(await total(db)).toBe(ACCOUNTS * START);
      audits++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 40; i++) {
        const attempts = await transfer(db, rng); // not `retries += await`: that reads retries before awaiting
        retries += attempts;
      }
    }),
  );
  stop = true;
  await auditor;
  expect(audits).toBeGreaterThan(5);
  expect(retries).toBeGreaterThan(0); // transfers did collide, and were retried
  expect(await total(db)).toBe(ACCOUNTS * START);
  expect(db.stats().transactions.conflicts).toBe(retries);
  await db.close();
  db = await open(t.dir);
  expect(await total(db)).toBe(ACCOUNTS * START);
  await db.close();
});
