import type { Key } from '../catalog/schema.js';

/**
 * A bloom filter on an object's primary keys: about 10 bits a key and 7 probes (about 1% false
 * positives). A negative answer is exact, so a point read skips the object without reading it.
 */
export const BITS_PER_KEY = 10;
export const PROBES = 7;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Two independent 32-bit hashes of a key (numbers by their float64 bits, strings by code units). */
export function keyHashes(key: Key): [number, number] {
  let a: number;
  let b: number;
  if (typeof key === 'number') {
    f64[0] = key === 0 ? 0 : key; // -0 and 0 are the same key
    a = fmix(u32[0]! ^ fmix(u32[1]! + 0x9e3779b9));
    b = fmix(u32[1]! ^ fmix(u32[0]! + 0x7f4a7c15));
  } else if (typeof key === 'string') {
    a = 0x811c9dc5;
    b = 0x01000193;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) + 0x6b43a9b5;
    }
    a = fmix(a);
    b = fmix(b ^ key.length);
  } else {
    a = 0x811c9dc5;
    b = 0x01000193;
    for (let i = 0; i < key.length; i++) {
      const c = key[i]!;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) + 0x6b43a9b5;
    }
    a = fmix(a);
    b = fmix(b ^ key.length);
  }
  return [a, b | 1];
}

export function bloomBytes(keys: number): number {
  return Math.max(8, Math.ceil((keys * BITS_PER_KEY) / 8));
}

/** Set the bits of `key` in `bits`. */
export function bloomAdd(bits: Uint8Array, key: Key): void {
  const m = bits.length * 8;
  const [a, b] = keyHashes(key);
  for (let i = 0; i < PROBES; i++) {
    const bit = (a + Math.imul(i, b)) >>> 0;
    const at = bit % m;
    bits[at >>> 3]! |= 1 << (at & 7);
  }
}

/** False when `key` is certainly not in the set the filter was built from. */
export function bloomMayContain(bits: Uint8Array, key: Key): boolean {
  const m = bits.length * 8;
  const [a, b] = keyHashes(key);
  for (let i = 0; i < PROBES; i++) {
    const bit = (a + Math.imul(i, b)) >>> 0;
    const at = bit % m;
    if ((bits[at >>> 3]! & (1 << (at & 7))) === 0) return false;
  }
  return true;
}
