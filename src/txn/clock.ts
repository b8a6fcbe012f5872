/**
 * A hybrid logical clock. A timestamp is wall-clock milliseconds times 2048 plus a logical counter,
 * kept as a safe integer (good until the year 2109). `now()` is strictly increasing within a
 * process; `observe()` folds in timestamps read from disk at open, so timestamps stay monotonic
 * across restarts even when the wall clock moved back.
 */
export const LOGICAL_BITS = 11;
const SCALE = 2 ** LOGICAL_BITS;

export class HybridClock {
  private last = 0;

  constructor(private readonly wallMs: () => number = Date.now) {}

  now(): number {
    const physical = Math.floor(this.wallMs()) * SCALE;
    this.last = physical > this.last ? physical : this.last + 1;
    return this.last;
  }

  /** The last timestamp handed out or observed. */
  peek(): number {
    return this.last;
  }

  observe(ts: number): void {
    if (ts > this.last) this.last = ts;
  }

  /** The wall-clock milliseconds of a timestamp (for display). */
  static toMs(ts: number): number {
    return Math.floor(ts / SCALE);
  }
}
