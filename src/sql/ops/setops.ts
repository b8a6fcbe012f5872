/**
 * INTERSECT and EXCEPT, with DISTINCT (the default) or ALL, as MySQL 8.0.31 has them: rows are
 * equal when every column is (NULLs equal to each other, as DISTINCT has it). The right input is
 * read first into a hash table of row keys and their counts (accounted in the query's memory); the
 * left input then streams through it:
 * - INTERSECT: a left row whose key the right side holds; with ALL as many times as both sides
 *   have it (the smaller count), else once.
 * - EXCEPT: a left row whose key the right side does not hold; with ALL, each right occurrence
 *   cancels one left occurrence, else a key is given once and only when the right lacks it.
 */
import { indent, type Op, type ExplainChoices } from './op.js';
import { rowKey } from './rows.js';
import { gatherBatch, type Batch, type Ctx } from '../vector.js';

export class SetOperation implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(
    readonly left: Op,
    readonly right: Op,
    readonly kind: 'INTERSECT' | 'EXCEPT',
    readonly all: boolean,
  ) {
    this.width = left.width;
    this.names = left.names;
  }

  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const counts = new Map<string, number>();
    for await (const b of this.right.run(ctx)) {
      let bytes = 0;
      for (let i = 0; i < b.len; i++) {
        const k = rowKey(b, i, this.width);
        const c = counts.get(k);
        if (c === undefined) bytes += 64 + 2 * k.length;
        counts.set(k, (c ?? 0) + 1);
      }
      ctx.mem.charge(bytes);
    }
    // Keys already given (the DISTINCT forms give each once).
    const given = this.all ? undefined : new Set<string>();
    const intersect = this.kind === 'INTERSECT';
    for await (const b of this.left.run(ctx)) {
      const sel = new Int32Array(b.len);
      let n = 0;
      let bytes = 0;
      for (let i = 0; i < b.len; i++) {
        const k = rowKey(b, i, this.width);
        const c = counts.get(k) ?? 0;
        let keep: boolean;
        if (given !== undefined) {
          keep = c > 0 === intersect && !given.has(k);
          if (keep) {
            given.add(k);
            bytes += 64 + 2 * k.length;
          }
        } else if (intersect) {
          keep = c > 0;
          if (keep) counts.set(k, c - 1);
        } else {
          keep = c === 0;
          if (!keep) counts.set(k, c - 1);
        }
        if (keep) sel[n++] = i;
      }
      ctx.mem.charge(bytes);
      if (n > 0) yield n === b.len ? b : gatherBatch(b, sel, n);
    }
  }

  explain(x?: ExplainChoices): string[] {
    const what = `${this.kind.toLowerCase()}${this.all ? ' all' : ''}`;
    return [what, ...indent(this.left.explain(x)), ...indent(this.right.explain(x))];
  }
}
