import { afterEach, expect, test, vi } from 'vitest';
import { HybridClock } from '../../src/txn/clock.js';
import { ACCOUNTS, memDb } from '../helpers/db.js';

afterEach(() => vi.restoreAllMocks());

test('the clock is strictly increasing, even when the wall clock stands still or goes back', () => {
  let wall = 1_000_000;
  const c = new HybridClock(() => wall);
  const a = c.now();
  const b = c.now();
  wall -= 500;
  const d = c.now();
  expect(b).toBeGreaterThan(a);
  expect(d).toBeGreaterThan(b);
  wall += 10_000;
  expect(c.now()).toBe(wall * 2048);
  c.observe(1e15);
  expect(c.now()).toBe(1e15 + 1);
  expect(HybridClock.toMs(wall * 2048 + 5)).toBe(wall);
});

test('commit timestamps stay monotonic across a restart with the wall clock moved back a day', async () => {
  const { db, reopen } = await memDb();
  await db.createTable('a', ACCOUNTS);
  await db.insert('a', { id: 1, owner: 'x', balance: 0 });
  const before = (db as unknown as { txns: { lastCommittedTs: number } }).txns.lastCommittedTs;
  await db.close();
  const now = Date.now();
  vi.spyOn(Date, 'now').mockReturnValue(now - 86_400_000);
  const again = await reopen();
  const txns = (again as unknown as { txns: { lastCommittedTs: number } }).txns;
  expect(txns.lastCommittedTs).toBe(before);
  await again.insert('a', { id: 2, owner: 'y', balance: 0 });
  expect(txns.lastCommittedTs).toBeGreaterThan(before);
  // And the older row is visible to the newer snapshot.
  expect(await again.get('a', 1)).toBeDefined();
  await again.close();
});
