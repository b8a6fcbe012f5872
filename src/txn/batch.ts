import { apiValue, decimalOf, type ColumnDef, type Row, type TableSchema } from '../schema/schema.js';
import { canonicalInt } from '../util/decimal.js';
import type { ColumnData, RowSource } from '../table/source.js';

/**
 * A columnar batch as `scanBatches` yields it: `columns[name]` is a Float64Array for float64 and
 * timestamp (ms), an Int32Array for int32, a Uint8Array for bool (1 = true), an array of numbers
 * (bigints beyond ±2^53) for int64 and uint64, string[] for decimal (or, with `decimals: 'scaled'`,
 * their scaled integers as int64 values are given), string[] for string and Uint8Array[] for bytes;
 * `nulls[name]` (1 = null) for nullable columns.
 * Arrays are fresh copies the caller owns.
 */
export interface Batch {
  length: number;
  columns: Record<string, ColumnData>;
  nulls?: Record<string, Uint8Array>;
}

/**
 * Rows of a scan chunk: `src[i]` indexes `sources` (row `row[i]`), or is OWN for a row of the
 * transaction's own writes, whose values are `own[i]`.
 */
export interface ResultChunk {
  n: number;
  src: Int32Array;
  row: Int32Array;
  own: (unknown[] | undefined)[] | undefined;
  sources: RowSource[];
  /** When >= 0: the chunk is rows rangeStart..rangeStart+n of sources[0]; src and row are unused. */
  rangeStart: number;
}

export const OWN = -2;

/** A row object from values in column order (engine representation). */
export function valuesToRow(
  s: TableSchema,
  values: readonly unknown[],
  cols: readonly number[] | undefined,
): Row {
  const out: Row = {};
  const defs = s.columns;
  const idx = cols ?? defs.map((d) => d.index);
  for (const c of idx) out[defs[c]!.name] = apiValue(defs[c]!, values[c]);
  return out;
}

/**
 * A batch column as the API hands it out: a decimal column's scaled integers as text (or, `scaled`,
 * as integers: numbers, bigints beyond ±2^53); `bigints`: every 64-bit integer as a bigint.
 */
function apiColumn(
  def: ColumnDef,
  data: ColumnData,
  nulls: Uint8Array | undefined,
  scaled: boolean,
  bigints: boolean,
): ColumnData {
  const src = data as ArrayLike<unknown>;
  const n = src.length;
  const isNull = (i: number): boolean => nulls?.[i] === 1 || src[i] === null || src[i] === undefined;
  if (def.type === 'decimal') {
    if (scaled) {
      // Scaled integers: a Float64Array while every one is exact (memtables and most objects).
      if (def.storage === 'int64') return data;
      const out = new Array<number | bigint | null>(n);
      for (let i = 0; i < n; i++) out[i] = isNull(i) ? null : canonicalInt(decimalOf(def, src[i]).u);
      return out;
    }
    const out = new Array<string | null>(n);
    for (let i = 0; i < n; i++) out[i] = isNull(i) ? null : decimalOf(def, src[i]).toString();
    return out;
  }
  if (def.type === 'int64' || def.type === 'uint64') {
    // The API's int64 batches are arrays: numbers (null where null), bigints past 2^53.
    if (!bigints && Array.isArray(data)) return data;
    const out = new Array<number | bigint | null>(n);
    for (let i = 0; i < n; i++) {
      const v = isNull(i) ? null : (src[i] as number | bigint);
      out[i] = bigints && typeof v === 'number' ? BigInt(v) : v;
    }
    return out;
  }
  return data;
}
export function readChunkRow(
  s: TableSchema,
  c: ResultChunk,
  i: number,
  cols: readonly number[] | undefined,
): Row {
  if (c.rangeStart >= 0) return c.sources[0]!.readRow(c.rangeStart + i, cols);
  const src = c.src[i]!;
  return src === OWN ? valuesToRow(s, c.own![i]!, cols) : c.sources[src]!.readRow(c.row[i]!, cols);
}

export function buildBatch(
  s: TableSchema,
  c: ResultChunk,
  cols: readonly number[] | undefined,
  borrow = false,
  scaled = false,
  bigints = false,
): Batch {
  const idx = cols ?? s.columns.map((d) => d.index);
  const batch: Batch = { length: c.n, columns: {} };
  // Fast path: the whole chunk comes from one source.
  let single = c.n > 0 && c.own === undefined && c.rangeStart < 0;
  for (let i = 1; single && i < c.n; i++) if (c.src[i] !== c.src[0]) single = false;
  for (const col of idx) {
    const def = s.columns[col]!;
    let g: { data: ColumnData; nulls: Uint8Array | undefined };
    if (c.rangeStart >= 0) g = c.sources[0]!.gatherRange(col, c.rangeStart, c.n, borrow);
    else if (single) g = c.sources[c.src[0]!]!.gather(col, c.row, c.n);
    else g = gatherMixed(s, c, col);
    batch.columns[def.name] = apiColumn(def, g.data, g.nulls, scaled, bigints);
    if (g.nulls !== undefined) (batch.nulls ??= {})[def.name] = g.nulls;
  }
  return batch;
}

/** Gather a column row by row from several sources and own values. */
function gatherMixed(
  s: TableSchema,
  c: ResultChunk,
  col: number,
): { data: ColumnData; nulls: Uint8Array | undefined } {
  const def = s.columns[col]!;
  const n = c.n;
  const values = new Array<unknown>(n);
  const one = new Int32Array(1);
  for (let i = 0; i < n; i++) {
    const src = c.src[i]!;
    if (src === OWN) values[i] = c.own![i]![col];
    else {
      one[0] = c.row[i]!;
      const g = c.sources[src]!.gather(col, one, 1);
      values[i] = g.nulls?.[0] === 1 ? null : (g.data as ArrayLike<unknown>)[0];
    }
  }
  const nulls = def.nullable ? new Uint8Array(n) : undefined;
  if (nulls !== undefined) for (let i = 0; i < n; i++) nulls[i] = values[i] === null ? 1 : 0;
  switch (def.storage) {
    case 'int32':
      return { data: Int32Array.from(values, (v) => (v as number | null) ?? 0), nulls };
    case 'float64':
    case 'timestamp':
      return { data: Float64Array.from(values, (v) => (v as number | null) ?? 0), nulls };
    case 'bool':
      return { data: Uint8Array.from(values, (v) => (v === true || v === 1 ? 1 : 0)), nulls };
    case 'bytes':
      return { data: values.map((v) => (v === null ? null : (v as Uint8Array).slice())), nulls };
    default:
      return { data: values as (number | null)[], nulls };
  }
}
