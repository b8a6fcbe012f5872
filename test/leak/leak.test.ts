import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import type { SoakReport } from '../../src/leakcheck/harness.js';
import { quietly } from '../../src/leakcheck/process_watch.js';
import { SCENARIOS } from '../../src/leakcheck/workload.js';
import { PLANT_KINDS, type PlantKind } from '../../src/util/plant.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The leak suite: the `tidemark leakcheck` soak, in a process of its own (so that the test runner's
 * heap does not blur the measurements), from the build `npm test` makes first. Then the same soak
 * with each kind of leak planted in turn: each must fail, naming what leaked and where.
 */
const root = path.resolve(import.meta.dirname, '..', '..');
const main = path.join(root, 'dist', 'cli', 'main.js');

async function leakcheck(args: string[]): Promise<{ code: number; report: SoakReport & { plot: string } }> {
  if (!existsSync(main)) throw new Error('dist/ is missing: run `npm run build` (npm test builds it first)');
  const child = spawn(process.execPath, ['--expose-gc', main, 'leakcheck', '--json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  try {
    return { code, report: JSON.parse(out) as SoakReport & { plot: string } };
  } catch {
    throw new Error(`leakcheck exited ${code} without a report:\n${out}\n${err}`);
  }
}

describe('the leak suite', () => {
  test('30 cycles each of checkpoints, recovery, compaction, GC, flush, merge, abandoned scans, index builds and index scans, failed checkpoints, busy closes, TidemarkLevel use and SQL leak nothing', async () => {
    const { dir, cleanup } = tempDir('tidemark-leaksuite-');
    try {
      const plot = path.join(dir, 'leakcheck.svg');
      // 30 cycles of each scenario.
      const cycles = 30 * SCENARIOS.length;
      const { code, report } = await leakcheck(['--cycles', String(cycles), '--plot', plot]);
      expect(report.failures).toEqual([]);
      expect(report.verdict).toBe('pass');
      expect(code).toBe(0);
      expect(report.cycles).toBe(cycles);
      expect(report.restarts).toBeGreaterThanOrEqual(20);
      for (const n of Object.values(report.perScenario)) expect(n).toBe(30);
      expect(Object.keys(report.perScenario).sort()).toEqual([...SCENARIOS].sort());
      expect(report.maxCheckpointFiles).toBeLessThanOrEqual(report.checkpointFilesBound);
      expect(report.heap.samples).toBe(cycles - 100);
      // The gate: the heap's growth per cycle is below 1 KiB unless we are 95% sure it is not.
      expect(report.heap.theilSenLo95).toBeLessThan(1024);
      expect(report.heap.theilSenLo95).toBeLessThanOrEqual(report.heap.theilSen);
      expect(report.heap.theilSenHi95).toBeGreaterThanOrEqual(report.heap.theilSen);
      expect(report.classes.every((c) => c.live === c.expected)).toBe(true);
      // Every pool at quiescence held no more than the open objects' filters.
      for (const [pool, bytes] of Object.entries(report.series.pools))
        if (pool !== 'meta' && pool !== 'wal')
          expect(
            bytes.every((b) => b === 0),
            pool,
          ).toBe(true);
      expect(readFileSync(plot, 'utf8')).toMatch(/^<svg[\s\S]*PASS/);
    } finally {
      cleanup();
    }
  }, 300_000);

  // What each planted leak's failure must name: the thing, and where it was allocated.
  const expected: Record<PlantKind, RegExp[]> = {
    'checkpoint-buffer': [/pool 'checkpoint'/, /checkpoint\.data/, /allocated at/, /Checkpointer\.commit/],
    'replay-batch': [/replay/, /checkpoint\.meta/, /allocated at/, /loadOne/],
    'file-handle': [/open 'checkpoint' handle/, /ckp\/incr-/, /opened at/, /Checkpointer\.commit/],
    listener: [/process 'beforeExit' has 2 listener/],
    // One memtable per table: a, b, c and the index each has, the 'sql' scenario's two and the index
    // of sqln's UNIQUE column, and SQL's catalog table.
    'map-entry': [/MemLayer instance\(s\) live, expected 10/],
    timer: [/timer\(s\) left after close/, /setInterval/, /Checkpointer\.start/],
    'level-iterator': [/\(level\): TidemarkLevel/, /pool 'cache'/, /allocated at/, /Cursor\.next/, /pinned/],
    // Plain arrays kept at every checkpoint: nothing counts them but the heap's slope.
    'heap-growth': [/the heap grows: Theil–Sen \d+ B\/cycle \(95% CI \d+ to \d+\)/],
    'sql-query-memory': [
      /\(sql\)/,
      /pool 'query'/,
      /query: SELECT a\.k/,
      /allocated at/,
      /QueryMemory\.charge/,
    ],
  };

  test.each([...PLANT_KINDS])(
    'a planted leak (%s) fails the suite, naming what leaked and where',
    async (kind) => {
      const { dir, cleanup } = tempDir('tidemark-leakplant-');
      try {
        const { code, report } = await leakcheck([
          // The heap is judged on 100 cycles after the warm-up at least.
          ...(kind === 'heap-growth' ? ['--cycles', '130', '--warmup', '20'] : ['--cycles', '60']),
          '--plant',
          kind,
          '--plot',
          path.join(dir, 'p.svg'),
        ]);
        expect(code).toBe(1);
        expect(report.verdict).toBe('fail');
        expect(report.planted).toBe(kind);
        const message = report.failures.join('\n');
        for (const re of expected[kind]) expect(message).toMatch(re);
      } finally {
        cleanup();
      }
    },
    120_000,
  );
});

test('the harness silences warnings without wrapping process.emitWarning (it did, 13 times every 50 cycles)', () => {
  const before = process.emitWarning;
  for (let i = 0; i < 100; i++) expect(quietly(() => i)).toBe(i);
  expect(process.emitWarning).toBe(before);
});
