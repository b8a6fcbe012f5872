/** Hash aggregation: GROUP BY and the aggregates (COUNT, SUM, AVG, MIN, MAX, TOTAL, GROUP_CONCAT). */
import { evaluate, isDoubleCol, type Expr } from '../expr.js';
import { getv, valueBytes, type Batch, type Col, type Ctx, type NumCol } from '../vector.js';
import {
  compare,
  Decimal,
  decimalArith,
  hashKey,
  numKind,
  toNumber,
  toText,
  valueKey,
  type SqlValue,
} from '../values.js';
import { canonicalInt, INT64_MAX, INT64_MIN } from '../../util/decimal.js';
import { multiSumKernel, repOf, sumKernel, type NumArray } from '../kernels.js';
import { BATCH_ROWS, indent, outputCol, type Op, type ExplainChoices } from './op.js';

export type AggName = 'COUNT' | 'SUM' | 'AVG' | 'MIN' | 'MAX' | 'TOTAL' | 'GROUP_CONCAT' | 'FIRST';

export interface AggSpec {
  name: AggName;
  /** undefined: COUNT(*). */
  arg: Expr | undefined;
  distinct: boolean;
  separator?: string;
  text: string;
}

/** Codes below this are packed into one number (three of them stay under 2^53). */
const CODE_LIMIT = 1 << 17;

/** Small integer codes for the distinct values of a column (values equal as GROUP BY sees them). */
class Dictionary {
  private readonly strings = new Map<string, number>();
  /** Codes of one-character strings by character code (flags and status codes are common keys). */
  private readonly chars = new Int32Array(256).fill(-1);
  private readonly others = new Map<string | number, number>();
  private next = 0;

  /** Distinct values coded so far. */
  get size(): number {
    return this.next;
  }

  /** Codes of a column's rows (of the selection's rows only, when there is one). */
  codes(c: Col, n: number, sel: { idx: Int32Array; n: number } | undefined): Int32Array {
    const out = new Int32Array(n);
    const rows = sel !== undefined ? sel.n : n;
    if (c.k === 'any') {
      const d = c.d;
      const chars = this.chars;
      for (let j = 0; j < rows; j++) {
        const i = sel !== undefined ? sel.idx[j]! : j;
        const v = d[i]!;
        if (typeof v === 'string' && v.length === 1) {
          const ch = v.charCodeAt(0);
          if (ch < 256) {
            let code = chars[ch]!;
            if (code < 0) chars[ch] = code = this.next++;
            out[i] = code;
            continue;
          }
        }
        out[i] = this.code(c, i);
      }
    } else {
      for (let j = 0; j < rows; j++) {
        const i = sel !== undefined ? sel.idx[j]! : j;
        out[i] = this.code(c, i);
      }
    }
    return out;
  }

  code(c: Col, i: number): number {
    let key: string | number;
    if (c.k === 'num') {
      if (c.nulls !== null && c.nulls[i] === 1) key = 'N';
      else if (c.scale !== undefined) key = valueKey(getv(c, i));
      else {
        const v = c.d[i]!;
        key = v === 0 ? 0 : v;
      }
    } else {
      const v = c.k === 'const' ? c.v : c.d[i]!;
      if (typeof v === 'string') {
        if (v.length === 1) {
          const ch = v.charCodeAt(0);
          if (ch < 256) {
            let code = this.chars[ch]!;
            if (code < 0) this.chars[ch] = code = this.next++;
            return code;
          }
        }
        let code = this.strings.get(v);
        if (code === undefined) this.strings.set(v, (code = this.next++));
        return code;
      }
      key = v === null ? hashKey(v) : valueKey(v);
    }
    let code = this.others.get(key);
    if (code === undefined) this.others.set(key, (code = this.next++));
    return code;
  }
}

interface AggState {
  /** Per group (grown with the groups). */
  count: Float64Array;
  /**
   * Sums: doubles, or for exact arguments (integers, DECIMALs) scaled integers at `scale`, exact
   * while within ±2^53: larger parts move to `big` (see carry).
   */
  sum: Float64Array;
  /** Undefined before the first value; -1: doubles; else the exact sums' scale. */
  scale: number | undefined;
  /** Exact sums' parts beyond what `sum` holds exactly, per group. */
  big: bigint[] | undefined;
  /** The argument is a DOUBLE: its values sum as doubles, whole numbers too. */
  dbl: boolean;
  vals: SqlValue[];
  seen: Set<string>[] | undefined;
  parts: string[][] | undefined;
}

/**
 * Hash aggregation: groups by the values of `groups`, computing `aggs` in each. Output: the group
 * values, then the aggregates. Without groups, one row even over no input.
 */
const NUMERIC_AGGS = new Set<AggName>(['SUM', 'AVG', 'TOTAL', 'COUNT']);

/** SUM, AVG, TOTAL and COUNT of one argument (without DISTINCT) share one sum and count. */
function sharedKey(a: AggSpec): string | undefined {
  if (a.arg === undefined || a.distinct) return undefined;
  if (a.name === 'SUM' || a.name === 'AVG' || a.name === 'TOTAL' || a.name === 'COUNT') return a.arg.text;
  return undefined;
}

/** Group codes below this pack into a direct table (two columns of codes under 256 each). */
const DIRECT_CODES = 256;

export class Aggregate implements Op {
  readonly width: number;
  /** The accumulator each aggregate reads (several share one: see sharedKey). */
  private readonly stateOf: number[] = [];
  /** One aggregate per accumulator, the one that fills it. */
  private readonly filling: AggSpec[] = [];

  constructor(
    readonly input: Op,
    readonly groups: readonly Expr[],
    readonly aggs: readonly AggSpec[],
    readonly names: readonly string[],
  ) {
    this.width = groups.length + aggs.length;
    const shared = new Map<string, number>();
    for (const a of aggs) {
      const key = sharedKey(a);
      const have = key !== undefined ? shared.get(key) : undefined;
      if (have !== undefined) {
        this.stateOf.push(have);
        continue;
      }
      if (key !== undefined) shared.set(key, this.filling.length);
      this.stateOf.push(this.filling.length);
      this.filling.push(a);
    }
  }

  /** Whether its input may hand it batches with a selection (every expression pure). */
  get takesSelection(): boolean {
    return (
      this.groups.every((g) => g.pure === true) &&
      this.aggs.every((a) => a.arg === undefined || a.arg.pure === true)
    );
  }

  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const groupIds = new Map<string | number, number>();
    const direct =
      this.groups.length > 0 && this.groups.length <= 2
        ? new Int32Array(DIRECT_CODES ** this.groups.length).fill(-1)
        : undefined;
    const dicts = this.groups.map(() => new Dictionary());
    const groupVals: SqlValue[][] = this.groups.map(() => []);
    // Group columns whose values are DOUBLEs (their output keeps that type).
    const groupDoubles: boolean[] = [];
    const states: AggState[] = this.filling.map((a) => ({
      count: new Float64Array(16),
      sum: new Float64Array(16),
      scale: undefined,
      big: undefined,
      dbl: false,
      vals: [],
      seen: a.distinct ? [] : undefined,
      parts: a.name === 'GROUP_CONCAT' ? [] : undefined,
    }));
    let ngroups = 0;
    const newGroup = (): number => {
      const g = ngroups++;
      for (const s of states) {
        if (g >= s.count.length) {
          const count = new Float64Array(s.count.length * 2);
          count.set(s.count);
          s.count = count;
          const sum = new Float64Array(s.sum.length * 2);
          sum.set(s.sum);
          s.sum = sum;
        }
        s.vals.push(null);
        s.seen?.push(new Set());
        s.parts?.push([]);
      }
      return g;
    };
    if (this.groups.length === 0) newGroup();
    for await (const b of this.input.run(ctx)) {
      const pause = ctx.breathe();
      if (pause !== undefined) await pause;
      const n = b.len;
      const sel = b.sel;
      // The group of each row; -1 for rows a selection leaves out; null: one group, every row.
      let gid: Int32Array | null = null;
      if (this.groups.length > 0) {
        gid = new Int32Array(n);
        if (sel !== undefined) gid.fill(-1);
        const keyCols: Col[] = [];
        for (const g of this.groups)
          keyCols.push(g.subs.length === 0 ? g.ev(b, ctx) : await evaluate(g, b, ctx));
        keyCols.forEach((c, k) => {
          if (isDoubleCol(c)) groupDoubles[k] = true;
        });
        let bytes = 0;
        // Each key column's values get small codes (one dictionary per column for the whole
        // aggregation, coded a column at a time); a row's group is found by its codes: through a
        // direct table while they are small, else through one number, else a string.
        const nk = keyCols.length;
        const rows = sel !== undefined ? sel.n : n;
        const codeCols = keyCols.map((c, k) => dicts[k]!.codes(c, n, sel));
        const addGroup = (i: number): number => {
          const g = newGroup();
          for (let c = 0; c < nk; c++) {
            const v = getv(keyCols[c]!, i);
            groupVals[c]!.push(v);
            bytes += valueBytes(v);
          }
          bytes += 64 + 48 * this.filling.length;
          return g;
        };
        if (direct !== undefined && dicts.every((d) => d.size <= DIRECT_CODES)) {
          const c0 = codeCols[0]!;
          const c1 = nk === 2 ? codeCols[1]! : undefined;
          for (let j = 0; j < rows; j++) {
            const i = sel !== undefined ? sel.idx[j]! : j;
            const slot = c1 === undefined ? c0[i]! : c0[i]! + c1[i]! * DIRECT_CODES;
            let g = direct[slot]!;
            if (g < 0) direct[slot] = g = addGroup(i);
            gid[i] = g;
          }
        } else {
          const codes = new Int32Array(nk);
          for (let j = 0; j < rows; j++) {
            const i = sel !== undefined ? sel.idx[j]! : j;
            let small = true;
            let tiny = true;
            for (let c = 0; c < nk; c++) {
              const code = codeCols[c]![i]!;
              codes[c] = code;
              if (code >= CODE_LIMIT) small = false;
              if (code >= DIRECT_CODES) tiny = false;
            }
            let g: number | undefined;
            if (direct !== undefined && tiny) {
              const slot = nk === 1 ? codes[0]! : codes[0]! + codes[1]! * DIRECT_CODES;
              g = direct[slot]!;
              if (g < 0) direct[slot] = g = addGroup(i);
            } else {
              let key: string | number;
              if (small && nk <= 3) {
                key = codes[0]!;
                if (nk > 1) key += codes[1]! * CODE_LIMIT;
                if (nk > 2) key += codes[2]! * CODE_LIMIT * CODE_LIMIT;
              } else key = codes.join(',');
              g = groupIds.get(key);
              if (g === undefined) groupIds.set(key, (g = addGroup(i)));
            }
            gid[i] = g;
          }
        }
        if (bytes > 0) ctx.mem.charge(bytes);
      } else if (sel !== undefined) {
        gid = new Int32Array(n).fill(-1);
        for (let j = 0; j < sel.n; j++) gid[sel.idx[j]!] = 0;
      }
      // Rows per group in this batch, counted once for every accumulator (few groups only).
      let rowsPer: Float64Array | undefined;
      if (gid === null) rowsPer = Float64Array.of(n);
      else if (ngroups <= 4096) {
        rowsPer = new Float64Array(ngroups);
        for (let i = 0; i < n; i++) if (gid[i]! >= 0) rowsPer[gid[i]!]!++;
      }
      // Sums and counts over numbers go through one fused pass; the rest one accumulator at a time.
      const fast: { arg: NumCol; st: AggState; counting: boolean }[] = [];
      for (let a = 0; a < this.filling.length; a++) {
        const spec = this.filling[a]!;
        const arg =
          spec.arg === undefined
            ? undefined
            : spec.arg.subs.length === 0
              ? spec.arg.ev(b, ctx)
              : await evaluate(spec.arg, b, ctx);
        const st = states[a]!;
        if (arg !== undefined && isDoubleCol(arg)) st.dbl = true;
        if (
          arg !== undefined &&
          arg.k === 'num' &&
          arg.time !== true &&
          st.seen === undefined &&
          NUMERIC_AGGS.has(spec.name) &&
          sumChunk(st, arg) >= n
        ) {
          fast.push({ arg, st, counting: arg.nulls !== null || rowsPer === undefined });
        } else accumulate(spec, st, gid, n, rowsPer, arg, ctx);
      }
      if (fast.length > 0) {
        multiSumKernel(
          fast.map((f) => ({ rep: repOf(f.arg.d), nullable: f.arg.nulls !== null, counting: f.counting })),
          gid !== null,
        )(
          fast.map((f) => f.arg.d),
          fast.map((f) => f.arg.nulls),
          gid,
          n,
          fast.map((f) => f.st.sum),
          fast.map((f) => f.st.count),
        );
        for (const f of fast) {
          if (!f.counting) for (let g = 0; g < rowsPer!.length; g++) f.st.count[g]! += rowsPer![g]!;
          carry(f.st, ngroups);
        }
      }
    }
    // Output
    for (let s = 0; s < ngroups; s += BATCH_ROWS) {
      const n = Math.min(BATCH_ROWS, ngroups - s);
      const cols: Col[] = [];
      groupVals.forEach((gv, k) => cols.push(outputCol(gv.slice(s, s + n), groupDoubles[k] === true)));
      for (let a = 0; a < this.aggs.length; a++) {
        const spec = this.aggs[a]!;
        const st = states[this.stateOf[a]!]!;
        const d = new Array<SqlValue>(n);
        for (let i = 0; i < n; i++) d[i] = finish(spec, st, s + i);
        // DOUBLE results stay doubles downstream: sums and averages of doubles, MIN/MAX of a
        // DOUBLE argument.
        const summed = spec.name === 'SUM' || spec.name === 'AVG' || spec.name === 'TOTAL';
        const dbl = summed ? st.scale === -1 : spec.name !== 'COUNT' && st.dbl === true;
        cols.push(outputCol(d, dbl));
      }
      yield { len: n, cols };
    }
  }

  explain(x?: ExplainChoices): string[] {
    const g = this.groups.length > 0 ? ` group by ${this.groups.map((e) => e.text).join(', ')}` : '';
    return [
      `hash aggregate ${this.aggs.map((a) => a.text).join(', ')}${g}`,
      ...indent(this.input.explain(x)),
    ];
  }
}

/**
 * Add a batch to an accumulator. gid: each row's group, -1 for rows left out; null: every row in
 * group 0. rowsPer: the batch's rows per group, when counted.
 */
function accumulate(
  spec: AggSpec,
  st: AggState,
  gid: Int32Array | null,
  n: number,
  rowsPer: Float64Array | undefined,
  arg: Col | undefined,
  ctx: Ctx,
): void {
  if (arg === undefined) {
    if (rowsPer !== undefined) for (let g = 0; g < rowsPer.length; g++) st.count[g]! += rowsPer[g]!;
    else for (let i = 0; i < n; i++) if (gid![i]! >= 0) st.count[gid![i]!]!++;
    return;
  }
  const name = spec.name;
  const numeric = name === 'SUM' || name === 'AVG' || name === 'TOTAL' || name === 'COUNT';
  // The fast path: numbers in a typed array, no DISTINCT. Without nulls, the counts are the
  // batch's rows per group.
  const chunk =
    arg.k === 'num' && arg.time !== true && st.seen === undefined && numeric ? sumChunk(st, arg) : 0;
  if (arg.k === 'num' && chunk > 0) {
    const counting = arg.nulls !== null || rowsPer === undefined;
    const kernel = sumKernel(repOf(arg.d), arg.nulls !== null, counting, gid !== null);
    const part = <T extends NumArray | Uint8Array | Int32Array | null>(a: T, s: number, e: number): T =>
      (a === null ? null : ArrayBuffer.isView(a) ? a.subarray(s, e) : a.slice(s, e)) as T;
    for (let s = 0; s < n; s += chunk) {
      const e = Math.min(n, s + chunk);
      if (s === 0 && e === n) kernel(arg.d, arg.nulls, gid, n, st.sum, st.count);
      else kernel(part(arg.d, s, e), part(arg.nulls, s, e), part(gid, s, e), e - s, st.sum, st.count);
      carry(st, st.count.length);
    }
    if (!counting) for (let g = 0; g < rowsPer.length; g++) st.count[g]! += rowsPer[g]!;
    return;
  }
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const g = gid === null ? 0 : gid[i]!;
    if (g < 0) continue;
    const v = getv(arg, i);
    if (v === null) continue;
    if (st.seen !== undefined) {
      // SUM and AVG of DISTINCT values deduplicate their numbers ('x' and 'y' are one 0), as
      // MySQL's numeric aggregates do; COUNT, MIN and MAX tell the values apart as they are.
      const summed = name === 'SUM' || name === 'AVG' || name === 'TOTAL';
      const k = hashKey(summed && numKind(v) === 'dbl' ? toNumber(v) : v);
      const seen = st.seen[g]!;
      if (seen.has(k)) continue;
      seen.add(k);
      bytes += 32 + 2 * k.length;
    }
    switch (name) {
      case 'COUNT':
      case 'SUM':
      case 'AVG':
      case 'TOTAL':
        // One accumulator serves all four (see sharedKey): the sum and the count, always.
        addValue(st, g, v);
        st.count[g]!++;
        break;
      case 'MIN':
      case 'MAX': {
        const cur = st.vals[g]!;
        if (cur === null || (name === 'MIN' ? compare(v, cur) < 0 : compare(v, cur) > 0)) st.vals[g] = v;
        break;
      }
      case 'FIRST':
        if (st.count[g] === 0) {
          st.vals[g] = v;
          st.count[g] = 1;
        }
        break;
      case 'GROUP_CONCAT': {
        const t = toText(v);
        st.parts![g]!.push(t);
        bytes += 16 + 2 * t.length;
        break;
      }
    }
  }
  if (bytes > 0) ctx.mem.charge(bytes);
}

/**
 * How many rows of a batch of numbers can go through the sum kernels at a time into this state,
 * 0 when none can: the state's kind (doubles, or exact at one scale) must be the batch's, or the
 * state new; for exact sums, as many rows as no group's partial sum can leave ±2^53 with (the
 * kernels add doubles; `carry` moves sums past 2^50 out between chunks).
 */
function sumChunk(st: AggState, arg: NumCol): number {
  const scale = arg.scale ?? (arg.int === true ? 0 : -1);
  if (st.scale === undefined) st.scale = scale;
  if (st.scale !== scale) return 0;
  if (scale < 0) return Infinity;
  const d = arg.d;
  let max = arg.max;
  if (max === undefined) {
    max = 0;
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      const a = v < 0 ? -v : v;
      if (a > max) max = a;
    }
  }
  return max === 0 ? Infinity : Math.floor(2 ** 51 / max);
}

/** Exact sums past 2^50 move their value into `big`, so that the next batch adds exactly. */
function carry(st: AggState, groups: number): void {
  if (st.scale === undefined || st.scale < 0) return;
  for (let g = 0; g < groups && g < st.sum.length; g++) {
    const s = st.sum[g]!;
    if (s > 2 ** 50 || s < -(2 ** 50)) {
      st.big ??= [];
      st.big[g] = (st.big[g] ?? 0n) + BigInt(s);
      st.sum[g] = 0;
    }
  }
}

/** An exact sum as a scaled bigint. */
function exactSum(st: AggState, g: number): bigint {
  return (st.big?.[g] ?? 0n) + BigInt(st.sum[g]!);
}

/** Add one value to a sum, converting the state when the value is of another kind. */
function addValue(st: AggState, g: number, v: SqlValue): void {
  const kind = st.dbl ? 'dbl' : numKind(v);
  const vs = kind === 'dbl' ? -1 : kind === 'int' ? 0 : (v as Decimal).s;
  if (st.scale === undefined) st.scale = vs;
  if (st.scale >= 0 && vs < 0) {
    // A double among exact values: the sums become doubles (MySQL's type would be DOUBLE).
    const p = 10 ** st.scale;
    for (let i = 0; i < st.sum.length; i++) st.sum[i] = Number(exactSum(st, i)) / p;
    st.big = undefined;
    st.scale = -1;
  } else if (st.scale >= 0 && vs > st.scale) {
    const f = 10n ** BigInt(vs - st.scale);
    st.big ??= [];
    for (let i = 0; i < st.sum.length; i++) {
      st.big[i] = exactSum(st, i) * f;
      st.sum[i] = 0;
    }
    st.scale = vs;
  }
  if (st.scale < 0) {
    st.sum[g]! += toNumber(v);
    return;
  }
  const d = kind === 'dec' ? (v as Decimal) : new Decimal(BigInt(v as number | bigint), 0);
  const u = d.rescale(st.scale).u;
  st.big ??= [];
  st.big[g] = (st.big[g] ?? 0n) + u;
}

function finish(spec: AggSpec, st: AggState, g: number): SqlValue {
  const exact = st.scale !== undefined && st.scale >= 0;
  switch (spec.name) {
    case 'COUNT':
      return st.count[g]!;
    case 'SUM':
      if (st.count[g] === 0) return null;
      if (!exact) return st.sum[g]!;
      // MySQL's SUM of integers is a DECIMAL: past BIGINT's range it stays one.
      if (st.scale === 0) {
        const u = exactSum(st, g);
        return u >= INT64_MIN && u <= INT64_MAX ? canonicalInt(u) : new Decimal(u, 0);
      }
      return new Decimal(exactSum(st, g), st.scale!);
    case 'TOTAL':
      return exact ? Number(exactSum(st, g)) / 10 ** st.scale! : st.sum[g]!;
    case 'AVG':
      if (st.count[g] === 0) return null;
      if (!exact) return st.sum[g]! / st.count[g]!;
      // MySQL: the argument's scale plus div_precision_increment (4), rounded.
      return decimalArith(
        '/',
        new Decimal(exactSum(st, g), st.scale!),
        new Decimal(BigInt(st.count[g]!), 0),
        () => spec.text,
      );
    case 'GROUP_CONCAT': {
      const p = st.parts![g]!;
      return p.length === 0 ? null : p.join(spec.separator ?? ',');
    }
    default:
      return st.vals[g]!;
  }
}
