// The benchmark suites: each a script under suites/ printing JSON lines, and a table formatter.

const ns = (x) => (x >= 1000 ? `${(x / 1000).toFixed(1)} µs` : `${x.toFixed(0)} ns`);

/** Rows grouped by a key, in first-seen order. */
function groupBy(rows, key) {
  const m = new Map();
  for (const r of rows) {
    if (!m.has(key(r))) m.set(key(r), []);
    m.get(key(r)).push(r);
  }
  return m;
}

/** "- engine: settings" lines, one per engine. */
function settingsLines(rows) {
  return [...new Map(rows.map((r) => [r.engine, r.settings])).entries()].map(([e, s]) => `- ${e}: ${s}`);
}

const num = (x) => Math.round(x).toLocaleString('en-US');

/** "2.27x sqlite, 1.04x lmdb": tidemark's throughput against each other engine's on one workload. */
function ratiosToPeers(rs) {
  const t = rs.find((r) => r.engine === 'tidemark');
  return rs
    .filter((p) => p.engine !== 'tidemark')
    .map((p) => `${(t.opsPerSec / p.opsPerSec).toFixed(2)}x ${p.engine}`)
    .join(', ');
}

/**
 * The table of a suite whose engines run the same workloads: a row per workload and engine, the
 * ratio of tidemark to every other engine, then each target ([workload, peer, at least this ratio])
 * with its verdict, and the engines' settings.
 */
function peerTable(rows, targets) {
  const lines = [
    '| workload | engine | throughput | p50 | p99 | peak RSS | pool high-water | tidemark / peer |',
    '|---|---|---:|---:|---:|---:|---:|---|',
  ];
  const verdicts = [];
  for (const [w, rs] of groupBy(rows, (r) => r.workload)) {
    const t = rs.find((r) => r.engine === 'tidemark');
    for (const r of rs) {
      const ratios = r.engine === 'tidemark' ? ratiosToPeers(rs) : '';
      lines.push(
        `| ${r.name} | ${r.engine} | ${num(r.opsPerSec)} ${r.unit} | ${r.p50Ms.toFixed(3)} ms | ${r.p99Ms.toFixed(3)} ms | ${r.peakRssMiB} MiB | ${r.poolHighWaterMiB === null ? '' : `${r.poolHighWaterMiB} MiB`} | ${ratios} |`,
      );
    }
    for (const [tw, peer, want] of targets) {
      const p = rs.find((r) => r.engine === peer);
      if (tw !== w || !t || !p) continue;
      const ratio = t.opsPerSec / p.opsPerSec;
      verdicts.push(
        `- ${t.name}: ${ratio.toFixed(2)}x ${peer} (target >= ${want}x: ${ratio >= want ? 'met' : 'not met'})`,
      );
    }
  }
  return (
    lines.join('\n') +
    (verdicts.length > 0 ? '\n\nTargets:\n' + verdicts.join('\n') : '') +
    '\n\nSettings:\n' +
    settingsLines(rows).join('\n')
  );
}

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
  {
    name: 'core',
    title: 'Tables and transactions: tidemark against better-sqlite3, lmdb and classic-level',
    script: 'core.mjs',
    peers: true,
    table(rows) {
      // Targets (issue "Benchmark suite"): [workload, peer, at least this ratio].
      return peerTable(rows, [
        ['bulk', 'sqlite', 1],
        ['commit64', 'sqlite', 5],
        ['commit64', 'lmdb', 1],
        ['get', 'sqlite', 1],
      ]);
    },
  },
  {
    name: 'ycsb',
    title: 'YCSB A, B, C and E: tidemark against better-sqlite3, lmdb and classic-level',
    script: 'ycsb.mjs',
    peers: true,
    table(rows) {
      return peerTable(rows, [
        ['ycsb-c', 'sqlite', 1],
        ['ycsb-c', 'lmdb', 0.5],
      ]);
    },
  },
  {
    name: 'level',
    title: 'tidemark/level against classic-level',
    script: 'level.mjs',
    peers: true,
    table(rows) {
      return peerTable(rows, []);
    },
  },
  {
    name: 'objectstore',
    title: 'Objects in object storage against the local disk',
    script: 'objectstore.mjs',
    peers: false,
    table(rows) {
      const lines = [
        '| workload | local disk | object storage (moto) | object storage / local | peak RSS (local, store) |',
        '|---|---:|---:|---:|---:|',
      ];
      for (const [, rs] of groupBy(rows, (r) => r.workload)) {
        const l = rs.find((r) => r.engine === 'local');
        const s = rs.find((r) => r.engine === 's3');
        if (!l || !s) continue;
        lines.push(
          `| ${l.name.replace(/ \(open \d+ ms\)/, '')} | ${num(l.opsPerSec)} ${l.unit} | ${num(s.opsPerSec)} ${s.unit} | ${(s.opsPerSec / l.opsPerSec).toFixed(2)}x | ${l.peakRssMiB} MiB, ${s.peakRssMiB} MiB |`,
        );
      }
      const opens = rows
        .filter((r) => r.workload === 'scan-cold')
        .map((r) => `${r.engine}: ${/open (\d+ ms)/.exec(r.name)?.[1] ?? '?'}`);
      return (
        lines.join('\n') +
        `\n\nOpen after the restart: ${opens.join(', ')}.\n\nSettings:\n` +
        settingsLines(rows).join('\n')
      );
    },
  },
  {
    name: 'ckp',
    title: 'Commit latency during background checkpoints',
    script: 'ckp.mjs',
    peers: false,
    table(rows) {
      const lines = [
        '| case | commits/s | p50 | p99 | p99.9 | checkpoints | rows loaded meanwhile | pool high-water |',
        '|---|---:|---:|---:|---:|---:|---:|---:|',
      ];
      for (const r of rows)
        lines.push(
          `| ${r.name} | ${num(r.opsPerSec)} | ${r.p50Ms.toFixed(2)} ms | ${r.p99Ms.toFixed(2)} ms | ${r.p999Ms.toFixed(2)} ms | ${r.checkpoints} | ${num(r.loadedRows)} | ${r.poolHighWaterMiB} MiB |`,
        );
      const on = rows.find((r) => r.workload === 'ckp-on');
      const off = rows.find((r) => r.workload === 'ckp-off');
      if (on && off)
        lines.push(
          '',
          `p99 with checkpoints / without: ${(on.p99Ms / off.p99Ms).toFixed(2)}x (target <= 2x: ${on.p99Ms <= 2 * off.p99Ms ? 'met' : 'not met'}).`,
        );
      return lines.join('\n') + '\n\nSettings:\n' + settingsLines(rows).join('\n');
    },
  },
  {
    name: 'open',
    title: 'Open time after SIGKILL',
    script: 'open.mjs',
    peers: true,
    table(rows) {
      const lines = [
        '| case | engine | log | rows | open | records replayed |',
        '|---|---|---:|---:|---:|---:|',
      ];
      for (const r of rows)
        lines.push(
          `| ${r.name} | ${r.engine} | ${r.walMiB} MiB | ${num(r.rows)} | ${(r.openMs / 1000).toFixed(2)} s | ${r.replayedRecords === undefined ? '' : num(r.replayedRecords)} |`,
        );
      return lines.join('\n') + '\n\nSettings:\n' + settingsLines(rows).join('\n');
    },
  },
  {
    name: 'objects',
    title: 'Data in objects: point gets and a column SUM after a restart',
    script: 'objects.mjs',
    peers: true,
    table(rows) {
      // Targets: warm point gets at least better-sqlite3; the warm SUM within 3x of DuckDB.
      const lines = [
        '| workload | engine | throughput | p50 | p99 | open | peak RSS | pool high-water | tidemark vs peers |',
        '|---|---|---:|---:|---:|---:|---:|---:|---|',
      ];
      const byWorkload = groupBy(rows, (r) => r.workload);
      const verdicts = [];
      for (const [w, rs] of byWorkload) {
        const t = rs.find((r) => r.engine === 'tidemark');
        for (const r of rs) {
          const ratios = r.engine === 'tidemark' ? ratiosToPeers(rs) : '';
          lines.push(
            `| ${r.name} | ${r.engine} | ${num(r.opsPerSec)} ${r.unit} | ${r.p50Ms.toFixed(3)} ms | ${r.p99Ms.toFixed(3)} ms | ${(r.openMs / 1000).toFixed(2)} s | ${r.peakRssMiB} MiB | ${r.poolHighWaterMiB === null ? '' : `${r.poolHighWaterMiB} MiB`} | ${ratios} |`,
          );
        }
        const q = rs.find((r) => r.engine === 'sqlite');
        const d = rs.find((r) => r.engine === 'duckdb');
        if (w === 'get-warm' && t && q)
          verdicts.push(
            `- warm point gets: ${(t.opsPerSec / q.opsPerSec).toFixed(2)}x better-sqlite3 (target >= 1x: ${t.opsPerSec >= q.opsPerSec ? 'met' : 'not met'})`,
          );
        if (w === 'sum-warm' && t && d)
          verdicts.push(
            `- warm SUM: DuckDB is ${(d.opsPerSec / t.opsPerSec).toFixed(2)}x faster (target within 3x: ${d.opsPerSec <= 3 * t.opsPerSec ? 'met' : 'not met'})`,
          );
      }
      const settings = settingsLines(rows);
      const dropped = rows.every((r) => r.pageCacheDropped);
      return (
        lines.join('\n') +
        '\n\nTargets:\n' +
        verdicts.join('\n') +
        `\n\n"Cold": the first pass in a new process after the load${dropped ? ', with the OS page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches)' : ' (the OS page cache could not be dropped: not root)'}; "warm": the same again.\n\nSettings:\n` +
        settings.join('\n')
      );
    },
  },
  {
    name: 'mysql',
    title: 'MySQL protocol: sysbench-like point selects and read-write transactions',
    script: 'mysql.mjs',
    peers: true,
    table(rows) {
      const rounds = rows
        .filter((r) => Array.isArray(r.rounds))
        .map((r) => `- ${r.name}, ${r.engine}: ${r.rounds.map((x) => num(x)).join(', ')} ${r.unit}`);
      return (
        peerTable(rows, [
          ['point_select', 'mariadb', 0.5],
          ['read_write', 'mariadb', 1],
        ]) +
        "\n\nRounds, in the order run (each figure above is its engine's median):\n" +
        rounds.join('\n') +
        "\n\nBoth servers run for the whole benchmark, each in a process of its own, the mysql2 driver in a third, on loopback; 100,000 rows of sysbench's sbtest1 in each. oltp_read_write: BEGIN, 10 point selects, a range, a range SUM, a range ORDER BY, a range DISTINCT, two updates, a delete and an insert, COMMIT; conflicts and deadlocks retried. Each server first runs 2,000 read-write transactions as a warm-up (as sysbench's --warmup-time: a Node server runs slower until V8 has compiled its paths; MariaDB's buffer pool and adaptive hash index warm up too), reported on rows of their own. Then the two are measured in alternating rounds (tidemark, MariaDB, tidemark, ...), so that both see the same conditions on a machine whose load drifts; latencies are over all rounds. Peak RSS is the server process's."
      );
    },
  },
  {
    name: 'sql',
    title: 'SQL: TPC-H Q1 and Q6, point selects',
    script: 'sql.mjs',
    peers: true,
    table(rows) {
      const lines = [
        '| workload | engine | throughput | median | slowest | first run | peak RSS | tidemark vs peers |',
        '|---|---|---:|---:|---:|---:|---:|---|',
      ];
      const verdicts = [];
      for (const [w, rs] of groupBy(rows, (r) => r.workload)) {
        for (const r of rs) {
          const ratios = r.engine === 'tidemark' && rs.length > 1 ? ratiosToPeers(rs) : '';
          const first = r.firstMs === undefined ? '' : `${r.firstMs.toFixed(0)} ms`;
          const ms = (x) => (w === 'load' ? '' : `${x.toFixed(3)} ms`);
          lines.push(
            `| ${r.name} | ${r.engine} | ${r.opsPerSec < 100 ? r.opsPerSec.toFixed(2) : num(r.opsPerSec)} ${r.unit} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${first} | ${r.peakRssMiB} MiB | ${ratios} |`,
          );
        }
        const t = rs.find((r) => r.engine === 'tidemark');
        const q = rs.find((r) => r.engine === 'sqlite');
        const d = rs.find((r) => r.engine === 'duckdb');
        if ((w === 'q1' || w === 'q6') && t && q && d) {
          const vsSqlite = t.opsPerSec / q.opsPerSec;
          const duckFaster = d.opsPerSec / t.opsPerSec;
          verdicts.push(
            `- ${w.toUpperCase()}: ${vsSqlite.toFixed(2)}x better-sqlite3 (target >= 5x: ${vsSqlite >= 5 ? 'met' : 'not met'}); DuckDB ${duckFaster.toFixed(2)}x faster (target within 3x: ${duckFaster <= 3 ? 'met' : 'not met'})`,
          );
          const agree = new Set(rs.map((r) => r.digest)).size === 1;
          verdicts.push(
            `  - results ${agree ? 'agree across the three engines' : 'DIFFER between engines: ' + rs.map((r) => `${r.engine}: ${r.digest}`).join(' / ')}`,
          );
        }
      }
      const p = rows.find((r) => r.engine === 'tidemark' && r.workload === 'point');
      const g = rows.find((r) => r.engine === 'tidemark' && r.workload === 'get');
      if (p && g) {
        const ratio = p.opsPerSec / g.opsPerSec;
        verdicts.push(
          `- point selects through query: ${ratio.toFixed(2)}x db.get (target >= 0.5x: ${ratio >= 0.5 ? 'met' : 'not met'})`,
        );
      }
      return (
        lines.join('\n') +
        '\n\nTargets:\n' +
        verdicts.join('\n') +
        '\n\nQ1 and Q6 as TPC-H writes them (Q1 with its date already computed: 1998-12-01 minus 90 days), over lineitem generated with dbgen\'s distributions for the columns they read (bench/lib/tpch.mjs); one surrogate key per line. "First run": the query\'s first execution after the load.\n\nSettings:\n' +
        settingsLines(rows).join('\n')
      );
    },
  },
];
