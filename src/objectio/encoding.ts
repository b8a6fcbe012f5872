import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { ByteWriter } from '../util/bytes.js';
import { ByteReader } from '../util/bytes.js';

/**
 * Column chunk codecs: light, fast encodings chosen per chunk by what pays (see docs/formats/object.md).
 *
 * A column's values, decoded, are one of:
 * - `f64`: Float64Array (float64; timestamps and commit timestamps; int64 and uint64: the values
 *   rounded to doubles, exact within ±2^53, with `wide` holding every value exactly when any is not);
 * - `i32`: Int32Array;
 * - `u8`: Uint8Array (bool as 0/1);
 * - `var`: offsets (Uint32Array, n + 1) into UTF-8 or raw bytes (string, bytes);
 * plus a null map (1 = null) when some value is null.
 */
export type Physical = 'f64' | 'i32' | 'u8' | 'var';

export interface Decoded {
  n: number;
  physical: Physical;
  f64?: Float64Array;
  /**
   * 64-bit integer columns with a value beyond ±2^53: every value exactly (uint64 columns' values
   * as their two's complement bits: read them with BigInt.asUintN(64, ...)).
   */
  wide?: BigInt64Array;
  i32?: Int32Array;
  u8?: Uint8Array;
  offsets?: Uint32Array;
  data?: Uint8Array;
  nulls?: Uint8Array;
  /**
   * A dictionary-encoded var column also keeps its dictionary: entry k is dictData[dictStarts[k] ..
   * dictStarts[k + 1]), row i holds entry dictCodes[i]. Readers of strings use it to make each
   * distinct string once per chunk (dictText, filled by the first such reader).
   */
  dictCodes?: Uint32Array;
  dictStarts?: Uint32Array;
  dictData?: Uint8Array;
  dictText?: string[];
}

export const Encoding = {
  RAW: 0,
  /** Every value equal: the value once. */
  CONST: 1,
  /** Integers as (value - min) in the fewest bits. */
  FOR: 2,
  /** Sorted-ish integers as (delta - minDelta) in the fewest bits, after the first value. */
  DELTA: 3,
  /** Strings and bytes with few distinct values: a dictionary and bit-packed codes. */
  DICT: 4,
  /** Strings and bytes: bit-packed lengths, then the bytes deflated (zlib, level 1). */
  DEFLATE: 5,
  /** Float64 decimals (prices, measurements): value × 10^k as integers (FOR or DELTA), k <= 6. */
  DECIMAL: 6,
  /** 64-bit integers, some beyond ±2^53: raw 8-byte two's complement, little-endian. */
  INT64: 7,
} as const;

/** Powers of ten exact as doubles, for DECIMAL. */
const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000];
const DECIMAL_MAX_EXPONENT = 6;

// ---- bit packing ----

/** Bits needed for unsigned values up to `max` (0 for max 0). */
export function bitWidth(max: number): number {
  return max === 0 ? 0 : 32 - Math.clz32(max);
}

export function packedBytes(n: number, width: number): number {
  return Math.ceil((n * width) / 32) * 4;
}

/** Pack n unsigned values (< 2^width, width <= 32) into little-endian 32-bit words. */
export function pack(values: ArrayLike<number>, n: number, width: number, w: ByteWriter): void {
  if (width === 0) return;
  const words = new Uint32Array(packedBytes(n, width) / 4);
  let bit = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i]! >>> 0;
    const word = bit >>> 5;
    const off = bit & 31;
    words[word] = (words[word]! | (v << off)) >>> 0;
    if (off + width > 32) words[word + 1] = v >>> (32 - off);
    bit += width;
  }
  w.raw(new Uint8Array(words.buffer));
}

/** Scratch space for unpacking (decoding is synchronous, so one set serves every call). */
let scratchWords = new Uint32Array(1024);
let scratchValues = new Uint32Array(16384);

/**
 * Unpack n values of `width` bits. Returns a view of a shared scratch array: valid until the next
 * call, so copy what must outlive it.
 */
function unpack(src: Uint8Array, n: number, width: number): Uint32Array {
  if (scratchValues.length < n) scratchValues = new Uint32Array(Math.ceil(n * 1.5));
  const out = scratchValues.subarray(0, n);
  if (width === 0) {
    out.fill(0);
    return out;
  }
  const bytes = packedBytes(n, width);
  if (scratchWords.length * 4 < bytes) scratchWords = new Uint32Array(Math.ceil((bytes / 4) * 1.5));
  // Copied into aligned words (the chunk's bytes may start anywhere).
  new Uint8Array(scratchWords.buffer, 0, bytes).set(src.subarray(0, bytes));
  const words = scratchWords;
  if (width === 32) {
    out.set(words.subarray(0, n));
    return out;
  }
  const mask = (1 << width) - 1;
  let bit = 0;
  for (let i = 0; i < n; i++) {
    const word = bit >>> 5;
    const off = bit & 31;
    let v = words[word]! >>> off;
    if (off + width > 32) v |= words[word + 1]! << (32 - off);
    out[i] = v & mask;
    bit += width;
  }
  return out;
}

// ---- encode ----

function isIntegral(v: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const x = v[i]!;
    if (!Number.isSafeInteger(x) || Object.is(x, -0)) return false;
  }
  return true;
}

/** Encode one column of a chunk. Returns the encoding used. */
export function encodeColumn(col: Decoded, w: ByteWriter): number {
  const n = col.n;
  const hasNulls = col.nulls !== undefined && col.nulls.some((x) => x === 1);
  // Header: encoding, flags, n; then the null map packed one bit a row.
  const encAt = w.pos;
  w.u8(0);
  w.u8(hasNulls ? 1 : 0);
  w.u32(n);
  if (hasNulls) pack(col.nulls!, n, 1, w);
  let enc: number = Encoding.RAW;
  switch (col.physical) {
    case 'f64':
      if (col.wide !== undefined) {
        w.raw(new Uint8Array(col.wide.buffer, col.wide.byteOffset, n * 8));
        enc = Encoding.INT64;
      } else enc = encodeF64(col.f64!, n, w);
      break;
    case 'i32':
      enc = encodeInts(Array.from(col.i32!.subarray(0, n)), n, w, () =>
        w.raw(new Uint8Array(col.i32!.buffer, col.i32!.byteOffset, n * 4)),
      );
      break;
    case 'u8': {
      // Bool: one bit a value.
      enc = Encoding.FOR;
      w.f64(0);
      w.u8(1);
      pack(col.u8!, n, 1, w);
      break;
    }
    case 'var':
      enc = encodeVar(col.offsets!, col.data!, n, w);
      break;
  }
  w.bytes[encAt] = enc;
  return enc;
}

function encodeF64(v: Float64Array, n: number, w: ByteWriter): number {
  if (n > 0 && isIntegral(v, n)) {
    const arr = new Array<number>(n);
    for (let i = 0; i < n; i++) arr[i] = v[i]!;
    return encodeInts(arr, n, w, () => rawF64(v, n, w));
  }
  if (n > 0 && allSame(v, n)) {
    w.f64(v[0]!);
    return Encoding.CONST;
  }
  const k = n >= 16 ? decimalExponent(v, n) : 0;
  if (k > 0) {
    const p = POW10[k]!;
    const ints = new Array<number>(n);
    for (let i = 0; i < n; i++) ints[i] = Math.round(v[i]! * p);
    const at = w.pos;
    w.u8(k);
    const innerAt = w.pos;
    w.u8(0);
    const inner = encodeInts(ints, n, w, () => undefined);
    if (inner !== Encoding.RAW) {
      w.bytes[innerAt] = inner;
      return Encoding.DECIMAL;
    }
    w.pos = at; // the integers do not pack: store the doubles as they are
  }
  rawF64(v, n, w);
  return Encoding.RAW;
}

/**
 * The smallest k (1..6) such that every value is exactly round(value × 10^k) / 10^k, or 0 if there
 * is none. A value that needs k also round-trips at any larger k (both sides are the correctly
 * rounded double of the same decimal), so the answer is the largest k any one value needs.
 */
function decimalExponent(v: Float64Array, n: number): number {
  let k = 1;
  for (let i = 0; i < n; i++) {
    const x = v[i]!;
    if (!Number.isFinite(x) || Object.is(x, -0)) return 0;
    while (true) {
      const s = Math.round(x * POW10[k]!);
      if (Number.isSafeInteger(s) && s / POW10[k]! === x) break;
      if (++k > DECIMAL_MAX_EXPONENT) return 0;
    }
  }
  return k;
}

function rawF64(v: Float64Array, n: number, w: ByteWriter): void {
  w.raw(new Uint8Array(v.buffer, v.byteOffset, n * 8));
}

function allSame(v: ArrayLike<number>, n: number): boolean {
  const first = v[0];
  for (let i = 1; i < n; i++) if (!Object.is(v[i], first)) return false;
  return true;
}

/**
 * Integers (exact, within ±2^53): CONST if all equal, FOR if max - min fits 32 bits, DELTA if the
 * deltas' spread fits 32 bits and packs smaller, else the raw fallback.
 */
function encodeInts(v: number[], n: number, w: ByteWriter, raw: () => void): number {
  if (n === 0) {
    raw();
    return Encoding.RAW;
  }
  let min = v[0]!;
  let max = v[0]!;
  for (let i = 1; i < n; i++) {
    const x = v[i]!;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  if (min === max) {
    w.f64(min);
    return Encoding.CONST;
  }
  const forWidth = max - min <= 0xffffffff ? bitWidth(max - min) : 64;
  let dMin = Infinity;
  let dMax = -Infinity;
  for (let i = 1; i < n; i++) {
    const d = v[i]! - v[i - 1]!;
    if (d < dMin) dMin = d;
    if (d > dMax) dMax = d;
  }
  const deltaWidth = n > 1 && dMax - dMin <= 0xffffffff ? bitWidth(dMax - dMin) : 64;
  if (deltaWidth < forWidth && deltaWidth <= 32) {
    w.f64(v[0]!);
    w.f64(dMin);
    w.u8(deltaWidth);
    const packed = new Array<number>(n - 1);
    for (let i = 1; i < n; i++) packed[i - 1] = v[i]! - v[i - 1]! - dMin;
    pack(packed, n - 1, deltaWidth, w);
    return Encoding.DELTA;
  }
  if (forWidth <= 32) {
    w.f64(min);
    w.u8(forWidth);
    const packed = new Array<number>(n);
    for (let i = 0; i < n; i++) packed[i] = v[i]! - min;
    pack(packed, n, forWidth, w);
    return Encoding.FOR;
  }
  raw();
  return Encoding.RAW;
}

const DICT_MAX = 65536;

function encodeVar(offsets: Uint32Array, data: Uint8Array, n: number, w: ByteWriter): number {
  // Few distinct values: a dictionary.
  const dict = new Map<string, number>();
  const codes = new Array<number>(n);
  let dictionary = n >= 16;
  for (let i = 0; i < n && dictionary; i++) {
    const k = Buffer.from(data.buffer, data.byteOffset + offsets[i]!, offsets[i + 1]! - offsets[i]!).toString(
      'latin1',
    );
    let c = dict.get(k);
    if (c === undefined) dict.set(k, (c = dict.size));
    codes[i] = c;
    // Give up early when most values are distinct: a dictionary would not pay.
    if ((i === 1023 && dict.size > 512) || dict.size > DICT_MAX) dictionary = false;
  }
  if (dictionary && dict.size * 2 <= n) {
    const entries = [...dict.keys()];
    w.u32(entries.length);
    const lens = entries.map((e) => e.length);
    w.u8(bitWidth(Math.max(...lens)));
    pack(lens, lens.length, bitWidth(Math.max(...lens)), w);
    for (const e of entries) w.raw(Buffer.from(e, 'latin1'));
    const cw = bitWidth(entries.length - 1);
    w.u8(cw);
    pack(codes, n, cw, w);
    return Encoding.DICT;
  }
  const lens = new Array<number>(n);
  let maxLen = 0;
  for (let i = 0; i < n; i++) {
    lens[i] = offsets[i + 1]! - offsets[i]!;
    if (lens[i]! > maxLen) maxLen = lens[i]!;
  }
  const lw = bitWidth(maxLen);
  const bytes = data.subarray(offsets[0], offsets[n]);
  const deflated = bytes.length >= 256 ? deflateRawSync(bytes, { level: 1 }) : undefined;
  const useDeflate = deflated !== undefined && deflated.length <= bytes.length * 0.8;
  w.u8(lw);
  pack(lens, n, lw, w);
  w.u32(bytes.length);
  if (useDeflate) {
    w.u32(deflated.length);
    w.raw(deflated);
    return Encoding.DEFLATE;
  }
  w.raw(bytes);
  return Encoding.RAW;
}

/** An upper bound of the bytes encodeColumn writes for a column (to size buffers). */
export function encodedBound(col: Decoded): number {
  const n = col.n;
  let b = 6 + packedBytes(n, 1) + 32;
  switch (col.physical) {
    case 'f64':
      return b + n * 8;
    case 'i32':
      return b + n * 8;
    case 'u8':
      return b + packedBytes(n, 1);
    case 'var': {
      const bytes = col.offsets![n]! - col.offsets![0]!;
      b += 4 + packedBytes(n, 32) * 2 + 16;
      // Deflate can grow incompressible data slightly; it is only used when it shrinks it.
      return b + bytes + Math.ceil(bytes / 8) + 1024;
    }
  }
}

// ---- decode ----

/**
 * Decode a column chunk. `alloc` provides the output arrays (from the block cache's pool). Any
 * inconsistency is CORRUPTION: the chunk checksum passed, so this means a bug or a crafted file.
 */
export function decodeColumn(
  bytes: Uint8Array,
  physical: Physical,
  alloc: Allocator,
  what: string,
  /** A uint64 column (its INT64 chunks' doubles are of the unsigned values). */
  unsigned = false,
): Decoded {
  const r: ByteReader = new ByteReader(bytes, what);
  const enc = r.u8();
  const flags = r.u8();
  const n = r.u32();
  const out: Decoded = { n, physical };
  if ((flags & 1) !== 0) {
    const nulls = alloc.u8(n);
    const src = r.raw(packedBytes(n, 1));
    nulls.set(unpack(src, n, 1));
    out.nulls = nulls;
  }
  switch (physical) {
    case 'f64': {
      const v = alloc.f64(n);
      // Raw values are copied as bytes (little-endian, as typed arrays are on every Node platform).
      if (enc === Encoding.RAW) new Uint8Array(v.buffer, v.byteOffset, n * 8).set(r.raw(n * 8));
      else if (enc === Encoding.INT64) {
        const wide = alloc.i64(n);
        new Uint8Array(wide.buffer, wide.byteOffset, n * 8).set(r.raw(n * 8));
        if (unsigned) for (let i = 0; i < n; i++) v[i] = Number(BigInt.asUintN(64, wide[i]!));
        else for (let i = 0; i < n; i++) v[i] = Number(wide[i]!);
        out.wide = wide;
      } else if (enc === Encoding.DECIMAL) {
        const k = r.u8();
        if (k < 1 || k > DECIMAL_MAX_EXPONENT) r.fail(`decimal exponent ${k}`);
        const inner = r.u8();
        if (inner !== Encoding.FOR && inner !== Encoding.DELTA && inner !== Encoding.CONST)
          r.fail(`decimal integers in encoding ${inner}`);
        decodeNumbers(r, inner, n, v, POW10[k]);
      } else decodeNumbers(r, enc, n, v);
      out.f64 = v;
      break;
    }
    case 'i32': {
      const v = alloc.i32(n);
      if (enc === Encoding.RAW) new Uint8Array(v.buffer, v.byteOffset, n * 4).set(r.raw(n * 4));
      else decodeNumbers(r, enc, n, v);
      out.i32 = v;
      break;
    }
    case 'u8': {
      const v = alloc.u8(n);
      if (enc === Encoding.RAW) v.set(r.raw(n));
      else decodeNumbers(r, enc, n, v);
      out.u8 = v;
      break;
    }
    case 'var':
      decodeVar(r, enc, n, out, alloc);
      break;
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} unexpected bytes after the column`);
  return out;
}

export interface Allocator {
  f64(n: number): Float64Array;
  i64(n: number): BigInt64Array;
  i32(n: number): Int32Array;
  u8(n: number): Uint8Array;
  u32(n: number): Uint32Array;
}

/**
 * Numbers into `v` (a Float64Array, Int32Array or Uint8Array of n values), each divided by `scale`
 * (DECIMAL; 1 otherwise). The loops are written once per array type, so that each stays monomorphic.
 */
function decodeNumbers(
  r: ByteReader,
  enc: number,
  n: number,
  v: Float64Array | Int32Array | Uint8Array,
  scale = 1,
): void {
  switch (enc) {
    case Encoding.CONST: {
      v.fill(r.f64() / scale);
      return;
    }
    case Encoding.FOR: {
      const min = r.f64();
      const width = r.u8();
      if (width > 32) r.fail(`bit width ${width}`);
      const u = unpack(r.raw(packedBytes(n, width)), n, width);
      if (v instanceof Float64Array) forF64(v, u, n, min, scale);
      else for (let i = 0; i < n; i++) v[i] = min + u[i]!;
      return;
    }
    case Encoding.DELTA: {
      const first = r.f64();
      const dMin = r.f64();
      const width = r.u8();
      if (width > 32) r.fail(`bit width ${width}`);
      if (n === 0) return;
      const u = unpack(r.raw(packedBytes(n - 1, width)), n - 1, width);
      if (v instanceof Float64Array) deltaF64(v, u, n, first, dMin, scale);
      else {
        let prev = first;
        v[0] = prev;
        for (let i = 1; i < n; i++) {
          prev += dMin + u[i - 1]!;
          v[i] = prev;
        }
      }
      return;
    }
    default:
      r.fail(`unknown encoding ${enc} for a numeric column`);
  }
}

function forF64(v: Float64Array, u: Uint32Array, n: number, min: number, scale: number): void {
  if (scale === 1) for (let i = 0; i < n; i++) v[i] = min + u[i]!;
  else for (let i = 0; i < n; i++) v[i] = (min + u[i]!) / scale;
}

function deltaF64(
  v: Float64Array,
  u: Uint32Array,
  n: number,
  first: number,
  dMin: number,
  scale: number,
): void {
  let prev = first;
  v[0] = prev / scale;
  for (let i = 1; i < n; i++) {
    prev += dMin + u[i - 1]!;
    v[i] = prev / scale;
  }
}

function decodeVar(r: ByteReader, enc: number, n: number, out: Decoded, alloc: Allocator): void {
  const offsets = alloc.u32(n + 1);
  if (enc === Encoding.DICT) {
    const entries = r.u32();
    const lw = r.u8();
    const lens = unpack(r.raw(packedBytes(entries, lw)), entries, lw).slice();
    const starts = new Uint32Array(entries + 1);
    for (let i = 0; i < entries; i++) starts[i + 1] = starts[i]! + lens[i]!;
    const dictBytes = r.raw(starts[entries]!);
    const cw = r.u8();
    const codes = unpack(r.raw(packedBytes(n, cw)), n, cw);
    let total = 0;
    for (let i = 0; i < n; i++) {
      if (codes[i]! >= entries) r.fail(`dictionary code ${codes[i]} of ${entries}`);
      total += lens[codes[i]!]!;
    }
    const data = alloc.u8(total);
    let at = 0;
    for (let i = 0; i < n; i++) {
      offsets[i] = at;
      const c = codes[i]!;
      data.set(dictBytes.subarray(starts[c], starts[c + 1]), at);
      at += lens[c]!;
    }
    offsets[n] = at;
    out.offsets = offsets;
    out.data = data;
    const keptCodes = alloc.u32(n);
    keptCodes.set(codes.subarray(0, n));
    const keptData = alloc.u8(dictBytes.length);
    keptData.set(dictBytes);
    out.dictCodes = keptCodes;
    out.dictStarts = starts;
    out.dictData = keptData;
    return;
  }
  const lw = r.u8();
  const lens = unpack(r.raw(packedBytes(n, lw)), n, lw);
  const total = r.u32();
  let sum = 0;
  for (let i = 0; i < n; i++) {
    offsets[i] = sum;
    sum += lens[i]!;
  }
  offsets[n] = sum;
  if (sum !== total) r.fail(`lengths add up to ${sum}, the column says ${total}`);
  const data = alloc.u8(total);
  if (enc === Encoding.DEFLATE) {
    const len = r.u32();
    let inflated: Buffer | undefined;
    try {
      inflated = inflateRawSync(r.raw(len));
    } catch (e) {
      r.fail(`deflated data does not inflate (${(e as Error).message})`);
    }
    if (inflated.length !== total) r.fail(`inflated to ${inflated.length} bytes, expected ${total}`);
    data.set(inflated);
  } else if (enc === Encoding.RAW) data.set(r.raw(total));
  else r.fail(`unknown encoding ${enc} for a string or bytes column`);
  out.offsets = offsets;
  out.data = data;
}
