import type { Key, KeyCompare } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { crc32 } from '../util/crc.js';
import { plantedBug } from '../util/plant.js';
import { bloomMayContain } from './bloom.js';
import type { BlockCache, CacheEntry, CachePin } from './cache.js';
import { decodeColumn, type Allocator, type Decoded } from './encoding.js';
import type { ObjectFiles } from './files.js';
import {
  checkHeader,
  decodeFooter,
  HEADER_BYTES,
  objectPath,
  parseTrailer,
  storedColumns,
  TRAILER_BYTES,
  type ObjectMeta,
} from './format.js';

/**
 * An open object: its footer (decoded once, kept in memory while the object is live) and its bloom
 * filter (in a `cache`-pool buffer), and access to its column chunks through the block cache. Every
 * chunk is checked against its checksum when read: a mismatch is CORRUPTION naming the object.
 */
export class ObjectReader {
  /** This object's chunks in the block cache, by row group × stored column. */
  private readonly slots: (CacheEntry | undefined)[] = [];
  private readonly columns: number;

  private constructor(
    readonly meta: ObjectMeta,
    readonly path: string,
    private readonly bloom: PooledBuffer,
    private readonly files: ObjectFiles,
    private readonly cache: BlockCache,
    private readonly io: MemoryPool,
  ) {
    this.columns = storedColumns(meta.kind, meta.schema).length;
  }

  static async open(params: {
    id: number;
    files: ObjectFiles;
    cache: BlockCache;
    io: MemoryPool;
    metaPool: MemoryPool;
  }): Promise<ObjectReader> {
    const { id, files, io } = params;
    const path = objectPath(id);
    const size = await files.size(path);
    const head = await io.allocate(Math.max(HEADER_BYTES, TRAILER_BYTES), 'object.open');
    let footerBuf: PooledBuffer | undefined;
    let bloom: PooledBuffer | undefined;
    try {
      if (size < HEADER_BYTES + TRAILER_BYTES) {
        throw new TidemarkError(
          'CORRUPTION',
          `object ${path} is corrupt: file of ${size} bytes is too short`,
          { details: { file: path } },
        );
      }
      await readExactly(files, path, head.bytes.subarray(0, HEADER_BYTES), 0);
      checkHeader(head.bytes, path);
      await readExactly(files, path, head.bytes.subarray(0, TRAILER_BYTES), size - TRAILER_BYTES);
      const t = parseTrailer(head.bytes, size, path);
      footerBuf = await io.allocate(t.footerLength, 'object.open');
      await readExactly(files, path, footerBuf.bytes, t.footerOffset);
      const meta = decodeFooter(footerBuf.bytes, t.crc, t.footerOffset, size, path);
      if (meta.id !== id)
        throw new TidemarkError('CORRUPTION', `object ${path} says it is object ${meta.id}`, {
          details: { file: path },
        });
      bloom = await params.metaPool.allocate(meta.bloomLength, 'object.bloom');
      await readExactly(files, path, bloom.bytes, meta.bloomOffset);
      if (crc32(bloom.bytes) !== meta.bloomCrc)
        throw new TidemarkError(
          'CORRUPTION',
          `object ${path} is corrupt: checksum mismatch in its bloom filter`,
          {
            details: { file: path, offset: meta.bloomOffset },
          },
        );
      const r = new ObjectReader(meta, path, bloom, files, params.cache, io);
      bloom = undefined;
      return r;
    } finally {
      head.release();
      footerBuf?.release();
      bloom?.release();
    }
  }

  get id(): number {
    return this.meta.id;
  }

  /** Bytes of the bloom filter's buffer (as its pool counts them). */
  get bloomBytes(): number {
    return this.bloom.capacity;
  }

  /** False when the object certainly holds no version of `key`. */
  mayContain(key: Key, cmp: KeyCompare): boolean {
    const m = this.meta;
    if (cmp(key, m.minKey) < 0 || cmp(key, m.maxKey) > 0) return false;
    return bloomMayContain(this.bloom.bytes, key);
  }

  /** The first row group whose key range may hold keys >= `key` (rowGroups.length if none). */
  groupFrom(key: Key | undefined, cmp: KeyCompare): number {
    const groups = this.meta.rowGroups;
    if (key === undefined) return 0;
    let lo = 0;
    let hi = groups.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp(groups[mid]!.maxKey, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Pin column `col` of row group `g` if it is in the cache (no I/O); undefined otherwise. */
  tryPinChunk(g: number, col: number): CachePin | undefined {
    const e = this.slots[g * this.columns + col];
    return e === undefined ? undefined : this.cache.tryPin(e);
  }

  /** Column `col` of row group `g` if cached, unpinned: see BlockCache.peek (synchronous use only). */
  peekChunk(g: number, col: number): Decoded | undefined {
    const e = this.slots[g * this.columns + col];
    return e === undefined ? undefined : this.cache.peek(e);
  }

  /** The cache entry of column `col` of row group `g` (a new one if it left the cache). */
  private entry(g: number, col: number): CacheEntry {
    const slot = g * this.columns + col;
    let e = this.slots[slot];
    if (e === undefined || e.gone) {
      e = this.cache.entry(`object ${this.path} row group ${g} column ${col}`);
      this.slots[slot] = e;
    }
    return e;
  }

  /** Pin column `col` (a stored-column index) of row group `g`, reading and decoding it if needed. */
  pinChunk(g: number, col: number): Promise<CachePin> {
    return this.cache.pin(this.entry(g, col), this.loader(g, col));
  }

  /** Start reading column `col` of row group `g` into the cache, if it is not there (read-ahead). */
  prefetchChunk(g: number, col: number): void {
    if (g >= this.meta.rowGroups.length) return;
    this.cache.prefetch(this.entry(g, col), this.loader(g, col));
  }

  /** Reads, checks and decodes one chunk. */
  private loader(g: number, col: number): (alloc: Allocator) => Promise<Decoded> {
    const chunk = this.meta.rowGroups[g]!.chunks[col]!;
    const stored = storedColumns(this.meta.kind, this.meta.schema)[col]!;
    const physical = stored.physical;
    const unsigned = stored.def?.storage === 'uint64';
    return async (alloc) => {
      const raw = await this.io.allocate(chunk.length, 'object.read');
      try {
        await readExactly(this.files, this.path, raw.bytes, chunk.offset);
        if (crc32(raw.bytes) !== chunk.crc && !plantedBug('skip-chunk-crc')) {
          throw new TidemarkError(
            'CORRUPTION',
            `object ${this.path} is corrupt: checksum mismatch in column ${col} of row group ${g}`,
            {
              details: { file: this.path, offset: chunk.offset, rowGroup: g, column: col },
            },
          );
        }
        const d = decodeColumn(
          raw.bytes,
          physical,
          alloc,
          `object ${this.path} row group ${g} column ${col}`,
          unsigned,
        );
        if (d.n !== this.meta.rowGroups[g]!.rows) {
          throw new TidemarkError(
            'CORRUPTION',
            `object ${this.path}: column ${col} of row group ${g} has ${d.n} values`,
            { details: { file: this.path } },
          );
        }
        return d;
      } finally {
        raw.release();
      }
    };
  }

  /** Release what the reader holds (the bloom filter); cached chunks go with `dropFromCache`. */
  close(): void {
    this.bloom.release();
  }

  /** Take this object's chunks out of the cache (they are freed as their pins are released). */
  dropFromCache(): void {
    for (const e of this.slots) if (e !== undefined) this.cache.drop(e);
    this.slots.length = 0;
  }
}

async function readExactly(
  files: ObjectFiles,
  path: string,
  dst: Uint8Array,
  position: number,
): Promise<void> {
  const n = await files.read(path, dst, position);
  if (n !== dst.length) {
    throw new TidemarkError(
      'CORRUPTION',
      `object ${path} is corrupt: ${n} of ${dst.length} bytes at offset ${position} (truncated?)`,
      {
        details: { file: path, offset: position },
      },
    );
  }
}
