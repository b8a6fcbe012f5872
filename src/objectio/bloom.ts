import type { Key } from '../schema/schema.js';
import { fmix } from '../util/hash.js';

/**
 * A blocked bloom filter on an object's primary keys: about 10 bits a key, 7 probes, all of a key's
 * probes within one 64-byte block (one cache line), so that a lookup touches one line of memory
 * instead of seven (about 1% false positives; the blocking costs a little over the ideal 0.8%).
 * A negative answer is exact, so a point read skips the object without reading it.
 *
 * Layout: `bloomBytes(keys)` bytes, a whole number of 64-byte blocks. A key's two 32-bit hashes
 * (a, b) pick the block `floor(a / 2^32 × blocks)` and, within it, bits `(b + i × c) mod 512` for
 * i = 0..6, where c = fmix(b) | 1.
 */
export const BITS_PER_KEY = 10;
export const PROBES = 7;
const BLOCK_BYTES = 64;
const BLOCK_BITS = BLOCK_BYTES * 8;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** The last key's hashes (set by `hash`; no array allocated per key). */
let hashA = 0;
let hashB = 0;

/** Two independent 32-bit hashes of a key (numbers by their float64 bits, strings by code units). */
function hash(key: Key): void {
  let a: number;
  let b: number;
  if (typeof key === 'number' || typeof key === 'bigint') {
    // A bigint (a 64-bit integer beyond the safe range) by its nearest double: an object's column
    // holds the same doubles, and two keys that share one only cost a false positive.
    f64[0] = key === 0 ? 0 : Number(key); // -0 and 0 are the same key
    a = fmix(u32[0]! ^ fmix(u32[1]! + 0x9e3779b9));
    b = fmix(u32[1]! ^ fmix(u32[0]! + 0x7f4a7c15));
  } else {
    a = 0x811c9dc5;
    b = 0x01000193;
    const s = typeof key === 'string';
    for (let i = 0; i < key.length; i++) {
      const c = s ? key.charCodeAt(i) : key[i]!;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) + 0x6b43a9b5;
    }
    a = fmix(a);
    b = fmix(b ^ key.length);
  }
  hashA = a;
  hashB = b;
}

export function bloomBytes(keys: number): number {
  return Math.max(1, Math.ceil((keys * BITS_PER_KEY) / BLOCK_BITS)) * BLOCK_BYTES;
}

/** The byte offset of the current key's block in a filter of `bytes` bytes. */
function blockOf(bytes: number): number {
  const blocks = Math.floor(bytes / BLOCK_BYTES);
  return Math.floor((hashA / 4294967296) * blocks) * BLOCK_BYTES;
}

/** Set the bits of `key` in `bits`. */
export function bloomAdd(bits: Uint8Array, key: Key): void {
  hash(key);
  const base = blockOf(bits.length);
  const c = fmix(hashB) | 1;
  for (let i = 0; i < PROBES; i++) {
    const at = (hashB + Math.imul(i, c)) & (BLOCK_BITS - 1);
    bits[base + (at >>> 3)]! |= 1 << (at & 7);
  }
}

/** False when `key` is certainly not in the set the filter was built from. */
export function bloomMayContain(bits: Uint8Array, key: Key): boolean {
  hash(key);
  const base = blockOf(bits.length);
  const c = fmix(hashB) | 1;
  for (let i = 0; i < PROBES; i++) {
    const at = (hashB + Math.imul(i, c)) & (BLOCK_BITS - 1);
    if ((bits[base + (at >>> 3)]! & (1 << (at & 7))) === 0) return false;
  }
  return true;
}
