/**
 * Query operators: each pulls column batches from its inputs and yields column batches. Operators
 * that hold rows (hash tables, sorts, the build side of joins) account them in the query's memory.
 * Every operator is an async generator: a consumer that stops early closes the whole pipeline, down
 * to the table scans, which release what they pinned.
 *
 * This file: what every operator is (Op) and the helpers they share. The operators by family:
 * scan.ts (tables, key ranges in keys.ts), filter.ts, rows.ts (project, limit, distinct, union),
 * sort.ts, join.ts, aggregate.ts, setops.ts.
 */
import { evaluate, isDoubleCol, type Expr, type Runnable } from '../expr.js';
import { anyCol, boxed, getv, numCol, valueBytes, type Batch, type Col, type Ctx } from '../vector.js';
import type { SqlValue } from '../values.js';

export const BATCH_ROWS = 4096;

/** What EXPLAIN prints with: how each scan reads for the statement's parameters (TableScan.choose). */
export type ExplainChoices = ReadonlyMap<object, unknown>;

export interface Op extends Runnable {
  /** Output column names (for `columns` and `*`). */
  readonly names: readonly string[];
  /** The output as rows, for an operator that makes them anyway (a sort): no batches between. */
  rows?(ctx: Ctx): Promise<SqlValue[][]>;
}

export function indent(lines: string[]): string[] {
  return lines.map((l) => `  ${l}`);
}

/** Constant expressions (literals, parameters, outer columns) evaluated once. */
export async function constValue(e: Expr, ctx: Ctx): Promise<SqlValue> {
  const c = await evaluate(e, { len: 1, cols: [] }, ctx);
  return getv(c, 0);
}

/** One row of no columns: what constant expressions are evaluated over. */
export const ONE_ROW: Batch = { len: 1, cols: [] };

/** An operator's whole output as boxed rows (charged to the query's memory). */
export async function materialize(op: Op, ctx: Ctx, doubles?: boolean[]): Promise<SqlValue[][]> {
  const rows: SqlValue[][] = [];
  for await (const b of op.run(ctx)) {
    // Columns of DOUBLEs noted, so that whoever gives the rows back keeps them DOUBLEs.
    if (doubles !== undefined)
      b.cols.forEach((c, k) => {
        if (isDoubleCol(c)) doubles[k] = true;
      });
    const cols = b.cols.map((c) => boxed(c, b.len));
    let bytes = 0;
    for (let i = 0; i < b.len; i++) {
      const r = new Array<SqlValue>(cols.length);
      for (let c = 0; c < cols.length; c++) {
        const v = cols[c]![i]!;
        r[c] = v;
        bytes += valueBytes(v);
      }
      rows.push(r);
    }
    ctx.mem.charge(bytes + 48 * b.len);
  }
  return rows;
}

/** An output column: numbers of a DOUBLE as such (see NumCol), anything else boxed. */
export function outputCol(d: SqlValue[], dbl: boolean): Col {
  if (!dbl || !d.every((v) => v === null || typeof v === 'number')) return anyCol(d);
  const n = d.length;
  const out = new Float64Array(n);
  let nulls: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    const v = d[i];
    if (v === null) (nulls ??= new Uint8Array(n))[i] = 1;
    else out[i] = v as number;
  }
  return numCol(out, nulls);
}
