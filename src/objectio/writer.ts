import type { Key, KeyCompare, TableSchema } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import type { FileHandle, FileService } from '../fileservice/types.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { ByteWriter } from '../util/bytes.js';
import { crc32 } from '../util/crc.js';
import { bloomAdd, bloomBytes } from './bloom.js';
import { encodeColumn, encodedBound, type Decoded } from './encoding.js';
import { doubleCeil, doubleFloor } from '../util/decimal.js';
import {
  encodeFooter,
  encodeHeader,
  encodeTrailer,
  HEADER_BYTES,
  objectPath,
  storedColumns,
  type ChunkMeta,
  type ObjectKind,
  type ObjectMeta,
  type RowGroupMeta,
} from './format.js';

/**
 * Rows per row group by default: 16,000 rather than 16,384, so that a group's float64 column copied
 * out for a batch (128,000 bytes) stays under glibc malloc's 128 KiB mmap threshold. Buffers at or
 * above it are mmapped and unmapped every time, and the page faults of touching fresh pages cost
 * more than the copy (measured: a 10M-row SUM through scanBatches took 2-3x longer).
 */
export const DEFAULT_ROW_GROUP_ROWS = 16_000;
/**
 * About this many bytes of values per row group at most: wide rows get fewer rows a group, so that a
 * decoded group (what a reader pins) stays small next to the memory limit.
 */
export const ROW_GROUP_BYTES_MAX = 1024 * 1024;

/**
 * Writes one object file, a row group at a time, in bounded memory: each column chunk is encoded
 * into a buffer from the `io` pool, checksummed, written and released before the next. Rows must come
 * sorted by (key ascending, commit timestamp descending); the writer checks it. `finish` writes the
 * bloom filter, the footer and the trailer, then fdatasyncs and closes: the file is durable, but
 * nothing refers to it until the caller publishes it. `abort` closes and deletes it. Row groups are
 * cut only between keys, so that every version of a key is in one group.
 */
export class ObjectWriter {
  private pos = HEADER_BYTES;
  private rows = 0;
  private readonly groups: RowGroupMeta[] = [];
  private minTs = Infinity;
  private maxTs = -Infinity;
  private lastKey: Key | undefined;
  private lastTs = Infinity;
  private singleVersion = true;
  private readonly bloom: PooledBuffer;
  private done = false;

  private constructor(
    private readonly fs: FileService,
    private readonly handle: FileHandle,
    readonly id: number,
    readonly kind: ObjectKind,
    private readonly tableId: number,
    private readonly schema: TableSchema,
    private readonly compare: KeyCompare,
    private readonly pool: MemoryPool,
    bloom: PooledBuffer,
  ) {
    this.bloom = bloom;
  }

  get path(): string {
    return objectPath(this.id);
  }

  static async create(params: {
    fs: FileService;
    id: number;
    kind: ObjectKind;
    tableId: number;
    schema: TableSchema;
    compare: KeyCompare;
    pool: MemoryPool;
    expectedKeys: number;
  }): Promise<ObjectWriter> {
    const { fs, pool } = params;
    const bloom = await pool.allocate(bloomBytes(params.expectedKeys), 'object.bloom');
    bloom.bytes.fill(0);
    let handle: FileHandle;
    try {
      handle = await fs.open(objectPath(params.id), 'create-new', 'object');
    } catch (e) {
      bloom.release();
      throw e;
    }
    const w = new ObjectWriter(
      fs,
      handle,
      params.id,
      params.kind,
      params.tableId,
      params.schema,
      params.compare,
      pool,
      bloom,
    );
    try {
      await handle.write(encodeHeader(params.kind), 0);
    } catch (e) {
      await w.abort();
      throw e;
    }
    return w;
  }

  /**
   * Append a row group: one decoded column per stored column (user columns or the key, then the
   * commit timestamps), `keys[i]` the primary key of row i.
   */
  async addRowGroup(cols: Decoded[], keys: readonly Key[]): Promise<void> {
    if (this.done) throw new TidemarkError('CLOSED', `object ${this.path} is finished`);
    const n = keys.length;
    if (n === 0) return;
    const stored = storedColumns(this.kind, this.schema);
    if (cols.length !== stored.length)
      throw new TidemarkError(
        'INVALID_ARGUMENT',
        `row group has ${cols.length} columns, the object stores ${stored.length}`,
      );
    const ts = cols[cols.length - 1]!.f64!;
    // Row groups are cut only between keys: a key's versions are all in one group.
    if (this.lastKey !== undefined && this.compare(keys[0]!, this.lastKey) === 0) {
      throw new TidemarkError(
        'INVALID_ARGUMENT',
        `object ${this.path}: a row group may not start with the last key of the one before`,
      );
    }
    for (let i = 0; i < n; i++) {
      const k = keys[i]!;
      const t = ts[i]!;
      const c = this.lastKey === undefined ? 1 : this.compare(k, this.lastKey);
      // Sorted by key, and within a key by commit timestamp, newest first.
      if (c < 0 || (c === 0 && t >= this.lastTs)) {
        throw new TidemarkError(
          'INVALID_ARGUMENT',
          `object ${this.path}: rows out of order at row ${this.rows + i}`,
        );
      }
      if (c === 0) this.singleVersion = false;
      else bloomAdd(this.bloom.bytes, k);
      this.lastKey = k;
      this.lastTs = t;
      if (t < this.minTs) this.minTs = t;
      if (t > this.maxTs) this.maxTs = t;
    }
    const chunks: ChunkMeta[] = [];
    for (const [c, col] of cols.entries()) {
      if (col.n !== n)
        throw new TidemarkError('INVALID_ARGUMENT', `a column of ${col.n} values in a row group of ${n}`);
      chunks.push(await this.writeChunk(col, stored[c]!.def?.storage === 'uint64'));
    }
    this.groups.push({ firstRow: this.rows, rows: n, minKey: keys[0]!, maxKey: keys[n - 1]!, chunks });
    this.rows += n;
  }

  private async writeChunk(col: Decoded, unsigned: boolean): Promise<ChunkMeta> {
    const buf = await this.pool.allocate(encodedBound(col), 'object.encode');
    try {
      const w = new ByteWriter(buf.bytes);
      const encoding = encodeColumn(col, w);
      const bytes = buf.bytes.subarray(0, w.pos);
      await this.handle.write(bytes, this.pos);
      const meta: ChunkMeta = {
        offset: this.pos,
        length: bytes.length,
        crc: crc32(bytes),
        encoding,
        ...zone(col, unsigned),
      };
      this.pos += bytes.length;
      return meta;
    } finally {
      buf.release();
    }
  }

  /** Write the bloom filter, footer and trailer; make the file durable; close it. */
  async finish(): Promise<ObjectMeta> {
    if (this.done) throw new TidemarkError('CLOSED', `object ${this.path} is finished`);
    this.done = true;
    try {
      if (this.rows === 0) throw new TidemarkError('INVALID_ARGUMENT', `object ${this.path} has no rows`);
      const bloomOffset = this.pos;
      await this.handle.write(this.bloom.bytes, this.pos);
      this.pos += this.bloom.length;
      const meta: Omit<ObjectMeta, 'fileBytes'> = {
        id: this.id,
        kind: this.kind,
        tableId: this.tableId,
        schema: this.schema,
        rows: this.rows,
        minKey: this.groups[0]!.minKey,
        maxKey: this.groups[this.groups.length - 1]!.maxKey,
        minTs: this.minTs,
        maxTs: this.maxTs,
        singleVersion: this.singleVersion,
        rowGroups: this.groups,
        bloomOffset,
        bloomLength: this.bloom.length,
        bloomCrc: crc32(this.bloom.bytes),
      };
      const footer = encodeFooter(meta);
      await this.handle.write(footer, this.pos);
      this.pos += footer.length;
      await this.handle.write(encodeTrailer(footer), this.pos);
      this.pos += 16;
      await this.handle.datasync();
      await this.handle.close();
      return { ...meta, fileBytes: this.pos };
    } catch (e) {
      await this.handle.close().catch(() => undefined);
      await this.fs.delete(this.path).catch(() => undefined);
      throw e;
    } finally {
      this.bloom.release();
    }
  }

  /**
   * Give up: an unfinished file is closed and deleted (it was never an object). A finished one is
   * left alone: it belongs to whoever allocated its id (the storage layer's file registry).
   */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.bloom.release();
    await this.handle.close().catch(() => undefined);
    await this.fs.delete(this.path).catch(() => undefined);
  }
}

/**
 * Zone map of a numeric column (NaN and nulls left out). A 64-bit integer column with values beyond
 * ±2^53 keeps its exact minimum rounded down and its maximum rounded up to doubles: a zone map may
 * be loose, never wrong.
 */
function zone(
  col: Decoded,
  unsigned: boolean,
): { nulls: number; min: number | undefined; max: number | undefined } {
  const n = col.n;
  const nulls = col.nulls;
  let nullCount = 0;
  if (nulls !== undefined) for (let i = 0; i < n; i++) nullCount += nulls[i]!;
  if (col.wide !== undefined) {
    let min: bigint | undefined;
    let max: bigint | undefined;
    for (let i = 0; i < n; i++) {
      if (nulls?.[i] === 1) continue;
      const x = unsigned ? BigInt.asUintN(64, col.wide[i]!) : col.wide[i]!;
      if (min === undefined || x < min) min = x;
      if (max === undefined || x > max) max = x;
    }
    return min === undefined
      ? { nulls: nullCount, min: undefined, max: undefined }
      : { nulls: nullCount, min: doubleFloor(min), max: doubleCeil(max!) };
  }
  const v = col.f64 ?? col.i32 ?? col.u8;
  if (v === undefined) return { nulls: nullCount, min: undefined, max: undefined };
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    if (nulls?.[i] === 1) continue;
    const x = v[i]!;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return min <= max ? { nulls: nullCount, min, max } : { nulls: nullCount, min: undefined, max: undefined };
}
