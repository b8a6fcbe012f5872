import type { SoakReport } from './harness.js';

const b = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(0)} B/cycle`;

function range(v: number[]): string {
  if (v.length === 0) return 'none';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return lo === hi ? `${lo}` : `${lo}..${hi}`;
}

/** The soak report as text for people. */
export function formatSoak(r: SoakReport, plot: string | undefined): string {
  const lines: string[] = [];
  lines.push(
    `tidemark leakcheck: ${r.verdict.toUpperCase()} (${r.cycles} cycles, ${r.restarts} restarts, ${(r.durationMs / 60_000).toFixed(1)} min${r.planted !== undefined ? `, planted leak: ${r.planted}` : ''})`,
  );
  lines.push(
    `  scenarios: ${Object.entries(r.perScenario)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  if (r.heap.samples === 0)
    lines.push(
      `  heap: not judged (${Math.max(0, r.cycles - r.warmup)} cycles after the warm-up of ${r.warmup}; at least 100 are needed)`,
    );
  else
    lines.push(
      `  heap used after GC, ${r.heap.samples} cycles after a warm-up of ${r.warmup}: Theil–Sen ${b(r.heap.theilSen)} (95% CI ${r.heap.theilSenLo95.toFixed(0)} to ${r.heap.theilSenHi95.toFixed(0)}), OLS ${b(r.heap.ols)} (95% CI ${r.heap.olsLo95.toFixed(0)} to ${r.heap.olsHi95.toFixed(0)}); limit ${r.heap.limit} B/cycle for the Theil–Sen interval's lower end`,
    );
  const h = r.series.heapUsed;
  if (h.length > 0)
    lines.push(
      `  heap used: ${(h[0]! / 2 ** 20).toFixed(1)} MiB at cycle 1, ${(h[h.length - 1]! / 2 ** 20).toFixed(1)} MiB at cycle ${h.length}; arrayBuffers ${range(r.series.arrayBuffers)} bytes`,
    );
  lines.push(
    `  pools at quiescence (bytes over the cycles): ${Object.entries(r.series.pools)
      .map(([k, v]) => `${k} ${range(v)}`)
      .join(', ')}`,
  );
  lines.push(
    `  open file handles ${range(r.series.openFiles)} (the registry equal to /proc/self/fd every cycle); ckp/ files ${range(r.series.checkpointFiles)} (bound ${r.checkpointFilesBound}); obj/ files ${range(r.series.objectFiles)}; WAL bytes ${range(r.series.walBytes)}`,
  );
  if (r.classes.length > 0)
    lines.push(
      `  live instances (v8.queryObjects, expected): ${r.classes.map((c) => `${c.name} ${c.live}/${c.expected}`).join(', ')}`,
    );
  const f = r.faults;
  if (f !== undefined)
    lines.push(
      `  faults (seed ${f.seed}, rate ${f.rate}): ${f.injected} injected in ${f.faultedCycles} cycles; ${f.rejectedCycles} cycles rejected (${
        Object.entries(f.rejections)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none'
      }), ${f.reopened} needed a reopen; by operation: ${Object.entries(f.byOp)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  if (f !== undefined && r.verdict === 'fail' && f.last.length > 0)
    lines.push(`  the last faults: ${f.last.join('; ')}`);
  if (plot !== undefined) lines.push(`  plot: ${plot}`);
  for (const f of r.failures) lines.push(`FAILURE: ${f}`);
  return lines.join('\n');
}
