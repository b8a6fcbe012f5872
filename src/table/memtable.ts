import { keyCompare, type Key, type KeyCompare, type Row, type TableSchema } from '../catalog/schema.js';
import type { PooledBuffer, Reservation } from '../mem/buffer.js';
import type { MemoryPool, WaitOptions } from '../mem/pool.js';
import { BLOCK_ROWS, isVarWidth, RowBlock, type ColumnVector } from './block.js';
import { BTree } from './btree.js';
import type { ColumnData, RowSource } from './source.js';

const BLOCK_SHIFT = 12; // log2(BLOCK_ROWS)
const BLOCK_MASK = BLOCK_ROWS - 1;
/** What one index entry costs on the JS heap, roughly (key, value slot, share of a node). */
export const INDEX_ENTRY_BYTES = 64;
const MIN_VERSIONS = 1024;

/** A lookup found no version of the key visible at the snapshot in this memtable. */
export const ABSENT = -2;
/** A lookup found the key deleted at the snapshot. */
export const DELETED = -1;

/** Rows and deletes of one transaction, placed in a memtable but not yet visible. */
export interface StagedWrite {
  readonly memtable: MemTable;
  readonly rowStart: number;
  readonly putKeys: readonly Key[];
  readonly delKeys: readonly Key[];
  readonly vStart: number;
}

const decoder = new TextDecoder();

/**
 * The in-memory part of a table: appendable row blocks in pooled memory, a version store, and a
 * B+ tree from primary key to the newest version. Every version records its commit timestamp and
 * the previous version of the same key, so a read at any snapshot walks back to what it may see.
 * A delete is a version without a row (a tombstone).
 *
 * Writes happen in two steps. `stage` (async: it may wait for memory) copies a transaction's rows
 * into free slots and reserves version slots, so that `publish` — run after the commit record is
 * durable — cannot fail: it only links the versions in. A staged write whose commit fails is never
 * published; its slots stay unused until the memtable is released.
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
  private lock: Promise<unknown> = Promise.resolve();
  /** Versions published. */
  versions = 0;
  /** Commit timestamps of the versions published here. */
  minTs = Infinity;
  maxTs = 0;
  private released = false;

  constructor(
    readonly schema: TableSchema,
    private readonly pool: MemoryPool,
  ) {
    this.compare = keyCompare(schema.pk.type);
    this.index = new BTree<Key>(this.compare);
    this.indexRes = pool.reserveSync(0, 'memtable.index');
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
   * Place rows (values in column order, already checked) and reserve versions for them and for
   * deletes. Staging is serialized per memtable; it waits for memory when the limit is reached.
   */
  stage(
    puts: readonly (readonly unknown[])[],
    putKeys: readonly Key[],
    delKeys: readonly Key[],
    wait: WaitOptions,
  ): Promise<StagedWrite> {
    const run = this.lock.then(() => this.stageNow(puts, putKeys, delKeys, wait));
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async stageNow(
    puts: readonly (readonly unknown[])[],
    putKeys: readonly Key[],
    delKeys: readonly Key[],
    wait: WaitOptions,
  ): Promise<StagedWrite> {
    if (this.released) throw new Error('memtable released');
    const n = puts.length;
    const rowStart = this.rowsClaimed;
    // Secure every byte first (this may wait); claim and write only once nothing can fail.
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
    await this.ensureVersions(this.vClaimed + n + delKeys.length, wait);
    await this.indexRes.grow((n + delKeys.length) * INDEX_ENTRY_BYTES, wait);
    for (const def of this.schema.columns) {
      if (!isVarWidth(def.type) || n === 0) continue;
      // Data bytes needed per block touched.
      let row = rowStart;
      let i = 0;
      while (i < n) {
        const b = row >> BLOCK_SHIFT;
        const end = Math.min(n, i + (BLOCK_ROWS - (row & BLOCK_MASK)));
        let need = 0;
        for (let k = i; k < end; k++) need += byteLength(puts[k]![def.index]);
        if (need > 0)
          await this.blocks[b]!.columns[def.index]!.reserveData(this.pool, need, 'memtable.data', wait);
        row += end - i;
        i = end;
      }
    }
    this.rowsClaimed += n;
    const vStart = this.vClaimed;
    this.vClaimed += n + delKeys.length;
    for (let i = 0; i < n; i++) this.writeRow(rowStart + i, puts[i]!);
    return { memtable: this, rowStart, putKeys, delKeys, vStart };
  }

  /** Make the staged versions visible at commit timestamp `ts`. Cannot fail. */
  publish(s: StagedWrite, ts: number): void {
    const n = s.putKeys.length;
    for (let i = 0; i < n; i++) this.link(s.vStart + i, s.putKeys[i]!, s.rowStart + i, ts);
    for (let j = 0; j < s.delKeys.length; j++) this.link(s.vStart + n + j, s.delKeys[j]!, DELETED, ts);
  }

  private link(v: number, key: Key, row: number, ts: number): void {
    const prev = this.index.get(key);
    this.vTs[v] = ts;
    this.vRow[v] = row;
    this.vPrev[v] = prev ?? -1;
    this.index.set(key, v);
    this.versions++;
    if (ts < this.minTs) this.minTs = ts;
    if (ts > this.maxTs) this.maxTs = ts;
  }

  /** The row id visible at snapshot `ts`, DELETED, or ABSENT. */
  find(key: Key, ts: number): number {
    const v = this.index.get(key);
    return v === undefined ? ABSENT : this.visibleFrom(v, ts);
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
      case 'int32':
        return c.i32![i];
      case 'bool':
        return c.u8![i] === 1;
      case 'timestamp':
        return new Date(c.f64![i]!);
      case 'string':
        return decoder.decode(varSlice(c, i));
      case 'bytes':
        return varSlice(c, i).slice();
      default:
        return c.f64![i];
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
    const out = new Array<unknown>(this.schema.columns.length);
    const block = this.blocks[row >> BLOCK_SHIFT]!;
    const i = row & BLOCK_MASK;
    for (const c of block.columns) {
      if (c.nullMap !== undefined && c.nullMap[i] === 1) {
        out[c.def.index] = null;
        continue;
      }
      switch (c.def.type) {
        case 'int32':
          out[c.def.index] = c.i32![i];
          break;
        case 'bool':
          out[c.def.index] = c.u8![i] === 1;
          break;
        case 'string':
          out[c.def.index] = decoder.decode(varSlice(c, i));
          break;
        case 'bytes':
          out[c.def.index] = varSlice(c, i).slice();
          break;
        default:
          out[c.def.index] = c.f64![i];
      }
    }
    return out;
  }

  gather(col: number, rows: Int32Array, n: number): { data: ColumnData; nulls: Uint8Array | undefined } {
    const def = this.schema.columns[col]!;
    const blocks = this.blocks;
    let nulls: Uint8Array | undefined;
    if (def.nullable) {
      nulls = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        nulls[i] = blocks[r >> BLOCK_SHIFT]!.columns[col]!.nullMap![r & BLOCK_MASK]!;
      }
    }
    switch (def.type) {
      case 'int32': {
        const out = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          const r = rows[i]!;
          out[i] = blocks[r >> BLOCK_SHIFT]!.columns[col]!.i32![r & BLOCK_MASK]!;
        }
        if (nulls !== undefined) for (let i = 0; i < n; i++) if (nulls[i] === 1) out[i] = 0;
        return { data: out, nulls };
      }
      case 'float64':
      case 'timestamp': {
        const out = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const r = rows[i]!;
          out[i] = blocks[r >> BLOCK_SHIFT]!.columns[col]!.f64![r & BLOCK_MASK]!;
        }
        if (nulls !== undefined) for (let i = 0; i < n; i++) if (nulls[i] === 1) out[i] = 0;
        return { data: out, nulls };
      }
      case 'bool': {
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) {
          const r = rows[i]!;
          out[i] = blocks[r >> BLOCK_SHIFT]!.columns[col]!.u8![r & BLOCK_MASK]!;
        }
        if (nulls !== undefined) for (let i = 0; i < n; i++) if (nulls[i] === 1) out[i] = 0;
        return { data: out, nulls };
      }
      case 'int64': {
        const out = new Array<number | null>(n);
        for (let i = 0; i < n; i++) {
          const r = rows[i]!;
          out[i] = nulls?.[i] === 1 ? null : blocks[r >> BLOCK_SHIFT]!.columns[col]!.f64![r & BLOCK_MASK]!;
        }
        return { data: out, nulls };
      }
      case 'string': {
        const out = new Array<string | null>(n);
        for (let i = 0; i < n; i++) {
          const r = rows[i]!;
          out[i] =
            nulls?.[i] === 1
              ? null
              : decoder.decode(varSlice(blocks[r >> BLOCK_SHIFT]!.columns[col]!, r & BLOCK_MASK));
        }
        return { data: out, nulls };
      }
      case 'bytes': {
        const out = new Array<Uint8Array | null>(n);
        for (let i = 0; i < n; i++) {
          const r = rows[i]!;
          out[i] =
            nulls?.[i] === 1
              ? null
              : varSlice(blocks[r >> BLOCK_SHIFT]!.columns[col]!, r & BLOCK_MASK).slice();
        }
        return { data: out, nulls };
      }
    }
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
      switch (c.def.type) {
        case 'int32':
          c.i32![i] = v as number;
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
          c.dataBytes!.set(b, at);
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

function varSlice(c: ColumnVector, i: number): Uint8Array {
  const at = c.refs![2 * i]!;
  const len = c.refs![2 * i + 1]!;
  return len === 0 ? new Uint8Array(0) : c.dataBytes!.subarray(at, at + len);
}

const encoder = new TextEncoder();

function encodeIntoData(c: ColumnVector, s: string): { at: number; length: number } {
  const at = c.dataUsed;
  if (s.length === 0) return { at, length: 0 };
  const { written } = encoder.encodeInto(s, c.dataBytes!.subarray(at));
  c.dataUsed += written;
  return { at, length: written };
}

/** UTF-8 or raw length of a var-width value (0 for null). */
export function byteLength(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (v instanceof Uint8Array) return v.length;
  return 0;
}
