import { describe, expect, it } from 'vitest';
import { hashKey, sameKey, type SqlValue } from '../../src/sql/values.js';
import { StringSet, sampledHash } from '../../src/sql/vector.js';

describe('StringSet', () => {
  it('answers as a Set would, for short, long, unicode and colliding strings', () => {
    const base = 'x'.repeat(200);
    // Strings differing only between the sampled characters hash alike: a few share a bucket's
    // list, many overflow into a Set of their own; every one must still be told apart.
    const alike = (filler: string, count: number) =>
      Array.from(
        { length: count },
        (_, i) => `${filler.slice(0, 30)}${String(i).padStart(2, '0')}${filler.slice(32)}`,
      );
    const many = alike(base, 50);
    const few = alike('q'.repeat(150), 5);
    // They do collide (else this test would not reach the bucket lists and Sets).
    expect(new Set(many.map(sampledHash)).size).toBe(1);
    expect(new Set(few.map(sampledHash)).size).toBe(1);
    const colliding = [...many, ...few];
    const values = ['', 'a', 'b', 'é', '€uro', 'ab', 'ba', base, `${base}y`, ...colliding];
    const set = new StringSet();
    const reference = new Set<string>();
    for (let round = 0; round < 3; round++) {
      for (const v of values) {
        // A fresh string each time, as a query decoding values makes them.
        const s = Buffer.from(v, 'utf8').toString('utf8');
        expect(set.add(s)).toBe(!reference.has(s));
        reference.add(s);
      }
    }
    expect(reference.size).toBe(values.length);
  });
});

describe('sameKey', () => {
  it('agrees with comparing hashKey strings, for every pair of a mixed sample', () => {
    const values: SqlValue[] = [
      null,
      0,
      -0,
      1,
      1.5,
      Number.NaN,
      '',
      '1',
      'n1',
      'N',
      'abc',
      new Date(0),
      new Date(1),
      new Date(Number.NaN),
      new Uint8Array([1, 2]),
      new Uint8Array([1, 2]),
      new Uint8Array([1, 3]),
      new Uint8Array([]),
    ];
    for (const a of values)
      for (const b of values) expect([a, b, sameKey(a, b)]).toEqual([a, b, hashKey(a) === hashKey(b)]);
  });
});
