import { keyCompare, type Key, type KeyCompare, type Row, type TableSchema } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import type { PooledBuffer, Reservation } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import type { WaitOptions } from '../mem/types.js';
import { BTree, type LeafView } from './btree.js';
import type { Allocator, Decoded } from '../objectio/encoding.js';
import type { LayerCursor } from './cursor.js';
import { MemCursor, type CollectResult } from './mem_cursor.js';
import { MemRows } from './mem_rows.js';
import type { ColumnData, RowSource } from './source.js';

/** What one index entry costs on the JS heap, roughly (key, value slot, share of a node). */
export const INDEX_ENTRY_BYTES = 64;
const MIN_VERSIONS = 1024;

/** A lookup found no version of the key visible at the snapshot in this memtable. */
export const ABSENT = -2;
/** A lookup found the key deleted at the snapshot. */
export const DELETED = -1;

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
 * The in-memory part of a table: appendable row blocks in pooled memory (MemRows), a version store,
 * and a B+ tree from primary key to the newest version. Every version records its commit timestamp
 * and the previous version of the same key, so a read at any snapshot walks back to what it may see.
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
  private readonly store: MemRows;
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
    this.store = new MemRows(schema, pool);
  }

  /** Pooled bytes held: blocks, versions, and the index's estimate. */
  get bytes(): number {
    let n = this.indexRes.bytes + this.store.bytes;
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
      this.store.capacity >= this.rowsClaimed + n &&
      this.vClaimed + n + deletes <= this.vTs.length &&
      this.indexUsed + (n + deletes) * INDEX_ENTRY_BYTES <= this.indexRes.bytes &&
      this.store.varRoom(puts, this.rowsClaimed)
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
    if (this.store.capacity < rowStart + n) return undefined;
    if (this.vClaimed + versions > this.vTs.length) return undefined;
    if (!this.store.varRoom(puts, rowStart)) return undefined;
    // The index estimate grows without waiting when it can; otherwise `ensureRoom` waits for it.
    const indexNeed = this.indexUsed + versions * INDEX_ENTRY_BYTES - this.indexRes.bytes;
    if (indexNeed > 0 && !this.indexRes.tryGrow(indexNeed)) return undefined;
    this.indexUsed += versions * INDEX_ENTRY_BYTES;
    this.rowsClaimed += n;
    const vStart = this.vClaimed;
    this.vClaimed += versions;
    for (let i = 0; i < n; i++) this.store.writeRow(rowStart + i, puts[i]!);
    this.staged++;
    return { memtable: this, rowStart, putKeys, delKeys, vStart };
  }

  /** Make room for `puts` and `deletes` more, allocating (and waiting for memory) as needed. */
  private async grow(
    puts: readonly (readonly unknown[])[],
    deletes: number,
    wait: WaitOptions,
  ): Promise<void> {
    const n = puts.length;
    const rowStart = this.rowsClaimed;
    await this.store.addBlocks(rowStart + n, wait);
    await this.ensureVersions(this.vClaimed + n + deletes, wait);
    const indexNeed = this.indexUsed + (n + deletes) * INDEX_ENTRY_BYTES - this.indexRes.bytes;
    if (indexNeed > 0) await this.indexRes.grow(indexNeed, wait);
    await this.store.reserveVar(puts, rowStart, wait);
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

  // Rows by row id (the RowSource a scan hands out, the columns a flush writes): see MemRows.

  keyOfRow(row: number): Key {
    return this.store.keyOfRow(row);
  }

  readRow(row: number, cols: readonly number[] | undefined): Row {
    return this.store.readRow(row, cols);
  }

  rawValue(row: number, col: number): unknown {
    return this.store.rawValue(row, col);
  }

  rawValues(row: number): unknown[] {
    return this.store.rawValues(row);
  }

  gather(col: number, rows: Int32Array, n: number): { data: ColumnData; nulls: Uint8Array | undefined } {
    return this.store.gather(col, rows, n);
  }

  gatherRange(col: number, start: number, n: number): { data: ColumnData; nulls: Uint8Array | undefined } {
    return this.store.gatherRange(col, start, n);
  }

  physicalColumn(col: number, rows: ArrayLike<number>, n: number, alloc: Allocator): Decoded {
    return this.store.physicalColumn(col, rows, n, alloc);
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

  /** Whether the memtable is append-ordered (see staysOrdered). */
  get isOrdered(): boolean {
    return this.ordered;
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
    this.store.release();
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
}
