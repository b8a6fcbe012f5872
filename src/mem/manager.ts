import { LeakError, TidemarkError, invalidArgument, type LeakHolder } from '../errors.js';
import {
  LEAK_DETECTION_LEVELS,
  LeakDetector,
  DEFAULT_SAMPLING_INTERVAL,
  type LeakDetectionLevel,
  type LeakReport,
} from './leak_detector.js';
import { MemoryPool, type PoolHost, type PoolStats } from './pool.js';
import { SlabAllocator } from './slab.js';
import type { WaitOptions } from './types.js';

/** The pools every database has, one per subsystem. */
export const POOL_NAMES = [
  'wal',
  'memtable',
  'checkpoint',
  'replay',
  'cache',
  'merge',
  'io',
  'meta',
  'query',
] as const;
export type PoolName = (typeof POOL_NAMES)[number];

export const DEFAULT_LIMIT_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_WAIT_TIMEOUT_MS = 30_000;
/** Waiters beyond this many are refused at once: a queue must have a bound. */
const MAX_WAITERS = 100_000;

export interface MemoryOptions {
  /** The global limit on pooled bytes. Default 1 GiB. */
  limitBytes?: number;
  /** Default 'simple'. */
  leakDetection?: LeakDetectionLevel;
  /** At 'simple' and 'advanced', one handle in this many is tracked. Default 128. */
  samplingInterval?: number;
  /** How long an allocation waits for memory by default before MEMORY_LIMIT. Default 30 s. */
  waitTimeoutMs?: number;
  /** Per-pool shares of the limit, in bytes (for example the block cache's). */
  poolMaxBytes?: Partial<Record<string, number>>;
}

export interface MemoryStats {
  bytes: number;
  highWaterBytes: number;
  limitBytes: number;
  /** Slab memory held but not handed out (bounded: at most one empty chunk per size class). */
  retainedFreeBytes: number;
  /**
   * Memory the allocator holds in ArrayBuffers: its slab chunks (slots in use or free) and large
   * buffers. Unlike `bytes`, no reservations (which account JavaScript objects on the V8 heap).
   */
  bufferBytes: number;
  /** Slab slots lost to GC-detected leaks, never reused. */
  quarantinedBytes: number;
  waiters: number;
  leakDetection: LeakDetectionLevel;
  pools: Record<string, PoolStats>;
}

interface Waiter {
  pool: MemoryPool;
  bytes: number;
  resolve: () => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * The memory manager of one database: a global limit, named pools that share it, and the leak
 * detector. The limit is never exceeded: an allocation past it waits (FIFO) or fails with
 * MEMORY_LIMIT.
 */
export class MemoryManager implements PoolHost {
  readonly limitBytes: number;
  readonly waitTimeoutMs: number;
  /** @internal */ readonly detector: LeakDetector;
  private readonly slabs = new SlabAllocator();
  private readonly poolMap = new Map<string, MemoryPool>();
  private bytes = 0;
  private highWaterBytes = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(options: MemoryOptions = {}) {
    const limit = options.limitBytes ?? DEFAULT_LIMIT_BYTES;
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit <= 0) {
      throw invalidArgument(`memory.limitBytes must be a positive integer, got ${String(limit)}`);
    }
    const level = options.leakDetection ?? 'simple';
    if (!LEAK_DETECTION_LEVELS.includes(level)) {
      throw invalidArgument(
        `memory.leakDetection must be one of ${LEAK_DETECTION_LEVELS.join(', ')}, got ${String(level)}`,
      );
    }
    const sampling = options.samplingInterval ?? DEFAULT_SAMPLING_INTERVAL;
    if (typeof sampling !== 'number' || !Number.isInteger(sampling) || sampling < 1) {
      throw invalidArgument(`memory.samplingInterval must be an integer >= 1, got ${String(sampling)}`);
    }
    const wait = options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
    if (typeof wait !== 'number' || !(wait >= 0)) {
      throw invalidArgument(`memory.waitTimeoutMs must be >= 0, got ${String(wait)}`);
    }
    this.limitBytes = limit;
    this.waitTimeoutMs = wait;
    this.detector = new LeakDetector(level, sampling);
    for (const name of POOL_NAMES) this.createPool(name, options.poolMaxBytes?.[name]);
    for (const [name, max] of Object.entries(options.poolMaxBytes ?? {})) {
      if (!this.poolMap.has(name)) this.createPool(name, max);
    }
  }

  /** Bytes handed out now, across pools. */
  get bytesInUse(): number {
    return this.bytes;
  }

  get leakDetection(): LeakDetectionLevel {
    return this.detector.level;
  }

  /** The pool of a subsystem. Unknown names are an INVALID_ARGUMENT: pools are declared. */
  pool(name: string): MemoryPool {
    const p = this.poolMap.get(name);
    if (p === undefined) {
      throw invalidArgument(
        `unknown memory pool ${JSON.stringify(name)}; pools: ${[...this.poolMap.keys()].join(', ')}`,
      );
    }
    return p;
  }

  /** Declare an additional pool (an extension's subsystem). */
  createPool(name: string, maxBytes?: number): MemoryPool {
    if (typeof name !== 'string' || !/^[a-z][a-z0-9_]{0,31}$/.test(name)) {
      throw invalidArgument(
        `pool names are 1-32 lowercase letters, digits and _; got ${JSON.stringify(name)}`,
      );
    }
    if (this.poolMap.has(name)) throw invalidArgument(`memory pool ${name} exists already`);
    const max = maxBytes ?? Infinity;
    if (typeof max !== 'number' || !(max > 0)) {
      throw invalidArgument(`maxBytes of pool ${name} must be positive, got ${String(max)}`);
    }
    const p = new MemoryPool(this, name, max, this.slabs);
    this.poolMap.set(name, p);
    return p;
  }

  pools(): MemoryPool[] {
    return [...this.poolMap.values()];
  }

  stats(): MemoryStats {
    const pools: Record<string, PoolStats> = {};
    for (const [name, p] of this.poolMap) pools[name] = p.stats();
    const slab = this.slabs.stats();
    return {
      bytes: this.bytes,
      highWaterBytes: this.highWaterBytes,
      limitBytes: this.limitBytes,
      retainedFreeBytes: slab.freeBytes,
      bufferBytes: slab.slabBytes + slab.largeBytes,
      quarantinedBytes: slab.quarantinedBytes,
      waiters: this.waiters.length,
      leakDetection: this.detector.level,
      pools,
    };
  }

  /** Called for each handle the GC collected without a release (sampled levels). */
  onLeak(listener: (report: LeakReport) => void): () => void {
    return this.detector.onLeak(listener);
  }

  /** Every live holder in every pool. */
  holders(): LeakHolder[] {
    return this.pools().flatMap((p) => p.holders());
  }

  /** Throw a LeakError if any pool holds live handles. */
  checkLeaks(what = 'memory'): void {
    const holders = this.holders();
    if (holders.length > 0) throw new LeakError(what, holders);
  }

  /**
   * Close every pool. Waiters are failed with CLOSED. Throws a LeakError naming every live holder
   * if anything is still held; the manager is closed all the same.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.poolMap.values()) p._markClosed();
    const err = new TidemarkError('CLOSED', 'memory manager closed while waiting for memory');
    for (const w of this.waiters.splice(0)) this.settle(w, err);
    this.checkLeaks('memory pools at close');
  }

  // ---- internal, used by MemoryPool ----

  /** @internal Charge `bytes` to `pool` if it fits the limit and the pool's share. */
  _tryCharge(pool: MemoryPool, bytes: number): boolean {
    pool._checkOpen();
    const total = this.bytes + bytes;
    if (total > this.limitBytes || pool._overShare(bytes)) return false;
    this.bytes = total;
    if (total > this.highWaterBytes) this.highWaterBytes = total;
    pool._charged(bytes);
    return true;
  }

  /** @internal */
  _credit(pool: MemoryPool, bytes: number): void {
    this.bytes -= bytes;
    pool._credited(bytes);
    if (this.waiters.length > 0) this._wake();
  }

  /** @internal */
  _limitError(pool: MemoryPool, bytes: number): TidemarkError {
    const share = pool.maxBytes === Infinity ? '' : `, pool share ${pool.maxBytes}`;
    return new TidemarkError(
      'MEMORY_LIMIT',
      `memory limit reached: ${bytes} bytes for pool ${pool.name} do not fit ` +
        `(in use ${this.bytes} of ${this.limitBytes}; pool ${pool.name} holds ${pool.bytesInUse}${share})`,
      { details: { pool: pool.name, bytes, inUse: this.bytes, limitBytes: this.limitBytes } },
    );
  }

  /** @internal Wait until `bytes` are charged to `pool`, or fail. */
  _wait(pool: MemoryPool, bytes: number, options: WaitOptions): Promise<void> {
    if (bytes > this.limitBytes || bytes > pool.maxBytes) {
      // It can never fit: failing now beats waiting for a timeout.
      return Promise.reject(this._limitError(pool, bytes));
    }
    const timeoutMs = options.timeoutMs ?? this.waitTimeoutMs;
    if (timeoutMs <= 0 || this.waiters.length >= MAX_WAITERS) {
      return Promise.reject(this._limitError(pool, bytes));
    }
    // An abort rejects with the caller's own reason, as every AbortSignal-aware API does.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        pool,
        bytes,
        resolve,
        reject,
        timer: undefined,
        signal: options.signal,
        onAbort: undefined,
      };
      if (Number.isFinite(timeoutMs)) {
        w.timer = setTimeout(() => {
          this.removeWaiter(w);
          const e = this._limitError(pool, bytes);
          e.message += ` after waiting ${timeoutMs} ms`;
          this.settle(w, e);
        }, timeoutMs);
      }
      if (options.signal !== undefined) {
        const signal = options.signal;
        w.onAbort = () => {
          this.removeWaiter(w);
          this.settle(w, signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  /** @internal Grant waiters in order while memory allows. */
  _wake(): void {
    const ws = this.waiters;
    let i = 0;
    while (i < ws.length) {
      const w = ws[i]!;
      if (this.bytes + w.bytes > this.limitBytes) break; // FIFO on the global limit: no overtaking
      if (w.pool._overShare(w.bytes)) {
        i++; // blocked by its own pool's share only: let other pools' waiters go
        continue;
      }
      ws.splice(i, 1);
      this._tryCharge(w.pool, w.bytes);
      this.settle(w, undefined);
    }
  }

  private removeWaiter(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private settle(w: Waiter, error: unknown): void {
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
    if (error === undefined) w.resolve();
    else w.reject(error);
  }
}
