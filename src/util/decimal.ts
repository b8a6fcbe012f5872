/**
 * Exact numbers: 64-bit integers beyond a double's safe range, and decimals as scaled integers.
 *
 * An integer is kept in its canonical form: a number when it is a safe integer (|v| < 2^53), a
 * bigint otherwise, so that `===`, Map keys and `<` (which JavaScript defines exactly between a
 * number and a bigint) work on integers of either kind. A decimal is a `Decimal`: an unscaled
 * bigint and a scale, its value u / 10^s, as MySQL's DECIMAL(p, s) keeps it.
 */

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
export const UINT64_MAX = 2n ** 64n - 1n;
/** MySQL's limits for DECIMAL: 65 digits, 30 of them after the point. */
export const DECIMAL_MAX_PRECISION = 65;
export const DECIMAL_MAX_SCALE = 30;
/** Precision up to which a DECIMAL's scaled value fits a signed 64-bit integer. */
export const DECIMAL_INT64_PRECISION = 18;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** An integer in its canonical form: a number when safe, else the bigint. */
export function canonicalInt(v: bigint): number | bigint {
  return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

export function toBigInt(v: number | bigint): bigint {
  return typeof v === 'bigint' ? v : BigInt(v);
}

/** The largest double <= v (zone-map minimums: a pruning test must never exclude v). */
export function doubleFloor(v: bigint): number {
  const d = Number(v);
  return BigInt(d) > v ? nextDown(d) : d;
}

/** The smallest double >= v. */
export function doubleCeil(v: bigint): number {
  const d = Number(v);
  return BigInt(d) < v ? nextUp(d) : d;
}

const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);

function nextUp(d: number): number {
  if (d === 0) return Number.MIN_VALUE;
  f64[0] = d;
  i64[0] = i64[0]! + (d > 0 ? 1n : -1n);
  return f64[0];
}

/** The largest double below d (finite d). */
export function nextDown(d: number): number {
  if (d === 0) return -Number.MIN_VALUE;
  f64[0] = d;
  i64[0] = i64[0]! + (d > 0 ? -1n : 1n);
  return f64[0];
}

/** The sign of d - x, exactly (x a finite double: mantissa × 2^exponent). */
export function compareWithDouble(d: Decimal, x: number): number {
  f64[0] = x;
  const b = i64[0]!;
  const e = Number((b >> 52n) & 0x7ffn);
  let m = b & ((1n << 52n) - 1n);
  if (e !== 0) m |= 1n << 52n;
  const exp = (e === 0 ? 1 : e) - 1075;
  if (b < 0n) m = -m;
  // d.u / 10^s against m × 2^exp: both sides times 10^s (and 2^-exp when exp < 0).
  let left = d.u;
  let right = m * pow10(d.s);
  if (exp >= 0) right <<= BigInt(exp);
  else left <<= BigInt(-exp);
  return left < right ? -1 : left > right ? 1 : 0;
}

const POW10: bigint[] = [];
for (let i = 0, p = 1n; i <= 2 * DECIMAL_MAX_PRECISION + 8; i++, p *= 10n) POW10.push(p);

/** 10^n as a bigint (n up to 138). */
export function pow10(n: number): bigint {
  return POW10[n] ?? 10n ** BigInt(n);
}

/** The number of decimal digits of |u| (0 for 0). */
export function digitsOf(u: bigint): number {
  if (u < 0n) u = -u;
  if (u === 0n) return 0;
  return u.toString().length;
}

/** u / 10^by, rounded half away from zero (MySQL's rounding of DECIMAL). */
export function divRound(u: bigint, by: number): bigint {
  if (by <= 0) return u * pow10(-by);
  const p = pow10(by);
  const q = u / p;
  const r = u % p;
  const twice = (r < 0n ? -r : r) * 2n;
  if (twice >= p) return u < 0n ? q - 1n : q + 1n;
  return q;
}

/** u / 10^by, truncated toward zero. */
export function divTrunc(u: bigint, by: number): bigint {
  return by <= 0 ? u * pow10(-by) : u / pow10(by);
}

/** u / 10^by, rounded toward minus infinity (ceiling: -divFloor(-u, by)). */
export function divFloor(u: bigint, by: number): bigint {
  if (by <= 0) return u * pow10(-by);
  const p = pow10(by);
  const q = u / p;
  return u % p < 0n ? q - 1n : q;
}

const EXPONENT_LIMIT = 200;
const DECIMAL_TEXT = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

/**
 * An exact decimal value: `u / 10^s`. Immutable. The project's own small decimal type: DECIMAL
 * columns accept it (as well as strings, numbers and bigints) and SQL computes with it.
 */
export class Decimal {
  constructor(
    /** The unscaled value. */
    readonly u: bigint,
    /** Digits after the point (0..30 for values MySQL stores). */
    readonly s: number,
  ) {}

  /**
   * A decimal from its text ('12.30', '-.5', '1e-3'): exact, keeping the scale as written (for an
   * exponent, the digits it implies). Undefined for text that is not a number.
   */
  static parse(text: string): Decimal | undefined {
    const m = DECIMAL_TEXT.exec(text);
    if (m === null) return undefined;
    const int = m[2]!;
    const frac = m[3] ?? '';
    if (int === '' && frac === '') return undefined;
    let scale = frac.length;
    let digits = int + frac;
    if (m[4] !== undefined) {
      // An exponent past ±200 is taken as ±200: the value is then past every DECIMAL and 64-bit
      // range, or rounds to 0 at any scale they have (and '1e999999999' makes no huge string).
      const e = Math.max(-EXPONENT_LIMIT, Math.min(EXPONENT_LIMIT, Number(m[4])));
      scale -= e;
      if (scale < 0) {
        digits += '0'.repeat(-scale);
        scale = 0;
      }
    }
    let u = BigInt(digits === '' ? '0' : digits);
    if (m[1] === '-') u = -u;
    return new Decimal(u, scale);
  }

  /** A double by its shortest decimal form (0.1 is 0.1, not 0.1000000000000000055...). */
  static fromNumber(x: number): Decimal | undefined {
    if (!Number.isFinite(x)) return undefined;
    if (Number.isSafeInteger(x)) return new Decimal(BigInt(x), 0);
    return Decimal.parse(String(x));
  }

  /** The value at scale `s`: rounded half away from zero when digits are dropped. */
  rescale(s: number): Decimal {
    if (s === this.s) return this;
    return new Decimal(s > this.s ? this.u * pow10(s - this.s) : divRound(this.u, this.s - s), s);
  }

  /** The value truncated (toward zero) to scale s. */
  truncate(s: number): Decimal {
    if (s >= this.s) return this.rescale(s);
    return new Decimal(divTrunc(this.u, this.s - s), s);
  }

  /** Digits before the point plus digits after (MySQL's precision of this value, at least 1). */
  get precision(): number {
    return Math.max(1, digitsOf(this.u), this.s);
  }

  /** Digits before the point. */
  get intDigits(): number {
    return Math.max(0, digitsOf(this.u) - this.s);
  }

  sign(): number {
    return this.u < 0n ? -1 : this.u > 0n ? 1 : 0;
  }

  neg(): Decimal {
    return new Decimal(-this.u, this.s);
  }

  abs(): Decimal {
    return this.u < 0n ? this.neg() : this;
  }

  isInteger(): boolean {
    return this.s === 0 || this.u % pow10(this.s) === 0n;
  }

  /** The value as a double (the nearest one, through its text). */
  toNumber(): number {
    if (this.s === 0) return Number(this.u);
    if (this.u >= -MAX_SAFE && this.u <= MAX_SAFE && this.s <= 22) return Number(this.u) / 10 ** this.s;
    return Number(this.toString());
  }

  /** The text with exactly `s` digits after the point, as MySQL prints DECIMAL. */
  toString(): string {
    const neg = this.u < 0n;
    let t = (neg ? -this.u : this.u).toString();
    if (this.s > 0) {
      if (t.length <= this.s) t = '0'.repeat(this.s - t.length + 1) + t;
      t = `${t.slice(0, t.length - this.s)}.${t.slice(t.length - this.s)}`;
    }
    return neg ? `-${t}` : t;
  }

  toJSON(): string {
    return this.toString();
  }

  /** The text without trailing zeros after the point (equal decimals give equal keys). */
  normalized(): string {
    let u = this.u;
    let s = this.s;
    while (s > 0 && u % 10n === 0n) {
      u /= 10n;
      s--;
    }
    return new Decimal(u, s).toString();
  }
}

/** Compare two decimals exactly. */
export function compareDecimal(a: Decimal, b: Decimal): number {
  const s = Math.max(a.s, b.s);
  const x = a.s === s ? a.u : a.u * pow10(s - a.s);
  const y = b.s === s ? b.u : b.u * pow10(s - b.s);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * A fixed-width byte encoding of a scaled integer whose byte order is its numeric order: two's
 * complement big-endian with the sign bit flipped. DECIMAL columns wider than 18 digits are stored
 * this way (`decimalBytes(precision)` bytes a value).
 */
export function decimalBytes(precision: number): number {
  // 10^p < 2^(8b - 1): enough bits for the magnitude and a sign.
  return Math.ceil((Math.ceil(precision * Math.log2(10)) + 1) / 8);
}

export function encodeOrdered(u: bigint, width: number): Uint8Array {
  const out = new Uint8Array(width);
  let v = BigInt.asUintN(width * 8, u);
  for (let i = width - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  out[0]! ^= 0x80;
  return out;
}

export function decodeOrdered(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = 0; i < b.length; i++) v = (v << 8n) | BigInt(i === 0 ? b[i]! ^ 0x80 : b[i]!);
  return BigInt.asIntN(b.length * 8, v);
}
