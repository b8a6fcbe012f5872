// The benchmark suites: each a script under suites/ printing JSON lines, and a table formatter.

const ns = (x) => (x >= 1000 ? `${(x / 1000).toFixed(1)} µs` : `${x.toFixed(0)} ns`);

const num = (x) => Math.round(x).toLocaleString('en-US');

export const SUITES = [
  {
    name: 'mem',
    title: 'Memory pools: acquire + release',
    script: 'mem_pool.mjs',
    peers: false,
    table(rows) {
      const lines = ['| case | median | p99 |', '|---|---:|---:|'];
      for (const r of rows) lines.push(`| ${r.name} | ${ns(r.medianNs)} | ${ns(r.p99Ns)} |`);
      return lines.join('\n');
    },
  },
  {
    name: 'wal',
    title: 'Write-ahead log: group commit',
    script: 'wal.mjs',
    peers: false,
    table(rows) {
      const raw = rows.find((r) => r.raw);
      const lines = [
        '| case | durable records/s | p50 | p99 | records per fdatasync |',
        '|---|---:|---:|---:|---:|',
      ];
      for (const r of rows) {
        lines.push(
          `| ${r.name} | ${num(r.recordsPerSec)} | ${r.p50Ms.toFixed(3)} ms | ${r.p99Ms.toFixed(3)} ms | ${r.recordsPerSync === null || r.recordsPerSync === undefined ? '' : r.recordsPerSync.toFixed(1)} |`,
        );
      }
      const g = rows.find((r) => r.appenders === 64 && r.sync === 'batch');
      if (raw && g)
        lines.push(
          '',
          `64 appenders: ${(g.recordsPerSec / raw.recordsPerSec).toFixed(1)}x this disk's raw fdatasync rate.`,
        );
      return lines.join('\n');
    },
  },
];
