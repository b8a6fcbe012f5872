import {
  apiValue,
  type ColumnDef,
  type Key,
  type Row,
  type StorageType,
  type TableSchema,
} from '../schema/schema.js';
import type { MemoryPool } from '../mem/pool.js';
import type { WaitOptions } from '../mem/types.js';
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
import type { Allocator, Decoded } from '../objectio/encoding.js';
import type { ColumnData } from './source.js';
import { utf8Range } from '../util/bytes.js';

const BLOCK_SHIFT = 12; // log2(BLOCK_ROWS)
const BLOCK_MASK = BLOCK_ROWS - 1;

/**
 * The rows of a memtable: appendable row blocks in pooled memory, one column vector per column,
 * and the data buffers of var-width columns. The memtable claims row slots and has them grown here;
 * rows are written into their slots once and read by row id: a value, a row, or a column of many
 * rows (for scans, and in an object's physical layout for a flush).
 */
export class MemRows {
  private readonly blocks: RowBlock[] = [];
  private readonly varColumns: readonly ColumnDef[];

  constructor(
    readonly schema: TableSchema,
    private readonly pool: MemoryPool,
  ) {
    this.varColumns = schema.columns.filter((c) => isVarWidth(c.storage));
  }

  /** Pooled bytes held by the blocks. */
  get bytes(): number {
    let n = 0;
    for (const b of this.blocks) n += b.bytes;
    return n;
  }

  /** Rows the blocks have slots for. */
  get capacity(): number {
    return this.blocks.length * BLOCK_ROWS;
  }

  /** Add blocks until there are slots for `rows` rows, waiting for memory as needed. */
  async addBlocks(rows: number, wait: WaitOptions): Promise<void> {
    while (this.blocks.length * BLOCK_ROWS < rows) {
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
  }

  /** Whether every var-width value of `puts` fits its block's data buffer as things stand. */
  varRoom(puts: readonly (readonly unknown[])[], rowStart: number): boolean {
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

  /** Grow the var-width data buffers until `puts` fit from row `rowStart`, waiting for memory as needed. */
  async reserveVar(
    puts: readonly (readonly unknown[])[],
    rowStart: number,
    wait: WaitOptions,
  ): Promise<void> {
    const n = puts.length;
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

  /** Write `values` (in column order) into row `row`, whose slot and data room are claimed. */
  writeRow(row: number, values: readonly unknown[]): void {
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

  /** The primary key of a row, as the index holds it. */
  keyOfRow(row: number): Key {
    const v = this.rawValue(row, this.schema.pk.index);
    return typeof v === 'boolean' ? (v ? 1 : 0) : (v as Key);
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

  /** Free the blocks. */
  release(): void {
    for (const b of this.blocks) b.release();
    this.blocks.length = 0;
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
