import { expect, test } from 'vitest';
import { plantBug } from '../../src/util/plant.js';
import { abandonSweep, ITERATORS, sweep, WORKLOADS } from './faultsweep.js';

/**
 * The fault sweep (faultsweep.ts): each workload run once per N with its Nth operation of a kind
 * failing (open, read, write with EIO and ENOSPC, datasync, rename, delete, list, stat, syncDir),
 * then checked: every call settled with IO or CORRUPTION, close() proved nothing held, a reopen
 * found exactly the acknowledged data: for every N (about 8 s in all here). TIDEMARK_SWEEP_STRIDE=S
 * walks every S-th N. Then the same with cancellation: every iterator abandoned after k rows, for
 * every k up to 70 (TIDEMARK_SWEEP_FULL=1: every row of the table, 400).
 */
const STRIDE = Number(process.env['TIDEMARK_SWEEP_STRIDE'] ?? 1);
const ABANDON_BOUND = process.env['TIDEMARK_SWEEP_FULL'] === '1' ? 400 : 70;

for (const w of WORKLOADS) {
  test(`fault sweep: ${w.name}`, async () => {
    const s = await sweep(w, STRIDE);
    expect(s.problems, s.problems.join('\n')).toEqual([]);
    // The sweep did fail operations: every run injected its fault.
    expect(s.runs).toBeGreaterThan(10);
    expect(s.faultsInjected).toBe(s.runs);
    process.stdout.write(
      `${w.name}: ${s.runs} faulted runs; operations counted ${JSON.stringify(s.counts)}\n`,
    );
  }, 300_000);
}

test('cancellation sweep: every iterator abandoned after k rows, for every k', async () => {
  const s = await abandonSweep(ABANDON_BOUND);
  expect(s.problems, s.problems.join('\n')).toEqual([]);
  expect(s.runs).toBe(ITERATORS.length * (ABANDON_BOUND + 1));
}, 300_000);

test('proven able to fail: a key pin not released on a failed read turns the sweep red', async () => {
  plantBug('error-path-pin');
  try {
    const s = await sweep(
      WORKLOADS.find((w) => w.name.startsWith('scans'))!,
      1,
      1,
    );
    expect(s.problems.join('\n')).toMatch(/LEAK|cache\.chunk/);
  } finally {
    plantBug(undefined);
  }
}, 300_000);
