/** Filters: the rows of a batch where a condition is true, fused for ANDs of simple comparisons. */
import { evaluate, scaledConstant, truthArray, type CondAtom, type Expr } from '../expr.js';
import { gatherBatch, getv, type Batch, type Col, type Ctx } from '../vector.js';
import { Decimal, parseDate } from '../values.js';
import { repOf, selectKernel, type NumArray, type Rep, type SelectAtom } from '../kernels.js';
import { indent, ONE_ROW, type Op, type ExplainChoices } from './op.js';

/**
 * Rows of `b` where `cond` is true: fused into one pass when it is an AND of simple comparisons.
 * `keepSel`: the consumer takes a selection (Batch.sel), so the rows need not be gathered.
 */
export async function applyFilter(cond: Expr, b: Batch, ctx: Ctx, keepSel = false): Promise<Batch> {
  if (cond.atoms !== undefined) {
    const r = fusedFilter(cond.atoms, b, ctx, keepSel);
    if (r !== undefined) return r;
  }
  return filterBatch(b, await evaluate(cond, b, ctx));
}

/** Rows in a batch (its selection's, when it has one). */
export function liveRows(b: Batch): number {
  return b.sel !== undefined ? b.sel.n : b.len;
}

/** The fused path, or undefined when a column or constant is not a number (or a time). */
function fusedFilter(atoms: readonly CondAtom[], b: Batch, ctx: Ctx, keepSel: boolean): Batch | undefined {
  const slotOf = new Map<number, number>();
  const cols: NumArray[] = [];
  const nulls: (Uint8Array | null)[] = [];
  const reps: Rep[] = [];
  const k: number[] = [];
  const shape: SelectAtom[] = [];
  for (const a of atoms) {
    const c = b.cols[a.column]!;
    if (c.k !== 'num') return undefined;
    const v = getv(a.value.ev(ONE_ROW, ctx), 0);
    if (v === null) return { len: 0, cols: b.cols };
    let x: number;
    if (c.time === true) {
      if (v instanceof Date) x = v.getTime();
      else if (typeof v === 'string') {
        const d = parseDate(v);
        if (d === undefined) return undefined;
        x = d.getTime();
      } else return undefined;
    } else if (c.scale !== undefined) {
      const s = scaledConstant(v, c.scale);
      if (s === undefined) return undefined;
      x = s;
    } else if (typeof v === 'number') x = v;
    else if (v instanceof Decimal && v.precision <= 15) x = v.toNumber();
    else return undefined;
    let slot = slotOf.get(a.column);
    if (slot === undefined) {
      slot = cols.length;
      slotOf.set(a.column, slot);
      cols.push(c.d);
      nulls.push(c.nulls);
      reps.push(repOf(c.d));
    }
    shape.push({ slot, op: a.op, k: k.length });
    k.push(x);
  }
  const sel = new Int32Array(b.len);
  const m = selectKernel(
    shape,
    reps,
    nulls.map((x) => x !== null),
  )(cols, nulls, k, b.len, sel);
  if (m === b.len) return b;
  // Most rows kept: hand over the selection (the consumer's loops over every row cost less than
  // gathering them); few kept: gather them, so the consumer works on those only.
  return keepSel && m * 2 > b.len
    ? { len: b.len, cols: b.cols, sel: { idx: sel, n: m } }
    : gatherBatch(b, sel, m);
}

/** Rows whose condition is true. */
export function filterBatch(b: Batch, cond: Col): Batch {
  const t = truthArray(cond, b.len);
  let n = 0;
  for (let i = 0; i < b.len; i++) if (t[i] === 1) n++;
  if (n === b.len) return b;
  const sel = new Int32Array(n);
  let j = 0;
  for (let i = 0; i < b.len; i++) if (t[i] === 1) sel[j++] = i;
  return gatherBatch(b, sel, n);
}

export class Filter implements Op {
  readonly width: number;
  readonly names: readonly string[];
  /** Set by the planner when the consumer is an Aggregate that takes selections. */
  yieldSelection = false;
  constructor(
    readonly input: Op,
    readonly cond: Expr,
  ) {
    this.width = input.width;
    this.names = input.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    for await (const b of this.input.run(ctx)) {
      const out = await applyFilter(this.cond, b, ctx, this.yieldSelection);
      if (liveRows(out) > 0) yield out;
    }
  }
  explain(x?: ExplainChoices): string[] {
    return [`filter ${this.cond.text}`, ...indent(this.input.explain(x))];
  }
}
