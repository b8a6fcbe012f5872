import { expect, test } from 'vitest';
import { plantBug } from '../../src/util/plant.js';
import { describeOutcome, ioFault, type Outcome } from './simulate.js';

/**
 * I/O errors: each seed fails one step of its workload (a WAL write, a WAL roll, an object written
 * by a flush or a merge, an incremental or a global checkpoint, GC: in turn, by seed) with EIO or
 * ENOSPC, once or for good. The operation fails with IO; the database then either takes commits
 * or, its log having failed, refuses them with IO until reopened; it closes without leaking a
 * buffer or a handle; and after a reopen every acknowledged commit is there. 300 seeds;
 * TIDEMARK_LONG=1: 3,000; TIDEMARK_IO_SEEDS=N: N; TIDEMARK_SEED=S: only seed S, with its report.
 */
const ONE = process.env['TIDEMARK_SEED'];
const SEEDS = Number(process.env['TIDEMARK_IO_SEEDS'] ?? (process.env['TIDEMARK_LONG'] === '1' ? 3000 : 300));

test(
  ONE !== undefined
    ? `I/O error seed ${ONE}`
    : `${SEEDS} seeded I/O errors: IO errors, no leak, nothing acknowledged lost`,
  async () => {
    const seeds = ONE !== undefined ? [Number(ONE)] : Array.from({ length: SEEDS }, (_, i) => i + 1);
    const failures: string[] = [];
    let ioErrors = 0;
    let walFailed = 0;
    for (const seed of seeds) {
      const o = await ioFault(seed);
      if (ONE !== undefined) console.log(describeOutcome(o));
      ioErrors += o.ioErrors ?? 0;
      if (o.walFailed === true) walFailed++;
      if (o.problems.length > 0) {
        failures.push(describeOutcome(o));
        if (failures.length >= 3) break;
      }
    }
    expect(failures, failures.join('\n\n')).toEqual([]);
    if (ONE === undefined) {
      // The errors were met, and both ways of going on were taken.
      expect(ioErrors).toBeGreaterThan(SEEDS / 2);
      expect(walFailed).toBeGreaterThan(0);
      expect(walFailed).toBeLessThan(SEEDS);
    }
  },
  3_600_000,
);

test('proven able to fail: with commits acknowledged before they are written, a failed write loses one', async () => {
  plantBug('early-ack');
  try {
    let failing: Outcome | undefined;
    for (let seed = 1; seed <= 200 && failing === undefined; seed++) {
      const o = await ioFault(seed);
      if (o.problems.length > 0) failing = o;
    }
    expect(failing, 'no seed caught the planted bug').toBeDefined();
    expect(describeOutcome(failing!)).toMatch(/^seed \d+: (EIO|ENOSPC).* on \w+ #\d+ of /);
    expect(failing!.problems.join('\n')).toMatch(/acknowledged/);
  } finally {
    plantBug(undefined);
  }
}, 600_000);
