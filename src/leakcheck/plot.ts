import type { SoakReport } from './harness.js';

interface Panel {
  title: string;
  unit: string;
  series: { name: string; values: number[]; color: string }[];
  /** A straight line to draw over the first series (the fitted heap slope). */
  fit?: { start: number; slope: number; intercept: number };
}

const W = 760;
const PH = 190;
const M = { left: 70, right: 150, top: 28, bottom: 28 };
const COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function fmt(v: number): string {
  if (Math.abs(v) >= 1e9) return `${(v / 1e9).toFixed(1)}G`;
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return `${Math.round(v * 10) / 10}`;
}

/** At most this many points per line: a long soak's plot stays small. */
const MAX_POINTS = 1600;

/**
 * The points to draw, as [cycle, value]: all of them for a short run; for a long one, the lowest
 * and the highest of each run of cycles (in cycle order), so that no spike disappears.
 */
function thin(values: readonly number[]): [number, number][] {
  if (values.length <= MAX_POINTS) return values.map((v, i) => [i, v]);
  const out: [number, number][] = [];
  const per = Math.ceil(values.length / (MAX_POINTS / 2));
  for (let a = 0; a < values.length; a += per) {
    let lo = a;
    let hi = a;
    for (let i = a; i < Math.min(values.length, a + per); i++) {
      if (values[i]! < values[lo]!) lo = i;
      if (values[i]! > values[hi]!) hi = i;
    }
    for (const i of lo <= hi ? [lo, hi] : [hi, lo]) out.push([i, values[i]!]);
  }
  return out;
}

function panel(p: Panel, y0: number): string {
  const all = p.series.flatMap((s) => s.values);
  const n = Math.max(1, ...p.series.map((s) => s.values.length));
  let lo = Math.min(0, ...all);
  let hi = Math.max(1, ...all);
  if (hi === lo) hi = lo + 1;
  const pad = (hi - lo) * 0.05;
  lo -= lo === 0 ? 0 : pad;
  hi += pad;
  const iw = W - M.left - M.right;
  const ih = PH - M.top - M.bottom;
  const x = (i: number) => M.left + (n <= 1 ? 0 : (i / (n - 1)) * iw);
  const y = (v: number) => y0 + M.top + ih - ((v - lo) / (hi - lo)) * ih;
  const out: string[] = [];
  out.push(`<text x="${M.left}" y="${y0 + 18}" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${M.left}" y="${y0 + M.top}" width="${iw}" height="${ih}" fill="none" stroke="#ccc"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    out.push(
      `<text x="${M.left - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${fmt(v)}${esc(p.unit)}</text>`,
    );
    out.push(`<line x1="${M.left}" x2="${M.left + iw}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
  }
  out.push(`<text x="${M.left + iw}" y="${y0 + PH - 8}" font-size="10" text-anchor="end">cycle ${n}</text>`);
  p.series.forEach((s, si) => {
    if (s.values.length === 0) return;
    const pts = thin(s.values)
      .map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`)
      .join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="1.2"/>`);
    out.push(
      `<text x="${M.left + iw + 8}" y="${y0 + M.top + 12 + si * 14}" font-size="11" fill="${s.color}">${esc(s.name)}</text>`,
    );
  });
  if (p.fit !== undefined && n > 1) {
    const { start, slope, intercept } = p.fit;
    out.push(
      `<line x1="${x(start)}" y1="${y(intercept)}" x2="${x(n - 1)}" y2="${y(intercept + slope * (n - 1 - start))}" stroke="#000" stroke-dasharray="4 3"/>`,
    );
  }
  return out.join('\n');
}

/** The soak's series as an SVG image: heap, pools, files, WAL. */
export function plotReport(r: SoakReport): string {
  const s = r.series;
  const pools = Object.entries(s.pools)
    .filter(([, v]) => v.some((x) => x !== 0))
    .map(([name, values], i) => ({ name, values, color: COLORS[(i + 1) % COLORS.length]! }));
  const panels: Panel[] = [
    {
      title: `JS heap used after GC (Theil–Sen ${r.heap.theilSen.toFixed(0)} B/cycle, 95% CI ${r.heap.theilSenLo95.toFixed(0)}..${r.heap.theilSenHi95.toFixed(0)}; limit ${r.heap.limit} for its lower end)`,
      unit: 'B',
      series: [
        { name: 'heap used', values: s.heapUsed, color: COLORS[0]! },
        { name: 'arrayBuffers', values: s.arrayBuffers, color: COLORS[1]! },
      ],
      fit: {
        start: r.warmup,
        slope: r.heap.ols,
        intercept: s.heapUsed[r.warmup] ?? 0,
      },
    },
    {
      title: 'Memory pools at quiescence (bytes; all others at zero)',
      unit: 'B',
      series:
        pools.length > 0
          ? pools
          : [{ name: 'all pools', values: s.heapUsed.map(() => 0), color: COLORS[2]! }],
    },
    {
      title: 'Files: open handles, checkpoint files, object files',
      unit: '',
      series: [
        { name: 'open handles', values: s.openFiles, color: COLORS[0]! },
        { name: 'ckp/ files', values: s.checkpointFiles, color: COLORS[1]! },
        { name: 'obj/ files', values: s.objectFiles, color: COLORS[2]! },
      ],
    },
    { title: 'WAL bytes', unit: 'B', series: [{ name: 'WAL', values: s.walBytes, color: COLORS[3]! }] },
  ];
  const h = panels.length * PH + 40;
  const body = panels.map((p, i) => panel(p, 30 + i * PH)).join('\n');
  const title = `tidemark leakcheck: ${r.verdict.toUpperCase()}, ${r.cycles} cycles, ${r.restarts} restarts, ${(r.durationMs / 60000).toFixed(1)} min`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${M.left}" y="20" font-size="15" font-weight="bold">${esc(title)}</text>
${body}
</svg>
`;
}
