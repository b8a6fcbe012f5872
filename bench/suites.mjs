// The benchmark suites: each a script under suites/ printing JSON lines, and a table formatter.

const ns = (x) => (x >= 1000 ? `${(x / 1000).toFixed(1)} µs` : `${x.toFixed(0)} ns`);

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
];
