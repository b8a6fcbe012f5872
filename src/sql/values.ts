/**
 * SQL values and their MySQL semantics, one value at a time: the slow path of every vectorized
 * operator, and the reference the fast paths must agree with.
 *
 * A value is `null` (SQL NULL), a number (integers and doubles; booleans are 1 and 0, as in MySQL),
 * a bigint (an integer beyond ±2^53: integers are canonical, a number when safe, see
 * util/decimal.ts), a Decimal (DECIMAL: exact), a string, a Uint8Array (BLOB) or a Date
 * (TIMESTAMP/DATETIME). A number that is a safe integer counts as an integer, any other number as
 * a double; MySQL's rules for mixing them: integers with integers stay exact (BIGINT range
 * checked), with decimals give decimals, and anything with a double (or a string) gives a double.
 */
import { TidemarkError } from '../errors.js';
import {
  canonicalInt,
  compareDecimal,
  DECIMAL_MAX_PRECISION,
  DECIMAL_MAX_SCALE,
  Decimal,
  divFloor,
  divRound,
  divTrunc,
  INT64_MAX,
  INT64_MIN,
  pow10,
  UINT64_MAX,
} from '../util/decimal.js';

export { Decimal };

export type SqlValue = null | number | bigint | string | Uint8Array | Date | Decimal;

/** How a value computes: an exact integer, an exact decimal, or a double (strings and dates too). */
export type NumKind = 'int' | 'dec' | 'dbl';

export function numKind(v: SqlValue): NumKind {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? 'int' : 'dbl';
  if (typeof v === 'bigint') return 'int';
  if (v instanceof Decimal) return 'dec';
  return 'dbl';
}

/** An exact numeric value as a Decimal (integers at scale 0). */
export function toDecimalValue(v: number | bigint | Decimal): Decimal {
  if (v instanceof Decimal) return v;
  return new Decimal(typeof v === 'bigint' ? v : BigInt(v), 0);
}

export function outOfRange(what: 'BIGINT' | 'BIGINT UNSIGNED' | 'DECIMAL', text: string): TidemarkError {
  return new TidemarkError('INVALID_ARGUMENT', `${what} value is out of range in '${text}'`, {
    details: { mysqlErrno: 1690 },
  });
}

/**
 * An exact integer result: within BIGINT's range, or BIGINT UNSIGNED's when an operand was beyond
 * BIGINT's (only unsigned values are); else error 1690, as MySQL.
 */
function checkedInt(r: bigint, unsigned: boolean, text: () => string): number | bigint {
  if (r < INT64_MIN || r > (unsigned ? UINT64_MAX : INT64_MAX))
    throw outOfRange(unsigned ? 'BIGINT UNSIGNED' : 'BIGINT', text());
  return canonicalInt(r);
}

function checkedDecimal(d: Decimal, text: () => string): Decimal {
  if (d.intDigits + d.s > DECIMAL_MAX_PRECISION) throw outOfRange('DECIMAL', text());
  return d;
}

/** MySQL's conversion of a string to a number: the longest numeric prefix, 0 when there is none. */
/** The longest numeric prefix of a string, as MySQL reads a string as a number. */
const NUMERIC_PREFIX = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/;

export function stringToNumber(s: string): number {
  const m = NUMERIC_PREFIX.exec(s);
  if (m === null) return 0;
  const n = Number(m[0]);
  // Past a double's range MySQL takes the largest double, with its sign ('1e400' + 0).
  if (n === Infinity) return Number.MAX_VALUE;
  if (n === -Infinity) return -Number.MAX_VALUE;
  return n;
}

/** The numeric value of a non-null value (strings by their prefix, dates as ms). */
export function toNumber(v: SqlValue): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Decimal) return v.toNumber();
  if (typeof v === 'string') return stringToNumber(v);
  if (v instanceof Date) return v.getTime();
  if (v instanceof Uint8Array) return stringToNumber(Buffer.from(v).toString('utf8'));
  return 0;
}

/** SQL truth: NULL stays null; otherwise a nonzero number is true. */
export function truth(v: SqlValue): boolean | null {
  if (v === null) return null;
  return toNumber(v) !== 0;
}

/**
 * Truth as XOR takes it: MySQL's XOR reads its operands as integers (val_int), not as booleans as
 * AND and OR do, so a double is rounded half to even first (0.5 XOR 0 is 0, 1.5 XOR 0 is 1) and a
 * string is read up to its first non-digit ('0.9' XOR 0 is 0, '1e-3' XOR 0 is 1).
 */
export function integerTruth(v: SqlValue): boolean | null {
  if (v === null) return null;
  if (typeof v === 'number') return roundHalfEven(v) !== 0;
  if (typeof v === 'bigint') return v !== 0n;
  if (v instanceof Decimal) return divRound(v.u, v.s) !== 0n;
  if (typeof v === 'string' || v instanceof Uint8Array) {
    const m = /^\s*[+-]?0*(\d)/.exec(toText(v));
    return m !== null && m[1] !== '0';
  }
  return toNumber(v) !== 0;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function toText(v: SqlValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return numberText(v);
  if (typeof v === 'bigint' || v instanceof Decimal) return v.toString();
  if (v instanceof Date) return dateText(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return '';
}

export function numberText(n: number): string {
  // Integers (safe ones: doubles past 2^53 are doubles) as digits; MySQL writes a larger double
  // with an exponent, as its shortest digits (1.8446744073709552e19).
  if (Number.isSafeInteger(n)) return n.toFixed(0);
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return n.toFixed(0);
  if (Number.isFinite(n) && Math.abs(n) >= 1e15) return n.toExponential().replace('e+', 'e');
  return String(n);
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** 'YYYY-MM-DD HH:MM:SS[.mmm]' in UTC, as MySQL prints DATETIME. */
export function dateText(d: Date): string {
  const ms = d.getUTCMilliseconds();
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    (ms !== 0 ? `.${pad(ms, 3)}` : '')
  );
}

/** A date from its MySQL text form ('YYYY-MM-DD[ HH:MM:SS[.fff]]', UTC), or undefined. */
export function parseDate(s: string): Date | undefined {
  const m =
    /^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6}))?)?)?\s*$/.exec(s);
  if (m === null) return undefined;
  const ms = m[7] !== undefined ? Math.round(Number(`0.${m[7]}`) * 1000) : 0;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), ms);
  const d = new Date(t);
  if (Number.isNaN(t) || d.getUTCMonth() !== +m[2]! - 1 || d.getUTCDate() !== +m[3]!) return undefined;
  return d;
}

function bytesCompare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Compare two non-null values as MySQL does: numbers numerically, a string against a number as a
 * number, strings by their characters (binary collation), dates by time (a string against a date
 * as a date when it reads as one).
 */
export function compare(a: SqlValue, b: SqlValue): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (isExactNumber(a) || isExactNumber(b)) {
    const ka = numKind(a);
    const kb = numKind(b);
    if (ka !== 'dbl' && kb !== 'dbl') {
      // Exact: a number and a bigint compare exactly in JavaScript; a decimal by its digits.
      if (ka === 'dec' || kb === 'dec')
        return compareDecimal(toDecimalValue(a as Decimal), toDecimalValue(b as Decimal));
      const x = a as number | bigint;
      const y = b as number | bigint;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (typeof a !== 'object' && typeof b !== 'object') {
      const x = toNumber(a);
      const y = toNumber(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a instanceof Decimal && typeof b === 'number') return Math.sign(a.toNumber() - b) || 0;
    if (b instanceof Decimal && typeof a === 'number') return Math.sign(a - b.toNumber()) || 0;
  }
  if (a instanceof Date || b instanceof Date) {
    const x = asTime(a);
    const y = asTime(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Math.sign(bytesCompare(a, b));
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    const x = a instanceof Uint8Array ? a : Buffer.from(toText(a));
    const y = b instanceof Uint8Array ? b : Buffer.from(toText(b));
    return Math.sign(bytesCompare(x, y));
  }
  const x = toNumber(a);
  const y = toNumber(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function asTime(v: SqlValue): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'string') return parseDate(v)?.getTime() ?? stringToNumber(v);
  return toNumber(v);
}

/** The order ORDER BY sorts in: NULL first, then `compare`. */
export function sortCompare(a: SqlValue, b: SqlValue): number {
  if (a === null) return b === null ? 0 : -1;
  if (b === null) return 1;
  return compare(a, b);
}

/** A string that is equal for values GROUP BY, DISTINCT, IN and hash joins treat as equal. */
export function hashKey(v: SqlValue): string {
  if (v === null) return 'N';
  if (typeof v === 'number') return `n${v === 0 ? 0 : v}`;
  if (typeof v === 'bigint') return `n${v}`;
  if (v instanceof Decimal) return decimalKey(v);
  if (typeof v === 'string') return `s${v}`;
  if (v instanceof Date) return `n${v.getTime()}`;
  return `b${Buffer.from(v).toString('base64')}`;
}

function isExactNumber(v: SqlValue): boolean {
  return typeof v === 'bigint' || v instanceof Decimal;
}

/**
 * A decimal's key: equal to an integer's when it is one (2.00 and 2), to a double's when it is
 * exactly that double's shortest text (0.5), else its digits without trailing zeros.
 */
function decimalKey(d: Decimal): string {
  if (d.isInteger()) return `n${d.s === 0 ? d.u : d.u / pow10(d.s)}`;
  const t = d.normalized();
  const x = Number(t);
  return String(x) === t ? `n${x}` : `d${t}`;
}

/**
 * A key for Sets and Maps of non-string values that equal values share: numbers as themselves,
 * bigints and decimals as the number they equal when it is exact, else their hashKey text.
 */
export function valueKey(v: SqlValue): number | string {
  if (typeof v === 'number') return v === 0 ? 0 : v;
  if (v instanceof Date) return v.getTime();
  const h = hashKey(v);
  if (h.charCodeAt(0) === 110 /* n */) {
    const x = Number(h.slice(1));
    if (String(x) === h.slice(1)) return x;
  }
  return h;
}

/** Whether hashKey(a) === hashKey(b), without making the strings. */
export function sameKey(a: SqlValue, b: SqlValue): boolean {
  if (isExactNumber(a) || isExactNumber(b)) return hashKey(a) === hashKey(b);
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a === null || b === null) return a === b;
  if (a instanceof Uint8Array || b instanceof Uint8Array)
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  const x = a instanceof Date ? a.getTime() : a;
  const y = b instanceof Date ? b.getTime() : b;
  return x === y || (Number.isNaN(x) && Number.isNaN(y));
}

export function sqlError(message: string, details?: Record<string, unknown>): TidemarkError {
  return new TidemarkError('INVALID_ARGUMENT', message, details === undefined ? {} : { details });
}

// ---- operators ----

export function arith(op: string, a: SqlValue, b: SqlValue, doubles = false, unsigned = false): SqlValue {
  if (a === null || b === null) return null;
  const ka = numKind(a);
  const kb = numKind(b);
  if (!doubles && ka !== 'dbl' && kb !== 'dbl') {
    const text = (): string => `(${toText(a)} ${op.toLowerCase()} ${toText(b)})`;
    if (ka === 'int' && kb === 'int')
      return intArith(op, a as number | bigint, b as number | bigint, text, unsigned);
    return decimalArith(op, toDecimalValue(a as Decimal), toDecimalValue(b as Decimal), text);
  }
  const x = toNumber(a);
  const y = toNumber(b);
  switch (op) {
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    case '/':
      return y === 0 ? null : x / y;
    case 'DIV':
      return y === 0 ? null : intDiv(x, y);
    case '%':
    case 'MOD':
      return y === 0 ? null : x % y;
  }
  throw sqlError(`unknown operator ${op}`);
}

/** Integers, exactly: `/` gives a DECIMAL (4 digits after the point), the others BIGINTs. */
function intArith(
  op: string,
  x: number | bigint,
  y: number | bigint,
  text: () => string,
  /** An operand is BIGINT UNSIGNED by type (a bit operator's result): so is the result. */
  unsignedType = false,
): SqlValue {
  if (unsignedType && op !== '/') {
    const X = BigInt(x);
    const Y = BigInt(y);
    let r: bigint | null;
    if (op === '+') r = X + Y;
    else if (op === '-') r = X - Y;
    else if (op === '*') r = X * Y;
    else if (op === 'DIV') r = Y === 0n ? null : X / Y;
    else return Y === 0n ? null : canonicalInt(X % Y);
    if (r === null) return null;
    if (r < 0n || r > UINT64_MAX) throw outOfRange('BIGINT UNSIGNED', text());
    return canonicalInt(r);
  }
  if (typeof x === 'number' && typeof y === 'number') {
    let r: number | undefined;
    if (op === '+') r = x + y;
    else if (op === '-') r = x - y;
    else if (op === '*') r = x * y;
    else if (op === '%' || op === 'MOD') return y === 0 ? null : (x % y) + 0;
    else if (op === 'DIV') return y === 0 ? null : Math.trunc(x / y) + 0;
    if (r !== undefined && Number.isSafeInteger(r)) return r + 0;
  }
  const X = BigInt(x);
  const Y = BigInt(y);
  const unsigned = X > INT64_MAX || Y > INT64_MAX;
  switch (op) {
    case '+':
      return checkedInt(X + Y, unsigned, text);
    case '-':
      return checkedInt(X - Y, unsigned, text);
    case '*':
      return checkedInt(X * Y, unsigned, text);
    case 'DIV':
      return Y === 0n ? null : checkedInt(X / Y, unsigned, text);
    case '%':
    case 'MOD':
      return Y === 0n ? null : canonicalInt(X % Y);
    case '/':
      return decimalArith(op, new Decimal(X, 0), new Decimal(Y, 0), text);
  }
  throw sqlError(`unknown operator ${op}`);
}

/** The digits MySQL adds to a division's scale (div_precision_increment). */
export const DIV_PRECISION_INCREMENT = 4;

/** Decimals, exactly, with MySQL's result scales. */
export function decimalArith(op: string, x: Decimal, y: Decimal, text: () => string): SqlValue {
  switch (op) {
    case '+':
    case '-': {
      const s = Math.max(x.s, y.s);
      const a = x.rescale(s).u;
      const b = y.rescale(s).u;
      return checkedDecimal(new Decimal(op === '+' ? a + b : a - b, s), text);
    }
    case '*': {
      const s = x.s + y.s;
      const d = new Decimal(x.u * y.u, s);
      return checkedDecimal(s > DECIMAL_MAX_SCALE ? d.rescale(DECIMAL_MAX_SCALE) : d, text);
    }
    case '/': {
      if (y.u === 0n) return null;
      const s = Math.min(x.s + DIV_PRECISION_INCREMENT, DECIMAL_MAX_SCALE);
      // (x.u / 10^x.s) / (y.u / 10^y.s) at scale s: x.u * 10^(y.s + s - x.s) / y.u, rounded.
      let num = x.u;
      let den = y.u;
      const e = y.s + s - x.s;
      if (e >= 0) num *= pow10(e);
      else den *= pow10(-e);
      return checkedDecimal(new Decimal(roundDiv(num, den), s), text);
    }
    case 'DIV': {
      if (y.u === 0n) return null;
      const s = Math.max(x.s, y.s);
      return checkedInt(x.rescale(s).u / y.rescale(s).u, false, text);
    }
    case '%':
    case 'MOD': {
      if (y.u === 0n) return null;
      const s = Math.max(x.s, y.s);
      return new Decimal(x.rescale(s).u % y.rescale(s).u, s);
    }
  }
  throw sqlError(`unknown operator ${op}`);
}

/** num / den rounded half away from zero. */
function roundDiv(num: bigint, den: bigint): bigint {
  const q = num / den;
  const r = num % den;
  if (r === 0n) return q;
  const twice = (r < 0n ? -r : r) * 2n;
  const d = den < 0n ? -den : den;
  if (twice < d) return q;
  return num < 0n !== den < 0n ? q - 1n : q + 1n;
}

/**
 * `x DIV y` as MySQL computes it: integer operands divide as integers; otherwise both become
 * DECIMAL (a double by its shortest decimal form: 0.1 is 0.1, not 0.1000000000000000055...) and
 * divide exactly, truncated toward zero: 0.3 DIV 0.1 is 3, where the doubles' quotient,
 * 2.9999999999999996, would truncate to 2.
 */
export function intDiv(x: number, y: number): number {
  if (Number.isInteger(x) && Number.isInteger(y) && Math.abs(x) <= 2 ** 31 && Math.abs(y) <= 2 ** 31)
    return Math.trunc(x / y) + 0; // + 0: no -0
  if (!Number.isFinite(x) || !Number.isFinite(y)) return Math.trunc(x / y);
  // Both at one scale, their shortest decimal forms divide exactly.
  const a = Decimal.fromNumber(x)!;
  const b = Decimal.fromNumber(y)!;
  const s = Math.max(a.s, b.s);
  return Number(a.rescale(s).u / b.rescale(s).u);
}

export function compareOp(op: string, a: SqlValue, b: SqlValue): SqlValue {
  if (op === '<=>') {
    if (a === null || b === null) return a === null && b === null ? 1 : 0;
    return compare(a, b) === 0 ? 1 : 0;
  }
  if (a === null || b === null) return null;
  const c = compare(a, b);
  switch (op) {
    case '=':
      return c === 0 ? 1 : 0;
    case '!=':
    case '<>':
      return c !== 0 ? 1 : 0;
    case '<':
      return c < 0 ? 1 : 0;
    case '<=':
      return c <= 0 ? 1 : 0;
    case '>':
      return c > 0 ? 1 : 0;
    case '>=':
      return c >= 0 ? 1 : 0;
  }
  throw sqlError(`unknown operator ${op}`);
}

/** A LIKE pattern (% and _, backslash escapes) as a regular expression. */
export function likeRegex(pattern: string, escape = '\\'): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === escape && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else if (c === '%') re += '[\\s\\S]*';
    else if (c === '_') re += '[\\s\\S]';
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 'u');
}

// ---- functions ----

function num(v: SqlValue): number {
  return toNumber(v);
}

/** MySQL ROUND: half away from zero. */
export function roundHalfAway(x: number, d = 0): number {
  const f = 10 ** d;
  const r = Math.round(Math.abs(x) * f) / f;
  return x < 0 ? -r : r;
}

/**
 * A value as MySQL's bit operators take it: a number rounded to an integer, as an unsigned 64-bit
 * one (a negative number in two's complement), strings by their numeric prefix.
 */
export function toUint64(v: SqlValue): bigint {
  if (typeof v === 'bigint' || v instanceof Decimal) {
    const u = typeof v === 'bigint' ? v : divRound(v.u, v.s);
    return BigInt.asUintN(64, clampInt(u, INT64_MIN, UINT64_MAX));
  }
  const n = toNumber(v);
  if (Number.isNaN(n)) return 0n;
  if (n >= 2 ** 64) return 2n ** 64n - 1n;
  if (n <= -(2 ** 63)) return 2n ** 63n;
  return BigInt.asUintN(64, BigInt(roundHalfAway(n)));
}

/** `| & ^ << >>` and `~` (op '~', b unused): MySQL's bit operators, BIGINT UNSIGNED results. */
export function bitwise(op: string, a: SqlValue, b: SqlValue): SqlValue {
  if (a === null || (op !== '~' && b === null)) return null;
  return canonicalInt(bitwise64(op, toUint64(a), op === '~' ? 0n : toUint64(b)));
}

/**
 * The bit operators on unsigned 64-bit integers: exact, where a number (a double) past 2^53 is not
 * (~4 is 2^64 - 5; as a double it is 2^64, and 7 & ~4 would be 7, not 3).
 */
export function bitwise64(op: string, x: bigint, y: bigint): bigint {
  switch (op) {
    case '~':
      return BigInt.asUintN(64, ~x);
    case '|':
      return x | y;
    case '&':
      return x & y;
    case '^':
      return x ^ y;
    case '<<':
      return y >= 64n ? 0n : BigInt.asUintN(64, x << y);
    case '>>':
      return y >= 64n ? 0n : x >> y;
  }
  throw sqlError(`unknown bit operator ${op}`);
}

type Fn = (args: SqlValue[]) => SqlValue;

const nullIfAny =
  (f: Fn): Fn =>
  (args) =>
    args.some((a) => a === null) ? null : f(args);

/** Scalar functions by upper-case name: [minimum arguments, maximum arguments, function]. */
/**
 * UPPER/LOWER as MySQL's utf8mb4 collations do them: character by character, one character to one
 * ('ß' stays 'ß', where JavaScript's toUpperCase gives 'SS'; 'İ' lowers to 'i'). ASCII-only text takes the fast path.
 */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

function caseMap(s: string, upper: boolean): string {
  const whole = upper ? s.toUpperCase() : s.toLowerCase();
  if (whole.length === s.length && isAscii(s)) return whole;
  let out = '';
  for (const ch of s) {
    const m = upper ? ch.toUpperCase() : ch.toLowerCase();
    // Only 'İ' lowers to two characters in Unicode; MySQL lowers it to 'i'.
    const cps = [...m];
    out += cps.length === 1 ? m : upper ? ch : cps[0]!;
  }
  return out;
}

/**
 * ROUND and TRUNCATE of an exact value to d digits after the point (d < 0: to a power of ten),
 * as MySQL: a decimal result has scale max(d, 0), an integer stays an integer.
 */
function roundExact(v: number | bigint | Decimal, dArg: number, truncate: boolean): SqlValue {
  const d = Math.max(-DECIMAL_MAX_PRECISION, Math.min(DECIMAL_MAX_SCALE, dArg));
  const x = toDecimalValue(v);
  const cut = truncate ? divTrunc : divRound;
  if (d >= 0) {
    if (!(v instanceof Decimal)) return v;
    return new Decimal(cut(x.u, x.s - d), d);
  }
  // To 10^-d: the digits below it dropped, then put back as zeros.
  const u = cut(x.u, x.s - d) * pow10(-d);
  return v instanceof Decimal ? new Decimal(u, 0) : canonicalInt(u);
}

function floorCeil(v: SqlValue, ceil: boolean): SqlValue {
  if (v instanceof Decimal) return canonicalInt(ceil ? -divFloor(-v.u, v.s) : divFloor(v.u, v.s));
  if (typeof v === 'bigint') return v;
  return ceil ? Math.ceil(num(v)) : Math.floor(num(v));
}

export const FUNCTIONS: Record<string, [number, number, Fn]> = {
  ABS: [
    1,
    1,
    nullIfAny(([a]) => {
      if (a instanceof Decimal) return a.abs();
      if (typeof a === 'bigint') return checkedInt(a < 0n ? -a : a, a > INT64_MAX, () => `abs(${a})`);
      return Math.abs(num(a!));
    }),
  ],
  SIGN: [
    1,
    1,
    nullIfAny(([a]) =>
      a instanceof Decimal ? a.sign() : typeof a === 'bigint' ? (a < 0n ? -1 : 1) : Math.sign(num(a!)),
    ),
  ],
  ROUND: [
    1,
    2,
    nullIfAny(([a, d]) => {
      const digits = d === undefined ? 0 : Math.trunc(num(d));
      if (numKind(a!) !== 'dbl') return roundExact(a as number | bigint | Decimal, digits, false);
      return roundHalfAway(num(a!), digits);
    }),
  ],
  TRUNCATE: [
    2,
    2,
    nullIfAny(([a, d]) => {
      const digits = Math.trunc(num(d!));
      if (numKind(a!) !== 'dbl') return roundExact(a as number | bigint | Decimal, digits, true);
      const f = 10 ** digits;
      return Math.trunc(num(a!) * f) / f;
    }),
  ],
  FLOOR: [1, 1, nullIfAny(([a]) => floorCeil(a!, false))],
  CEIL: [1, 1, nullIfAny(([a]) => floorCeil(a!, true))],
  CEILING: [1, 1, nullIfAny(([a]) => floorCeil(a!, true))],
  SQRT: [1, 1, nullIfAny(([a]) => (num(a!) < 0 ? null : Math.sqrt(num(a!))))],
  POW: [2, 2, nullIfAny(([a, b]) => num(a!) ** num(b!))],
  POWER: [2, 2, nullIfAny(([a, b]) => num(a!) ** num(b!))],
  EXP: [1, 1, nullIfAny(([a]) => Math.exp(num(a!)))],
  LN: [1, 1, nullIfAny(([a]) => (num(a!) <= 0 ? null : Math.log(num(a!))))],
  LOG: [1, 1, nullIfAny(([a]) => (num(a!) <= 0 ? null : Math.log(num(a!))))],
  LOG10: [1, 1, nullIfAny(([a]) => (num(a!) <= 0 ? null : Math.log10(num(a!))))],
  LOG2: [1, 1, nullIfAny(([a]) => (num(a!) <= 0 ? null : Math.log2(num(a!))))],
  MOD: [2, 2, ([a, b]) => arith('%', a!, b!)],
  PI: [0, 0, () => Math.PI],
  GREATEST: [2, 64, nullIfAny((a) => a.reduce((m, v) => (compare(v, m) > 0 ? v : m)))],
  LEAST: [2, 64, nullIfAny((a) => a.reduce((m, v) => (compare(v, m) < 0 ? v : m)))],
  COALESCE: [1, 64, (a) => a.find((v) => v !== null) ?? null],
  IFNULL: [2, 2, ([a, b]) => (a !== null ? a! : b!)],
  NULLIF: [2, 2, ([a, b]) => (a === null || b === null || compare(a!, b!) !== 0 ? a! : null)],
  IF: [3, 3, ([c, a, b]) => (truth(c!) === true ? a! : b!)],
  ISNULL: [1, 1, ([a]) => (a === null ? 1 : 0)],
  LENGTH: [1, 1, nullIfAny(([a]) => (a instanceof Uint8Array ? a.length : Buffer.byteLength(toText(a!))))],
  OCTET_LENGTH: [1, 1, nullIfAny(([a]) => Buffer.byteLength(toText(a!)))],
  CHAR_LENGTH: [1, 1, nullIfAny(([a]) => [...toText(a!)].length)],
  CHARACTER_LENGTH: [1, 1, nullIfAny(([a]) => [...toText(a!)].length)],
  UPPER: [1, 1, nullIfAny(([a]) => caseMap(toText(a!), true))],
  UCASE: [1, 1, nullIfAny(([a]) => caseMap(toText(a!), true))],
  LOWER: [1, 1, nullIfAny(([a]) => caseMap(toText(a!), false))],
  LCASE: [1, 1, nullIfAny(([a]) => caseMap(toText(a!), false))],
  CONCAT: [1, 64, nullIfAny((a) => a.map(toText).join(''))],
  CONCAT_WS: [
    2,
    64,
    ([sep, ...rest]) =>
      sep === null
        ? null
        : rest
            .filter((v) => v !== null)
            .map(toText)
            .join(toText(sep!)),
  ],
  SUBSTRING: [2, 3, nullIfAny(substring)],
  SUBSTR: [2, 3, nullIfAny(substring)],
  MID: [3, 3, nullIfAny(substring)],
  LEFT: [2, 2, nullIfAny(([s, n]) => [...toText(s!)].slice(0, Math.max(0, num(n!))).join(''))],
  RIGHT: [
    2,
    2,
    nullIfAny(([s, n]) => {
      const c = [...toText(s!)];
      const k = Math.max(0, Math.trunc(num(n!)));
      return k === 0 ? '' : c.slice(-k).join('');
    }),
  ],
  TRIM: [1, 1, nullIfAny(([s]) => toText(s!).replace(/^ +| +$/g, ''))],
  LTRIM: [1, 1, nullIfAny(([s]) => toText(s!).replace(/^ +/, ''))],
  RTRIM: [1, 1, nullIfAny(([s]) => toText(s!).replace(/ +$/, ''))],
  REPLACE: [
    3,
    3,
    nullIfAny(([s, f, t]) =>
      toText(f!) === '' ? toText(s!) : toText(s!).split(toText(f!)).join(toText(t!)),
    ),
  ],
  REVERSE: [1, 1, nullIfAny(([s]) => [...toText(s!)].reverse().join(''))],
  REPEAT: [
    2,
    2,
    nullIfAny(([s, n]) => {
      const k = Math.max(0, Math.trunc(num(n!)));
      if (toText(s!).length * k > 16 * 1024 * 1024) throw sqlError('REPEAT result larger than 16 MiB');
      return toText(s!).repeat(k);
    }),
  ],
  INSTR: [2, 2, nullIfAny(([s, f]) => toText(s!).indexOf(toText(f!)) + 1)],
  LOCATE: [
    2,
    3,
    nullIfAny(([f, s, p]) => {
      const start = p === undefined ? 0 : Math.max(0, Math.trunc(num(p)) - 1);
      return toText(s!).indexOf(toText(f!), start) + 1;
    }),
  ],
  LPAD: [3, 3, nullIfAny(([s, n, p]) => padText(toText(s!), num(n!), toText(p!), true))],
  RPAD: [3, 3, nullIfAny(([s, n, p]) => padText(toText(s!), num(n!), toText(p!), false))],
  SPACE: [1, 1, nullIfAny(([n]) => ' '.repeat(Math.max(0, Math.min(1 << 20, Math.trunc(num(n!))))))],
  ASCII: [1, 1, nullIfAny(([s]) => (toText(s!).length === 0 ? 0 : Buffer.from(toText(s!))[0]!))],
  HEX: [
    1,
    1,
    nullIfAny(([s]) =>
      typeof s === 'bigint' || s instanceof Decimal
        ? toUint64(s).toString(16).toUpperCase()
        : typeof s === 'number'
          ? Math.trunc(s).toString(16).toUpperCase()
          : Buffer.from(s instanceof Uint8Array ? s : toText(s!))
              .toString('hex')
              .toUpperCase(),
    ),
  ],
};

function substring([s, p, n]: SqlValue[]): SqlValue {
  const c = [...toText(s!)];
  let pos = Math.trunc(num(p!));
  if (pos === 0) return '';
  if (pos < 0) pos = c.length + pos;
  else pos -= 1;
  if (pos < 0 || pos > c.length) return '';
  const len = n === undefined ? c.length : Math.trunc(num(n));
  if (len <= 0) return '';
  return c.slice(pos, pos + len).join('');
}

function padText(s: string, n: number, p: string, left: boolean): SqlValue {
  const len = Math.trunc(n);
  if (len < 0) return null;
  if (len > 16 * 1024 * 1024) throw sqlError('padded result larger than 16 MiB');
  const c = [...s];
  if (c.length >= len) return c.slice(0, len).join('');
  if (p.length === 0) return null;
  const pc = [...p];
  const need = len - c.length;
  const fill = pc.join('').repeat(Math.floor(need / pc.length)) + pc.slice(0, need % pc.length).join('');
  return left ? fill + s : s + fill;
}

/** The numeric prefix of a string as an exact decimal (MySQL reads '12abc' as 12), or 0. */
export function stringToDecimal(s: string): Decimal {
  const m = NUMERIC_PREFIX.exec(s);
  return (m !== null ? Decimal.parse(m[0]) : undefined) ?? new Decimal(0n, 0);
}

/** A value as an exact decimal, for CAST and DECIMAL columns (undefined: not a number at all). */
export function exactOf(v: SqlValue): Decimal | undefined {
  if (v instanceof Decimal) return v;
  if (typeof v === 'bigint') return new Decimal(v, 0);
  if (typeof v === 'number') return Decimal.fromNumber(v);
  if (typeof v === 'string') return stringToDecimal(v);
  if (v instanceof Uint8Array) return stringToDecimal(Buffer.from(v).toString('utf8'));
  if (v instanceof Date) return new Decimal(BigInt(v.getTime()), 0);
  return undefined;
}

/** An integer clamped to [lo, hi] (CAST's saturation, as MySQL with a warning). */
function clampInt(u: bigint, lo: bigint, hi: bigint): bigint {
  return u < lo ? lo : u > hi ? hi : u;
}

/** CAST(v AS type) for MySQL's cast targets. */
export function castValue(
  v: SqlValue,
  target: string,
  scale: number | undefined,
  precision?: number,
): SqlValue {
  if (v === null) return null;
  switch (target) {
    case 'SIGNED':
    case 'UNSIGNED':
    case 'INTEGER':
    case 'INT':
    case 'BIGINT': {
      // Strings are read up to their first non-digit (CAST('1.9' AS SIGNED) is 1); numbers round.
      let u: bigint;
      if (typeof v === 'string' || v instanceof Uint8Array) {
        const m = /^\s*([+-]?\d+)/.exec(toText(v));
        u = m === null ? 0n : BigInt(m[1]!);
      } else if (typeof v === 'number' && !Number.isSafeInteger(v)) {
        if (Number.isNaN(v)) u = 0n;
        else if (v >= 2 ** 64) u = UINT64_MAX;
        else if (v <= -(2 ** 63)) u = INT64_MIN;
        else u = BigInt(roundHalfAway(v));
      } else {
        const d = exactOf(v)!;
        u = divRound(d.u, d.s);
      }
      u = clampInt(u, INT64_MIN, UINT64_MAX);
      if (target === 'UNSIGNED') return canonicalInt(BigInt.asUintN(64, u));
      return canonicalInt(BigInt.asIntN(64, u));
    }
    case 'DECIMAL':
    case 'NUMERIC': {
      const s = Math.min(scale ?? 0, DECIMAL_MAX_SCALE);
      const p = Math.min(Math.max(precision ?? 10, s, 1), DECIMAL_MAX_PRECISION);
      const d = (exactOf(v) ?? new Decimal(0n, 0)).rescale(s);
      const max = pow10(p) - 1n;
      return new Decimal(clampInt(d.u, -max, max), s);
    }
    case 'DOUBLE':
    case 'FLOAT':
    case 'REAL':
      return toNumber(v);
    case 'CHAR':
    case 'VARCHAR':
    case 'TEXT':
    case 'NCHAR':
      return toText(v);
    case 'BINARY':
    case 'BLOB':
      return v instanceof Uint8Array ? v : new Uint8Array(Buffer.from(toText(v)));
    case 'DATE':
    case 'DATETIME':
    case 'TIMESTAMP': {
      const d = v instanceof Date ? v : typeof v === 'string' ? parseDate(v) : new Date(toNumber(v));
      if (d === undefined) return null;
      return target === 'DATE' ? new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())) : d;
    }
  }
  throw sqlError(`CAST to ${target} is not supported`);
}
