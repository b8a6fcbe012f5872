/**
 * The process around the soak's database: the timers and process listeners it creates (none may be
 * left after a close), and the heap, settled and sampled.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as v8 from 'node:v8';
import type { Database } from '../api/database.js';
import { LeakError, TidemarkError } from '../errors.js';
import { Failure, indent, isFaultError } from './verdict.js';

/** Timers the process creates while a database is open, with where: for "no timer left behind". */
export class TimerWatch {
  private readonly live = new Map<unknown, string>();
  private installed = false;
  /** The real timer functions: the harness's own timers (its watchdog) use these, unwatched. */
  readonly saved = {
    setTimeout: globalThis.setTimeout,
    setInterval: globalThis.setInterval,
    clearTimeout: globalThis.clearTimeout,
    clearInterval: globalThis.clearInterval,
  };

  install(): void {
    if (this.installed) return;
    this.installed = true;
    const live = this.live;
    const saved = this.saved;
    const wrap = (kind: 'setTimeout' | 'setInterval') =>
      function (this: unknown, fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) {
        const stack = new Error().stack?.split('\n').slice(2, 8).join('\n') ?? '';
        const ref: { handle?: unknown } = {};
        const cb =
          kind === 'setTimeout'
            ? (...a: unknown[]) => {
                live.delete(ref.handle);
                fn(...a);
              }
            : fn;
        const handle = (saved[kind] as (...a: unknown[]) => unknown)(cb, ms, ...args);
        ref.handle = handle;
        live.set(handle, `${kind}(${ms ?? 0} ms)\n${stack}`);
        return handle;
      };
    const clear = (kind: 'clearTimeout' | 'clearInterval') => (handle: unknown) => {
      live.delete(handle);
      (saved[kind] as (h: unknown) => void)(handle);
    };
    Object.assign(globalThis, {
      setTimeout: wrap('setTimeout'),
      setInterval: wrap('setInterval'),
      clearTimeout: clear('clearTimeout'),
      clearInterval: clear('clearInterval'),
    });
  }

  uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    Object.assign(globalThis, this.saved);
  }

  /** Timers alive now, as "kind(ms)\nstack". */
  alive(): string[] {
    return [...this.live.values()];
  }

  forget(): void {
    this.live.clear();
  }
}

/**
 * Wait for the heap and finalizers to settle: full GCs with a turn between them (finalizers run in a
 * turn after the GC that found their targets), then one more, after which the caller samples the
 * heap in the same turn. (Plain gc(): on Node 20, gc() given an options object does not run a full
 * collection.)
 */
export async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new TidemarkError('INVALID_ARGUMENT', 'the leak check needs node --expose-gc');
  for (let i = 0; i < 2; i++) {
    gc();
    await nextTurn();
  }
  gc();
}

/**
 * V8 heap used, less the code spaces: compiled code grows for hundreds of cycles as functions are
 * optimized (about 1 KiB/cycle here), which is not data the engine keeps, and the engine generates
 * no code at run time.
 */
export function heapUsedWithoutCode(): number {
  let used = 0;
  for (const sp of v8.getHeapSpaceStatistics())
    if (!sp.space_name.startsWith('code')) used += sp.space_used_size;
  return used;
}

/**
 * Run `fn` with process warnings silenced (v8.queryObjects warns on every call), then put back the
 * very function that was there. (Putting back a bound copy instead wrapped it once more on every
 * call: the chain of wrappers was the soak's own 12.5 B/cycle heap slope.)
 */
export function quietly<T>(fn: () => T): T {
  const saved = process.emitWarning; // eslint-disable-line @typescript-eslint/unbound-method
  process.emitWarning = () => undefined;
  try {
    return fn();
  } finally {
    process.emitWarning = saved;
  }
}

function listenerCounts(): Map<string | symbol, number> {
  const m = new Map<string | symbol, number>();
  for (const e of process.eventNames()) m.set(e, process.listenerCount(e));
  return m;
}

/** Close (close() proves every pool at zero and no handle open), then no timer or listener left. */
export async function closeAndCheck(
  db: Database,
  timers: TimerWatch,
  baseline: { counts: Map<string | symbol, number> | undefined },
  /** After injected faults: a close that fails with IO (its checkpoint, a failed log) is no failure. */
  faulted = false,
): Promise<void> {
  try {
    await db.close();
  } catch (e) {
    if (e instanceof LeakError) throw new Failure(`close: ${e.message}`);
    if (!faulted || !isFaultError(e)) throw e;
  }
  const problems: string[] = [];
  const alive = timers.alive();
  if (alive.length > 0)
    problems.push(`${alive.length} timer(s) left after close:\n${alive.map((t) => indent(t, 4)).join('\n')}`);
  const now = listenerCounts();
  const listeners = (baseline.counts ??= now);
  for (const e of new Set([...listeners.keys(), ...now.keys()])) {
    const before = listeners.get(e) ?? 0;
    const after = now.get(e) ?? 0;
    // Fewer is no leak (a library's exit hook goes with its collected stream).
    if (after <= before) continue;
    const added = process
      .listeners(e as NodeJS.Signals)
      .slice(before)
      .map((f) => f.toString().slice(0, 80).replace(/\s+/g, ' '));
    problems.push(
      `process '${String(e)}' has ${after} listener(s) after this close, ${before} after the first: ${added.join('; ')}`,
    );
  }
  timers.forget();
  if (problems.length > 0) throw new Failure(`after close: ${problems.join('\n')}`);
}
