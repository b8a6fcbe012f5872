import { expect, test } from 'vitest';
import { ols, theilSenFit } from '../../src/leakcheck/stats.js';
import { Rng } from '../../src/util/random.js';

/**
 * The heap gate's statistics: the Theil–Sen slope's confidence interval covers the true slope about
 * 95% of the time, stays honest under outliers and steps (where least squares does not), and
 * narrows as samples accumulate, which is what lets the gate decide on a bound instead of on one
 * noisy estimate.
 */
function normal(rng: Rng): number {
  // Box–Muller.
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

function series(rng: Rng, n: number, slope: number, noise: number, outliers = 0): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const outlier = rng.next() < outliers ? 40 * noise * (rng.bool() ? 1 : -1) : 0;
    y[i] = 14e6 + slope * i + noise * normal(rng) + outlier;
  }
  return y;
}

test('the 95% interval covers the true slope about 95% of the time', () => {
  const rng = new Rng(22);
  let covered = 0;
  const runs = 300;
  for (let r = 0; r < runs; r++) {
    const fit = theilSenFit(series(rng, 260, 500, 40_000));
    if (fit.lo95 <= 500 && 500 <= fit.hi95) covered++;
    expect(fit.lo95).toBeLessThanOrEqual(fit.slope);
    expect(fit.hi95).toBeGreaterThanOrEqual(fit.slope);
  }
  expect(covered / runs).toBeGreaterThan(0.9);
  expect(covered / runs).toBeLessThan(0.99);
});

test('outliers move least squares, not the Theil–Sen interval', () => {
  const rng = new Rng(7);
  let senOk = 0;
  let olsOk = 0;
  for (let r = 0; r < 100; r++) {
    const y = series(rng, 260, 0, 20_000, 0.03);
    if (theilSenFit(y).lo95 < 1024) senOk++;
    if (ols(y).lo95 < 1024) olsOk++;
  }
  expect(senOk).toBeGreaterThanOrEqual(95);
  expect(olsOk).toBeLessThanOrEqual(senOk);
});

test('a real leak of 2 KiB per cycle is found with its whole interval past 1 KiB; none, never', () => {
  const rng = new Rng(3);
  for (let r = 0; r < 50; r++) {
    expect(theilSenFit(series(rng, 260, 2048, 40_000)).lo95).toBeGreaterThan(1024);
    expect(theilSenFit(series(rng, 260, 0, 40_000)).lo95).toBeLessThan(1024);
  }
});

test('the interval narrows as samples accumulate, and long series are thinned', () => {
  const rng = new Rng(5);
  const width = (n: number) => {
    const f = theilSenFit(series(rng, n, 100, 40_000));
    return f.hi95 - f.lo95;
  };
  expect(width(1000)).toBeLessThan(width(130));
  const long = theilSenFit(series(rng, 30_000, 1, 40_000));
  expect(long.n).toBe(2000);
  expect(long.lo95).toBeLessThan(1);
  expect(long.hi95).toBeGreaterThan(1);
});
