/**
 * Key conditions of a table scan: the key a `key = v` condition reads (a point read) and the bounds
 * of a key range, converted as MySQL compares values of the key's type (exact integers and DECIMALs
 * by their floors and ceilings, doubles, times, strings).
 */
import type { ColumnType } from '../../schema/schema.js';
import type { Expr } from '../expr.js';
import type { Ctx } from '../vector.js';
import { Decimal, type SqlValue } from '../values.js';
import { canonicalInt, divFloor, INT64_MAX, INT64_MIN, pow10, UINT64_MAX } from '../../util/decimal.js';
import { constValue } from './op.js';

export interface KeyRange {
  /** Key equal to this (a point read). */
  eq?: Expr;
  lower?: { e: Expr; inclusive: boolean };
  upper?: { e: Expr; inclusive: boolean };
  /**
   * Both bounds come from one BETWEEN: if either is not of the key's kind, the BETWEEN compares
   * all three as numbers (a string key with 0 AND '%'), so neither bound follows the key's order.
   */
  between?: boolean;
}

/** A DECIMAL key column's digits (its keys are scaled integers at `scale`, below 10^precision). */
export interface KeyDigits {
  scale: number;
  precision: number;
}

/**
 * The integer domain of a key type whose keys are exact integers: int32, int64, uint64, and
 * DECIMAL as its scaled integers. Undefined for other key types.
 */
function exactDomain(
  keyType: ColumnType,
  digits: KeyDigits | undefined,
): { lo: bigint; hi: bigint; scale: number; key: (u: bigint) => unknown } | undefined {
  switch (keyType) {
    case 'int32':
      return { lo: -(2n ** 31n), hi: 2n ** 31n - 1n, scale: 0, key: (u) => Number(u) };
    case 'int64':
      return { lo: INT64_MIN, hi: INT64_MAX, scale: 0, key: canonicalInt };
    case 'uint64':
      return { lo: 0n, hi: UINT64_MAX, scale: 0, key: canonicalInt };
    case 'decimal': {
      const s = digits?.scale ?? 0;
      const max = pow10(digits?.precision ?? 10) - 1n;
      return { lo: -max, hi: max, scale: s, key: (u) => new Decimal(u, s) };
    }
    default:
      return undefined;
  }
}

/**
 * A value as an exact number at `scale`: its floor and ceiling there (equal when it is exactly one
 * of them), or undefined when it is not a number (a string or a date: compared row by row, as
 * MySQL compares across types). NaN has neither; ±Infinity is returned as null bounds.
 */
function exactAt(
  v: SqlValue,
  scale: number,
): { floor: bigint | null; ceil: bigint | null; nan?: boolean } | undefined {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { floor: null, ceil: null, nan: true };
    if (v === Infinity) return { floor: null, ceil: null };
    if (v === -Infinity) return { floor: null, ceil: null };
    // A double is an exact binary fraction: integers past 2^53 by BigInt, fractions by their digits.
    const d = Number.isInteger(v) ? new Decimal(BigInt(v), 0) : Decimal.fromNumber(v)!;
    return exactAt(d, scale);
  }
  if (typeof v === 'bigint') v = new Decimal(v, 0);
  if (!(v instanceof Decimal)) return undefined;
  return { floor: divFloor(v.u, v.s - scale), ceil: -divFloor(-v.u, v.s - scale) };
}

function keyConv(keyType: ColumnType): (v: SqlValue) => number | string | undefined {
  const numeric = keyType === 'float64' || keyType === 'timestamp';
  return (v) => {
    if (numeric) {
      if (typeof v === 'number') return v;
      if (v instanceof Date && keyType === 'timestamp') return v.getTime();
      return undefined;
    }
    if (keyType === 'string' && typeof v === 'string') return v;
    return undefined;
  };
}

/**
 * The key a `key = v` condition reads: 'empty' when no row can match (NULL, a fraction for an
 * integer key, out of range); undefined when v is not of the key's kind (the condition is then
 * checked row by row, as MySQL compares across types).
 */
export function pointKey(v: SqlValue, keyType: ColumnType, digits?: KeyDigits): unknown {
  if (v === null) return 'empty';
  const dom = exactDomain(keyType, digits);
  if (dom !== undefined) {
    const x = exactAt(v, dom.scale);
    if (x === undefined) return undefined;
    if (x.floor === null || x.ceil === null || x.floor !== x.ceil) return 'empty';
    if (x.floor < dom.lo || x.floor > dom.hi) return 'empty';
    return dom.key(x.floor);
  }
  const k = keyConv(keyType)(v);
  if (k === undefined) return undefined;
  return keyType === 'timestamp' ? new Date(k) : k;
}

/**
 * The key bounds of a range for a key column of this type, or 'empty'. `exact`: an integer key
 * between two integers, where gte and lt select exactly the keys the conditions do (a fraction, a
 * string or a NULL compares as MySQL compares, so only the conditions decide).
 */
export async function keyBounds(
  range: KeyRange,
  keyType: ColumnType,
  ctx: Ctx,
  digits?: KeyDigits,
): Promise<{ eq?: unknown; gte?: unknown; lt?: unknown; exact?: boolean } | 'empty' | undefined> {
  if (range.eq !== undefined) {
    const k = pointKey(await constValue(range.eq, ctx), keyType, digits);
    if (k === 'empty') return 'empty';
    return k === undefined ? undefined : { eq: k };
  }
  const dom = exactDomain(keyType, digits);
  const conv = keyConv(keyType);
  const out: { gte?: unknown; lt?: unknown; exact?: boolean } = {};
  // Each bound's value, evaluated once.
  const lowerValue = range.lower === undefined ? undefined : await constValue(range.lower.e, ctx);
  const upperValue = range.upper === undefined ? undefined : await constValue(range.upper.e, ctx);
  const ofKind = (v: SqlValue): boolean =>
    dom !== undefined ? exactAt(v, dom.scale) !== undefined : conv(v) !== undefined;
  if (
    range.between === true &&
    lowerValue !== undefined &&
    upperValue !== undefined &&
    lowerValue !== null &&
    upperValue !== null &&
    (!ofKind(lowerValue) || !ofKind(upperValue))
  )
    return undefined;
  if (dom !== undefined) {
    // Exact: the bounds' floors and ceilings at the key's scale, cut to the key type's range.
    let exact = range.lower !== undefined && range.upper !== undefined;
    // A bound as the first key past it (gte: the lower bound's; lt: the upper bound's).
    const bound = (v: SqlValue, lower: boolean, inclusive: boolean): bigint | null | 'empty' => {
      if (v === null) return 'empty';
      const x = exactAt(v, dom.scale);
      if (x === undefined || typeof v === 'string') exact = false;
      if (x === undefined) return null;
      if (x.nan === true) return 'empty';
      if (x.floor !== x.ceil) exact = false;
      if (x.floor === null) return v === (lower ? Infinity : -Infinity) ? 'empty' : null;
      if (lower) return inclusive ? x.ceil! : x.floor + 1n;
      return inclusive ? x.floor + 1n : x.ceil!;
    };
    if (range.lower !== undefined) {
      const g = bound(lowerValue!, true, range.lower.inclusive);
      if (g === 'empty' || (g !== null && g > dom.hi)) return 'empty';
      if (g !== null) out.gte = dom.key(g < dom.lo ? dom.lo : g);
    }
    if (range.upper !== undefined) {
      const l = bound(upperValue!, false, range.upper.inclusive);
      if (l === 'empty' || (l !== null && l <= dom.lo)) return 'empty';
      if (l !== null && l <= dom.hi) out.lt = dom.key(l);
    }
    if (out.gte === undefined && out.lt === undefined) return undefined;
    out.exact = exact;
    return out;
  }
  if (range.lower !== undefined) {
    const v = lowerValue!;
    if (v === null) return 'empty';
    const k = conv(v);
    if (k !== undefined) {
      if (typeof k === 'number') {
        if (Number.isNaN(k)) return 'empty';
        if (Number.isFinite(k)) out.gte = keyType === 'timestamp' ? new Date(k) : k;
      } else out.gte = k;
    }
  }
  if (range.upper !== undefined) {
    const v = upperValue!;
    if (v === null) return 'empty';
    const k = conv(v);
    if (k !== undefined) {
      if (typeof k === 'number') {
        const l = range.upper.inclusive ? undefined : k;
        if (Number.isNaN(k)) return 'empty';
        if (l !== undefined && Number.isFinite(l)) out.lt = keyType === 'timestamp' ? new Date(l) : l;
        if (l === -Infinity) return 'empty';
      } else if (range.upper.inclusive) out.lt = `${k}\u0000`;
      else out.lt = k;
    }
  }
  if (out.gte === undefined && out.lt === undefined) return undefined;
  out.exact = false;
  return out;
}
