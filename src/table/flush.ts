import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Key, KeyCompare, StorageType, TableSchema } from '../schema/schema.js';
import type { FileService } from '../fileservice/types.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import type { Allocator, Decoded } from '../objectio/encoding.js';
import { OBJ_DIR, tombstoneSchema, type ObjectMeta } from '../objectio/format.js';
import { ObjectWriter } from '../objectio/writer.js';
import type { LayerIds } from './log_records.js';
import { DELETED, type MemTable } from './memtable.js';

/** Buffers for one row group's columns, from a pool, released together. */
export class GroupBuffers implements Allocator {
  private readonly held: PooledBuffer[] = [];
  constructor(
    private readonly pool: MemoryPool,
    private readonly owner: string,
  ) {}
  private take(bytes: number): PooledBuffer {
    const b = this.pool.allocateSync(Math.max(bytes, 1), this.owner);
    this.held.push(b);
    return b;
  }
  f64 = (n: number): Float64Array => this.take(n * 8).float64(0, n);
  i64 = (n: number): BigInt64Array => this.take(n * 8).bigInt64(0, n);
  i32 = (n: number): Int32Array => this.take(n * 4).int32(0, n);
  u8 = (n: number): Uint8Array => this.take(n).bytes.subarray(0, n);
  u32 = (n: number): Uint32Array => this.take(n * 4).uint32(0, n);
  release(): void {
    for (const b of this.held.splice(0)) b.release();
  }
}

export interface FlushResult {
  ids: LayerIds;
  rows: number;
  bytes: number;
}

/**
 * The objects a flush or merge writes: a data object and a tombstone object, each created when its
 * first row group arrives. `finish` makes both durable (and obj/ fsynced) and says what was written;
 * `abort` deletes whatever was started.
 */
export class LayerOutput {
  private data: ObjectWriter | undefined;
  private tomb: ObjectWriter | undefined;
  private rows = 0;

  constructor(
    private readonly p: {
      fs: FileService;
      tableId: number;
      schema: TableSchema;
      compare: KeyCompare;
      pool: MemoryPool;
      nextObjectId: () => number;
      /** Bloom filter sizing: about how many keys each object will hold. */
      expectedData: number;
      expectedTomb: number;
      /** Owner name for the row-group buffers. */
      owner: string;
    },
  ) {}

  private async writer(kind: 'data' | 'tombstone'): Promise<ObjectWriter> {
    const p = this.p;
    const data = kind === 'data';
    return ObjectWriter.create({
      fs: p.fs,
      id: p.nextObjectId(),
      kind,
      tableId: p.tableId,
      schema: data ? p.schema : tombstoneSchema(p.schema),
      compare: p.compare,
      pool: p.pool,
      expectedKeys: data ? p.expectedData : p.expectedTomb,
    });
  }

  /** One data row group: `columns` builds the schema's columns (the commit timestamps are added). */
  async addData(keys: readonly Key[], ts: readonly number[], columns: (bufs: GroupBuffers) => Decoded[]) {
    this.data ??= await this.writer('data');
    const bufs = new GroupBuffers(this.p.pool, this.p.owner);
    try {
      const cols = columns(bufs);
      cols.push({ n: keys.length, physical: 'f64', f64: Float64Array.from(ts) });
      await this.data.addRowGroup(cols, keys);
    } finally {
      bufs.release();
    }
    this.rows += keys.length;
  }

  /** One tombstone row group: the deleted keys and the timestamps of the deletes. */
  async addTombstones(keys: readonly Key[], ts: readonly number[]): Promise<void> {
    this.tomb ??= await this.writer('tombstone');
    const bufs = new GroupBuffers(this.p.pool, this.p.owner);
    try {
      await this.tomb.addRowGroup(
        [
          keyColumn(this.p.schema.pk.storage, keys, bufs),
          { n: keys.length, physical: 'f64', f64: Float64Array.from(ts) },
        ],
        keys,
      );
    } finally {
      bufs.release();
    }
    this.rows += keys.length;
  }

  async finish(): Promise<FlushResult | undefined> {
    const d = this.data;
    const t = this.tomb;
    if (d === undefined && t === undefined) return undefined;
    const dataMeta = d === undefined ? undefined : await d.finish();
    let tombMeta: ObjectMeta | undefined;
    try {
      tombMeta = t === undefined ? undefined : await t.finish();
      await this.p.fs.syncDir(OBJ_DIR);
    } catch (e) {
      // Finished files are their ids' owner's to delete (the storage layer's file registry).
      this.data = this.tomb = undefined;
      throw e;
    }
    this.data = this.tomb = undefined;
    return {
      ids: {
        data: dataMeta?.id ?? 0,
        tomb: tombMeta?.id ?? 0,
        minTs: Math.min(dataMeta?.minTs ?? Infinity, tombMeta?.minTs ?? Infinity),
        maxTs: Math.max(dataMeta?.maxTs ?? -Infinity, tombMeta?.maxTs ?? -Infinity),
      },
      rows: this.rows,
      bytes: (dataMeta?.fileBytes ?? 0) + (tombMeta?.fileBytes ?? 0),
    };
  }

  async abort(): Promise<void> {
    for (const w of [this.data, this.tomb]) if (w !== undefined) await w.abort();
    this.data = this.tomb = undefined;
  }
}

/**
 * Write a frozen memtable out as objects: a data object with the put versions and, if there were
 * deletes, a tombstone object, both sorted by (key, newest first), keeping every version a reader
 * may still need (see MemTable.forEachRetained). Row groups are cut only between keys. The files
 * are durable (and obj/ fsynced) when this resolves; nothing refers to them yet. On any error both
 * are deleted.
 */
export async function writeMemTable(params: {
  fs: FileService;
  mt: MemTable;
  tableId: number;
  oldestSnapshot: number;
  rowGroupRows: number;
  /** About how many bytes of values a row group holds at most. */
  rowGroupBytes: number;
  nextObjectId: () => number;
  io: MemoryPool;
}): Promise<FlushResult | undefined> {
  const { mt, io } = params;
  const schema = mt.schema;
  if (mt.keys === 0) return undefined;
  // Rows a group: the configured count, fewer for wide rows (see ROW_GROUP_BYTES_MAX).
  const avgRowBytes = mt.bytes / Math.max(1, mt.rows);
  const size = Math.max(
    16,
    Math.min(params.rowGroupRows, Math.floor(params.rowGroupBytes / Math.max(1, avgRowBytes))),
  );
  // Stream the memtable a row group at a time: ids and timestamps first, values per group.
  let dataRows: number[] = [];
  let dataKeys: Key[] = [];
  let dataTs: number[] = [];
  let tombKeys: Key[] = [];
  let tombTs: number[] = [];
  const out = new LayerOutput({
    fs: params.fs,
    tableId: params.tableId,
    schema,
    compare: mt.compare,
    pool: io,
    nextObjectId: params.nextObjectId,
    expectedData: mt.keys,
    expectedTomb: Math.min(mt.keys, mt.deletes),
    owner: 'flush.group',
  });
  try {
    let state: { leaf: unknown; i: number } | undefined;
    do {
      state = mt.retained(state, params.oldestSnapshot, size, (key, ts, row) => {
        if (row === DELETED) {
          tombKeys.push(key);
          tombTs.push(ts);
        } else {
          dataRows.push(row);
          dataKeys.push(key);
          dataTs.push(ts);
        }
      });
      // Whole keys come at a time, so groups are cut between keys.
      if (dataRows.length >= size || (state === undefined && dataRows.length > 0)) {
        const ids = Int32Array.from(dataRows);
        await out.addData(dataKeys, dataTs, (bufs) =>
          schema.columns.map((c) => mt.physicalColumn(c.index, ids, ids.length, bufs)),
        );
        dataRows = [];
        dataKeys = [];
        dataTs = [];
      }
      if (tombKeys.length >= size || (state === undefined && tombKeys.length > 0)) {
        await out.addTombstones(tombKeys, tombTs);
        tombKeys = [];
        tombTs = [];
      }
      // Background work: let commits and reads run between row groups.
      await nextTurn();
    } while (state !== undefined);
    return await out.finish();
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** [start, end) ranges of about `size` entries, cut only where the key changes. */
export function* groups(
  keys: readonly Key[],
  size: number,
  cmp: (a: Key, b: Key) => number,
): Generator<[number, number]> {
  let start = 0;
  while (start < keys.length) {
    let end = Math.min(keys.length, start + size);
    while (end < keys.length && cmp(keys[end]!, keys[end - 1]!) === 0) end++;
    yield [start, end];
    start = end;
  }
}

/** A column of keys in an object's physical layout. */
export function keyColumn(type: StorageType, keys: readonly Key[], alloc: Allocator): Decoded {
  const n = keys.length;
  if (type === 'string' || type === 'bytes') {
    const parts = keys.map((k) => (typeof k === 'string' ? Buffer.from(k, 'utf8') : (k as Uint8Array)));
    const offsets = alloc.u32(n + 1);
    let total = 0;
    for (let i = 0; i < n; i++) {
      offsets[i] = total;
      total += parts[i]!.length;
    }
    offsets[n] = total;
    const data = alloc.u8(total);
    for (let i = 0; i < n; i++) data.set(parts[i]!, offsets[i]);
    return { n, physical: 'var', offsets, data };
  }
  if (type === 'int32') {
    const v = alloc.i32(n);
    for (let i = 0; i < n; i++) v[i] = keys[i] as number;
    return { n, physical: 'i32', i32: v };
  }
  if (type === 'bool') {
    const v = alloc.u8(n);
    for (let i = 0; i < n; i++) v[i] = keys[i] as number;
    return { n, physical: 'u8', u8: v };
  }
  const v = alloc.f64(n);
  let wide = false;
  for (let i = 0; i < n; i++) {
    const k = keys[i] as number | bigint;
    if (typeof k === 'bigint') wide = true;
    v[i] = Number(k);
  }
  const out: Decoded = { n, physical: 'f64', f64: v };
  if (wide) out.wide = wideOf(keys as readonly (number | bigint)[], n, alloc);
  return out;
}

/** Every value of a 64-bit integer column exactly, as Decoded.wide keeps them. */
export function wideOf(
  values: ArrayLike<number | bigint | null>,
  n: number,
  alloc: Allocator,
): BigInt64Array {
  const w = alloc.i64(n);
  for (let i = 0; i < n; i++) {
    const x = values[i];
    w[i] = x === null || x === undefined ? 0n : BigInt.asIntN(64, typeof x === 'bigint' ? x : BigInt(x));
  }
  return w;
}
