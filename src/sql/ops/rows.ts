/** Row operators: derived tables, projection, LIMIT, DISTINCT and UNION ALL. */
import { evaluate, type Expr } from '../expr.js';
import { gatherBatch, getv, StringSet, type Batch, type Col, type Ctx } from '../vector.js';
import { hashKey, toNumber, valueKey } from '../values.js';
import { constValue, indent, type Op, type ExplainChoices } from './op.js';

/** The rows of another query, under the names of a derived table or view. */
export class Derived implements Op {
  readonly width: number;
  constructor(
    readonly input: Op,
    readonly names: readonly string[],
    readonly label: string,
  ) {
    this.width = input.width;
  }
  run(ctx: Ctx): AsyncGenerator<Batch> {
    return this.input.run(ctx);
  }
  explain(x?: ExplainChoices): string[] {
    return [`derived ${this.label}`, ...indent(this.input.explain(x))];
  }
}

export class Project implements Op {
  readonly width: number;
  constructor(
    readonly input: Op,
    readonly exprs: readonly Expr[],
    readonly names: readonly string[],
  ) {
    this.width = exprs.length;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    for await (const b of this.input.run(ctx)) {
      const cols: Col[] = [];
      // Without subqueries an expression is evaluated synchronously: no await per column.
      for (const e of this.exprs) cols.push(e.subs.length === 0 ? e.ev(b, ctx) : await evaluate(e, b, ctx));
      yield { len: b.len, cols };
    }
  }
  explain(x?: ExplainChoices): string[] {
    return [`project ${this.exprs.map((e) => e.text).join(', ')}`, ...indent(this.input.explain(x))];
  }
}

/** Keep the first `width` columns (drop the sort keys a projection carried). */
export class Narrow implements Op {
  constructor(
    readonly input: Op,
    readonly width: number,
    readonly names: readonly string[],
  ) {}
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    for await (const b of this.input.run(ctx)) yield { len: b.len, cols: b.cols.slice(0, this.width) };
  }
  explain(x?: ExplainChoices): string[] {
    return this.input.explain(x);
  }
}

export class Limit implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(
    readonly input: Op,
    readonly count: Expr | undefined,
    readonly offset: Expr | undefined,
  ) {
    this.width = input.width;
    this.names = input.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const count = this.count !== undefined ? toNumber((await constValue(this.count, ctx)) ?? 0) : Infinity;
    let skip = this.offset !== undefined ? toNumber((await constValue(this.offset, ctx)) ?? 0) : 0;
    let left = Math.max(0, Math.trunc(count));
    skip = Math.max(0, Math.trunc(skip));
    if (left === 0) return;
    for await (const b of this.input.run(ctx)) {
      let start = 0;
      if (skip > 0) {
        start = Math.min(skip, b.len);
        skip -= start;
      }
      const n = Math.min(left, b.len - start);
      if (n <= 0) continue;
      left -= n;
      if (start === 0 && n === b.len) yield b;
      else {
        const sel = new Int32Array(n);
        for (let i = 0; i < n; i++) sel[i] = start + i;
        yield gatherBatch(b, sel, n);
      }
      if (left === 0) return;
    }
  }
  explain(x?: ExplainChoices): string[] {
    return [
      `limit ${this.count?.text ?? 'all'}${this.offset !== undefined ? ` offset ${this.offset.text}` : ''}`,
      ...indent(this.input.explain(x)),
    ];
  }
}

/** A row's values as one key: equal for rows DISTINCT and set operations take as equal (NULLs too). */
export function rowKey(b: Batch, i: number, width: number): string {
  let k = '';
  for (let c = 0; c < width; c++) k += `${hashKey(getv(b.cols[c]!, i))}\u0001`;
  return k;
}

/** Rows not seen before (DISTINCT, UNION). */
export class Distinct implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(readonly input: Op) {
    this.width = input.width;
    this.names = input.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    // Strings (composed keys of several columns too) go in a StringSet; other values in a Set
    // (bytes by their hashKey text, which no number equals).
    const strings = new StringSet();
    const others = new Set<unknown>();
    const single = this.width === 1;
    for await (const b of this.input.run(ctx)) {
      const sel = new Int32Array(b.len);
      let n = 0;
      for (let i = 0; i < b.len; i++) {
        let fresh: boolean;
        let bytes = 32;
        const v = single ? getv(b.cols[0]!, i) : rowKey(b, i, this.width);
        if (typeof v === 'string') {
          fresh = strings.add(v);
          bytes += 2 * v.length;
        } else {
          const k = v === null ? null : valueKey(v);
          fresh = !others.has(k);
          if (fresh) others.add(k);
          if (typeof k === 'string') bytes += 2 * k.length;
        }
        if (!fresh) continue;
        ctx.mem.charge(bytes);
        sel[n++] = i;
      }
      if (n > 0) yield n === b.len ? b : gatherBatch(b, sel, n);
    }
  }
  explain(x?: ExplainChoices): string[] {
    return ['distinct', ...indent(this.input.explain(x))];
  }
}

export class UnionAll implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(readonly inputs: readonly Op[]) {
    this.width = inputs[0]!.width;
    this.names = inputs[0]!.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    for (const i of this.inputs) yield* i.run(ctx);
  }
  explain(x?: ExplainChoices): string[] {
    return ['union all', ...this.inputs.flatMap((i) => indent(i.explain(x)))];
  }
}
