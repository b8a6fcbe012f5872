/** ORDER BY: the input materialized, sorted, and handed on as rows or batches. */
import type { Batch, Col, Ctx } from '../vector.js';
import { sortCompare, type SqlValue } from '../values.js';
import { BATCH_ROWS, indent, materialize, outputCol, type Op, type ExplainChoices } from './op.js';

/** Boxed rows to batches. */
function* rowsToBatches(
  rows: readonly SqlValue[][],
  width: number,
  doubles: readonly boolean[] = [],
): Generator<Batch> {
  for (let s = 0; s < rows.length; s += BATCH_ROWS) {
    const n = Math.min(BATCH_ROWS, rows.length - s);
    const cols: Col[] = [];
    for (let c = 0; c < width; c++) {
      const d = new Array<SqlValue>(n);
      for (let i = 0; i < n; i++) d[i] = rows[s + i]![c]!;
      cols.push(outputCol(d, doubles[c] === true));
    }
    yield { len: n, cols };
  }
}

export interface SortKey {
  /** The column of the input to sort by. */
  column: number;
  desc: boolean;
}

/**
 * How ORDER BY compares two rows. One key whose values are all strings, or all numbers (the usual
 * case), is compared directly; otherwise sortCompare, key by key.
 */
function comparator(
  rows: readonly SqlValue[][],
  keys: readonly SortKey[],
): (a: SqlValue[], b: SqlValue[]) => number {
  if (keys.length === 1) {
    const col = keys[0]!.column;
    const sign = keys[0]!.desc ? -1 : 1;
    let strings = true;
    let numbers = true;
    for (const r of rows) {
      const t = typeof r[col];
      if (t !== 'string') strings = false;
      if (t !== 'number') numbers = false;
      if (!strings && !numbers) break;
    }
    if (strings || numbers) {
      return (a, b) => {
        const x = a[col] as string | number;
        const y = b[col] as string | number;
        return x < y ? -sign : x > y ? sign : 0;
      };
    }
  }
  return (a, b) => {
    for (const k of keys) {
      const c = sortCompare(a[k.column]!, b[k.column]!);
      if (c !== 0) return k.desc ? -c : c;
    }
    return 0;
  };
}

export class Sort implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(
    readonly input: Op,
    readonly keys: readonly SortKey[],
    /** The sort keys as EXPLAIN shows them. */
    readonly describeKeys: string,
  ) {
    this.width = input.width;
    this.names = input.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const doubles: boolean[] = [];
    yield* rowsToBatches(await this.rows(ctx, doubles), this.width, doubles);
  }
  async rows(ctx: Ctx, doubles?: boolean[]): Promise<SqlValue[][]> {
    const rows = await materialize(this.input, ctx, doubles);
    rows.sort(comparator(rows, this.keys));
    return rows;
  }
  explain(x?: ExplainChoices): string[] {
    return [`sort ${this.describeKeys}`, ...indent(this.input.explain(x))];
  }
}
