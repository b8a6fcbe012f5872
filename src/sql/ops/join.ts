/** Joins: hash joins on equality keys, nested loops without them; inner and left. */
import { evaluate, isDoubleCol, truthArray, type Expr } from '../expr.js';
import { boxed, gatherBatch, getv, valueBytes, type Batch, type Col, type Ctx } from '../vector.js';
import { compare, Decimal, hashKey, type SqlValue } from '../values.js';
import { BATCH_ROWS, indent, outputCol, type Op, type ExplainChoices } from './op.js';

/**
 * Inner, left and cross joins. The right input is held in memory (a hash table on the equality
 * keys when there are any); each left batch is matched against it, the remaining condition checked
 * over the candidate pairs batch at a time.
 */
export class Join implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(
    readonly left: Op,
    readonly right: Op,
    readonly kind: 'inner' | 'left',
    readonly leftKeys: readonly Expr[],
    readonly rightKeys: readonly Expr[],
    /** Over the joined row (left columns then right columns). */
    readonly condition: Expr | undefined,
  ) {
    this.width = left.width + right.width;
    this.names = [...left.names, ...right.names];
  }

  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    // The right side, materialized as columns.
    const rcols: SqlValue[][] = Array.from({ length: this.right.width }, () => []);
    // Right columns of DOUBLEs (they stay DOUBLEs in the output: 2.0 is not an integer there).
    const rdoubles: boolean[] = [];
    let rn = 0;
    const table = new Map<string, number[]>();
    // The right side's key values, and the kinds of value each key position holds: a left value
    // of another kind (a number against strings, say) compares by MySQL's conversions, not by hash.
    const rkeys: SqlValue[][] = this.rightKeys.map(() => []);
    const kinds: Set<string>[] = this.rightKeys.map(() => new Set());
    for await (const b of this.right.run(ctx)) {
      const keyCols: Col[] = [];
      for (const k of this.rightKeys) keyCols.push(await evaluate(k, b, ctx));
      keyCols.forEach((c, k) => {
        for (const v of boxed(c, b.len)) {
          rkeys[k]!.push(v);
          if (v !== null) kinds[k]!.add(kindOf(v));
        }
      });
      let bytes = 0;
      for (let c = 0; c < this.right.width; c++) {
        if (isDoubleCol(b.cols[c]!)) rdoubles[c] = true;
        const vals = boxed(b.cols[c]!, b.len);
        for (let i = 0; i < b.len; i++) {
          rcols[c]!.push(vals[i]!);
          bytes += valueBytes(vals[i]!);
        }
      }
      if (keyCols.length > 0) {
        for (let i = 0; i < b.len; i++) {
          const k = joinKey(keyCols, i);
          if (k === undefined) continue;
          const list = table.get(k);
          if (list === undefined) table.set(k, [rn + i]);
          else list.push(rn + i);
          bytes += 48;
        }
      }
      ctx.mem.charge(bytes + 16 * b.len);
      rn += b.len;
    }
    const right: Batch = { len: rn, cols: rcols.map((d, c) => outputCol(d, rdoubles[c] === true)) };
    // Without equality keys every right row is a candidate (a nested loop join).
    const all = this.leftKeys.length === 0 ? Int32Array.from({ length: rn }, (_, i) => i) : undefined;

    for await (const lb of this.left.run(ctx)) {
      const keyCols: Col[] = [];
      for (const k of this.leftKeys) keyCols.push(await evaluate(k, lb, ctx));
      const matched = new Uint8Array(lb.len);
      let li: number[] = [];
      let ri: number[] = [];
      const flush = async function* (this: Join): AsyncGenerator<Batch> {
        if (li.length === 0) return;
        const pairs = li.length;
        const out = combine(lb, right, li, ri);
        let keep: Batch = out;
        if (this.condition !== undefined) {
          const t = truthArray(await evaluate(this.condition, out, ctx), pairs);
          const sel = new Int32Array(pairs);
          let n = 0;
          for (let p = 0; p < pairs; p++) if (t[p] === 1) sel[n++] = p;
          keep = n === pairs ? out : gatherBatch(out, sel, n);
          for (let j = 0; j < n; j++) matched[li[sel[j]!]!] = 1;
        } else for (const l of li) matched[l] = 1;
        li = [];
        ri = [];
        if (keep.len > 0) yield keep;
      };
      for (let i = 0; i < lb.len; i++) {
        let candidates: ArrayLike<number> | undefined;
        if (all !== undefined) candidates = all;
        else if (keyCols.every((c, k) => sameKind(getv(c, i), kinds[k]!))) {
          const k = joinKey(keyCols, i);
          candidates = k === undefined ? undefined : table.get(k);
        } else candidates = compareMatches(keyCols, i, rkeys, rn);
        if (candidates === undefined) continue;
        for (let j = 0; j < candidates.length; j++) {
          li.push(i);
          ri.push(candidates[j]!);
        }
        if (li.length >= BATCH_ROWS) {
          const pause = ctx.breathe();
          if (pause !== undefined) await pause;
          yield* flush.call(this);
        }
      }
      yield* flush.call(this);
      if (this.kind === 'left') {
        const unmatched: number[] = [];
        for (let i = 0; i < lb.len; i++) if (matched[i] === 0) unmatched.push(i);
        if (unmatched.length > 0) {
          yield combine(
            lb,
            right,
            unmatched,
            unmatched.map(() => -1),
          );
        }
      }
    }
  }

  explain(x?: ExplainChoices): string[] {
    const how =
      this.leftKeys.length > 0
        ? `hash join on ${this.leftKeys.map((k, i) => `${k.text} = ${this.rightKeys[i]!.text}`).join(' AND ')}`
        : 'nested loop join';
    return [
      `${this.kind === 'left' ? 'left ' : ''}${how}${this.condition !== undefined ? ` where ${this.condition.text}` : ''}`,
      ...indent(this.left.explain(x)),
      ...indent(this.right.explain(x)),
    ];
  }
}

/** A value's kind for hash joins: numbers of every sort (doubles, bigints, DECIMALs) hash alike. */
function kindOf(v: SqlValue): string {
  return typeof v === 'number' || typeof v === 'bigint' || v instanceof Decimal
    ? 'n'
    : typeof v === 'string'
      ? 's'
      : v instanceof Date
        ? 'd'
        : 'b';
}

/** Whether v (not null) is of the one kind the right side's key position holds: the hash then decides. */
function sameKind(v: SqlValue, kinds: Set<string>): boolean {
  return v === null || (kinds.size <= 1 && (kinds.size === 0 || kinds.has(kindOf(v))));
}

/** The right rows whose keys equal row i's by MySQL's comparison (kinds differ: no hash). */
function compareMatches(
  keyCols: readonly Col[],
  i: number,
  rkeys: readonly SqlValue[][],
  rn: number,
): number[] {
  const left = keyCols.map((c) => getv(c, i));
  if (left.some((v) => v === null)) return [];
  const out: number[] = [];
  for (let r = 0; r < rn; r++) {
    let eq = true;
    for (let k = 0; k < left.length && eq; k++) {
      const rv = rkeys[k]![r]!;
      eq = rv !== null && compare(left[k]!, rv) === 0;
    }
    if (eq) out.push(r);
  }
  return out;
}

/** The hash key of row i's join keys; undefined when one is NULL (NULL matches nothing). */
function joinKey(cols: readonly Col[], i: number): string | undefined {
  let k = '';
  for (const c of cols) {
    const v = getv(c, i);
    if (v === null) return undefined;
    k += `${hashKey(v)}\u0001`;
  }
  return k;
}

export function combine(l: Batch, r: Batch, li: readonly number[], ri: readonly number[]): Batch {
  const n = li.length;
  const ls = Int32Array.from(li);
  const rs = Int32Array.from(ri);
  const left = gatherBatch(l, ls, n);
  const right = gatherBatch(r, rs, n);
  return { len: n, cols: [...left.cols, ...right.cols] };
}
