import {
  apiValue,
  keyCompare,
  type ColumnDef,
  type StorageType,
  type Key,
  type KeyCompare,
  type Row,
  type TableSchema,
} from '../catalog/schema.js';
import { TidemarkError } from '../errors.js';
import type { PooledBuffer, Reservation } from '../mem/buffer.js';
import type { MemoryPool, WaitOptions } from '../mem/pool.js';
import {
  BLOCK_ROWS,
  isVarWidth,
  readInt64,
  readInt64Double,
  RowBlock,
  writeInt64,
  type ColumnVector,
} from './block.js';
import { physicalOf } from '../objectio/format.js';
import { BTree, type LeafView } from './btree.js';
import type { Allocator, Decoded } from '../objectio/encoding.js';
import type { CursorBuffer, LayerCursor } from './cursor.js';
import type { ColumnData, RowSource } from './source.js';
import { utf8Range } from '../util/bytes.js';

const BLOCK_SHIFT = 12; // log2(BLOCK_ROWS)
const BLOCK_MASK = BLOCK_ROWS - 1;
/** What one index entry costs on the JS heap, roughly (key, value slot, share of a node). */
export const INDEX_ENTRY_BYTES = 64;
const MIN_VERSIONS = 1024;

/** A lookup found no version of the key visible at the snapshot in this memtable. */
export const ABSENT = -2;
/** A lookup found the key deleted at the snapshot. */
export const DELETED = -1;

export interface CollectResult {
  n: number;
  last: Key | undefined;
  done: boolean;
  /** How many of the n entries are deletes (src -1). */
  deletes: number;
  /** When >= 0, the entries are rows rangeStart..rangeStart+n of source 0 and src/rows were not filled. */
  rangeStart: number;
}

export interface ProbeResult {
  row: number;
  newestTs: number;
  newestDeleted: boolean;
}

/** Rows and deletes of one transaction, placed in a memtable but not yet visible. */
export interface StagedWrite {
  readonly memtable: MemTable;
  readonly rowStart: number;
  readonly putKeys: readonly Key[];
  readonly delKeys: readonly Key[];
  readonly vStart: number;
}

/**
 * The in-memory part of a table: appendable row blocks in pooled memory, a version store, and a
 * B+ tree from primary key to the newest version. Every version records its commit timestamp and
 * the previous version of the same key, so a read at any snapshot walks back to what it may see.
 * A delete is a version without a row (a tombstone).
 *
 * Writes happen in two steps. `tryStage` (after `ensureRoom`, which may wait for memory) copies a
 * transaction's rows into free slots and reserves version slots, so that `publish` — run after the
 * commit record is durable — cannot fail: it only links the versions in. A staged write whose
 * commit fails is never published; its slots stay unused until the memtable is released.
 */
export class MemTable implements RowSource {
  readonly compare: KeyCompare;
  readonly index: BTree<Key>;
  private readonly blocks: RowBlock[] = [];
  private rowsClaimed = 0;
  private vTsBuf: PooledBuffer | undefined;
  private vRowBuf: PooledBuffer | undefined;
  private vPrevBuf: PooledBuffer | undefined;
  private vTs: Float64Array = new Float64Array(0);
  private vRow: Int32Array = new Int32Array(0);
  private vPrev: Int32Array = new Int32Array(0);
  private vClaimed = 0;
  private readonly indexRes: Reservation;
  /** Bytes of the index estimate claimed by staged versions (the rest is headroom). */
  private indexUsed = 0;
  private growth: Promise<unknown> = Promise.resolve();
  private staged = 0;
  private deleteVersions = 0;
  private readonly settledWaiters: (() => void)[] = [];
  private readonly varColumns: readonly ColumnDef[];
  /** See staysOrdered. */
  private ordered = true;
  private readonly probed: ProbeResult = { row: ABSENT, newestTs: Number.NaN, newestDeleted: false };
  /** Versions published. */
  versions = 0;
  /** Commit timestamps of the versions published here. */
  minTs = Infinity;
  maxTs = 0;
  /**
   * The smallest WAL LSN of a record whose writes were staged here (Infinity while none): replay
   * after a checkpoint must start there for this memtable's rows to come back.
   */
  firstLsn = Infinity;
  private released = false;

  constructor(
    readonly schema: TableSchema,
    private readonly pool: MemoryPool,
  ) {
    this.compare = keyCompare(schema.pk.storage);
    this.index = new BTree<Key>(this.compare);
    this.indexRes = pool.reserveSync(0, 'memtable.index');
    this.varColumns = schema.columns.filter((c) => isVarWidth(c.storage));
  }

  /** Pooled bytes held: blocks, versions, and the index's estimate. */
  get bytes(): number {
    let n = this.indexRes.bytes;
    for (const b of this.blocks) n += b.bytes;
    n += (this.vTsBuf?.capacity ?? 0) + (this.vRowBuf?.capacity ?? 0) + (this.vPrevBuf?.capacity ?? 0);
    return n;
  }

  get rows(): number {
    return this.rowsClaimed;
  }

  /**
   * Grow the memtable until `puts` and `deletes` more would fit (waiting for memory as needed). Others
   * may take the room before the caller claims it: the caller checks again with tryStage.
   */
  async ensureRoom(puts: readonly (readonly unknown[])[], deletes: number, wait: WaitOptions): Promise<void> {
    while (!this.hasRoom(puts, deletes)) {
      // One grower at a time; the next one finds the room made.
      const grow = this.growth.then(() =>
        this.hasRoom(puts, deletes) ? undefined : this.grow(puts, deletes, wait),
      );
      this.growth = grow.catch(() => undefined);
      await grow;
    }
  }

  private hasRoom(puts: readonly (readonly unknown[])[], deletes: number): boolean {
    if (this.released)
      throw new TidemarkError('CLOSED', `the storage of table ${this.schema.name} was released`);
    const n = puts.length;
    return (
      this.blocks.length * BLOCK_ROWS >= this.rowsClaimed + n &&
      this.vClaimed + n + deletes <= this.vTs.length &&
      this.indexUsed + (n + deletes) * INDEX_ENTRY_BYTES <= this.indexRes.bytes &&
      this.varRoom(puts, this.rowsClaimed)
    );
  }

  /** Writes staged here and not yet published or abandoned: a flush waits for none to be left. */
  get unpublished(): number {
    return this.staged;
  }

  /** Resolves once every staged write is published or abandoned. */
  whenSettled(): Promise<void> {
    if (this.staged === 0) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** A staged write whose commit failed: its slots stay unused. */
  abandon(_s: StagedWrite): void {
    this.settleOne();
  }

  private settleOne(): void {
    if (--this.staged === 0) for (const w of this.settledWaiters.splice(0)) w();
  }

  /** Stage now if the memtable has room for it all, else undefined (then `ensureRoom` grows it). */
  tryStage(
    puts: readonly (readonly unknown[])[],
    putKeys: readonly Key[],
    delKeys: readonly Key[],
  ): StagedWrite | undefined {
    if (this.released)
      throw new TidemarkError('CLOSED', `the storage of table ${this.schema.name} was released`);
    const n = puts.length;
    const versions = n + delKeys.length;
    const rowStart = this.rowsClaimed;
    if (this.blocks.length * BLOCK_ROWS < rowStart + n) return undefined;
    if (this.vClaimed + versions > this.vTs.length) return undefined;
    if (!this.varRoom(puts, rowStart)) return undefined;
    // The index estimate grows without waiting when it can; otherwise `ensureRoom` waits for it.
    const indexNeed = this.indexUsed + versions * INDEX_ENTRY_BYTES - this.indexRes.bytes;
    if (indexNeed > 0 && !this.indexRes.tryGrow(indexNeed)) return undefined;
    this.indexUsed += versions * INDEX_ENTRY_BYTES;
    this.rowsClaimed += n;
    const vStart = this.vClaimed;
    this.vClaimed += versions;
    for (let i = 0; i < n; i++) this.writeRow(rowStart + i, puts[i]!);
    this.staged++;
    return { memtable: this, rowStart, putKeys, delKeys, vStart };
  }

  /** Whether every var-width value of `puts` fits its block's data buffer as things stand. */
  private varRoom(puts: readonly (readonly unknown[])[], rowStart: number): boolean {
    const n = puts.length;
    if (n === 0) return true;
    for (const def of this.varColumns) {
      let row = rowStart;
      let i = 0;
      while (i < n) {
        const end = Math.min(n, i + (BLOCK_ROWS - (row & BLOCK_MASK)));
        let need = 0;
        for (let k = i; k < end; k++) need += byteLength(puts[k]![def.index]);
        const c = this.blocks[row >> BLOCK_SHIFT]!.columns[def.index]!;
        if (need > (c.data?.length ?? 0) - c.dataUsed) return false;
        row += end - i;
        i = end;
      }
    }
    return true;
  }

  /** Make room for `puts` and `deletes` more, allocating (and waiting for memory) as needed. */
  private async grow(
    puts: readonly (readonly unknown[])[],
    deletes: number,
    wait: WaitOptions,
  ): Promise<void> {
    const n = puts.length;
    const rowStart = this.rowsClaimed;
    while (this.blocks.length * BLOCK_ROWS < rowStart + n) {
      this.blocks.push(
        await RowBlock.allocate(
          this.schema,
          this.blocks.length * BLOCK_ROWS,
          this.pool,
          'memtable.block',
          wait,
        ),
      );
    }
    await this.ensureVersions(this.vClaimed + n + deletes, wait);
    const indexNeed = this.indexUsed + (n + deletes) * INDEX_ENTRY_BYTES - this.indexRes.bytes;
    if (indexNeed > 0) await this.indexRes.grow(indexNeed, wait);
    for (const def of this.varColumns) {
      let row = rowStart;
      let i = 0;
      while (i < n) {
        const end = Math.min(n, i + (BLOCK_ROWS - (row & BLOCK_MASK)));
        let need = 0;
        for (let k = i; k < end; k++) need += byteLength(puts[k]![def.index]);
        if (need > 0)
          await this.blocks[row >> BLOCK_SHIFT]!.columns[def.index]!.reserveData(
            this.pool,
            need,
            'memtable.data',
            wait,
          );
        row += end - i;
        i = end;
      }
    }
  }

  /** Make the staged versions visible at commit timestamp `ts`. Cannot fail. */
  publish(s: StagedWrite, ts: number): void {
    const n = s.putKeys.length;
    if (this.ordered) this.ordered = this.staysOrdered(s);
    for (let i = 0; i < n; i++) this.link(s.vStart + i, s.putKeys[i]!, s.rowStart + i, ts);
    for (let j = 0; j < s.delKeys.length; j++) this.link(s.vStart + n + j, s.delKeys[j]!, DELETED, ts);
    this.deleteVersions += s.delKeys.length;
    this.settleOne();
  }

  /**
   * Whether the memtable is still "append ordered" after publishing `s`: every version so far is a
   * new key greater than all before it, row r holds version r, and there are no deletes. Then rows
   * are in key order and in commit order, and a scan can read them as ranges of rows (see
   * collectRows) instead of walking the index. Bulk loads with increasing keys stay this way.
   */
  private staysOrdered(s: StagedWrite): boolean {
    if (s.delKeys.length > 0 || s.vStart !== this.versions || s.rowStart !== this.versions) return false;
    const cmp = this.compare;
    let prev = this.index.maxKey();
    for (const k of s.putKeys) {
      if (prev !== undefined && cmp(k, prev) <= 0) return false;
      prev = k;
    }
    return true;
  }

  private link(v: number, key: Key, row: number, ts: number): void {
    const prev = this.index.swap(key, v);
    this.vTs[v] = ts;
    this.vRow[v] = row;
    this.vPrev[v] = prev ?? -1;
    this.versions++;
    if (ts < this.minTs) this.minTs = ts;
    if (ts > this.maxTs) this.maxTs = ts;
  }

  /** The row id visible at snapshot `ts`, DELETED, or ABSENT. */
  find(key: Key, ts: number): number {
    const v = this.index.get(key);
    return v === undefined ? ABSENT : this.visibleFrom(v, ts);
  }

  /**
   * Push onto `out` keys in [from, to) about every `every` index entries (the first key of an index
   * leaf each time that many have passed), ascending.
   */
  sampleKeys(from: Key | undefined, to: Key | undefined, every: number, out: Key[]): void {
    let { leaf, i } = this.index.cursor(from, false);
    let since = 0;
    while (leaf !== null) {
      const keys = leaf.keys;
      if (i < keys.length) {
        const k = keys[i]!;
        if (to !== undefined && this.compare(k, to) >= 0) return;
        if (since >= every) {
          out.push(k);
          since = 0;
        }
        since += keys.length - i;
      }
      leaf = leaf.next;
      i = 0;
    }
  }

  /**
   * One index descent for what a write needs to know: the row visible at `ts` (or ABSENT or
   * DELETED) in `probed.row`, and the newest version's timestamp (NaN if none) and kind.
   */
  probe(key: Key, ts: number): ProbeResult {
    const p = this.probed;
    // Past the greatest key (appends in key order): absent, without a descent.
    const max = this.index.maxKey();
    const v = max !== undefined && this.compare(key, max) > 0 ? undefined : this.index.get(key);
    if (v === undefined) {
      p.row = ABSENT;
      p.newestTs = Number.NaN;
      p.newestDeleted = false;
    } else {
      p.row = this.visibleFrom(v, ts);
      p.newestTs = this.vTs[v]!;
      p.newestDeleted = this.vRow[v]! < 0;
    }
    return p;
  }

  /**
   * Fill `src`/`rows` with up to `max` visible entries of keys in [from, to) (after `from` when
   * `after`), in key order: src 0 and the row, or src -1 for a delete. Keys go to `keys` when given.
   * Returns how many, the last key, and whether the range is exhausted. Synchronous.
   */
  collectRows(
    from: Key | undefined,
    after: boolean,
    to: Key | undefined,
    ts: number,
    max: number,
    src: Int32Array,
    rows: Int32Array,
    keys: Key[] | undefined,
  ): CollectResult {
    if (this.ordered) return this.collectOrdered(from, after, to, ts, max, src, rows, keys);
    const cmp = this.compare;
    const vTs = this.vTs;
    const vRow = this.vRow;
    const vPrev = this.vPrev;
    let { leaf, i } = this.index.cursor(from, after);
    let n = 0;
    let deletes = 0;
    let last: Key | undefined;
    while (leaf !== null) {
      const lk = leaf.keys;
      const lv = leaf.vals;
      const len = lk.length;
      // Whole leaves below the upper bound need no per-key comparison.
      const bounded = to !== undefined && len > 0 && cmp(lk[len - 1]!, to) >= 0;
      for (; i < len; i++) {
        const key = lk[i]!;
        if (bounded && cmp(key, to) >= 0) return { n, last, done: true, deletes, rangeStart: -1 };
        let v = lv[i]!;
        while (v >= 0 && vTs[v]! > ts) v = vPrev[v]!;
        if (v < 0) continue;
        if (n === max) return { n, last, done: false, deletes, rangeStart: -1 };
        const r = vRow[v]!;
        if (r < 0) deletes++;
        src[n] = r < 0 ? -1 : 0;
        rows[n] = r;
        if (keys !== undefined) keys.push(key);
        last = key;
        n++;
      }
      leaf = leaf.next;
      i = 0;
    }
    return { n, last, done: true, deletes, rangeStart: -1 };
  }

  /** collectRows for an append-ordered memtable: visible rows form a prefix, keys are sorted rows. */
  private collectOrdered(
    from: Key | undefined,
    after: boolean,
    to: Key | undefined,
    ts: number,
    max: number,
    src: Int32Array,
    rows: Int32Array,
    keys: Key[] | undefined,
  ): CollectResult {
    // Versions are in commit order: the ones visible at ts are a prefix.
    let lo = 0;
    let hi = this.versions;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.vTs[mid]! <= ts) lo = mid + 1;
      else hi = mid;
    }
    const visible = lo;
    const start = from === undefined ? 0 : this.rowBound(from, after, visible);
    const end = to === undefined ? visible : this.rowBound(to, false, visible);
    const n = Math.max(0, Math.min(max, end - start));
    // Rows start..start+n: a range. Per-row arrays only when a merge with own writes needs them.
    if (keys !== undefined) {
      for (let i = 0; i < n; i++) {
        src[i] = 0;
        rows[i] = start + i;
        keys.push(this.keyOfRow(start + i));
      }
    }
    const last = n > 0 ? this.keyOfRow(start + n - 1) : undefined;
    return { n, last, done: start + n >= end, deletes: 0, rangeStart: keys === undefined ? start : -1 };
  }

  /** In an append-ordered memtable: the first row among [0, limit) with key >= k (> k when after). */
  private rowBound(k: Key, after: boolean, limit: number): number {
    const cmp = this.compare;
    let lo = 0;
    let hi = limit;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = cmp(this.keyOfRow(mid), k);
      if (c < 0 || (after && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The primary key of a row, as the index holds it. */
  keyOfRow(row: number): Key {
    const v = this.rawValue(row, this.schema.pk.index);
    return typeof v === 'boolean' ? (v ? 1 : 0) : (v as Key);
  }

  /** The commit timestamp of the newest version of `key` here, and whether it is a delete. */
  newest(key: Key): { ts: number; deleted: boolean } | undefined {
    const v = this.index.get(key);
    return v === undefined ? undefined : { ts: this.vTs[v]!, deleted: this.vRow[v]! < 0 };
  }

  /** Walk a version chain back to the newest version at or before `ts`. */
  visibleFrom(v: number, ts: number): number {
    const vTs = this.vTs;
    while (v >= 0 && vTs[v]! > ts) v = this.vPrev[v]!;
    return v < 0 ? ABSENT : this.vRow[v]!;
  }

  /**
   * Visit keys in [from, to) in order with what is visible at `ts` (a row id or DELETED; keys with
   * nothing visible are skipped), synchronously, until fn returns false. `after` excludes `from`.
   */
  forEachVisible(
    from: Key | undefined,
    after: boolean,
    to: Key | undefined,
    ts: number,
    fn: (key: Key, row: number) => boolean,
  ): void {
    const cmp = this.compare;
    this.index.forEachFrom(from, (key, v) => {
      if (after && cmp(key, from!) === 0) return true;
      if (to !== undefined && cmp(key, to) >= 0) return false;
      const row = this.visibleFrom(v, ts);
      return row === ABSENT ? true : fn(key, row);
    });
  }

  /** One value of a row, as the API returns it (a fresh copy for bytes). */
  value(row: number, col: number): unknown {
    const c = this.blocks[row >> BLOCK_SHIFT]!.columns[col]!;
    const i = row & BLOCK_MASK;
    if (c.nullMap !== undefined && c.nullMap[i] === 1) return null;
    switch (c.def.type) {
      case 'timestamp':
        return new Date(c.f64![i]!);
      case 'decimal':
        return apiValue(c.def, this.rawValue(row, col));
      default:
        return this.rawValue(row, col);
    }
  }

  /** A row object holding `cols` (column indexes, all if undefined). */
  readRow(row: number, cols: readonly number[] | undefined): Row {
    const out: Row = {};
    const defs = this.schema.columns;
    if (cols === undefined) for (const d of defs) out[d.name] = this.value(row, d.index);
    else for (const c of cols) out[defs[c]!.name] = this.value(row, c);
    return out;
  }

  /** The row's values in column order, as the engine keeps them (timestamps in ms, bytes copied). */
  rawValues(row: number): unknown[] {
    const n = this.schema.columns.length;
    const out = new Array<unknown>(n);
    for (let c = 0; c < n; c++) out[c] = this.rawValue(row, c);
    return out;
  }

  /** One value as the engine keeps it. */
  rawValue(row: number, col: number): unknown {
    const c = this.blocks[row >> BLOCK_SHIFT]!.columns[col]!;
    const i = row & BLOCK_MASK;
    if (c.nullMap !== undefined && c.nullMap[i] === 1) return null;
    switch (c.def.storage) {
      case 'int32':
        return c.i32![i];
      case 'bool':
        return c.u8![i] === 1;
      case 'string':
        return varText(c, i);
      case 'bytes':
        return varSlice(c, i).slice();
      case 'int64':
      case 'uint64':
        return readInt64(c, i);
      default:
        return c.f64![i];
    }
  }

  gather(col: number, rows: Int32Array, n: number): { data: ColumnData; nulls: Uint8Array | undefined } {
    const def = this.schema.columns[col]!;
    const blocks = this.blocks;
    let nulls: Uint8Array | undefined;
    if (def.nullable) {
      nulls = new Uint8Array(n);
      this.gatherFixed(col, rows, n, nulls, (c) => c.nullMap!);
    }
    const fixed = FIXED[def.storage];
    if (fixed !== undefined) {
      const out = fixed.make(n);
      this.gatherFixed(col, rows, n, out, fixed.view);
      return { data: zeroNulls(out, nulls), nulls };
    }
    if (def.storage === 'int64' || def.storage === 'uint64') {
      // Doubles while every value is exact; else every value as the API has it (bigints past 2^53).
      const f = new Float64Array(n);
      let wide = false;
      for (let i = 0; i < n && !wide; i++) {
        if (nulls?.[i] === 1) continue;
        const r = rows[i]!;
        const x = readInt64Double(blocks[r >> BLOCK_SHIFT]!.columns[col]!, r & BLOCK_MASK);
        if (Number.isSafeInteger(x)) f[i] = x;
        else wide = true;
      }
      if (!wide) return { data: f, nulls };
    }
    const out = new Array<number | bigint | string | Uint8Array | null>(n);
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      const c = blocks[r >> BLOCK_SHIFT]!.columns[col]!;
      const at = r & BLOCK_MASK;
      if (nulls?.[i] === 1) out[i] = null;
      else if (def.storage === 'int64' || def.storage === 'uint64') out[i] = readInt64(c, at);
      else if (def.storage === 'string') out[i] = varText(c, at);
      else out[i] = varSlice(c, at).slice();
    }
    return { data: out as ColumnData, nulls };
  }

  gatherRange(col: number, start: number, n: number): { data: ColumnData; nulls: Uint8Array | undefined } {
    const def = this.schema.columns[col]!;
    const fixed = FIXED[def.storage];
    if (fixed === undefined) {
      const rows = new Int32Array(n);
      for (let i = 0; i < n; i++) rows[i] = start + i;
      return this.gather(col, rows, n);
    }
    const first = start >> BLOCK_SHIFT;
    const within = first === (start + n - 1) >> BLOCK_SHIFT;
    // Within one block a slice is one allocation and one copy; across blocks, one copy per block.
    const slice = (make: (k: number) => FixedArray, view: (c: ColumnVector) => FixedArray): FixedArray => {
      if (within) {
        const off = start & BLOCK_MASK;
        return view(this.blocks[first]!.columns[col]!).slice(off, off + n);
      }
      const out = make(n);
      for (let i = 0; i < n;) {
        const r = start + i;
        const off = r & BLOCK_MASK;
        const len = Math.min(n - i, BLOCK_ROWS - off);
        out.set(view(this.blocks[r >> BLOCK_SHIFT]!.columns[col]!).subarray(off, off + len), i);
        i += len;
      }
      return out;
    };
    const nulls = def.nullable
      ? (slice(
          (k) => new Uint8Array(k),
          (c) => c.nullMap!,
        ) as Uint8Array)
      : undefined;
    return { data: zeroNulls(slice(fixed.make, fixed.view), nulls), nulls };
  }

  /**
   * Copy a fixed-width column of rows into `out`: runs of consecutive rows within a block are copied
   * as one slice, the rest value by value.
   */
  private gatherFixed(
    col: number,
    rows: Int32Array,
    n: number,
    out: FixedArray,
    view: (c: ColumnVector) => FixedArray,
  ): void {
    const blocks = this.blocks;
    let i = 0;
    while (i < n) {
      const r = rows[i]!;
      const off = r & BLOCK_MASK;
      // How far the run of consecutive rows goes, within this block.
      let j = i + 1;
      const limit = Math.min(n, i + (BLOCK_ROWS - off));
      while (j < limit && rows[j] === r + (j - i)) j++;
      const v = view(blocks[r >> BLOCK_SHIFT]!.columns[col]!);
      if (j - i > 8) out.set(v.subarray(off, off + (j - i)), i);
      else for (let k = i; k < j; k++) out[k] = v[off + (k - i)]!;
      i = j;
    }
  }

  /** Whether the memtable is append-ordered (see staysOrdered). */
  get isOrdered(): boolean {
    return this.ordered;
  }

  /**
   * Column `col` of `rows` in an object's physical layout (for a flush): numbers as typed arrays,
   * strings and bytes as offsets into their UTF-8 or raw bytes, copied without decoding. `alloc`
   * provides the arrays.
   */
  physicalColumn(col: number, rows: ArrayLike<number>, n: number, alloc: Allocator): Decoded {
    const def = this.schema.columns[col]!;
    const blocks = this.blocks;
    let nulls: Uint8Array | undefined;
    if (def.nullable) {
      nulls = alloc.u8(n);
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        nulls[i] = blocks[r >> BLOCK_SHIFT]!.columns[col]!.nullMap![r & BLOCK_MASK]!;
      }
    }
    const physical = physicalOf(def.storage);
    const out: Decoded = { n, physical, ...(nulls !== undefined ? { nulls } : {}) };
    if (physical === 'var') {
      let total = 0;
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        if (nulls?.[i] !== 1)
          total += blocks[r >> BLOCK_SHIFT]!.columns[col]!.refs![2 * (r & BLOCK_MASK) + 1]!;
      }
      const offsets = alloc.u32(n + 1);
      const data = alloc.u8(total);
      let at = 0;
      for (let i = 0; i < n; i++) {
        offsets[i] = at;
        if (nulls?.[i] === 1) continue;
        const r = rows[i]!;
        const b = varSlice(blocks[r >> BLOCK_SHIFT]!.columns[col]!, r & BLOCK_MASK);
        data.set(b, at);
        at += b.length;
      }
      offsets[n] = at;
      out.offsets = offsets;
      out.data = data;
      return out;
    }
    const make = physical === 'i32' ? alloc.i32(n) : physical === 'u8' ? alloc.u8(n) : alloc.f64(n);
    const view =
      physical === 'i32'
        ? (c: ColumnVector) => c.i32!
        : physical === 'u8'
          ? (c: ColumnVector) => c.u8!
          : (c: ColumnVector) => c.f64!;
    const rowIds = rows instanceof Int32Array ? rows : Int32Array.from(rows);
    if (def.storage === 'int64' || def.storage === 'uint64') {
      // Doubles of the values; every value exactly too when some are beyond ±2^53.
      const f = make as Float64Array;
      let wide = false;
      for (let i = 0; i < n; i++) {
        const r = rowIds[i]!;
        const c = blocks[r >> BLOCK_SHIFT]!.columns[col]!;
        const x = readInt64Double(c, r & BLOCK_MASK);
        if (!Number.isSafeInteger(x)) wide = true;
        f[i] = x;
      }
      if (nulls !== undefined) for (let i = 0; i < n; i++) if (nulls[i] === 1) f[i] = 0;
      out.f64 = f;
      if (wide) {
        const w = alloc.i64(n);
        for (let i = 0; i < n; i++) {
          const r = rowIds[i]!;
          w[i] = nulls?.[i] === 1 ? 0n : blocks[r >> BLOCK_SHIFT]!.columns[col]!.i64![r & BLOCK_MASK]!;
        }
        out.wide = w;
      }
      return out;
    }
    this.gatherFixed(col, rowIds, n, make, view);
    if (nulls !== undefined) for (let i = 0; i < n; i++) if (nulls[i] === 1) make[i] = 0;
    if (physical === 'i32') out.i32 = make as Int32Array;
    else if (physical === 'u8') out.u8 = make as Uint8Array;
    else out.f64 = make as Float64Array;
    return out;
  }

  /**
   * For a flush of this (frozen) memtable: from `state`, keys in order with the versions a reader may
   * still need, newest first (all with a commit timestamp after `oldestSnapshot`, and the newest at
   * or before it), calling fn(key, ts, row) per version (row DELETED for a delete), whole keys at a
   * time, until fn's keys reach `max` versions. Returns false at the end. The index must not change
   * meanwhile: only a frozen memtable is flushed.
   */
  retained(
    state: { leaf: unknown; i: number } | undefined,
    oldestSnapshot: number,
    max: number,
    fn: (key: Key, ts: number, row: number) => void,
  ): { leaf: unknown; i: number } | undefined {
    const vTs = this.vTs;
    const vRow = this.vRow;
    const vPrev = this.vPrev;
    let cur = (state ?? this.index.cursor(undefined, false)) as { leaf: LeafView<Key> | null; i: number };
    let count = 0;
    while (cur.leaf !== null) {
      const { keys, vals } = cur.leaf;
      while (cur.i < keys.length) {
        if (count >= max) return cur;
        const key = keys[cur.i]!;
        for (let v = vals[cur.i]!; v >= 0; v = vPrev[v]!) {
          fn(key, vTs[v]!, vRow[v]!);
          count++;
          if (vTs[v]! <= oldestSnapshot) break;
        }
        cur.i++;
      }
      cur = { leaf: cur.leaf.next, i: 0 };
    }
    return undefined;
  }

  /** Deletes published here (an upper bound of the keys a flush's tombstone object holds). */
  get deletes(): number {
    return this.deleteVersions;
  }

  /** Keys in the index. */
  get keys(): number {
    return this.index.size;
  }

  cursor(ts: number, from: Key | undefined, after: boolean, to: Key | undefined): LayerCursor {
    return new MemCursor(this, ts, from, after, to);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const b of this.blocks) b.release();
    this.blocks.length = 0;
    this.vTsBuf?.release();
    this.vRowBuf?.release();
    this.vPrevBuf?.release();
    this.vTsBuf = this.vRowBuf = this.vPrevBuf = undefined;
    this.indexRes.release();
  }

  private async ensureVersions(need: number, wait: WaitOptions): Promise<void> {
    if (need <= this.vTs.length) return;
    const cap = Math.max(MIN_VERSIONS, need, this.vTs.length * 2);
    const ts = await this.pool.allocate(cap * 8, 'memtable.versions', wait);
    let row: PooledBuffer | undefined;
    let prev: PooledBuffer | undefined;
    try {
      row = await this.pool.allocate(cap * 4, 'memtable.versions', wait);
      prev = await this.pool.allocate(cap * 4, 'memtable.versions', wait);
    } catch (e) {
      ts.release();
      row?.release();
      throw e;
    }
    const nts = ts.float64(0, cap);
    const nrow = row.int32(0, cap);
    const nprev = prev.int32(0, cap);
    nts.set(this.vTs);
    nrow.set(this.vRow);
    nprev.set(this.vPrev);
    this.vTsBuf?.release();
    this.vRowBuf?.release();
    this.vPrevBuf?.release();
    this.vTsBuf = ts;
    this.vRowBuf = row;
    this.vPrevBuf = prev;
    this.vTs = nts;
    this.vRow = nrow;
    this.vPrev = nprev;
  }

  private writeRow(row: number, values: readonly unknown[]): void {
    const block = this.blocks[row >> BLOCK_SHIFT]!;
    const i = row & BLOCK_MASK;
    for (const c of block.columns) {
      const v = values[c.def.index];
      if (c.nullMap !== undefined) {
        c.nullMap[i] = v === null ? 1 : 0;
        if (v === null) continue;
      }
      switch (c.def.storage) {
        case 'int32':
          c.i32![i] = v as number;
          break;
        case 'int64':
        case 'uint64':
          writeInt64(c, i, v as number | bigint);
          break;
        case 'bool':
          c.u8![i] = v === true ? 1 : 0;
          break;
        case 'string': {
          const r = encodeIntoData(c, v as string);
          c.refs![2 * i] = r.at;
          c.refs![2 * i + 1] = r.length;
          break;
        }
        case 'bytes': {
          const b = v as Uint8Array;
          const at = c.dataUsed;
          // An empty value needs no data buffer (a block of only empty values has none).
          if (b.length > 0) c.dataBytes!.set(b, at);
          c.dataUsed += b.length;
          c.refs![2 * i] = at;
          c.refs![2 * i + 1] = b.length;
          break;
        }
        default:
          c.f64![i] = v as number;
      }
    }
  }
}

type FixedArray = Int32Array | Float64Array | Uint8Array;

/** How fixed-width columns are allocated and viewed; 64-bit integers are handed out as number[]. */
const FIXED: Partial<
  Record<StorageType, { make: (n: number) => FixedArray; view: (c: ColumnVector) => FixedArray }>
> = {
  int32: { make: (n) => new Int32Array(n), view: (c) => c.i32! },
  float64: { make: (n) => new Float64Array(n), view: (c) => c.f64! },
  timestamp: { make: (n) => new Float64Array(n), view: (c) => c.f64! },
  bool: { make: (n) => new Uint8Array(n), view: (c) => c.u8! },
};

/** Nulls read as 0 in typed arrays (the null map says which they are). */
function zeroNulls(out: FixedArray, nulls: Uint8Array | undefined): FixedArray {
  if (nulls !== undefined) for (let i = 0; i < out.length; i++) if (nulls[i] === 1) out[i] = 0;
  return out;
}

/** A string value, decoded straight from the column's bytes. */
function varText(c: ColumnVector, i: number): string {
  const at = c.refs![2 * i]!;
  return utf8Range(c.dataBytes!, at, at + c.refs![2 * i + 1]!);
}

function varSlice(c: ColumnVector, i: number): Uint8Array {
  const at = c.refs![2 * i]!;
  const len = c.refs![2 * i + 1]!;
  return len === 0 ? new Uint8Array(0) : c.dataBytes!.subarray(at, at + len);
}

function encodeIntoData(c: ColumnVector, s: string): { at: number; length: number } {
  const at = c.dataUsed;
  if (s.length === 0) return { at, length: 0 };
  const written = c.dataBuf!.write(s, at, 'utf8');
  c.dataUsed += written;
  return { at, length: written };
}

/** UTF-8 or raw length of a var-width value (0 for null). */
export function byteLength(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (v instanceof Uint8Array) return v.length;
  return 0;
}

/** Entries per buffer: index walks fill arrays, so modestly; an append-ordered memtable gives free ranges. */
const CURSOR_ENTRIES = 1024;
const FIRST_CURSOR_ENTRIES = 128;
const RANGE_ENTRIES = 65536;

/**
 * A memtable's entries for a scan, 128 at first and twice as many each time up to 1024; an
 * append-ordered memtable gives row ranges.
 */
class MemCursor implements LayerCursor {
  private done = false;
  /** Entries asked for by the next call: doubled each call, so a short range allocates little. */
  private want = FIRST_CURSOR_ENTRIES;

  constructor(
    private readonly mt: MemTable,
    private readonly ts: number,
    private from: Key | undefined,
    private after: boolean,
    private readonly to: Key | undefined,
  ) {}

  next(): CursorBuffer | undefined {
    if (this.done) return undefined;
    const mt = this.mt;
    const ordered = mt.isOrdered;
    const max = ordered ? RANGE_ENTRIES : this.want;
    this.want = Math.min(CURSOR_ENTRIES, this.want * 2);
    const src = new Int32Array(ordered ? 0 : max);
    const rows = new Int32Array(ordered ? 0 : max);
    const keys: Key[] | undefined = ordered ? undefined : [];
    const r = mt.collectRows(this.from, this.after, this.to, this.ts, max, src, rows, keys);
    this.from = r.last;
    this.after = true;
    if (r.done) this.done = true;
    if (r.n === 0) return undefined;
    if (r.rangeStart >= 0) {
      const start = r.rangeStart;
      return {
        n: r.n,
        keyAt: (i) => mt.keyOfRow(start + i),
        source: mt,
        rows: undefined,
        rangeStart: start,
        deleted: undefined,
        release: undefined,
      };
    }
    let deleted: Uint8Array | undefined;
    if (r.deletes > 0) {
      deleted = new Uint8Array(r.n);
      for (let i = 0; i < r.n; i++) if (src[i]! < 0) deleted[i] = 1;
    }
    return {
      n: r.n,
      keyAt: (i) => keys![i]!,
      source: mt,
      rows: rows.subarray(0, r.n),
      rangeStart: -1,
      deleted,
      release: undefined,
    };
  }

  close(): void {
    this.done = true;
  }
}
