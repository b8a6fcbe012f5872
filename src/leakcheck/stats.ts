/**
 * Slopes of a series sampled once per cycle (x = 0, 1, 2, ...), for deciding whether the heap grows.
 * Theil–Sen (the median of pairwise slopes) resists steps and outliers; ordinary least squares gives
 * a standard error, hence a 95% confidence interval. A leak verdict needs both to agree.
 */

/**
 * The Theil–Sen slope (units per cycle). A long series is thinned to 2,000 evenly spaced samples
 * first (about 2 million pairs), slopes still in units per original cycle.
 */
export function theilSen(y: ArrayLike<number>): number {
  const n = y.length;
  if (n < 2) return 0;
  const m = Math.min(n, 2000);
  const xs = new Float64Array(m);
  const ys = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const i = m === n ? k : Math.round((k * (n - 1)) / (m - 1));
    xs[k] = i;
    ys[k] = y[i]!;
  }
  const slopes = new Float64Array((m * (m - 1)) / 2);
  let p = 0;
  for (let i = 0; i < m - 1; i++)
    for (let j = i + 1; j < m; j++) slopes[p++] = (ys[j]! - ys[i]!) / (xs[j]! - xs[i]!);
  slopes.sort();
  const c = slopes.length;
  return c % 2 === 1 ? slopes[(c - 1) / 2]! : (slopes[c / 2 - 1]! + slopes[c / 2]!) / 2;
}

export interface OlsFit {
  slope: number;
  intercept: number;
  /** Standard error of the slope. */
  se: number;
  /** The 95% confidence interval of the slope (normal approximation: ±1.96 se). */
  lo95: number;
  hi95: number;
}

/** Ordinary least squares of y on x = 0..n-1. */
export function ols(y: ArrayLike<number>): OlsFit {
  const n = y.length;
  if (n < 3) return { slope: 0, intercept: n > 0 ? y[0]! : 0, se: 0, lo95: 0, hi95: 0 };
  const mx = (n - 1) / 2;
  let my = 0;
  for (let i = 0; i < n; i++) my += y[i]!;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (i - mx) * (i - mx);
    sxy += (i - mx) * (y[i]! - my);
  }
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) {
    const r = y[i]! - (intercept + slope * i);
    sse += r * r;
  }
  const se = Math.sqrt(sse / (n - 2) / sxx);
  return { slope, intercept, se, lo95: slope - 1.96 * se, hi95: slope + 1.96 * se };
}
