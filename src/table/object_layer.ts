import {
  apiValue,
  type ColumnDef,
  type Key,
  type KeyCompare,
  type Row,
  type StorageType,
  type TableSchema,
} from '../schema/schema.js';
import { canonicalInt } from '../util/decimal.js';
import type { ObjectFiles } from '../objectio/files.js';
import type { BlockCache, CachePin } from '../objectio/cache.js';
import type { Decoded } from '../objectio/encoding.js';
import type { RowGroupMeta } from '../objectio/format.js';
import { ObjectReader } from '../objectio/reader.js';
import type { MemoryPool } from '../mem/pool.js';
import type { CursorBuffer, LayerCursor } from './cursor.js';
import { Layer } from './layer.js';
import type { LayerIds } from './log_records.js';
import type { ColumnData, RowSource } from './source.js';
import { ASCII_CHARS, utf8Range, utf8Text } from '../util/bytes.js';
import { plantedBug } from '../util/plant.js';

/** What the storage layer shares across tables: where objects are read from and cached. */
export interface ObjectContext {
  files: ObjectFiles;
  cache: BlockCache;
  io: MemoryPool;
  metaPool: MemoryPool;
  /**
   * The object files' owner (the storage layer's registry): a layer holds its files from its open
   * until its last reader is gone.
   */
  fileRefs: { ref(id: number, holder: 'layer'): void; unref(id: number, holder: 'layer'): unknown };
}

/** The newest version of a key at a snapshot, as found in one layer. */
export interface Found {
  ts: number;
  /** The row's values (engine representation), or undefined for a delete. */
  values: unknown[] | undefined;
}

/** The key at row i of a decoded key column. */
export function keyAt(d: Decoded, type: StorageType, i: number): Key {
  switch (d.physical) {
    case 'f64':
      if (d.wide !== undefined)
        return canonicalInt(type === 'uint64' ? BigInt.asUintN(64, d.wide[i]!) : d.wide[i]!);
      return d.f64![i]!;
    case 'i32':
      return d.i32![i]!;
    case 'u8':
      return d.u8![i]!;
    case 'var': {
      const start = d.offsets![i]!;
      const end = d.offsets![i + 1]!;
      if (type === 'string' && end - start === 1 && d.data![start]! < 0x80)
        return ASCII_CHARS[d.data![start]!]!;
      const b = d.data!.subarray(start, end);
      return type === 'string' ? utf8Text(b) : b.slice();
    }
  }
}

/** One value of a decoded column as the engine keeps it (timestamps in ms, bytes copied). */
function rawAt(d: Decoded, def: ColumnDef, i: number): unknown {
  if (d.nulls !== undefined && d.nulls[i] === 1) return null;
  if (def.storage === 'bool') return d.u8![i] === 1;
  return keyAt(d, def.storage, i);
}

/**
 * Rows of one row group of a data object, through pinned chunks of the columns a reader asked for.
 * `release` unpins them.
 */
export class GroupSource implements RowSource {
  constructor(
    private readonly schema: TableSchema,
    /** Pins by column index (undefined for columns not loaded); released by the cursor's buffer. */
    private readonly pins: (CachePin | undefined)[],
  ) {}

  private col(c: number): Decoded {
    const p = this.pins[c];
    if (p === undefined) throw new Error(`column ${c} of a row group was read without being loaded`);
    return p.decoded;
  }

  readRow(row: number, cols: readonly number[] | undefined): Row {
    const out: Row = {};
    const defs = this.schema.columns;
    for (const c of cols ?? defs.map((d) => d.index))
      out[defs[c]!.name] = apiValue(defs[c]!, rawAt(this.col(c), defs[c]!, row));
    return out;
  }

  rawValues(row: number): unknown[] {
    return this.schema.columns.map((d) => rawAt(this.col(d.index), d, row));
  }

  rawValue(row: number, col: number): unknown {
    return rawAt(this.col(col), this.schema.columns[col]!, row);
  }

  gather(col: number, rows: Int32Array, n: number): { data: ColumnData; nulls: Uint8Array | undefined } {
    const d = this.col(col);
    const def = this.schema.columns[col]!;
    const nulls = gatherNulls(d, def, n, (src) => Uint8Array.from({ length: n }, (_, i) => src[rows[i]!]!));
    return { data: gatherValues(d, def, nulls, n, (i) => rows[i]!), nulls };
  }

  gatherRange(
    col: number,
    start: number,
    n: number,
    borrow = false,
  ): { data: ColumnData; nulls: Uint8Array | undefined } {
    const d = this.col(col);
    const def = this.schema.columns[col]!;
    // Fixed-width columns: one slice of the decoded chunk, or a view of it when borrowing (a null
    // slot holds 0 in a decoded chunk already).
    // 64-bit integers come as their doubles while every one is exact (no `wide` chunk).
    const int64 = (def.storage === 'int64' || def.storage === 'uint64') && d.wide !== undefined;
    if (borrow && !int64 && d.physical !== 'var') {
      const nulls = gatherNulls(d, def, n, (src) => src.subarray(start, start + n));
      return { data: (d.f64 ?? d.i32 ?? d.u8)!.subarray(start, start + n), nulls };
    }
    const nulls = gatherNulls(d, def, n, (src) => src.slice(start, start + n));
    if (!int64 && d.physical !== 'var') {
      const arr = (d.f64 ?? d.i32 ?? d.u8)!.slice(start, start + n);
      if (nulls !== undefined) for (let i = 0; i < n; i++) if (nulls[i] === 1) arr[i] = 0;
      return { data: arr, nulls };
    }
    return { data: gatherValues(d, def, nulls, n, (i) => start + i), nulls };
  }
}

/** The null flags of `n` gathered rows: all clear when the chunk stored none for a nullable column. */
function gatherNulls(
  d: Decoded,
  def: ColumnDef,
  n: number,
  pick: (src: Uint8Array) => Uint8Array,
): Uint8Array | undefined {
  if (d.nulls !== undefined) return pick(d.nulls);
  return def.nullable ? new Uint8Array(n) : undefined;
}

function gatherValues(
  d: Decoded,
  def: ColumnDef,
  nulls: Uint8Array | undefined,
  n: number,
  rowOf: (i: number) => number,
): ColumnData {
  switch (def.storage) {
    case 'int32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = nulls?.[i] === 1 ? 0 : d.i32![rowOf(i)]!;
      return out;
    }
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = nulls?.[i] === 1 ? 0 : d.u8![rowOf(i)]!;
      return out;
    }
    case 'int64':
    case 'uint64':
    case 'float64':
    case 'timestamp': {
      if (d.wide !== undefined) {
        // Some value is beyond ±2^53: every value exactly, bigints where not safe.
        const out = new Array<number | bigint | null>(n);
        for (let i = 0; i < n; i++)
          out[i] = nulls?.[i] === 1 ? null : (keyAt(d, def.storage, rowOf(i)) as number | bigint);
        return out;
      }
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = nulls?.[i] === 1 ? 0 : d.f64![rowOf(i)]!;
      return out;
    }
    default: {
      const out = new Array<unknown>(n);
      if (def.storage === 'string' && d.dictCodes !== undefined) {
        // Each distinct string of a dictionary-encoded chunk is made once, then shared.
        const text = dictText(d);
        const codes = d.dictCodes;
        for (let i = 0; i < n; i++) out[i] = nulls?.[i] === 1 ? null : text[codes[rowOf(i)]!];
        return out as ColumnData;
      }
      for (let i = 0; i < n; i++) out[i] = nulls?.[i] === 1 ? null : keyAt(d, def.storage, rowOf(i));
      return out as ColumnData;
    }
  }
}

/** The strings of a dictionary-encoded chunk's dictionary (made on first use, kept with the chunk). */
function dictText(d: Decoded): string[] {
  if (d.dictText === undefined) {
    const starts = d.dictStarts!;
    const data = d.dictData!;
    const text = new Array<string>(starts.length - 1);
    for (let k = 0; k < text.length; k++) text[k] = utf8Range(data, starts[k]!, starts[k + 1]!);
    d.dictText = text;
  }
  return d.dictText;
}

/**
 * The objects of one flush or merge of a table: a data object and, when there were deletes, a
 * tombstone object. Versions of a key in a layer are newest first; a read at a snapshot sees, per
 * key, the newest version at or before it across the two.
 */
export class ObjectLayer extends Layer {
  private constructor(
    readonly ids: LayerIds,
    readonly data: ObjectReader | undefined,
    readonly tomb: ObjectReader | undefined,
    private readonly ctx: ObjectContext,
    readonly schema: TableSchema,
    readonly compare: KeyCompare,
  ) {
    super();
    ctx.fileRefs.ref(ids.data, 'layer');
    ctx.fileRefs.ref(ids.tomb, 'layer');
  }

  static async open(
    ctx: ObjectContext,
    ids: LayerIds,
    schema: TableSchema,
    compare: KeyCompare,
  ): Promise<ObjectLayer> {
    const params = { files: ctx.files, cache: ctx.cache, io: ctx.io, metaPool: ctx.metaPool };
    const data = ids.data === 0 ? undefined : await ObjectReader.open({ ...params, id: ids.data });
    let tomb: ObjectReader | undefined;
    try {
      tomb = ids.tomb === 0 ? undefined : await ObjectReader.open({ ...params, id: ids.tomb });
    } catch (e) {
      data?.dropFromCache();
      data?.close();
      throw e;
    }
    return new ObjectLayer(ids, data, tomb, ctx, schema, compare);
  }

  /** The open object readers of this layer (data and tombstone). */
  readers(): ObjectReader[] {
    return [this.data, this.tomb].filter((r) => r !== undefined);
  }

  get rows(): number {
    return (this.data?.meta.rows ?? 0) + (this.tomb?.meta.rows ?? 0);
  }

  get bytes(): number {
    return (this.data?.meta.fileBytes ?? 0) + (this.tomb?.meta.fileBytes ?? 0);
  }

  get minKey(): Key | undefined {
    const a = this.data?.meta.minKey;
    const b = this.tomb?.meta.minKey;
    return a === undefined ? b : b === undefined ? a : this.compare(a, b) <= 0 ? a : b;
  }

  get maxKey(): Key | undefined {
    const a = this.data?.meta.maxKey;
    const b = this.tomb?.meta.maxKey;
    return a === undefined ? b : b === undefined ? a : this.compare(a, b) >= 0 ? a : b;
  }

  /** Whether the layer may hold a version of `key` (zone and bloom filter). */
  mayContain(key: Key): boolean {
    return (
      (this.data?.mayContain(key, this.compare) ?? false) ||
      (this.tomb?.mayContain(key, this.compare) ?? false)
    );
  }

  /** Whether the layer holds anything in [from, to). */
  overlaps(from: Key | undefined, to: Key | undefined): boolean {
    const min = this.minKey;
    const max = this.maxKey;
    if (min === undefined || max === undefined) return false;
    if (from !== undefined && this.compare(max, from) < 0) return false;
    if (to !== undefined && this.compare(min, to) >= 0) return false;
    return true;
  }

  /** The newer of a data version and a tombstone found for one key. */
  private static newer(d: Found | undefined, t: Found | undefined): Found | undefined {
    if (t !== undefined && (d === undefined || t.ts > d.ts)) return { ts: t.ts, values: undefined };
    return d;
  }

  /** `find` without I/O: NOT_CACHED when a chunk it needs is not in the block cache. */
  findCached(key: Key, ts: number): Found | undefined | NotCached {
    const probe: Probe = { key, ts, cmp: this.compare, pk: this.schema.pk };
    const d = this.data === undefined ? undefined : findInCached(this.data, probe, true);
    if (d === NOT_CACHED) return d;
    const t = this.tomb === undefined ? undefined : findInCached(this.tomb, probe, false);
    if (t === NOT_CACHED) return t;
    return ObjectLayer.newer(d, t);
  }

  /** The newest version of `key` at or before `ts` in this layer, or undefined. */
  async find(key: Key, ts: number): Promise<Found | undefined> {
    const probe: Probe = { key, ts, cmp: this.compare, pk: this.schema.pk };
    const d = this.data === undefined ? undefined : await findIn(this.data, probe, true);
    const t = this.tomb === undefined ? undefined : await findIn(this.tomb, probe, false);
    return ObjectLayer.newer(d, t);
  }

  cursor(
    ts: number,
    from: Key | undefined,
    after: boolean,
    to: Key | undefined,
    cols: readonly number[],
    zone?: ZoneFilter,
  ): LayerCursor {
    return new ObjectLayerCursor(this, ts, from, after, to, cols, zone);
  }

  describe(): string {
    return `object layer ${this.ids.data}/${this.ids.tomb} of ${this.schema.name}`;
  }

  protected free(): void {
    for (const r of [this.data, this.tomb]) {
      if (r === undefined) continue;
      r.dropFromCache();
      r.close();
    }
    void this.ctx.fileRefs.unref(this.ids.data, 'layer');
    void this.ctx.fileRefs.unref(this.ids.tomb, 'layer');
  }
}

/** What a point lookup in an object looks for: the newest version of `key` at or before `ts`. */
interface Probe {
  key: Key;
  ts: number;
  cmp: KeyCompare;
  pk: ColumnDef;
}

/** Returned by the cache-only lookups when a chunk they need is not in the block cache. */
export const NOT_CACHED: unique symbol = Symbol('not cached');
export type NotCached = typeof NOT_CACHED;

/** The row group of `r` that holds `key`'s versions, if any may: the first whose range reaches it. */
function groupOf(r: ObjectReader, key: Key, cmp: KeyCompare): number {
  if (!r.mayContain(key, cmp)) return -1;
  const groups = r.meta.rowGroups;
  const g = r.groupFrom(key, cmp);
  return g < groups.length && cmp(groups[g]!.minKey, key) <= 0 ? g : -1;
}

/**
 * The newest version of `key` at or before `ts` in row group `g` of `r`, reading chunks through
 * `chunk` (a stored-column index to its decoded chunk, or undefined when it is not at hand, which
 * makes the answer NOT_CACHED).
 */
function searchGroup(
  r: ObjectReader,
  { key, ts, cmp, pk }: Probe,
  /** Read the row's values too (data objects), or only the timestamp (tombstones). */
  withValues: boolean,
  chunk: (col: number) => Decoded | undefined,
): Found | undefined | NotCached {
  const data = r.meta.kind === 'data';
  const keys = chunk(data ? pk.index : 0);
  if (keys === undefined) return NOT_CACHED;
  const tsd = chunk(data ? r.meta.schema.columns.length : 1);
  if (tsd === undefined) return NOT_CACHED;
  const tss = tsd.f64!;
  const n = keys.n;
  let lo = 0;
  let hi = n;
  if (keys.physical === 'f64' && keys.wide === undefined && typeof key === 'number') {
    // Numeric keys (int64, timestamp, float64): search the array directly.
    lo = lowerBoundF64(keys.f64!, n, key);
  } else {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp(keyAt(keys, pk.storage, mid), key) < 0) lo = mid + 1;
      else hi = mid;
    }
  }
  for (let i = lo; i < n; i++) {
    if (cmp(keyAt(keys, pk.storage, i), key) !== 0) return undefined;
    if (tss[i]! > ts) continue;
    if (!withValues) return { ts: tss[i]!, values: undefined };
    const defs = r.meta.schema.columns;
    const values = new Array<unknown>(defs.length);
    for (const d of defs) {
      const c = d.index === pk.index ? keys : chunk(d.index);
      if (c === undefined) return NOT_CACHED;
      values[d.index] = rawAt(c, d, i);
    }
    return { ts: tss[i]!, values };
  }
  return undefined;
}

/**
 * The first i in [0, n) with a[i] >= key (n if none), for sorted a. A few interpolation steps first:
 * keys such as ids are often near-uniform within a row group, and then the guess lands on or next to
 * the key, touching two or three cache lines instead of the fourteen of a binary search of 16,384
 * keys (a point read from the block cache is bound by memory latency). Binary search finishes.
 */
export function lowerBoundF64(a: Float64Array, n: number, key: number): number {
  // Invariant: a[i] < key for i < lo, a[i] >= key for i >= hi.
  let lo = 0;
  let hi = n;
  for (let step = 0; step < 4 && hi - lo > 8; step++) {
    const a0 = a[lo]!;
    const a1 = a[hi - 1]!;
    if (key <= a0) return lo;
    if (key > a1) return hi;
    let g = lo + Math.floor(((key - a0) / (a1 - a0)) * (hi - 1 - lo));
    if (!(g > lo)) g = lo + 1; // a[lo] < key already (and NaN from infinite keys lands here)
    if (g >= hi) g = hi - 1;
    if (a[g]! < key) lo = g + 1;
    else hi = g;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `findIn` without I/O: NOT_CACHED when a chunk it needs is not in the block cache. */
function findInCached(r: ObjectReader, probe: Probe, withValues: boolean): Found | undefined | NotCached {
  const g = groupOf(r, probe.key, probe.cmp);
  if (g < 0) return undefined;
  // Synchronous from here to the answer: peeked chunks cannot be evicted meanwhile.
  return searchGroup(r, probe, withValues, (col) => r.peekChunk(g, col));
}

/** Find the newest version of `key` at or before `ts` in one object, reading what is not cached. */
async function findIn(r: ObjectReader, probe: Probe, withValues: boolean): Promise<Found | undefined> {
  const g = groupOf(r, probe.key, probe.cmp);
  if (g < 0) return undefined;
  // Pins are held until the answer is complete, so a small cache cannot evict what was just read.
  const held = new Map<number, CachePin>();
  try {
    for (;;) {
      let missing = -1;
      const found = searchGroup(r, probe, withValues, (col) => {
        let p = held.get(col);
        if (p === undefined) {
          p = r.tryPinChunk(g, col);
          if (p === undefined) {
            missing = col;
            return undefined;
          }
          held.set(col, p);
        }
        return p.decoded;
      });
      if (found !== NOT_CACHED) return found;
      held.set(missing, await r.pinChunk(g, missing));
    }
  } finally {
    for (const p of held.values()) p.release();
  }
}

/** A row group's visible entries, as GroupIterator gives them. */
interface VisibleGroup {
  g: number;
  n: number;
  /** Entry i is row rows[i] of the group, or row start + i when rows is undefined. */
  rows: Int32Array | undefined;
  start: number;
  /** Keys of the entries for variable-width keys (decoded once); undefined for numeric keys. */
  keys: Key[] | undefined;
  /** The group's key chunk, pinned: the receiver releases it. */
  keyPin: CachePin;
}

/**
 * Visible entries of one object at a snapshot, a row group at a time: per key, the newest version at
 * or before the snapshot. Deletes are kept (they hide the key in older layers). When the object has
 * one version per key, all at or before the snapshot, the timestamps are not read at all.
 */
class GroupIterator {
  private g: number;
  readonly allVisible: boolean;
  constructor(
    private readonly r: ObjectReader,
    private readonly ts: number,
    private readonly from: Key | undefined,
    private readonly after: boolean,
    private readonly to: Key | undefined,
    private readonly cmp: KeyCompare,
    private readonly pk: ColumnDef,
  ) {
    this.g = r.groupFrom(from, cmp);
    this.allVisible = r.meta.singleVersion && r.meta.maxTs <= ts;
  }

  /** Whether row group g exists and may hold keys the iteration wants. */
  inRange(g: number): boolean {
    const groups = this.r.meta.rowGroups;
    return g < groups.length && (this.to === undefined || this.cmp(groups[g]!.minKey, this.to) < 0);
  }

  /** The first entry at or after `key` (after it when `after`) in a group's keys. */
  private lowerBound(keys: Decoded, n: number, key: Key, after: boolean): number {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.cmp(keyAt(keys, this.pk.storage, mid), key);
      if (c < 0 || (after && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The next row group's visible entries, or undefined at the end. */
  async next(): Promise<VisibleGroup | undefined> {
    const groups = this.r.meta.rowGroups;
    const data = this.r.meta.kind === 'data';
    const type = this.pk.storage;
    while (this.g < groups.length) {
      const g = this.g++;
      const meta = groups[g]!;
      if (this.to !== undefined && this.cmp(meta.minKey, this.to) >= 0) return undefined;
      const kp = await this.r.pinChunk(g, data ? this.pk.index : 0);
      try {
        const keys = kp.decoded;
        const n = keys.n;
        // Bounds within the group.
        const start =
          this.from !== undefined && this.cmp(meta.minKey, this.from) <= 0
            ? this.lowerBound(keys, n, this.from, this.after)
            : 0;
        const end =
          this.to !== undefined && this.cmp(meta.maxKey, this.to) >= 0
            ? Math.max(start, this.lowerBound(keys, n, this.to, false))
            : n;
        let rows: Int32Array | undefined;
        let count = end - start;
        if (!this.allVisible && count > 0) {
          // Per key: the first (newest) version at or before ts. A key's versions never straddle
          // row groups (the writer cuts groups only between keys).
          const tp = await this.r.pinChunk(g, data ? this.r.meta.schema.columns.length : 1);
          try {
            const tss = tp.decoded.f64!;
            rows = new Int32Array(count);
            count = 0;
            let i = start;
            while (i < end) {
              const k = keyAt(keys, type, i);
              let j = i;
              let picked = -1;
              while (j < end && (j === i || this.cmp(keyAt(keys, type, j), k) === 0)) {
                if (picked < 0 && tss[j]! <= this.ts) picked = j;
                j++;
              }
              if (picked >= 0) rows[count++] = picked;
              i = j;
            }
            rows = rows.subarray(0, count);
          } finally {
            tp.release();
          }
        }
        if (count === 0) {
          kp.release();
          continue;
        }
        let outKeys: Key[] | undefined;
        if (keys.physical === 'var') {
          outKeys = new Array<Key>(count);
          for (let i = 0; i < count; i++)
            outKeys[i] = keyAt(keys, type, rows === undefined ? start + i : rows[i]!);
        }
        return { g, n: count, rows, start, keys: outKeys, keyPin: kp };
      } catch (e) {
        kp.release();
        throw e;
      }
    }
    return undefined;
  }
}

/** Row of entry i of a visible group. */
function rowOf(v: VisibleGroup, i: number): number {
  return v.rows === undefined ? v.start + i : v.rows[i]!;
}

/**
 * A layer's cursor: the data object's row groups merged with the tombstone object's entries, the
 * newer version winning per key.
 */
/** A condition on a column (schema index) that a row group's zone map can rule out: col OP value. */
export interface ZoneAtom {
  col: number;
  op: string;
  value: number;
}

/**
 * Conditions a scan's reader applies to every row (ANDed), so that a row group no row of which can
 * meet them needs no value column read: its rows act, for this scan only, as deletes (they still
 * hide older versions of their keys, and are not handed out). `skipped` counts such groups.
 */
export interface ZoneFilter {
  atoms: readonly ZoneAtom[];
  skipped: number;
}

/** Whether the zone maps of a row group show that no row of it meets every condition. */
function ruledOut(g: RowGroupMeta, atoms: readonly ZoneAtom[]): boolean {
  for (const a of atoms) {
    const c = g.chunks[a.col];
    if (c === undefined) continue;
    // Every value null: no comparison is true.
    if (c.nulls === g.rows) return true;
    if (c.min === undefined || c.max === undefined) continue;
    const v = a.value;
    switch (a.op) {
      case '=':
        if (v < c.min || v > c.max) return true;
        break;
      case '<':
        if (c.min >= v) return true;
        break;
      case '<=':
        if (c.min > v) return true;
        break;
      case '>':
        if (c.max <= v) return true;
        break;
      case '>=':
        if (c.max < v) return true;
        break;
    }
  }
  return false;
}

class ObjectLayerCursor implements LayerCursor {
  private readonly dataIt: GroupIterator | undefined;
  private readonly tombIt: GroupIterator | undefined;
  /** Tombstone entries fetched but not yet merged: keys and timestamps. */
  private tombKeys: Key[] = [];
  private tombTs: number[] = [];
  private tombPos = 0;
  private tombDone = false;
  private closed = false;
  /** Whether to read the next row group ahead: after the first two groups (short scans need none). */
  private groupsRead = 0;

  constructor(
    private readonly layer: ObjectLayer,
    ts: number,
    from: Key | undefined,
    after: boolean,
    to: Key | undefined,
    private readonly cols: readonly number[],
    private readonly zone: ZoneFilter | undefined,
  ) {
    const cmp = layer.compare;
    const pk = layer.schema.pk;
    this.dataIt =
      layer.data === undefined ? undefined : new GroupIterator(layer.data, ts, from, after, to, cmp, pk);
    this.tombIt =
      layer.tomb === undefined ? undefined : new GroupIterator(layer.tomb, ts, from, after, to, cmp, pk);
    this.tombDone = this.tombIt === undefined;
  }

  async next(): Promise<CursorBuffer | undefined> {
    if (this.closed) return undefined;
    const dataGroup = this.dataIt === undefined ? undefined : await this.dataIt.next();
    if (dataGroup === undefined) {
      // Only tombstones remain: hand them out as deletes.
      await this.fillTombs(undefined);
      const n = this.tombKeys.length - this.tombPos;
      if (n === 0) return undefined;
      const keys = this.tombKeys.slice(this.tombPos);
      this.tombPos = this.tombKeys.length;
      const deleted = new Uint8Array(n).fill(1);
      return {
        n,
        keyAt: (i) => keys[i]!,
        source: emptySource,
        rows: new Int32Array(n),
        rangeStart: -1,
        deleted,
        release: undefined,
      };
    }
    const keyPin = dataGroup.keyPin;
    // The group's key pin, and the column pins taken below, are this call's until it hands them
    // over in the buffer's release: if an await in between fails (a read error), they are
    // released here, or the cache would hold them for ever.
    const pins: (CachePin | undefined)[] = [];
    try {
      return await this.groupBuffer(dataGroup, pins);
    } catch (e) {
      for (const p of pins) p?.release();
      if (!plantedBug('error-path-pin')) keyPin.release();
      throw e;
    }
  }

  /** The buffer of a data group (its key pin held by the caller; column pins added to `pins`). */
  private async groupBuffer(dataGroup: VisibleGroup, pins: (CachePin | undefined)[]): Promise<CursorBuffer> {
    const cmp = this.layer.compare;
    const r = this.layer.data!;
    const pk = this.layer.schema.pk;
    const keyPin = dataGroup.keyPin;
    const groupKeys = dataGroup.keys;
    const dataKey = (i: number): Key =>
      groupKeys !== undefined ? groupKeys[i]! : keyAt(keyPin.decoded, pk.storage, rowOf(dataGroup, i));
    const lastKey = dataKey(dataGroup.n - 1);
    // Tombstones up to this group's last key.
    await this.fillTombs(lastKey);
    // Read ahead: the next row group's chunks load while this one is consumed (from the second group
    // on: a short scan that needs one group reads nothing more).
    const groups = r.meta.rowGroups;
    if (++this.groupsRead >= 2 && this.dataIt!.inRange(dataGroup.g + 1)) {
      const next = dataGroup.g + 1;
      r.prefetchChunk(next, pk.index);
      if (!this.dataIt!.allVisible) r.prefetchChunk(next, r.meta.schema.columns.length);
      if (this.zone === undefined || !ruledOut(groups[next]!, this.zone.atoms))
        for (const c of this.cols) r.prefetchChunk(next, c);
    }
    // A group the zone maps rule out: its rows become this scan's deletes, no value read.
    const zone = this.zone;
    const skip = zone !== undefined && ruledOut(groups[dataGroup.g]!, zone.atoms);
    if (skip) zone.skipped++;
    // Pin the columns the scan reads (the key column is pinned already).
    if (!skip)
      for (const c of this.cols) if (pins[c] === undefined) pins[c] = await r.pinChunk(dataGroup.g, c);
    // No tombstones in range: the group's visible rows as they are.
    if (this.tombPos >= this.tombKeys.length || cmp(this.tombKeys[this.tombPos]!, lastKey) > 0) {
      return {
        n: dataGroup.n,
        keyAt: dataKey,
        source: skip ? emptySource : new GroupSource(this.layer.schema, pins),
        rows: dataGroup.rows,
        rangeStart: dataGroup.rows === undefined ? dataGroup.start : -1,
        deleted: skip ? new Uint8Array(dataGroup.n).fill(1) : undefined,
        release: this.releaseOf(pins, keyPin),
      };
    }
    // Merge with the tombstones: on equal keys the newer version wins.
    const outRows: number[] = [];
    const outKeys: Key[] = [];
    const outDel: number[] = [];
    const tss = await r.pinChunk(dataGroup.g, r.meta.schema.columns.length);
    try {
      const dts = tss.decoded.f64!;
      let i = 0;
      const n = dataGroup.n;
      while (
        i < n ||
        (this.tombPos < this.tombKeys.length && cmp(this.tombKeys[this.tombPos]!, lastKey) <= 0)
      ) {
        const dk = i < n ? dataKey(i) : undefined;
        const tk =
          this.tombPos < this.tombKeys.length && cmp(this.tombKeys[this.tombPos]!, lastKey) <= 0
            ? this.tombKeys[this.tombPos]
            : undefined;
        const c = dk === undefined ? 1 : tk === undefined ? -1 : cmp(dk, tk);
        if (c < 0) {
          outRows.push(rowOf(dataGroup, i));
          outKeys.push(dk!);
          outDel.push(0);
          i++;
        } else if (c > 0) {
          outRows.push(0);
          outKeys.push(tk!);
          outDel.push(1);
          this.tombPos++;
        } else {
          const row = rowOf(dataGroup, i);
          const del = this.tombTs[this.tombPos]! > dts[row]!;
          outRows.push(row);
          outKeys.push(dk!);
          outDel.push(del ? 1 : 0);
          i++;
          this.tombPos++;
        }
      }
    } finally {
      tss.release();
    }
    return {
      n: outRows.length,
      keyAt: (k) => outKeys[k]!,
      source: skip ? emptySource : new GroupSource(this.layer.schema, pins),
      rows: Int32Array.from(outRows),
      rangeStart: -1,
      deleted: skip ? new Uint8Array(outRows.length).fill(1) : Uint8Array.from(outDel),
      release: this.releaseOf(pins, keyPin),
    };
  }

  /** The buffer's release: the column pins and the key pin, once the caller is done with them. */
  private releaseOf(pins: (CachePin | undefined)[], keyPin: CachePin): () => void {
    return () => {
      for (const p of pins) p?.release();
      pins.length = 0;
      keyPin.release();
    };
  }

  /** Fetch tombstone entries up to `until` (all when undefined). */
  private async fillTombs(until: Key | undefined): Promise<void> {
    const cmp = this.layer.compare;
    if (this.tombPos > 4096 && this.tombPos === this.tombKeys.length) {
      this.tombKeys = [];
      this.tombTs = [];
      this.tombPos = 0;
    }
    while (
      !this.tombDone &&
      (until === undefined ||
        this.tombKeys.length === this.tombPos ||
        cmp(this.tombKeys[this.tombKeys.length - 1]!, until) <= 0)
    ) {
      const g = await this.tombIt!.next();
      if (g === undefined) {
        this.tombDone = true;
        break;
      }
      try {
        // The group's key pin is released whatever happens, this pin's read failing included.
        const tp = await this.layer.tomb!.pinChunk(g.g, 1);
        try {
          for (let i = 0; i < g.n; i++) {
            const row = rowOf(g, i);
            this.tombKeys.push(
              g.keys !== undefined ? g.keys[i]! : keyAt(g.keyPin.decoded, this.layer.schema.pk.storage, row),
            );
            this.tombTs.push(tp.decoded.f64![row]!);
          }
        } finally {
          tp.release();
        }
      } finally {
        g.keyPin.release();
      }
    }
  }

  close(): void {
    this.closed = true;
  }
}

/** A source with no rows: deletes-only buffers point at it. */
const emptySource: RowSource = {
  readRow: () => ({}),
  rawValues: () => [],
  rawValue: () => null,
  gather: (_c, _r, n) => ({ data: new Float64Array(n), nulls: undefined }),
  gatherRange: (_c, _s, n) => ({ data: new Float64Array(n), nulls: undefined }),
};
