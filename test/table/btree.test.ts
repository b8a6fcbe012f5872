import fc from 'fast-check';
import { expect, test } from 'vitest';
import { BTree } from '../../src/table/btree.js';
import { compareBytes } from '../../src/schema/schema.js';

function entries<K>(t: BTree<K>, from?: K): [K, number][] {
  const out: [K, number][] = [];
  t.forEachFrom(from, (k, v) => (out.push([k, v]), true));
  return out;
}

test('matches a sorted map under random inserts, replacements and range reads', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: -500, max: 500 }), fc.nat()), { maxLength: 3000 }),
      fc.integer({ min: -600, max: 600 }),
      (ops, from) => {
        const t = new BTree<number>((a, b) => a - b);
        const m = new Map<number, number>();
        for (const [k, v] of ops) {
          expect(t.set(k, v)).toBe(!m.has(k));
          m.set(k, v);
        }
        const sorted = [...m.entries()].sort((a, b) => a[0] - b[0]);
        expect(t.size).toBe(m.size);
        expect(entries(t)).toEqual(sorted);
        expect(entries(t, from)).toEqual(sorted.filter(([k]) => k >= from));
        for (const [k, v] of m) expect(t.get(k)).toBe(v);
        expect(t.get(10_000)).toBeUndefined();
        expect(t.maxKey()).toBe(sorted.at(-1)?.[0]);
      },
    ),
    { numRuns: 200 },
  );
});

test('sequential appends and byte keys', () => {
  const t = new BTree<number>((a, b) => a - b);
  for (let i = 0; i < 100_000; i++) t.set(i, i * 2);
  expect(t.size).toBe(100_000);
  expect(t.get(77_777)).toBe(155_554);
  let n = 0;
  t.forEachFrom(99_990, () => (n++, true));
  expect(n).toBe(10);
  const b = new BTree<Uint8Array>(compareBytes);
  const keys = ['b', 'a', 'ab', '', 'ba'].map((s) => new TextEncoder().encode(s));
  keys.forEach((k, i) => b.set(k, i));
  expect(entries(b).map(([k]) => new TextDecoder().decode(k))).toEqual(['', 'a', 'ab', 'b', 'ba']);
});
