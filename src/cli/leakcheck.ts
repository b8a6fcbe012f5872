import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runSoak, type SoakProgress } from '../leakcheck/harness.js';
import { plotReport } from '../leakcheck/plot.js';
import { formatSoak } from '../leakcheck/report.js';
import type { PlantKind } from '../util/plant.js';

/** `tidemark leakcheck`: run the soak with a progress bar; 0 when it passes, 1 when it fails. */
export interface LeakcheckOptions {
  cycles?: number;
  minutes?: number;
  warmup?: number;
  dir?: string;
  plot: string;
  json?: boolean;
  plant?: PlantKind;
  /** true (the flag alone: the default rate) or a probability per operation. */
  faults?: boolean | number;
  seed?: number;
}

/** `--faults` without a rate: about one cycle in four meets a fault. */
export const DEFAULT_FAULT_RATE = 0.005;

export async function leakcheck(opts: LeakcheckOptions): Promise<number> {
  if ((globalThis as { gc?: unknown }).gc === undefined) {
    process.stderr.write(
      'tidemark leakcheck needs a forced GC: run it as `node --expose-gc $(which tidemark) leakcheck` (bin/tidemark.js does this for you)\n',
    );
    return 2;
  }
  const temp = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'tidemark-leakcheck-'));
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  const progress = (p: SoakProgress) => {
    const frac =
      p.of !== undefined
        ? p.cycle / p.of
        : p.plannedMs !== undefined
          ? Math.min(1, p.elapsedMs / p.plannedMs)
          : 0;
    const width = 30;
    const done = Math.round(frac * width);
    const bar = `[${'#'.repeat(done)}${'.'.repeat(width - done)}]`;
    const line = `${bar} cycle ${p.cycle}${p.of !== undefined ? `/${p.of}` : ''}  ${(p.elapsedMs / 1000).toFixed(0)} s  ${p.scenario.padEnd(16)} heap ${(p.heapUsed / 2 ** 20).toFixed(1)} MiB`;
    if (tty) process.stderr.write(`\r${line}`);
    else if (performance.now() - lastLine > 10_000 || (p.of !== undefined && p.cycle === p.of)) {
      lastLine = performance.now();
      process.stderr.write(`${line}\n`);
    }
  };
  try {
    const report = await runSoak({
      dir,
      ...(opts.cycles !== undefined ? { cycles: opts.cycles } : {}),
      ...(opts.minutes !== undefined ? { minutes: opts.minutes } : {}),
      ...(opts.warmup !== undefined ? { warmup: opts.warmup } : {}),
      ...(opts.plant !== undefined ? { plant: opts.plant } : {}),
      ...(opts.faults !== undefined && opts.faults !== false
        ? { faults: { seed: opts.seed ?? 1, rate: opts.faults === true ? DEFAULT_FAULT_RATE : opts.faults } }
        : {}),
      onProgress: progress,
    });
    if (tty) process.stderr.write('\n');
    writeFileSync(opts.plot, plotReport(report));
    process.stdout.write(
      (opts.json === true
        ? JSON.stringify({ ...report, plot: opts.plot }, null, 2)
        : formatSoak(report, opts.plot)) + '\n',
    );
    return report.verdict === 'pass' ? 0 : 1;
  } finally {
    if (temp) rmSync(dir, { recursive: true, force: true });
  }
}
