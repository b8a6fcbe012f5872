/**
 * A small seeded random generator (sfc32, seeded through splitmix32), so that a run is reproduced
 * exactly from its seed on any machine and Node version: Math.random cannot be seeded, and the
 * generator's choices must not depend on anything but the seed and the feature set.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      // splitmix32: spreads a small or structured seed over all four state words.
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** A uniform number in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** A uniform integer in [lo, hi], both included. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[this.int(xs.length)]!;
  }

  /** One of the choices, each as likely as its weight; weights of 0 are never chosen. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of choices) total += w;
    if (total <= 0) throw new Error('weighted pick with no positive weight');
    let x = this.float() * total;
    for (const [v, w] of choices) {
      if (w <= 0) continue;
      if (x < w) return v;
      x -= w;
    }
    return choices.findLast(([, w]) => w > 0)![0];
  }

  /** The elements in a random order (a new array). */
  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}

/**
 * A seed for item `index` of a run seeded `seed`: each case (schema, data, its queries) gets its own
 * stream, so case 1234 of a long run is regenerated without generating the 1233 before it.
 */
export function deriveSeed(seed: number, ...path: number[]): number {
  let h = (seed ^ 0x5bd1e995) >>> 0;
  for (const p of path) {
    h = Math.imul(h ^ (p >>> 0), 0x27d4eb2d) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    h = Math.imul(h, 0x165667b1) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h;
}
