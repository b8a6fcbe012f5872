import { apiValue, type Row, type TableSchema } from '../schema/schema.js';

/** Column data as scanBatches hands it out. */
export type ColumnData =
  | Int32Array
  | Float64Array
  | Uint8Array
  | number[]
  | (number | bigint | null)[]
  | (string | null)[]
  | (Uint8Array | null)[]
  | (number | null)[];

/**
 * Something rows can be read from by row id: a memtable now, a columnar object later. Values come
 * out as the API returns them (copies: never a view of pooled memory).
 */
export interface RowSource {
  readRow(row: number, cols: readonly number[] | undefined): Row;
  /** The row's values in column order, in the engine's representation (timestamps as ms). */
  rawValues(row: number): unknown[];
  /** One value of the row, as rawValues gives it (a column a scan loaded). */
  rawValue(row: number, col: number): unknown;
  /** Column `col` of rows[0..n) as a fresh array, and its null map if the column is nullable. */
  gather(col: number, rows: Int32Array, n: number): { data: ColumnData; nulls: Uint8Array | undefined };
  /**
   * Column `col` of the n consecutive rows from `start`: slices instead of a row-by-row gather. With
   * `borrow`, a source may return views of its own memory (valid while the caller holds the source).
   */
  gatherRange(
    col: number,
    start: number,
    n: number,
    borrow?: boolean,
  ): { data: ColumnData; nulls: Uint8Array | undefined };
}

/** One row already read out (from an object by a point lookup): values in the engine's representation. */
export class ValuesSource implements RowSource {
  constructor(
    private readonly schema: TableSchema,
    private readonly values: readonly unknown[],
  ) {}

  readRow(_row: number, cols: readonly number[] | undefined): Row {
    const out: Row = {};
    const defs = this.schema.columns;
    for (const c of cols ?? defs.map((d) => d.index)) out[defs[c]!.name] = apiValue(defs[c]!, this.values[c]);
    return out;
  }

  rawValues(): unknown[] {
    return this.values.map((v) => (v instanceof Uint8Array ? v.slice() : v));
  }

  rawValue(_row: number, col: number): unknown {
    const v = this.values[col];
    return v instanceof Uint8Array ? v.slice() : v;
  }

  gather(col: number, _rows: Int32Array, n: number): { data: ColumnData; nulls: Uint8Array | undefined } {
    return this.gatherRange(col, 0, n);
  }

  gatherRange(col: number, _start: number, n: number): { data: ColumnData; nulls: Uint8Array | undefined } {
    const def = this.schema.columns[col]!;
    const v = this.values[col];
    const isNull = v === null;
    const nulls = def.nullable ? new Uint8Array(n).fill(isNull ? 1 : 0) : undefined;
    switch (def.storage) {
      case 'int32':
        return { data: new Int32Array(n).fill(isNull ? 0 : (v as number)), nulls };
      case 'bool':
        return { data: new Uint8Array(n).fill(v === true ? 1 : 0), nulls };
      case 'float64':
      case 'timestamp':
        return { data: new Float64Array(n).fill(isNull ? 0 : (v as number)), nulls };
      case 'bytes':
        return { data: Array.from({ length: n }, () => (isNull ? null : (v as Uint8Array).slice())), nulls };
      default:
        return { data: new Array(n).fill(v) as ColumnData, nulls };
    }
  }
}
