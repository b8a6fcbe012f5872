// sysbench oltp_read_write itself (Debian's sysbench 1.0, its own schema, data and statements)
// against tidemark serve and MariaDB: `prepare` (sbtest1 with its secondary index k_1), then `run`
// with prepared statements (--db-ps-mode=auto, sysbench's default) and again with them emulated
// (--db-ps-mode=disable: text queries), the two servers alternating, then `cleanup`. Every
// transaction: BEGIN, 10 point selects, 4 ranges, an UPDATE of k (through the index k_1: sysbench's
// index_updates), an UPDATE of c, a DELETE and an INSERT, COMMIT. A run that fails is reported with
// sysbench's error (the statement and the error number) instead of figures.
// Usage: node sysbench_child.mjs [--quick]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { now } from './lib/data.mjs';
import { PASSWORD, peakRssMiB, SERVER_SETTINGS, startServer } from './lib/servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const ENGINES = ['tidemark', 'mariadb'];
const TABLE_SIZE = quick ? 20_000 : 100_000;
const THREADS = 16;
const SECONDS = quick ? 15 : 60;
const WARMUP_SECONDS = quick ? 5 : 10;
const MODES = ['auto', 'disable'];
const progress = (engine, msg) => process.stderr.write(`    ${engine} (sysbench): ${msg}\n`);

const emit = (r) =>
  process.stdout.write(JSON.stringify({ via: 'sysbench', workload: 'sysbench', ...r }) + '\n');
const modeName = (m) =>
  m === 'auto' ? 'prepared statements (--db-ps-mode=auto)' : 'text queries (--db-ps-mode=disable)';
const runName = (m) =>
  `sysbench oltp_read_write, ${TABLE_SIZE.toLocaleString('en-US')} rows, ${THREADS} threads, ${SECONDS} s after a ${WARMUP_SECONDS} s warm-up run, ${modeName(m)}`;

// sysbench: the Debian package, installed when missing (as root, or through sudo -n).
const ensure = spawnSync(
  'bash',
  [
    path.join(here, '..', 'scripts', 'ensure-debian-package.sh'),
    'sysbench',
    'the indexes benchmark (sysbench oltp_read_write)',
    'sysbench',
  ],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
);
if (ensure.status !== 0) {
  const why = `sysbench is not installed and could not be: ${ensure.stderr.trim().split('\n').slice(-2).join(' ')}`;
  process.stderr.write(`    sysbench: skipped: ${why}\n`);
  for (const engine of ENGINES)
    for (const m of MODES)
      emit({ engine, settings: SERVER_SETTINGS[engine], psMode: m, name: runName(m), skipped: why });
  process.exit(0);
}
const sysbench = ensure.stdout.trim().split('\n').pop();
const version = spawnSync(sysbench, ['--version'], { encoding: 'utf8' }).stdout.trim();

/** Run sysbench; resolves with its exit status and its output. */
function sb(port, command, extra = []) {
  const r = spawnSync(
    sysbench,
    [
      'oltp_read_write',
      '--db-driver=mysql',
      '--mysql-host=127.0.0.1',
      `--mysql-port=${port}`,
      '--mysql-user=root',
      `--mysql-password=${PASSWORD}`,
      '--mysql-db=tidemark',
      '--tables=1',
      `--table-size=${TABLE_SIZE}`,
      ...extra,
      command,
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20, timeout: (SECONDS + WARMUP_SECONDS + 300) * 1000 },
  );
  return { status: r.status ?? r.signal ?? 'timeout', out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** sysbench's error, shortest form: the first FATAL line naming a query, else its first lines of trouble. */
function errorOf(out, status) {
  const lines = out.split('\n').filter((l) => /FATAL|ALERT|error/i.test(l) && !/ignored errors/.test(l));
  const withQuery = lines.find((l) => /for query '/.test(l));
  const first = withQuery ?? lines[0] ?? out.trim().split('\n').slice(-3).join(' / ');
  return `exit ${status}: ${first.trim()}${lines.length > 1 ? ` (${lines.length} error lines)` : ''}`;
}

/** The figures of sysbench's report. */
function parse(out) {
  const num = (re) => {
    const m = re.exec(out);
    return m === null ? null : Number(m[1]);
  };
  return {
    transactions: num(/transactions:\s+(\d+)/),
    opsPerSec: num(/transactions:\s+\d+\s+\(([\d.]+) per sec/),
    queriesPerSec: num(/queries:\s+\d+\s+\(([\d.]+) per sec/),
    reads: num(/read:\s+(\d+)/),
    writes: num(/write:\s+(\d+)/),
    ignoredErrors: num(/ignored errors:\s+(\d+)/),
    reconnects: num(/reconnects:\s+(\d+)/),
    avgMs: num(/avg:\s+([\d.]+)/),
    p95Ms: num(/95th percentile:\s+([\d.]+)/),
  };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-sysbench-'));
const servers = {};
try {
  for (const engine of ENGINES)
    servers[engine] = await startServer(engine, engine === 'tidemark' ? path.join(dir, 'tidemark') : dir);
  const prepared = {};
  for (const engine of ENGINES) {
    const t0 = now();
    const r = sb(servers[engine].port, 'prepare');
    prepared[engine] = r.status === 0 ? true : errorOf(r.out, r.status);
    progress(
      engine,
      r.status === 0
        ? `prepare: ${TABLE_SIZE.toLocaleString('en-US')} rows in ${((now() - t0) / 1000).toFixed(1)} s`
        : `prepare failed: ${prepared[engine]}`,
    );
  }
  for (const m of MODES) {
    for (const engine of ENGINES) {
      const base = {
        engine,
        settings: `${SERVER_SETTINGS[engine]}; ${version}`,
        psMode: m,
        name: runName(m),
        unit: 'transactions/s',
      };
      if (prepared[engine] !== true) {
        emit({ ...base, error: `prepare: ${prepared[engine]}` });
        continue;
      }
      // sysbench 1.0 has no --warmup-time: a short run first, its figures dropped.
      const opts = [`--threads=${THREADS}`, `--db-ps-mode=${m}`, '--rand-seed=1'];
      sb(servers[engine].port, 'run', [...opts, `--time=${WARMUP_SECONDS}`]);
      const r = sb(servers[engine].port, 'run', [...opts, `--time=${SECONDS}`]);
      const figures = parse(r.out);
      if (r.status !== 0 || figures.opsPerSec === null) {
        const error = errorOf(r.out, r.status);
        progress(engine, `run, ${modeName(m)}: FAILED: ${error}`);
        emit({ ...base, error, peakRssMiB: peakRssMiB(servers[engine].pid) });
        continue;
      }
      progress(
        engine,
        `run, ${modeName(m)}: ${figures.opsPerSec} transactions/s, ${figures.reads} reads, ${figures.ignoredErrors} ignored errors`,
      );
      // A SELECT whose result set sysbench did not read is counted as a write or an "other".
      const warning =
        figures.reads === 0
          ? 'sysbench counted no reads: the SELECTs returned no result sets it read'
          : undefined;
      emit({ ...base, ...figures, warning, peakRssMiB: peakRssMiB(servers[engine].pid) });
    }
  }
  for (const engine of ENGINES) if (prepared[engine] === true) sb(servers[engine].port, 'cleanup');
} finally {
  for (const engine of ENGINES) await servers[engine]?.stop();
  rmSync(dir, { recursive: true, force: true });
}
