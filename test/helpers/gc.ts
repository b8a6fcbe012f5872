import { setImmediate as tick } from 'node:timers/promises';

const gcFn = (globalThis as { gc?: () => void }).gc;

export function forceGc(): void {
  if (gcFn === undefined) throw new Error('run the tests with --expose-gc (vitest.config.ts sets it)');
  gcFn();
}

/**
 * Collect until `cond` holds, giving FinalizationRegistry callbacks the task turns they need (they
 * never run inside gc() itself). Bounded: fails the caller's expectation instead of hanging.
 */
export async function gcUntil(cond: () => boolean, rounds = 30): Promise<boolean> {
  for (let i = 0; i < rounds; i++) {
    forceGc();
    await tick();
    await tick();
    if (cond()) return true;
  }
  return cond();
}

/** Settle the heap before a sample: two collections with a task turn after each. */
export async function settle(): Promise<void> {
  forceGc();
  await tick();
  forceGc();
  await tick();
}
