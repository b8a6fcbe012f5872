import fc from 'fast-check';
import { expect, test } from 'vitest';
import { lowerBoundF64 } from '../../src/table/object_layer.js';

test('lowerBoundF64 finds the first element >= key in any sorted array (property)', () => {
  const value = fc.oneof(
    fc.integer({ min: -1000, max: 1000 }),
    fc.double({ noNaN: true }),
    fc.constantFrom(Infinity, -Infinity, 0, -0, 2 ** 53 - 1, -(2 ** 53 - 1)),
  );
  fc.assert(
    fc.property(fc.array(value, { maxLength: 300 }), value, (values, key) => {
      const a = Float64Array.from(values).sort();
      let want = 0;
      while (want < a.length && a[want]! < key) want++;
      expect(lowerBoundF64(a, a.length, key)).toBe(want);
      // Keys taken from the array itself: the exact hits a point read makes.
      for (let i = 0; i < a.length; i += 7) {
        let w = 0;
        while (a[w]! < a[i]!) w++;
        expect(lowerBoundF64(a, a.length, a[i]!)).toBe(w);
      }
    }),
    { numRuns: 2000 },
  );
});

test('lowerBoundF64 on dense and skewed ids', () => {
  const dense = Float64Array.from({ length: 16384 }, (_, i) => 1_000_000 + i);
  for (const k of [999_999, 1_000_000, 1_008_000, 1_016_383, 1_016_384])
    expect(lowerBoundF64(dense, dense.length, k)).toBe(Math.min(16384, Math.max(0, k - 1_000_000)));
  const skewed = Float64Array.from({ length: 5000 }, (_, i) => i * i * i);
  for (let i = 0; i < 5000; i += 97) expect(lowerBoundF64(skewed, 5000, i * i * i)).toBe(i);
  expect(lowerBoundF64(skewed, 5000, 8)).toBe(2);
  expect(lowerBoundF64(skewed, 5000, 9)).toBe(3);
});
