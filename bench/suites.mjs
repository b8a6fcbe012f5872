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

const VIA = { mysql: 'MySQL protocol', 'in-process': 'in-process', sysbench: 'sysbench' };
const INDEX_OPS = ['city', 'email', 'range', 'insert1', 'insert64'];
const OP_LABEL = {
  city: 'city = ? (indexed)',
  email: 'email = ? (UNIQUE)',
  range: 'n BETWEEN, 100 rows',
  insert1: 'INSERT, 1 caller',
  insert64: 'INSERT, 64 callers',
};
const rowsLabel = (n) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n));
const ratioVerdict = (x, ok) => `${x.toFixed(2)}x (${ok ? 'met' : 'not met'})`;

/** The indexes suite: per size and operation, the scaling of each operation's cost, sysbench, targets. */
function indexesTable(all) {
  const ops = all.filter(
    (r) => r.via !== 'sysbench' && r.workload !== 'load' && INDEX_OPS.includes(r.workload),
  );
  const sizes = [...new Set(ops.map((r) => r.rows))].sort((a, b) => a - b);
  const smallest = sizes[0];
  const largest = sizes.at(-1);
  const pick = (via, op, size, engine) =>
    ops.find((r) => r.via === via && r.workload === op && r.rows === size && r.engine === engine);
  const lines = [
    '| rows | operation | via | engine | throughput | p50 | p99 | ops | peak RSS | tidemark / peer |',
    '|---:|---|---|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const via of ['mysql', 'in-process'])
    for (const op of INDEX_OPS)
      for (const size of sizes) {
        const rs = ops.filter((r) => r.via === via && r.workload === op && r.rows === size);
        const hasT = rs.some((r) => r.engine === 'tidemark');
        for (const r of rs)
          lines.push(
            `| ${num(size)} | ${r.name} | ${VIA[via]} | ${r.engine} | ${num(r.opsPerSec)} ${r.unit} | ${r.p50Ms.toFixed(3)} ms | ${r.p99Ms.toFixed(3)} ms | ${num(r.ops)} | ${r.peakRssMiB ?? ''} MiB | ${r.engine === 'tidemark' && hasT && rs.length > 1 ? ratiosToPeers(rs) : ''} |`,
          );
      }

  // The cost of one operation (the inverse of the throughput) at each size, against the smallest.
  const scaling = [
    `| operation | via | engine | ${sizes.map((s) => `per op at ${rowsLabel(s)}`).join(' | ')} | ${rowsLabel(largest)} / ${rowsLabel(smallest)} |`,
    `|---|---|---|${sizes.map(() => '---:|').join('')}---:|`,
  ];
  const costRatio = {};
  for (const via of ['mysql', 'in-process'])
    for (const op of INDEX_OPS)
      for (const engine of [...new Set(ops.filter((r) => r.via === via).map((r) => r.engine))]) {
        const cells = sizes.map((s) => pick(via, op, s, engine));
        if (cells.every((c) => c === undefined)) continue;
        const us = (c) => {
          if (c === undefined) return '';
          const x = 1e6 / c.opsPerSec;
          return `${x >= 100 ? num(x) : x.toFixed(1)} µs`;
        };
        const a = cells[0];
        const b = cells.at(-1);
        const ratio = a && b ? a.opsPerSec / b.opsPerSec : undefined;
        if (engine === 'tidemark' && ratio !== undefined && sizes.length > 1)
          costRatio[`${via}:${op}`] = ratio;
        scaling.push(
          `| ${OP_LABEL[op]} | ${VIA[via]} | ${engine} | ${cells.map(us).join(' | ')} | ${ratio === undefined ? '' : `${ratio.toFixed(2)}x`} |`,
        );
      }

  // sysbench oltp_read_write itself.
  const sb = all.filter((r) => r.via === 'sysbench');
  const sbLines = [
    '| run | engine | transactions/s | queries/s | avg | p95 | reads | ignored errors | peak RSS | tidemark / MariaDB |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  const sbNotes = [];
  const sbRatio = {};
  const sbMode = {
    auto: 'prepared statements (--db-ps-mode=auto)',
    disable: 'text queries (--db-ps-mode=disable)',
  };
  for (const mode of ['auto', 'disable']) {
    const t = sb.find((r) => r.psMode === mode && r.engine === 'tidemark');
    const m = sb.find((r) => r.psMode === mode && r.engine === 'mariadb');
    for (const r of [t, m]) {
      if (r === undefined) continue;
      const ok = r.opsPerSec !== undefined && r.error === undefined && r.skipped === undefined;
      const ratio = r === t && ok && m?.opsPerSec ? `${(t.opsPerSec / m.opsPerSec).toFixed(2)}x` : '';
      if (r === t && ratio !== '') sbRatio[mode] = t.opsPerSec / m.opsPerSec;
      sbLines.push(
        ok
          ? `| ${sbMode[mode]} | ${r.engine} | ${num(r.opsPerSec)} | ${num(r.queriesPerSec)} | ${r.avgMs} ms | ${r.p95Ms} ms | ${num(r.reads)} | ${num(r.ignoredErrors)} | ${r.peakRssMiB} MiB | ${ratio} |`
          : `| ${sbMode[mode]} | ${r.engine} | ${r.skipped ? 'skipped' : 'failed'} | | | | | | | |`,
      );
      if (!ok) sbNotes.push(`- ${r.engine}, ${sbMode[mode]}: ${r.skipped ?? r.error}`);
      if (r.warning) sbNotes.push(`- ${r.engine}, ${sbMode[mode]}: ${r.warning}`);
    }
  }

  // Targets (issue "Secondary indexes and UNIQUE constraints").
  const at = largest >= 1_000_000 ? `${num(largest)} rows` : `${num(largest)} rows (1,000,000 not run)`;
  const verdicts = [];
  for (const via of ['mysql', 'in-process']) {
    const parts = INDEX_OPS.filter((op) => costRatio[`${via}:${op}`] !== undefined).map(
      (op) => `${op} ${ratioVerdict(costRatio[`${via}:${op}`], costRatio[`${via}:${op}`] <= 2)}`,
    );
    if (parts.length > 0)
      verdicts.push(
        `- tidemark's cost per operation at ${at} / at ${num(smallest)} (target <= 2x), ${VIA[via]}: ${parts.join('; ')}`,
      );
  }
  const vsMaria = (op) => {
    const t = pick('mysql', op, largest, 'tidemark');
    const m = pick('mysql', op, largest, 'mariadb');
    return t && m ? t.opsPerSec / m.opsPerSec : undefined;
  };
  const lookups = ['city', 'email', 'range'].filter((op) => vsMaria(op) !== undefined);
  if (lookups.length > 0)
    verdicts.push(
      `- lookups at ${at}, MySQL protocol (target >= 1x MariaDB): ${lookups.map((op) => `${op} ${ratioVerdict(vsMaria(op), vsMaria(op) >= 1)}`).join('; ')}`,
    );
  if (vsMaria('insert64') !== undefined)
    verdicts.push(
      `- INSERTs from 64 connections at ${at} (target >= 1x MariaDB): ${ratioVerdict(vsMaria('insert64'), vsMaria('insert64') >= 1)}`,
    );
  if (sb.length > 0) {
    const ps = sbRatio.auto;
    const text = sbRatio.disable;
    verdicts.push(
      `- sysbench oltp_read_write (target >= 1x MariaDB): prepared statements ${ps === undefined ? 'not measured (see above)' : ratioVerdict(ps, ps >= 1)}; text queries ${text === undefined ? 'not measured (see above)' : ratioVerdict(text, text >= 1)}`,
    );
  }

  const loads = all.filter((r) => r.workload === 'load');
  const loadLines = ['| rows | via | engine | load | indexes made in |', '|---:|---|---|---:|---:|'];
  for (const r of loads)
    loadLines.push(
      `| ${num(r.rows)} | ${VIA[r.via]} | ${r.engine} | ${num(r.opsPerSec)} rows/s | ${(r.indexMs / 1000).toFixed(2)} s |`,
    );

  const settings = [...new Map(all.map((r) => [`${r.engine} (${VIA[r.via]})`, r.settings])).entries()].map(
    ([k, v]) => `- ${k}: ${v}`,
  );
  return [
    lines.join('\n'),
    `Cost per operation (1 / throughput, at the row's concurrency), tidemark and its peers, against the smallest table:\n\n${scaling.join('\n')}`,
    sb.length > 0
      ? `${sb[0].name.replace(/, (prepared statements|text queries).*$/, '')}: sysbench's own schema (sbtest1 with the secondary index k_1) and statements (BEGIN, 10 point selects, 4 ranges, an UPDATE of k through k_1, an UPDATE of c, a DELETE and an INSERT, COMMIT), both servers alternating:\n\n${sbLines.join('\n')}${sbNotes.length > 0 ? '\n\n' + sbNotes.join('\n') : ''}`
      : '',
    'Targets:\n' + verdicts.join('\n'),
    `Loads, not measured against anything (the rows, then CREATE UNIQUE INDEX g_email and CREATE INDEX g_city, g_n):\n\n${loadLines.join('\n')}`,
    "g_t (id INT PRIMARY KEY, email VARCHAR(64) UNIQUE, city VARCHAR(20), n INT) with indexes on city and n. Row id: email `u<id>@x.io`, city `city-<id mod rows/10>` (rows/10 cities, so a city lookup returns 10 rows at every size), n = id x 7919 mod rows (every value once: a range of 100 values is 100 rows). Each operation runs for a time budget (1.5 s with --quick, 5 s otherwise) after a warm-up, never a fixed count, and every lookup's row count is checked. INSERTs take new ids; the rows they add are deleted (not timed) after every rows/5 of them (at least 2,000), so the table holds 1 to 1.2 times its size. Over the MySQL protocol (mysql2, prepared statements, lookups from 16 connections) both servers run for the whole size, each in a process of its own, measured in alternating rounds (3 rounds, the median; 1 with --quick); tidemark's database is loaded in-process before `tidemark serve` opens it, MariaDB's through 1,000-row INSERTs. In-process, the engines run in processes of their own, one caller for lookups (better-sqlite3 is synchronous: its 64 callers take turns).",
    'Settings:\n' + settings.join('\n'),
  ]
    .filter((x) => x !== '')
    .join('\n\n');
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
  {
    name: 'indexes',
    title:
      'Secondary indexes and UNIQUE: lookups, ranges and INSERTs from 10,000 to 1,000,000 rows; sysbench',
    script: 'indexes.mjs',
    peers: true,
    table: indexesTable,
  },
];
