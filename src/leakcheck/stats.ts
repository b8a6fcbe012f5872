/**
 * Slopes of a series sampled once per cycle (x = 0, 1, 2, ...), for deciding whether the heap grows.
 * Theil–Sen (the median of pairwise slopes) resists steps and outliers; ordinary least squares gives
 * a standard error, hence a 95% confidence interval. A leak verdict needs both to agree.
 */

export interface SenFit {
  /** The Theil–Sen slope: the median of the pairwise slopes (units per cycle). */
  slope: number;
  /**
   * Its 95% confidence interval (Sen, 1968): the pairwise slopes ranked (N - C)/2 and (N + C)/2 + 1,
   * C = 1.96 sqrt(n(n-1)(2n+5)/18), from the null distribution of Kendall's S. Distribution-free:
   * outliers and steps widen it less than they move least squares.
   */
  lo95: number;
  hi95: number;
  /** Samples the estimate used (a long series is thinned). */
  n: number;
}

/**
 * The Theil–Sen slope with its confidence interval. A long series is thinned to 2,000 evenly
 * spaced samples first (about 2 million pairs), slopes still in units per original cycle.
 */
export function theilSenFit(y: ArrayLike<number>): SenFit {
  const n = y.length;
  if (n < 3) return { slope: 0, lo95: 0, hi95: 0, n };
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
  const slope = c % 2 === 1 ? slopes[(c - 1) / 2]! : (slopes[c / 2 - 1]! + slopes[c / 2]!) / 2;
  const C = 1.96 * Math.sqrt((m * (m - 1) * (2 * m + 5)) / 18);
  // Ranks are 1-based in the literature.
  const lo = Math.max(0, Math.floor((c - C) / 2) - 1);
  const hi = Math.min(c - 1, Math.ceil((c + C) / 2));
  return { slope, lo95: slopes[lo]!, hi95: slopes[hi]!, n: m };
}

/** The Theil–Sen slope alone. */
export function theilSen(y: ArrayLike<number>): number {
  return theilSenFit(y).slope;
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
