/**
 * Expressions compiled to functions over column batches. Numeric arithmetic and comparisons run
 * over typed arrays; everything else goes value by value through `values.ts`, which defines the
 * semantics the fast paths must match.
 */
import { TidemarkError } from '../errors.js';
import {
  arithKernel,
  compareKernel,
  exactArithKernel,
  repOf,
  truthKernel,
  type NumArray,
} from './kernels.js';
import {
  anyCol,
  boxed,
  childCtx,
  constCol,
  decimalCol,
  getv,
  intCol,
  numCol,
  type Batch,
  type Col,
  type ConstCol,
  type Ctx,
  type NumCol,
} from './vector.js';
import {
  arith,
  castValue,
  compare,
  compareOp,
  Decimal,
  FUNCTIONS,
  hashKey,
  likeRegex,
  parseDate,
  integerTruth,
  toNumber,
  toText,
  truth,
  type SqlValue,
} from './values.js';

export interface Expr {
  /** How the expression reads (EXPLAIN, column names). */
  readonly text: string;
  /** Subqueries of this expression (not those inside them), to fill before `ev`. */
  readonly subs: readonly SubqueryExpr[];
  /** The input column it is, for a plain column reference. */
  readonly column?: number;
  /** Its value, when it is a literal. */
  readonly literal?: SqlValue;
  /** Whether it reads no column of its own query level (literals, parameters, outer columns). */
  readonly constant: boolean;
  /** When it is an AND of column-against-constant comparisons: those (a filter's fused path). */
  readonly atoms?: readonly CondAtom[];
  /**
   * Evaluating it cannot fail, whatever the row (no subquery, no function that can throw): it may
   * then be evaluated over rows a filter left out (see Batch.sel).
   */
  readonly pure?: boolean;
  /**
   * Its MySQL type is a string type (a string column or literal, a string function, a CASE, IF,
   * COALESCE or set operation column with a string among its branches): its values are text, so
   * it sorts, groups and deduplicates as text, as MySQL does.
   */
  readonly textual?: boolean;
  /**
   * Its MySQL type is BIGINT UNSIGNED (a bit operator, CAST AS UNSIGNED, an integer literal past
   * BIGINT, or arithmetic on one of them): integer arithmetic on it must stay within 0..2^64-1.
   */
  readonly unsigned?: boolean;
  ev(b: Batch, ctx: Ctx): Col;
}

/** `column OP value`, value constant for the batch (see Expr.atoms). */
export interface CondAtom {
  column: number;
  op: string;
  value: Expr;
}

/** The pieces of a query a subquery runs: provided by the operators module. */
export interface Runnable {
  run(ctx: Ctx): AsyncGenerator<Batch>;
  readonly width: number;
  explain(x?: ReadonlyMap<object, unknown>): string[];
}

function make(
  text: string,
  children: readonly Expr[],
  ev: (b: Batch, ctx: Ctx) => Col,
  extra: Partial<Pick<Expr, 'column' | 'literal' | 'constant' | 'atoms' | 'pure' | 'textual'>> = {},
): Expr {
  const subs: SubqueryExpr[] = [];
  for (const c of children) subs.push(...c.subs);
  // Pure unless said otherwise, and only over pure children (a subquery is never pure).
  const pure = extra.pure !== false && children.every((c) => c.pure === true);
  return { text, subs, ev, constant: extra.constant ?? children.every((c) => c.constant), ...extra, pure };
}

export function literal(v: SqlValue, text: string, dbl = false): Expr {
  const c = constCol(v, dbl);
  return make(text, [], () => c, { literal: v, constant: true, pure: true });
}

export function param(index: number): Expr {
  // Numbered in its text: expressions are told apart by their text (SUM(?) twice is two sums).
  return make(`?${index + 1}`, [], (_b, ctx) => constCol(ctx.params[index] ?? null), {
    constant: true,
    pure: true,
  });
}

export function columnRef(index: number, text: string): Expr {
  return make(text, [], (b) => b.cols[index]!, { column: index, constant: false, pure: true });
}

/** @@name (system) or @name (user) of the statement's session; an unknown system variable fails. */
export function variable(system: boolean, name: string): Expr {
  const key = name.toLowerCase();
  const text = `${system ? '@@' : '@'}${name}`;
  return make(
    text,
    [],
    (_b, ctx) => {
      const map = system ? ctx.session.system : ctx.session.user;
      const v = map.get(key);
      if (v === undefined && system) {
        throw new TidemarkError('INVALID_ARGUMENT', `unknown system variable ${name}`, {
          details: { mysqlErrno: 1193 },
        });
      }
      return constCol(v ?? null);
    },
    { constant: true, pure: !system },
  );
}

/** DATABASE(), USER(), CONNECTION_ID() and VERSION(): facts of the session. */
export function sessionFact(name: string): Expr | undefined {
  const read: ((ctx: Ctx) => SqlValue) | undefined = {
    DATABASE: (ctx: Ctx) => ctx.session.database,
    SCHEMA: (ctx: Ctx) => ctx.session.database,
    USER: (ctx: Ctx) => `${ctx.session.userName}@localhost`,
    CURRENT_USER: (ctx: Ctx) => `${ctx.session.userName}@localhost`,
    SESSION_USER: (ctx: Ctx) => `${ctx.session.userName}@localhost`,
    SYSTEM_USER: (ctx: Ctx) => `${ctx.session.userName}@localhost`,
    CONNECTION_ID: (ctx: Ctx) => ctx.session.connectionId,
    VERSION: (ctx: Ctx) => ctx.session.system.get('version') ?? null,
  }[name];
  if (read === undefined) return undefined;
  return make(`${name}()`, [], (_b, ctx) => constCol(read(ctx)), { constant: true, pure: true });
}

export function outerRef(depth: number, index: number, text: string): Expr {
  return make(text, [], (_b, ctx) => constCol(ctx.outer[depth - 1]?.[index] ?? null), {
    constant: true,
    pure: true,
  });
}

/** Evaluate an expression over a batch, filling its subqueries first. */
export async function evaluate(e: Expr, b: Batch, ctx: Ctx): Promise<Col> {
  if (e.subs.length > 0) for (const s of e.subs) await s.fill(b, ctx);
  return e.ev(b, ctx);
}

const EMPTY_U8 = new Uint8Array(0);

/** Per row: 1 true, 0 false, -1 null (SQL truth). */
export function truthArray(c: Col, n: number): Int8Array {
  const out = new Int8Array(n);
  if (c.k === 'const') {
    const t = truth(c.v);
    out.fill(t === null ? -1 : t ? 1 : 0);
  } else if (c.k === 'num') {
    truthKernel(repOf(c.d))(c.d, c.nulls, n, out);
  } else {
    for (let i = 0; i < n; i++) {
      const t = truth(c.d[i]!);
      out[i] = t === null ? -1 : t ? 1 : 0;
    }
  }
  return out;
}

/** truthArray as XOR reads its operands (see integerTruth). */
function integerTruthArray(c: Col, n: number): Int8Array {
  const out = new Int8Array(n);
  for (let i = 0; i < n; i++) {
    const t = integerTruth(getv(c, i));
    out[i] = t === null ? -1 : t ? 1 : 0;
  }
  return out;
}

function fromTruth(t: Int8Array): NumCol {
  const n = t.length;
  const d = new Uint8Array(n);
  let nulls: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    if (t[i] === -1) (nulls ??= new Uint8Array(n))[i] = 1;
    else d[i] = t[i]!;
  }
  return intCol(d, nulls);
}

/**
 * A value-at-a-time function of the arguments; constant arguments give a constant. `pure`: f never
 * throws (see Expr.pure).
 */
export function rowwise(
  text: string,
  args: readonly Expr[],
  f: (vals: SqlValue[]) => SqlValue,
  pure = false,
): Expr {
  return make(
    text,
    args,
    (b, ctx) => {
      const cols = args.map((a) => a.ev(b, ctx));
      const vals = new Array<SqlValue>(cols.length);
      if (cols.every((c) => c.k === 'const')) {
        for (let j = 0; j < cols.length; j++) vals[j] = (cols[j] as { v: SqlValue }).v;
        return constCol(f(vals));
      }
      const out = new Array<SqlValue>(b.len);
      for (let i = 0; i < b.len; i++) {
        for (let j = 0; j < cols.length; j++) vals[j] = getv(cols[j]!, i);
        out[i] = f(vals);
      }
      return anyCol(out);
    },
    { pure },
  );
}

/** `e` marked as string-typed (see Expr.textual), its values unchanged: they are text already. */
export function markText(e: Expr): Expr {
  if (e.textual === true || e instanceof SubqueryExpr) return e;
  return { ...e, textual: true };
}

/**
 * `e` converted to its string type: numbers and times become their text, as MySQL gives a CASE,
 * IF, COALESCE or set operation column whose branches mix strings and numbers.
 */
export function asText(e: Expr): Expr {
  if (e.textual === true) return e;
  if (e.literal !== undefined && (e.literal === null || typeof e.literal === 'string')) return markText(e);
  const t = rowwise(
    e.text,
    [e],
    ([v]) =>
      typeof v === 'number' || typeof v === 'bigint' || v instanceof Decimal || v instanceof Date
        ? toText(v)
        : v!,
    true,
  );
  return { ...t, textual: true };
}

/** Plain numbers (not times) in a typed array or a constant: arithmetic's fast path. */
function isNumeric(c: Col): boolean {
  return (c.k === 'num' && c.time !== true) || (c.k === 'const' && (typeof c.v === 'number' || c.v === null));
}

/**
 * A column as numbers to compare: plain numbers, or times as ms when `time` (a constant Date, or a
 * string that reads as one, then counts as its ms). Undefined when it is not comparable that way.
 */
function comparable(c: Col, time: boolean): Col | undefined {
  if (c.k === 'num') return (c.time === true) === time ? c : undefined;
  if (c.k !== 'const') return undefined;
  const v = c.v;
  if (v === null) return c;
  if (!time) return typeof v === 'number' ? c : undefined;
  if (v instanceof Date) return constCol(v.getTime());
  if (typeof v === 'string') {
    const d = parseDate(v);
    return d === undefined ? undefined : constCol(d.getTime());
  }
  return undefined;
}

/**
 * Two operands of a comparison as numbers on one scale (DECIMAL columns compare their scaled
 * integers, constants scaled to match), or undefined where only the value-by-value path is exact.
 */
function numericPair(x: Col, y: Col): [Col | undefined, Col | undefined] {
  const sx = x.k === 'num' ? (x.scale ?? 0) : undefined;
  const sy = y.k === 'num' ? (y.scale ?? 0) : undefined;
  if (sx !== undefined && sy !== undefined) return sx === sy ? [x, y] : [undefined, undefined];
  const col = sx !== undefined ? x : y;
  const k = sx !== undefined ? y : x;
  if (col.k !== 'num' || k.k !== 'const') return [undefined, undefined];
  const v = k.v;
  let c: Col | undefined;
  if (v === null) c = k;
  else if (col.scale !== undefined) {
    const u = scaledConstant(v, col.scale);
    c = u === undefined ? undefined : constCol(u);
  } else if (typeof v === 'number') c = k;
  else if (v instanceof Decimal && v.precision <= 15) c = constCol(v.toNumber());
  return sx !== undefined ? [x, c] : [c, y];
}

/** A constant as a scaled integer of scale `scale`, when it is exactly one and safe. */
export function scaledConstant(v: SqlValue, scale: number): number | undefined {
  let d: Decimal;
  if (v instanceof Decimal) d = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) d = new Decimal(BigInt(v), 0);
  else return undefined;
  if (d.s > scale) return undefined;
  const x = Number(d.rescale(scale).u);
  return Number.isSafeInteger(x) ? x : undefined;
}

function orNulls(a: Col, b: Col, n: number): Uint8Array | null {
  const x = a.k === 'num' ? a.nulls : null;
  const y = b.k === 'num' ? b.nulls : null;
  if (x === null && y === null) return null;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (x !== null ? x[i]! : 0) | (y !== null ? y[i]! : 0);
  return out;
}

/**
 * How an operand computes in the vectorized paths: its scale when exact (integers 0, DECIMALs
 * their scale), undefined for doubles, null when only the value-by-value path can tell (bigints,
 * strings, times, boxed values).
 */
function exactScale(c: Col): number | undefined | null {
  if (c.k === 'num') {
    if (c.time === true) return null;
    return c.scale ?? (c.int === true ? 0 : undefined);
  }
  if (c.k !== 'const') return null;
  const v = c.v;
  if (v === null) return 0;
  if (c.dbl === true) return undefined;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? 0 : undefined;
  if (v instanceof Decimal) return v.s;
  return null;
}

function isDecimal(c: Col): boolean {
  return (c.k === 'num' && c.scale !== undefined) || (c.k === 'const' && c.v instanceof Decimal);
}

/** An exact operand's numbers at scale `to` (from scale `from`); undefined when one is not safe. */
function scaled(c: Col, from: number, to: number): NumArray | number | undefined {
  const f = 10 ** (to - from);
  if (c.k === 'const') {
    const v = c.v;
    if (v === null) return 0;
    const u = v instanceof Decimal ? Number(v.u) * f : (v as number) * f;
    return Number.isSafeInteger(u) ? u : undefined;
  }
  const d = (c as NumCol).d;
  if (f === 1) return d;
  const out = new Float64Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const u = d[i]! * f;
    if (!(Math.abs(u) <= Number.MAX_SAFE_INTEGER)) return undefined;
    out[i] = u;
  }
  return out;
}

/** A column of doubles (a DOUBLE column or result, a double literal): its values compute as doubles. */
export function isDoubleCol(c: Col): boolean {
  return c.k === 'num'
    ? c.int !== true && c.scale === undefined && c.time !== true
    : c.k === 'const' && c.dbl === true;
}

export function arithmetic(op: string, l: Expr, r: Expr): Expr {
  const text = `${l.text} ${op} ${r.text}`;
  const unsigned = (l.unsigned === true || r.unsigned === true) && op !== '/';
  const slowRows = rowwise(text, [l, r], ([a, b]) => arith(op, a!, b!, false, unsigned));
  const slowDoubles = rowwise(text, [l, r], ([a, b]) => arith(op, a!, b!, true));
  const e = make(text, [l, r], (b, ctx) => {
    const x = l.ev(b, ctx);
    const y = r.ev(b, ctx);
    const doubles = isDoubleCol(x) || isDoubleCol(y);
    const slow = doubles ? slowDoubles : slowRows;
    if (x.k === 'const' && y.k === 'const') return constCol(arith(op, x.v, y.v, doubles, unsigned), doubles);
    // BIGINT UNSIGNED arithmetic checks every result's sign: the value-by-value path.
    if (unsigned && !doubles) return slow.ev(b, ctx);
    if ((x.k === 'const' && x.v === null) || (y.k === 'const' && y.v === null)) return constCol(null);
    if (op === 'DIV' || op === '%' || op === 'MOD') return slow.ev(b, ctx);
    const sx = exactScale(x);
    const sy = exactScale(y);
    if (sx === null || sy === null) return slow.ev(b, ctx);
    const n = b.len;
    if (sx !== undefined && sy !== undefined) {
      // Exact operands: integers or decimals as scaled integers, while every number stays exact.
      if (op === '/') return slow.ev(b, ctx);
      const decimal = isDecimal(x) || isDecimal(y);
      const s = op === '*' ? sx + sy : Math.max(sx, sy);
      if (s > 30) return slow.ev(b, ctx);
      const xs = op === '*' ? scaled(x, sx, sx) : scaled(x, sx, s);
      const ys = op === '*' ? scaled(y, sy, sy) : scaled(y, sy, s);
      if (xs === undefined || ys === undefined) return slow.ev(b, ctx);
      const out = new Float64Array(n);
      // Null slots hold 0 (or a value of the row's other side): they never make the bound larger
      // than a real row's result could be, and the slow path decides any batch past 2^53.
      const max = exactArithKernel(op, repOf(xs), repOf(ys))(xs, ys, n, out);
      if (!(max <= Number.MAX_SAFE_INTEGER)) return slow.ev(b, ctx);
      const nulls = orNulls(x, y, n);
      return decimal ? decimalCol(out, nulls, s, max) : intCol(out, nulls, max);
    }
    // A double with a decimal: MySQL computes in doubles; the slow path converts the decimal.
    if (isDecimal(x) || isDecimal(y) || !isNumeric(x) || !isNumeric(y)) return slow.ev(b, ctx);
    const out = new Float64Array(n);
    const xs = x.k === 'num' ? x.d : ((x as ConstCol).v as number);
    const ys = y.k === 'num' ? y.d : ((y as ConstCol).v as number);
    const divNulls = op === '/' ? new Uint8Array(n) : EMPTY_U8;
    const zeros = arithKernel(op, repOf(xs), repOf(ys))(xs, ys, n, out, divNulls);
    let nulls = orNulls(x, y, n);
    if (zeros > 0) {
      if (nulls === null) nulls = divNulls;
      else for (let i = 0; i < n; i++) nulls[i]! |= divNulls[i]!;
    }
    return numCol(out, nulls);
  });
  return unsigned ? { ...e, unsigned } : e;
}

const FLIP: Record<string, string> = {
  '=': '=',
  '<>': '<>',
  '!=': '!=',
  '<': '>',
  '<=': '>=',
  '>': '<',
  '>=': '<=',
};

function atomOf(op: string, l: Expr, r: Expr): CondAtom[] | undefined {
  if (FLIP[op] === undefined) return undefined;
  if (l.column !== undefined && r.constant && r.subs.length === 0)
    return [{ column: l.column, op, value: r }];
  if (r.column !== undefined && l.constant && l.subs.length === 0)
    return [{ column: r.column, op: FLIP[op], value: l }];
  return undefined;
}

export function comparison(op: string, l: Expr, r: Expr): Expr {
  const text = `${l.text} ${op} ${r.text}`;
  const slow = rowwise(text, [l, r], ([a, b]) => compareOp(op, a!, b!));
  const atoms = atomOf(op, l, r);
  return make(
    text,
    [l, r],
    (b, ctx) => {
      const x0 = l.ev(b, ctx);
      const y0 = r.ev(b, ctx);
      if (x0.k === 'const' && y0.k === 'const') return constCol(compareOp(op, x0.v, y0.v));
      const time = (x0.k === 'num' && x0.time === true) || (y0.k === 'num' && y0.time === true);
      const [x, y] = time ? [comparable(x0, true), comparable(y0, true)] : numericPair(x0, y0);
      if (op === '<=>' || x === undefined || y === undefined) return slow.ev(b, ctx);
      if ((x.k === 'const' && x.v === null) || (y.k === 'const' && y.v === null)) return constCol(null);
      const n = b.len;
      const out = new Uint8Array(n);
      const xs = x.k === 'num' ? x.d : ((x as ConstCol).v as number);
      const ys = y.k === 'num' ? y.d : ((y as ConstCol).v as number);
      compareKernel(op, repOf(xs), repOf(ys))(xs, ys, n, out);
      return intCol(out, orNulls(x, y, n));
    },
    atoms !== undefined ? { atoms } : {},
  );
}

export function logical(op: 'AND' | 'OR' | 'XOR', l: Expr, r: Expr): Expr {
  const atoms =
    op === 'AND' && l.atoms !== undefined && r.atoms !== undefined ? [...l.atoms, ...r.atoms] : undefined;
  return make(
    `(${l.text} ${op} ${r.text})`,
    [l, r],
    (b, ctx) => {
      const truths = op === 'XOR' ? integerTruthArray : truthArray;
      const x = truths(l.ev(b, ctx), b.len);
      const y = truths(r.ev(b, ctx), b.len);
      const out = new Int8Array(b.len);
      for (let i = 0; i < b.len; i++) {
        const a = x[i]!;
        const c = y[i]!;
        if (op === 'AND') out[i] = a === 0 || c === 0 ? 0 : a === -1 || c === -1 ? -1 : 1;
        else if (op === 'OR') out[i] = a === 1 || c === 1 ? 1 : a === -1 || c === -1 ? -1 : 0;
        else out[i] = a === -1 || c === -1 ? -1 : a !== c ? 1 : 0;
      }
      return fromTruth(out);
    },
    atoms !== undefined ? { atoms } : {},
  );
}

export function not(e: Expr): Expr {
  return make(`NOT ${e.text}`, [e], (b, ctx) => {
    const x = truthArray(e.ev(b, ctx), b.len);
    for (let i = 0; i < b.len; i++) if (x[i] !== -1) x[i] = x[i] === 1 ? 0 : 1;
    return fromTruth(x);
  });
}

export function isNull(e: Expr, negate: boolean): Expr {
  return make(`${e.text} IS ${negate ? 'NOT ' : ''}NULL`, [e], (b, ctx) => {
    const c = e.ev(b, ctx);
    if (c.k === 'const') return constCol((c.v === null) !== negate ? 1 : 0);
    const out = new Uint8Array(b.len);
    for (let i = 0; i < b.len; i++) out[i] = (getv(c, i) === null) !== negate ? 1 : 0;
    return intCol(out);
  });
}

export function isTruth(e: Expr, want: boolean, negate: boolean): Expr {
  return make(`${e.text} IS ${negate ? 'NOT ' : ''}${want ? 'TRUE' : 'FALSE'}`, [e], (b, ctx) => {
    const t = truthArray(e.ev(b, ctx), b.len);
    const out = new Uint8Array(b.len);
    for (let i = 0; i < b.len; i++) out[i] = (t[i] === (want ? 1 : 0)) !== negate ? 1 : 0;
    return intCol(out);
  });
}

export function negate(e: Expr): Expr {
  // Past BIGINT's range (-(~0), -(-9223372036854775808)): out of range, 1690, as MySQL (a minus
  // before a literal is folded into the literal by the binder instead).
  return rowwise(`-${e.text}`, [e], ([a]) => (a === null ? null : arith('-', 0, a!)), false);
}

export function inList(l: Expr, list: readonly Expr[], negated: boolean): Expr {
  const text = `${l.text} ${negated ? 'NOT ' : ''}IN (${list.map((e) => e.text).join(', ')})`;
  return rowwise(
    text,
    [l, ...list],
    ([a, ...vals]) => {
      const r = membership(a!, vals);
      return r === null ? null : r !== negated ? 1 : 0;
    },
    true,
  );
}

/**
 * x op ALL (values): 1 when every comparison holds (also when there are none), 0 when one fails,
 * else NULL. x op ANY (values): 1 when one holds, 0 when none can (also when there are none), else
 * NULL.
 */
function quantified(kind: 'all' | 'any', op: string, x: SqlValue, values: readonly SqlValue[]): SqlValue {
  let sawNull = false;
  for (const v of values) {
    const c = compareOp(op, x, v);
    if (c === null) sawNull = true;
    else if ((c === 1) !== (kind === 'all')) return kind === 'all' ? 0 : 1;
  }
  if (sawNull) return null;
  return kind === 'all' ? 1 : 0;
}

/** x IN (values): true, false, or null (no match and a NULL among them or x NULL). */
function membership(x: SqlValue, vals: readonly SqlValue[]): boolean | null {
  if (vals.length === 0) return false;
  if (x === null) return null;
  let sawNull = false;
  for (const v of vals) {
    if (v === null) sawNull = true;
    else if (compare(x, v) === 0) return true;
  }
  return sawNull ? null : false;
}

export function between(e: Expr, lo: Expr, hi: Expr, negated: boolean): Expr {
  const text = `${e.text} ${negated ? 'NOT ' : ''}BETWEEN ${lo.text} AND ${hi.text}`;
  // MySQL compares the three with one type: as strings only when all are strings; a string among
  // numbers is compared as a number ('a' BETWEEN ' 3' AND 2 is 0 BETWEEN 3 AND 2). Two comparisons
  // of e with each bound say the same unless e and a bound are strings and the other bound is not.
  if (e.textual === true && [lo, hi].some((x) => x.literal !== null && x.textual !== true)) {
    return rowwise(
      text,
      [e, lo, hi],
      ([x, a, b]) => {
        const vals = [x!, a!, b!];
        const numeric = !vals.some((v) => v instanceof Date);
        const [v, l, h] = vals.map((v) => (numeric && typeof v === 'string' ? toNumber(v) : v));
        const ge = v === null || l === null ? null : compare(v!, l!) >= 0;
        const le = v === null || h === null ? null : compare(v!, h!) <= 0;
        const both = ge === false || le === false ? false : ge === null || le === null ? null : true;
        return both === null ? null : both !== negated ? 1 : 0;
      },
      true,
    );
  }
  const ge = comparison('>=', e, lo);
  const le = comparison('<=', e, hi);
  const both = logical('AND', ge, le);
  const x = negated ? not(both) : both;
  return { ...x, text };
}

export function like(e: Expr, pattern: Expr, negated: boolean, escape?: string): Expr {
  let cachedPattern: string | undefined;
  let cachedRe: RegExp | undefined;
  return rowwise(
    `${e.text} ${negated ? 'NOT ' : ''}LIKE ${pattern.text}`,
    [e, pattern],
    ([a, p]) => {
      if (a === null || p === null) return null;
      const ps = toText(p!);
      if (ps !== cachedPattern) {
        cachedPattern = ps;
        cachedRe = likeRegex(ps, escape);
      }
      return cachedRe!.test(toText(a!)) !== negated ? 1 : 0;
    },
    true,
  );
}

export function caseWhen(
  subject: Expr | undefined,
  whens: readonly [Expr, Expr][],
  otherwise: Expr | undefined,
): Expr {
  const all: Expr[] = [];
  if (subject !== undefined) all.push(subject);
  for (const [w, t] of whens) all.push(w, t);
  if (otherwise !== undefined) all.push(otherwise);
  const text = `CASE ${subject !== undefined ? `${subject.text} ` : ''}${whens
    .map(([w, t]) => `WHEN ${w.text} THEN ${t.text}`)
    .join(' ')}${otherwise !== undefined ? ` ELSE ${otherwise.text}` : ''} END`;
  return make(text, all, (b, ctx) => {
    const n = b.len;
    const subj = subject !== undefined ? subject.ev(b, ctx) : undefined;
    const conds = whens.map(([w]) => w.ev(b, ctx));
    const results = whens.map(([, t]) => t.ev(b, ctx));
    const other = otherwise !== undefined ? otherwise.ev(b, ctx) : constCol(null);
    const out = new Array<SqlValue>(n);
    for (let i = 0; i < n; i++) {
      let v: SqlValue = getv(other, i);
      for (let w = 0; w < conds.length; w++) {
        const c = getv(conds[w]!, i);
        const hit = subj !== undefined ? compareOp('=', getv(subj, i), c) === 1 : truth(c) === true;
        if (hit) {
          v = getv(results[w]!, i);
          break;
        }
      }
      out[i] = v;
    }
    return anyCol(out);
  });
}

/** Functions that never throw, whatever their arguments (REPEAT, LPAD and the like can: 16 MiB). */
const PURE_FUNCTIONS = new Set([
  'ABS',
  'SIGN',
  'ROUND',
  'TRUNCATE',
  'FLOOR',
  'CEIL',
  'CEILING',
  'SQRT',
  'POW',
  'POWER',
  'EXP',
  'LN',
  'LOG',
  'LOG10',
  'LOG2',
  'MOD',
  'PI',
  'GREATEST',
  'LEAST',
  'COALESCE',
  'IFNULL',
  'NULLIF',
  'IF',
  'ISNULL',
  'LENGTH',
  'OCTET_LENGTH',
  'CHAR_LENGTH',
  'CHARACTER_LENGTH',
  'UPPER',
  'UCASE',
  'LOWER',
  'LCASE',
  'SUBSTRING',
  'SUBSTR',
  'MID',
  'LEFT',
  'RIGHT',
  'TRIM',
  'LTRIM',
  'RTRIM',
  'INSTR',
  'LOCATE',
]);

export function call(name: string, args: readonly Expr[]): Expr {
  const f = FUNCTIONS[name];
  if (f === undefined) {
    throw new TidemarkError('INVALID_ARGUMENT', `unknown function ${name}`, { details: { function: name } });
  }
  const [min, max, fn] = f;
  if (args.length < min || args.length > max) {
    throw new TidemarkError(
      'INVALID_ARGUMENT',
      `${name} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`,
    );
  }
  return rowwise(`${name}(${args.map((a) => a.text).join(', ')})`, args, fn, PURE_FUNCTIONS.has(name));
}

export function cast(e: Expr, target: string, scale: number | undefined, precision?: number): Expr {
  const c = rowwise(`CAST(${e.text} AS ${target})`, [e], ([v]) => castValue(v!, target, scale, precision));
  return target === 'UNSIGNED' ? { ...c, unsigned: true } : c;
}

// ---- subqueries ----

/** Scalar, EXISTS, IN, and comparisons with ALL or ANY (`x > ALL (subquery)`). */
type SubKind = 'scalar' | 'exists' | 'in' | 'all' | 'any';

/**
 * A subquery in an expression. `refs`: the columns of the enclosing row it reads (its results are
 * cached by their values); without refs it runs once per execution of the enclosing query.
 */
export class SubqueryExpr implements Expr {
  readonly subs: readonly SubqueryExpr[];
  readonly constant = false;
  readonly text: string;
  /** A scalar subquery whose column is string-typed (see Expr.textual). */
  textual = false;

  constructor(
    readonly kind: SubKind,
    readonly plan: Runnable,
    readonly refs: readonly number[],
    /** For IN, ALL and ANY: the left operand; for EXISTS/IN: whether negated. */
    readonly lhs: Expr | undefined,
    readonly negated: boolean,
    /** For ALL and ANY: the comparison. */
    readonly op: string = '=',
  ) {
    this.subs = [...(lhs?.subs ?? []), this];
    const inner = `(subquery)`;
    this.text =
      kind === 'scalar'
        ? inner
        : kind === 'exists'
          ? `${negated ? 'NOT ' : ''}EXISTS ${inner}`
          : kind === 'in'
            ? `${lhs!.text} ${negated ? 'NOT ' : ''}IN ${inner}`
            : `${lhs!.text} ${op} ${kind.toUpperCase()} ${inner}`;
  }

  /** Run the subquery for every row of `b` (once per distinct correlated values), for `ev`. */
  async fill(b: Batch, ctx: Ctx): Promise<void> {
    let cache = ctx.cache.get(this);
    if (cache === undefined) ctx.cache.set(this, (cache = new Map<string, unknown>()));
    if (this.refs.length === 0) {
      let r = cache.get('');
      if (r === undefined) {
        r = await this.runIn(ctx, []);
        cache.set('', r);
      }
      this.results.set(ctx, [r]);
      return;
    }
    const rows: unknown[] = new Array(b.len);
    for (let i = 0; i < b.len; i++) {
      const row = b.cols.map((c) => getv(c, i));
      const key = this.refs.map((j) => hashKey(row[j]!)).join('\u0001');
      let r = cache.get(key);
      if (r === undefined) {
        const pause = ctx.breathe();
        if (pause !== undefined) await pause;
        r = await this.runIn(ctx, row);
        cache.set(key, r);
      }
      rows[i] = r;
    }
    this.results.set(ctx, rows);
  }

  /** Per-ctx results of the last fill (a WeakMap: plans are shared between executions). */
  private readonly results = new WeakMap<Ctx, unknown[]>();

  /** One run for an outer row, in a child context whose memory is released when it ends. */
  private async runIn(ctx: Ctx, row: SqlValue[]): Promise<unknown> {
    const child = childCtx(ctx, row);
    try {
      return await this.runOnce(child, ctx);
    } finally {
      child.mem.release();
    }
  }

  /** `outer`: the context the result is kept in (an IN list's values are charged to it). */
  private async runOnce(ctx: Ctx, outer: Ctx): Promise<unknown> {
    if (this.kind === 'exists') {
      for await (const batch of this.plan.run(ctx)) if (batch.len > 0) return true;
      return false;
    }
    if (this.kind === 'scalar') {
      let value: SqlValue = null;
      let seen = 0;
      for await (const batch of this.plan.run(ctx)) {
        if (batch.len === 0) continue;
        seen += batch.len;
        if (seen > 1) {
          throw new TidemarkError(
            'INVALID_ARGUMENT',
            'a subquery used as a value returned more than one row',
            {
              details: { mysqlErrno: 1242 },
            },
          );
        }
        value = getv(batch.cols[0]!, 0);
      }
      return value;
    }
    const values: SqlValue[] = [];
    for await (const batch of this.plan.run(ctx)) {
      const c = batch.cols[0]!;
      for (const v of boxed(c, batch.len)) values.push(v);
      outer.mem.charge(16 * batch.len);
    }
    const keys = new Set(values.map(hashKey));
    return { values, keys, hasNull: keys.has('N') };
  }

  ev(b: Batch, ctx: Ctx): Col {
    const rows = this.results.get(ctx);
    if (rows === undefined) throw new Error('subquery evaluated before it was filled');
    const at = (i: number): unknown => (rows.length === 1 ? rows[0] : rows[i]);
    const n = b.len;
    if (this.kind === 'scalar') {
      if (rows.length === 1) return constCol(rows[0] as SqlValue);
      return anyCol(rows as SqlValue[]);
    }
    if (this.kind === 'exists') {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = (at(i) as boolean) !== this.negated ? 1 : 0;
      return intCol(out);
    }
    const l = this.lhs!.ev(b, ctx);
    const out = new Array<SqlValue>(n);
    if (this.kind === 'all' || this.kind === 'any') {
      for (let i = 0; i < n; i++)
        out[i] = quantified(this.kind, this.op, getv(l, i), (at(i) as { values: SqlValue[] }).values);
      return anyCol(out);
    }
    for (let i = 0; i < n; i++) {
      const s = at(i) as { values: SqlValue[]; keys: Set<string>; hasNull: boolean };
      const x = getv(l, i);
      let r: boolean | null;
      if (s.values.length === 0) r = false;
      else if (x === null) r = null;
      else if (s.keys.has(hashKey(x))) r = true;
      else r = membership(x, s.values);
      out[i] = r === null ? null : r !== this.negated ? 1 : 0;
    }
    return anyCol(out);
  }
}
