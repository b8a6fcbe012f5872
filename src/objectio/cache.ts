import { TidemarkError } from '../errors.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { SlabAllocator } from '../mem/slab.js';
import type { Allocator, Decoded } from './encoding.js';

/**
 * One chunk's place in the cache. Its owner (an object reader) keeps it in a slot and asks the cache
 * to pin it; once `gone` (evicted, dropped, or its load failed) the owner makes a new one.
 */
export class CacheEntry {
  refs = 0;
  bytes = 0;
  decoded: Decoded | undefined;
  loading: Promise<void> | undefined;
  readonly buffers: PooledBuffer[] = [];
  /** Out of the cache: its buffers go when the last pin is released. */
  gone = false;
  /** Pinned since the eviction hand last passed it (its second chance). */
  used = false;
  constructor(
    /** What the chunk is, for error messages: "object obj/…, row group 3, column 1". */
    readonly name: string,
  ) {}

  release(): void {
    for (const b of this.buffers.splice(0)) b.release();
    this.decoded = undefined;
  }
}

/** A pinned chunk: valid until `release()`. */
export interface CachePin {
  readonly decoded: Decoded;
  release(): void;
}

class Pin implements CachePin {
  private released = false;
  readonly decoded: Decoded;
  constructor(
    private readonly cache: BlockCache,
    private readonly entry: CacheEntry,
  ) {
    this.decoded = entry.decoded!;
  }

  release(): void {
    if (this.released) throw new TidemarkError('REFCOUNT', `cache pin of ${this.entry.name} released twice`);
    this.released = true;
    this.cache.unpin(this.entry);
  }
}

export interface CacheStats {
  bytes: number;
  entries: number;
  pinned: number;
  hits: number;
  misses: number;
  /** Chunks read ahead of a scan (counted apart from misses). */
  prefetches: number;
  evictions: number;
}

/**
 * The block cache: decoded column chunks in the `cache` pool, evicted within the pool's share of the
 * memory limit by the second-chance (clock) approximation of least-recently-used: a hit only sets a
 * flag, and the eviction hand gives a flagged entry one more round. A reader pins what it reads and
 * releases it when done; a pinned chunk is never evicted. Concurrent loads of one chunk share the
 * work. Entries live in their owners' slots (see ObjectReader), so a hit is an array index, not a
 * string key.
 */
export class BlockCache {
  /** Oldest first: the eviction hand's order. */
  private readonly entries = new Set<CacheEntry>();
  private bytes = 0;
  /** Loads started by `prefetch`, until they settle. */
  private readonly prefetching = new Set<Promise<void>>();
  private prefetches = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private closed = false;

  constructor(
    private readonly pool: MemoryPool,
    /** Bytes of unpinned entries kept at most (the pool's share, by default). */
    private readonly capacityBytes: number,
  ) {}

  /** A new, empty entry for a chunk; `pin` loads it. */
  entry(name: string): CacheEntry {
    return new CacheEntry(name);
  }

  /** Pin `e` if its chunk is loaded and still cached; undefined otherwise (then use `pin`). */
  tryPin(e: CacheEntry): CachePin | undefined {
    if (e.gone || e.decoded === undefined || e.loading !== undefined) return undefined;
    this.hits++;
    e.used = true;
    e.refs++;
    return new Pin(this, e);
  }

  /**
   * The decoded chunk of `e` if it is loaded and cached, without pinning it: valid only until the
   * caller next yields to the event loop or touches the cache (nothing is evicted in between, since
   * eviction happens only when a chunk is loaded or unpinned). For synchronous lookups.
   */
  peek(e: CacheEntry): Decoded | undefined {
    if (e.gone || e.decoded === undefined || e.loading !== undefined) return undefined;
    this.hits++;
    e.used = true;
    return e.decoded;
  }

  /**
   * Start loading `e` without pinning it, if it is neither cached nor loading: read-ahead. A pin
   * that arrives meanwhile shares the load. A failed read-ahead leaves nothing behind (the pin that
   * needs the chunk reads it again and reports the error).
   */
  prefetch(e: CacheEntry, load: (alloc: Allocator) => Promise<Decoded>): void {
    if (this.closed || e.gone || e.decoded !== undefined || e.loading !== undefined) return;
    this.prefetches++;
    this.entries.add(e);
    const loading = this.load(e, load).finally(() => (e.loading = undefined));
    e.loading = loading;
    const settled = loading.catch(() => undefined);
    this.prefetching.add(settled);
    void settled.finally(() => this.prefetching.delete(settled));
  }

  /** Whether a read-ahead is still loading. */
  prefetchInFlight(): boolean {
    return this.prefetching.size > 0;
  }

  /** Wait for every read-ahead in flight (before closing: their buffers must come back first). */
  async settle(): Promise<void> {
    while (this.prefetching.size > 0) await Promise.all([...this.prefetching]);
  }

  /** Pin `e`, loading it with `load` (which allocates through the allocator given) if needed. */
  async pin(e: CacheEntry, load: (alloc: Allocator) => Promise<Decoded>): Promise<CachePin> {
    if (this.closed) throw new TidemarkError('CLOSED', 'the block cache is closed');
    const hit = this.tryPin(e);
    if (hit !== undefined) return hit;
    if (e.gone)
      throw new TidemarkError('REFCOUNT', `cache entry for ${e.name} reused after it left the cache`);
    if (e.loading === undefined) {
      this.misses++;
      this.entries.add(e);
      e.loading = this.load(e, load).finally(() => (e.loading = undefined));
    }
    e.refs++; // hold it while it loads
    try {
      await e.loading;
    } catch (err) {
      e.refs--;
      throw err;
    }
    e.refs--;
    if (e.decoded === undefined) throw new TidemarkError('CLOSED', 'the block cache is closed');
    e.refs++;
    return new Pin(this, e);
  }

  private async load(e: CacheEntry, load: (alloc: Allocator) => Promise<Decoded>): Promise<void> {
    const pool = this.pool;
    const take = (bytes: number): PooledBuffer => {
      // Make room for what the pool will charge: the size class, not the bytes asked for.
      this.evictFor(SlabAllocator.capacityFor(bytes));
      const b = pool.allocateSync(bytes, 'cache.chunk');
      e.buffers.push(b);
      e.bytes += b.capacity;
      return b;
    };
    const alloc: Allocator = {
      f64: (n) => take(n * 8).float64(0, n),
      i64: (n) => take(n * 8).bigInt64(0, n),
      i32: (n) => take(n * 4).int32(0, n),
      u8: (n) => take(Math.max(n, 1)).bytes.subarray(0, n),
      u32: (n) => take(n * 4).uint32(0, n),
    };
    try {
      e.decoded = await load(alloc);
      this.bytes += e.bytes;
      if (this.closed || e.gone) {
        // Dropped while loading: freed now unless a pin is waiting (then at its release).
        this.entries.delete(e);
        e.gone = true;
        if (e.refs === 0) this.free(e);
      }
    } catch (err) {
      this.entries.delete(e);
      e.gone = true;
      e.release();
      e.bytes = 0;
      throw err;
    }
  }

  /** Called by a pin's release. */
  unpin(e: CacheEntry): void {
    e.refs--;
    if (e.refs !== 0) return;
    if (e.gone) this.free(e);
    else this.evictFor(0);
  }

  /** Evict unpinned entries, oldest first (with a second chance for used ones), until `bytes` more fit. */
  private evictFor(bytes: number): void {
    if (this.bytes + bytes <= this.capacityBytes && bytes <= this.pool.available()) return;
    const fits = () => this.bytes + bytes <= this.capacityBytes && bytes <= this.pool.available();
    // Each entry is passed at most twice: once to clear its flag, once to evict it.
    let budget = 2 * this.entries.size;
    for (const e of this.entries) {
      if (fits() || budget-- <= 0) break;
      if (e.refs > 0 || e.decoded === undefined) continue;
      if (e.used) {
        e.used = false;
        this.entries.delete(e);
        this.entries.add(e);
        continue;
      }
      this.entries.delete(e);
      e.gone = true;
      this.free(e);
      this.evictions++;
    }
  }

  private free(e: CacheEntry): void {
    this.bytes -= e.bytes;
    e.bytes = 0;
    e.release();
  }

  /** Take `e` out of the cache (its object is going away); it is freed once unpinned. */
  drop(e: CacheEntry): void {
    this.entries.delete(e);
    e.gone = true;
    if (e.refs === 0 && e.loading === undefined) this.free(e);
  }

  stats(): CacheStats {
    let pinned = 0;
    for (const e of this.entries) if (e.refs > 0) pinned++;
    return {
      bytes: this.bytes,
      entries: this.entries.size,
      pinned,
      hits: this.hits,
      misses: this.misses,
      prefetches: this.prefetches,
      evictions: this.evictions,
    };
  }

  /** Evict every unpinned chunk now (pinned ones stay); returns how many went. */
  evictAll(): number {
    let n = 0;
    for (const e of [...this.entries]) {
      if (e.refs > 0 || e.decoded === undefined) continue;
      this.entries.delete(e);
      e.gone = true;
      this.free(e);
      this.evictions++;
      n++;
    }
    return n;
  }

  /** Release every unpinned chunk; pinned ones go when their readers release them. */
  close(): void {
    this.closed = true;
    for (const e of [...this.entries]) if (e.decoded !== undefined) this.drop(e);
  }
}
