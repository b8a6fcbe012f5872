/**
 * Index bounds: what a constant compared with a column says about the column's values, as the
 * engine's index orders them. SQL compares values of different kinds by MySQL's conversions
 * (`values.ts`'s compare); an index orders a column's own values. A constant becomes bounds in the
 * column's domain that select at least every row the comparison can be true for: exactly where the
 * comparison is exact, widened by a few units in the last place where SQL compares through a
 * double (a BIGINT past 2^53 against a double, a DECIMAL against a string). The condition is still
 * checked on every row an index hands out, so bounds only have to be loose, never tight.
 */
import type { ColumnType } from '../../schema/schema.js';
import { Decimal, parseDate, stringToNumber, type SqlValue } from '../values.js';
import {
  canonicalInt,
  compareDecimal,
  compareWithDouble,
  divFloor,
  INT64_MAX,
  INT64_MIN,
  nextDown,
  pow10,
  UINT64_MAX,
} from '../../util/decimal.js';

/** An index column as the bounds see it. */
export interface IndexColumn {
  name: string;
  type: ColumnType;
  /** DECIMAL: digits after the point, and in all. */
  scale?: number;
  precision?: number;
}

/** A value of a column as the engine takes it (normalized: an index bound the engine accepts). */
export type IndexKey = number | bigint | string | boolean | Date | Uint8Array | Decimal | null;

/** One side of a range over a column's values. */
export interface KeyBound {
  key: IndexKey;
  inclusive: boolean;
}

/** A range over one column's values: either side may be open. */
export interface KeyInterval {
  lower?: KeyBound;
  upper?: KeyBound;
}

/** A comparison operator a bound comes from. */
export type BoundOp = '=' | '<' | '<=' | '>' | '>=';

const MS_MAX = 8_640_000_000_000_000n;

/** The integer domain of a column kept as exact integers (DECIMAL: its scaled integers; times: ms). */
interface Domain {
  lo: bigint;
  hi: bigint;
  scale: number;
  key: (u: bigint) => IndexKey;
}

function domainOf(c: IndexColumn): Domain | undefined {
  switch (c.type) {
    case 'int32':
      return { lo: -(2n ** 31n), hi: 2n ** 31n - 1n, scale: 0, key: (u) => Number(u) };
    case 'int64':
      return { lo: INT64_MIN, hi: INT64_MAX, scale: 0, key: canonicalInt };
    case 'uint64':
      return { lo: 0n, hi: UINT64_MAX, scale: 0, key: canonicalInt };
    case 'bool':
      return { lo: 0n, hi: 1n, scale: 0, key: (u) => u === 1n };
    case 'timestamp':
      return { lo: -MS_MAX, hi: MS_MAX, scale: 0, key: (u) => new Date(Number(u)) };
    case 'decimal': {
      const s = c.scale ?? 0;
      const max = pow10(c.precision ?? 10) - 1n;
      return { lo: -max, hi: max, scale: s, key: (u) => new Decimal(u, s) };
    }
    default:
      return undefined;
  }
}

/**
 * A constant against a column: the column values bounding the ones equal to it. `ceil` is the
 * smallest column value >= v and `floor` the largest <= v (null: there is none, v is past the
 * domain's end); with `approx`, SQL compares through a double and the two are widened so that every
 * value the comparison might call equal lies between them.
 */
interface Conv {
  ceil: IndexKey | null;
  floor: IndexKey | null;
  approx: boolean;
}

const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);

function nextUp(d: number): number {
  if (d === 0) return Number.MIN_VALUE;
  f64[0] = d;
  i64[0] = i64[0]! + (d > 0 ? 1n : -1n);
  return f64[0];
}

/** An exact number's floor and ceiling at `scale`. */
function floorCeil(v: Decimal, scale: number): { floor: bigint; ceil: bigint } {
  return { floor: divFloor(v.u, v.s - scale), ceil: -divFloor(-v.u, v.s - scale) };
}

/** A double as an exact number (its shortest decimal form: on the same side of every grid point). */
function exactOfDouble(x: number): Decimal {
  return Number.isSafeInteger(x) ? new Decimal(BigInt(x), 0) : Decimal.fromNumber(x)!;
}

/** The number SQL compares a column of an integer domain with, and whether it does so exactly. */
function numericOf(v: SqlValue, c: IndexColumn): { d: Decimal; approx: boolean } | { x: number } | undefined {
  const type = c.type;
  // Times compare with anything by asTime (ms; a string parsed as a date first).
  if (type === 'timestamp') {
    let x: number;
    if (v instanceof Date) x = v.getTime();
    else if (typeof v === 'string') x = parseDate(v)?.getTime() ?? stringToNumber(v);
    else if (typeof v === 'number') x = v;
    else if (typeof v === 'bigint') x = Number(v);
    else if (v instanceof Decimal) x = v.toNumber();
    else return undefined;
    return { x };
  }
  if (type === 'int32' || type === 'bool') {
    // The column's values are safe integers: every comparison with a number is exact.
    if (typeof v === 'bigint') return { d: new Decimal(v, 0), approx: false };
    if (v instanceof Decimal) return { d: v, approx: false };
    if (typeof v === 'number') return { x: v };
    if (typeof v === 'string') return { x: stringToNumber(v) };
    if (v instanceof Date) return { x: v.getTime() };
    return undefined;
  }
  // BIGINT, BIGINT UNSIGNED and DECIMAL columns compare exactly with exact numbers, through
  // doubles with doubles, strings and times.
  if (typeof v === 'bigint') return { d: new Decimal(v, 0), approx: false };
  if (v instanceof Decimal) return { d: v, approx: false };
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return { d: new Decimal(BigInt(v), 0), approx: false };
    return Number.isFinite(v) ? { d: exactOfDouble(v), approx: true } : undefined;
  }
  if (typeof v === 'string') {
    const x = stringToNumber(v);
    return { d: exactOfDouble(x), approx: true };
  }
  if (v instanceof Date) return { d: new Decimal(BigInt(v.getTime()), 0), approx: true };
  return undefined;
}

/** Past this many units in the last place a double comparison can not reach. */
function widened(x: number): [number, number] {
  return [nextDown(nextDown(x)), nextUp(nextUp(x))];
}

/** The conversion of a non-null constant for a column (undefined: no bound follows from it). */
function convert(v: SqlValue, c: IndexColumn): Conv | undefined {
  const dom = domainOf(c);
  if (dom !== undefined) {
    const n = numericOf(v, c);
    if (n === undefined) return undefined;
    let lo: Decimal;
    let hi: Decimal;
    let approx = false;
    if ('x' in n) {
      // Compared as doubles with the column's values, which are exact doubles here (INT, times).
      if (!Number.isFinite(n.x)) return undefined;
      lo = hi = exactOfDouble(n.x);
    } else if (n.approx) {
      const x = n.d.toNumber();
      if (!Number.isFinite(x)) return undefined;
      const [a, b] = widened(x);
      lo = exactOfDouble(a);
      hi = exactOfDouble(b);
      approx = true;
    } else lo = hi = n.d;
    const ceil = floorCeil(lo, dom.scale).ceil;
    const floor = floorCeil(hi, dom.scale).floor;
    return {
      ceil: ceil > dom.hi ? null : dom.key(ceil < dom.lo ? dom.lo : ceil),
      floor: floor < dom.lo ? null : dom.key(floor > dom.hi ? dom.hi : floor),
      approx,
    };
  }
  switch (c.type) {
    case 'float64': {
      // A DOUBLE column compares with numbers as doubles (exactly, or, for an exact value that
      // is no double, through its nearest one for some values and exactly for others: widened).
      let x: number;
      let approx = false;
      if (typeof v === 'number') x = v;
      else if (typeof v === 'string') x = stringToNumber(v);
      else if (v instanceof Date) x = v.getTime();
      else if (typeof v === 'bigint' || v instanceof Decimal) {
        const d = typeof v === 'bigint' ? new Decimal(v, 0) : v;
        x = d.toNumber();
        approx = !Number.isFinite(x) || compareWithDouble(d, x) !== 0;
      } else return undefined;
      if (!Number.isFinite(x)) return undefined;
      if (!approx) return { ceil: x, floor: x, approx: false };
      const [a, b] = widened(x);
      return { ceil: a, floor: b, approx: true };
    }
    case 'string':
      return typeof v === 'string' ? { ceil: v, floor: v, approx: false } : undefined;
    case 'bytes':
      if (v instanceof Uint8Array) return { ceil: v, floor: v, approx: false };
      if (typeof v === 'string') {
        const b = new Uint8Array(Buffer.from(v, 'utf8'));
        return { ceil: b, floor: b, approx: false };
      }
      return undefined;
    default:
      return undefined;
  }
}

/**
 * The column values `column op v` can be true for, as an interval: 'empty' when none can be (v
 * NULL, a fraction equal to an integer column, past the domain), undefined when the comparison
 * says nothing an index can use (a string against a number column compares by numeric prefix).
 */
export function boundOf(op: BoundOp, v: SqlValue, c: IndexColumn): KeyInterval | 'empty' | undefined {
  if (v === null) return 'empty';
  const conv = convert(v, c);
  if (conv === undefined) return undefined;
  const { ceil, floor, approx } = conv;
  switch (op) {
    case '=':
      if (ceil === null || floor === null) return 'empty';
      if (!approx && compareKeys(ceil, floor) !== 0) return 'empty';
      return { lower: { key: ceil, inclusive: true }, upper: { key: floor, inclusive: true } };
    case '>=':
      return ceil === null ? 'empty' : { lower: { key: ceil, inclusive: true } };
    case '>':
      if (approx) return ceil === null ? 'empty' : { lower: { key: ceil, inclusive: true } };
      // Greater than the largest value <= v: v itself when it is one, else the next one.
      return floor === null ? {} : { lower: { key: floor, inclusive: false } };
    case '<=':
      return floor === null ? 'empty' : { upper: { key: floor, inclusive: true } };
    case '<':
      if (approx) return floor === null ? 'empty' : { upper: { key: floor, inclusive: true } };
      return ceil === null ? {} : { upper: { key: ceil, inclusive: false } };
  }
}

/** The one value `column = v` can be true for, if it is one value: 'empty' when none. */
export function pointOf(v: SqlValue, c: IndexColumn): { key: IndexKey } | 'empty' | undefined {
  const b = boundOf('=', v, c);
  if (b === 'empty' || b === undefined) return b;
  const lo = b.lower!;
  const hi = b.upper!;
  return compareKeys(lo.key, hi.key) === 0 ? { key: lo.key } : undefined;
}

/** The order of a column's values as the index keeps them (NULL first). */
export function compareKeys(a: IndexKey, b: IndexKey): number {
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : -1;
  if (b === null || b === undefined) return 1;
  if (a instanceof Decimal && b instanceof Decimal) return compareDecimal(a, b);
  if (a instanceof Date && b instanceof Date) return Math.sign(a.getTime() - b.getTime());
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return Math.sign(a.length - b.length);
  }
  const x = typeof a === 'boolean' ? Number(a) : (a as number | bigint | string);
  const y = typeof b === 'boolean' ? Number(b) : (b as number | bigint | string);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The intersection of two intervals (the tighter bound on each side), or 'empty'. */
export function intersect(a: KeyInterval, b: KeyInterval): KeyInterval | 'empty' {
  const tighter = (
    x: KeyBound | undefined,
    y: KeyBound | undefined,
    lower: boolean,
  ): KeyBound | undefined => {
    if (x === undefined) return y;
    if (y === undefined) return x;
    const c = compareKeys(x.key, y.key);
    if (c === 0) return x.inclusive ? y : x;
    return c > 0 === lower ? x : y;
  };
  const lower = tighter(a.lower, b.lower, true);
  const upper = tighter(a.upper, b.upper, false);
  if (lower !== undefined && upper !== undefined) {
    const c = compareKeys(lower.key, upper.key);
    if (c > 0 || (c === 0 && !(lower.inclusive && upper.inclusive))) return 'empty';
  }
  return { ...(lower !== undefined ? { lower } : {}), ...(upper !== undefined ? { upper } : {}) };
}
