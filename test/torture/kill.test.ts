import { expect, test } from 'vitest';
import { plantBug } from '../../src/util/plant.js';
import { killLoop } from './kill_loop.js';

/**
 * Process crashes: a child process runs the workload with background checkpoints, compaction and
 * GC at short intervals; the parent kills it with SIGKILL at a random moment, then opens the
 * database and checks it: it opens, every acknowledged commit is there and nothing half-done is,
 * the bank total holds, `tidemark check` finds it clean (no orphan file after the close's GC).
 * 60 kills (each recovery also checks every index against its table); TIDEMARK_LONG=1: 2,000;
 * TIDEMARK_KILLS=N: N.
 */
const KILLS = Number(process.env['TIDEMARK_KILLS'] ?? (process.env['TIDEMARK_LONG'] === '1' ? 2000 : 60));

test(
  `${KILLS} kills with SIGKILL: every acknowledged commit survives, nothing is half done`,
  async () => {
    const { acks, problems } = await killLoop(KILLS);
    expect(problems).toEqual([]);
    expect(acks).toBeGreaterThan(KILLS * 5);
  },
  Math.max(1_800_000, KILLS * 3_000),
);

test('proven able to fail: with recovery skipping a logged commit, the kills catch it', async () => {
  plantBug('replay-gap');
  try {
    // (It stops at the first kill that shows the gap, usually the first. A kill that finds no commit
    // after the last checkpoint, or one that a later commit overwrote, cannot show it.)
    const { problems } = await killLoop(20);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toMatch(/after kill \d+: /);
  } finally {
    plantBug(undefined);
  }
}, 300_000);
