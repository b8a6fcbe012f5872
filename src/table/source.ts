import type { Row } from '../catalog/schema.js';

/** Column data as scanBatches hands it out. */
export type ColumnData =
  | Int32Array
  | Float64Array
  | Uint8Array
  | number[]
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
  /** Column `col` of rows[0..n) as a fresh array, and its null map if the column is nullable. */
  gather(col: number, rows: Int32Array, n: number): { data: ColumnData; nulls: Uint8Array | undefined };
  /** Column `col` of the n consecutive rows from `start`: slices instead of a row-by-row gather. */
  gatherRange(col: number, start: number, n: number): { data: ColumnData; nulls: Uint8Array | undefined };
}
