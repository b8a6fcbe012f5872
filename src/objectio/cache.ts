import { TidemarkError } from '../errors.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { SlabAllocator } from '../mem/slab.js';
import type { Allocator, Decoded } from './encoding.js';

/** A decoded chunk held by the cache: its arrays live in `cache`-pool buffers. */
class Entry {
  refs = 0;
  bytes = 0;
  decoded: Decoded | undefined;
  loading: Promise<void> | undefined;
  readonly buffers: PooledBuffer[] = [];
  /** Dropped from the cache (object deleted, or evicted): released when the last pin goes. */
  detached = false;
  constructor(readonly key: string) {}

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

export interface CacheStats {
  bytes: number;
  entries: number;
  pinned: number;
  hits: number;
  misses: number;
  evictions: number;
}

/**
 * The block cache: decoded column chunks in the `cache` pool, least recently used first out within
 * the pool's share of the memory limit. A reader pins what it reads (`pin`) and releases it when
 * done; a pinned chunk is never evicted. Concurrent loads of one chunk share the work.
 */
export class BlockCache {
  private readonly map = new Map<string, Entry>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private closed = false;

  constructor(
    private readonly pool: MemoryPool,
    /** Bytes of unpinned entries kept at most (the pool's share, by default). */
    private readonly capacityBytes: number,
  ) {}

  /** Pin the chunk `key`, loading it with `load` (which allocates through the allocator given) if absent. */
  async pin(key: string, load: (alloc: Allocator) => Promise<Decoded>): Promise<CachePin> {
    if (this.closed) throw new TidemarkError('CLOSED', 'the block cache is closed');
    let e = this.map.get(key);
    if (e !== undefined && e.decoded !== undefined) {
      this.hits++;
      // Most recently used last.
      this.map.delete(key);
      this.map.set(key, e);
      return this.makePin(e);
    }
    if (e === undefined) {
      this.misses++;
      e = new Entry(key);
      this.map.set(key, e);
      const entry = e;
      entry.loading = this.load(entry, load).finally(() => (entry.loading = undefined));
    }
    const entry = e;
    entry.refs++; // hold it while it loads
    try {
      await entry.loading;
    } catch (err) {
      entry.refs--;
      throw err;
    }
    entry.refs--;
    if (entry.decoded === undefined) throw new TidemarkError('CLOSED', 'the block cache is closed');
    return this.makePin(entry);
  }

  private async load(e: Entry, load: (alloc: Allocator) => Promise<Decoded>): Promise<void> {
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
      i32: (n) => take(n * 4).int32(0, n),
      u8: (n) => take(Math.max(n, 1)).bytes.subarray(0, n),
      u32: (n) => take(n * 4).uint32(0, n),
    };
    try {
      e.decoded = await load(alloc);
      this.bytes += e.bytes;
      if (this.closed || e.detached) this.drop(e);
    } catch (err) {
      this.map.delete(e.key);
      e.release();
      throw err;
    }
  }

  private makePin(e: Entry): CachePin {
    e.refs++;
    let released = false;
    return {
      decoded: e.decoded!,
      release: () => {
        if (released) throw new TidemarkError('REFCOUNT', `cache pin of ${e.key} released twice`);
        released = true;
        e.refs--;
        if (e.refs === 0 && e.detached) this.free(e);
        else if (e.refs === 0) this.evictFor(0);
      },
    };
  }

  /** Evict unpinned entries, oldest first, until `bytes` more fit the capacity and the pool. */
  private evictFor(bytes: number): void {
    const fits = () => this.bytes + bytes <= this.capacityBytes && bytes <= this.pool.available();
    if (fits()) return;
    for (const e of this.map.values()) {
      if (fits()) break;
      if (e.refs > 0 || e.decoded === undefined) continue;
      this.map.delete(e.key);
      this.free(e);
      this.evictions++;
    }
  }

  private free(e: Entry): void {
    this.bytes -= e.bytes;
    e.bytes = 0;
    e.release();
  }

  private drop(e: Entry): void {
    if (this.map.get(e.key) === e) this.map.delete(e.key);
    e.detached = true;
    if (e.refs === 0) this.free(e);
  }

  /** Drop every chunk of an object whose key starts with `prefix` (the object is going away). */
  dropPrefix(prefix: string): void {
    for (const e of [...this.map.values()])
      if (e.key.startsWith(prefix) && e.decoded !== undefined) this.drop(e);
  }

  stats(): CacheStats {
    let pinned = 0;
    for (const e of this.map.values()) if (e.refs > 0) pinned++;
    return {
      bytes: this.bytes,
      entries: this.map.size,
      pinned,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
    };
  }

  /** Release every unpinned chunk; pinned ones go when their readers release them. */
  close(): void {
    this.closed = true;
    for (const e of [...this.map.values()]) if (e.decoded !== undefined) this.drop(e);
  }
}
