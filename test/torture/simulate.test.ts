import { expect, test } from 'vitest';
import { plantBug } from '../../src/util/plant.js';
import { runTs } from '../helpers/child.js';
import { CRASH_KINDS, describeOutcome, dryRun, kindOf, simulate, type Outcome } from './simulate.js';

/**
 * Simulated crashes: each seed crashes its workload at one step of a WAL write, a WAL roll, an
 * object written by a flush or a merge, an incremental checkpoint, a global checkpoint, or GC (in
 * turn, by seed), then recovers and checks every acknowledged commit, atomicity, the bank total,
 * and `tidemark check`. 500 seeds; TIDEMARK_LONG=1: 10,000; TIDEMARK_SEEDS=N: N;
 * TIDEMARK_SEED=S: only seed S, with its report printed.
 */
const ONE = process.env['TIDEMARK_SEED'];
const SEEDS = Number(process.env['TIDEMARK_SEEDS'] ?? (process.env['TIDEMARK_LONG'] === '1' ? 10_000 : 500));

test('the workload reaches every kind of step a crash is aimed at', async () => {
  const { steps } = await dryRun(1);
  const kinds = new Set(steps.map(kindOf));
  for (const k of CRASH_KINDS) expect(kinds.has(k), `no ${k} step in the workload`).toBe(true);
});

test('a seed replays the same steps, the same crash and the same verdict, here and in another process', async () => {
  // Seeds aimed at a WAL roll, an object, a checkpoint and a global checkpoint (temporary files).
  const seeds = [7, 8, 9, 10];
  const here = [];
  for (const seed of seeds) {
    const a = await simulate(seed);
    const b = await simulate(seed);
    expect(b, `seed ${seed} twice in one process`).toEqual(a);
    here.push(a);
  }
  const child = await runTs('test/torture/replay_child.ts', seeds.map(String));
  expect(child.code, child.stderr).toBe(0);
  const there = child.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Outcome);
  expect(there).toEqual(JSON.parse(JSON.stringify(here)));
});

test(
  ONE !== undefined
    ? `seed ${ONE}`
    : `${SEEDS} seeded crashes: every acknowledged commit survives, nothing is half done`,
  async () => {
    const seeds = ONE !== undefined ? [Number(ONE)] : Array.from({ length: SEEDS }, (_, i) => i + 1);
    const failures: string[] = [];
    const started = Date.now();
    for (const seed of seeds) {
      const o = await simulate(seed);
      if (ONE !== undefined) console.log(describeOutcome(o));
      if (o.problems.length > 0) {
        failures.push(describeOutcome(o));
        if (failures.length >= 3) break;
      }
      if (seeds.length >= 1000 && seed % 500 === 0)
        console.log(
          `simulated crashes: ${seed}/${seeds.length}, ${Math.round((Date.now() - started) / 1000)} s`,
        );
    }
    expect(failures, failures.join('\n\n')).toEqual([]);
  },
  3_600_000,
);

test('proven able to fail: with commits acknowledged before they are written, a seed loses one, and replays it', async () => {
  plantBug('early-ack');
  try {
    let failing: Outcome | undefined;
    for (let seed = 1; seed <= 100 && failing === undefined; seed++) {
      const o = await simulate(seed);
      if (o.problems.length > 0) failing = o;
    }
    expect(failing, 'no seed caught the planted bug').toBeDefined();
    const report = describeOutcome(failing!);
    expect(report).toMatch(/^seed \d+: crash at step \d+/);
    expect(report).toMatch(/acknowledged \{"seq"/);
    expect(report).toContain(`TIDEMARK_SEED=${failing!.seed}`);
    const again = await simulate(failing!.seed);
    expect(again.problems).toEqual(failing!.problems);
    expect(again.log).toEqual(failing!.log);
  } finally {
    plantBug(undefined);
  }
});
