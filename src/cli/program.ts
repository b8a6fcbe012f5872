import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { TidemarkError } from '../errors.js';
import { runDemo } from './demo.js';
import { serve } from './serve.js';
import { check } from '../db/check.js';
import { inspect } from '../db/inspect.js';
import { formatCheck } from './check.js';
import { formatReport } from './inspect.js';
import { leakcheck, type LeakcheckOptions } from './leakcheck.js';
import { PLANT_KINDS } from '../util/plant.js';
import { runShell, runSql, type OutputMode } from './sql.js';

function packageVersion(): string {
  // dist/cli/main.js and src/cli/main.ts both sit two levels below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** The benchmark runner lives in the source repository's bench/ (not in the published package). */
async function runBench(args: string[]): Promise<number> {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const runner = path.join(root, 'bench', 'run.mjs');
  if (!existsSync(runner))
    throw new TidemarkError(
      'NOT_FOUND',
      `no benchmark runner at ${runner}: the benchmarks live in tidemark's source repository`,
    );
  const child = spawn(process.execPath, [runner, ...args], { cwd: root, stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('a port is an integer from 0 to 65535');
  return n;
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('tidemark')
    .description('A transactional columnar database engine for Node.js')
    .version(packageVersion(), '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError();

  program
    .command('demo')
    .description(
      'open a database, write and read through transactions, print memory pool and WAL figures, close',
    )
    .option('--dir <dir>', 'data directory', './data')
    .action(async (opts: { dir: string }) => {
      await runDemo(opts.dir, (line) => process.stdout.write(line + '\n'));
    });

  program
    .command('serve')
    .description(
      'open a database and serve /metrics (Prometheus), /api/stats, a live dashboard at /, /debug/leaks and /debug/heap until SIGINT or SIGTERM',
    )
    .option('--dir <dir>', 'data directory', './data')
    .option('--port <port>', 'port (0: any free one)', parsePort, 7070)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--demo', 'run a small built-in workload with checkpoints every few seconds')
    .option('--mysql-port <port>', 'the MySQL protocol port (0: any free one)', parsePort, 3306)
    .option('--no-mysql', 'do not serve the MySQL protocol')
    .option('--user <user>', 'the MySQL account (or TIDEMARK_USER); default root')
    .option(
      '--password <password>',
      'its password (or TIDEMARK_PASSWORD); none given: generated once, printed',
    )
    .option('--allow-empty-password', 'allow an account without a password')
    .action(
      async (opts: {
        dir: string;
        port: number;
        host: string;
        demo?: boolean;
        mysql: boolean;
        mysqlPort: number;
        user?: string;
        password?: string;
        allowEmptyPassword?: boolean;
      }) => {
        process.exitCode = await serve(
          {
            dir: opts.dir,
            port: opts.port,
            host: opts.host,
            demo: opts.demo === true,
            ...(opts.mysql ? { mysqlPort: opts.mysqlPort } : {}),
            ...(opts.user !== undefined ? { user: opts.user } : {}),
            ...(opts.password !== undefined ? { password: opts.password } : {}),
            allowEmptyPassword: opts.allowEmptyPassword === true,
          },
          (line) => process.stdout.write(line + '\n'),
        );
      },
    );

  program
    .command('bench')
    .description(
      'run the benchmarks against better-sqlite3, lmdb, classic-level and DuckDB (installed into bench/ on first use) and write docs/benchmarks.md',
    )
    .option('--only <names>', 'only these suites (comma-separated): mem, wal, core, ycsb, ckp, open, objects')
    .option('--quick', 'smaller data, for a smoke run')
    .option('--json <file>', 'also write the results as JSON to this file')
    .action(async (opts: { only?: string; quick?: boolean; json?: string }) => {
      process.exitCode = await runBench([
        ...(opts.only !== undefined ? ['--only', opts.only] : []),
        ...(opts.quick === true ? ['--quick'] : []),
        ...(opts.json !== undefined ? ['--json', path.resolve(opts.json)] : []),
      ]);
    });

  program
    .command('inspect')
    .description(
      'read a database directory without opening it: the checkpoint chain, WAL segments, objects and orphan files',
    )
    .argument('<dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const report = await inspect(dir);
      process.stdout.write(
        (opts.json === true ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n',
      );
    });

  program
    .command('check')
    .description(
      'verify every checksum and reference of a database directory without changing anything (exit 0: clean, 1: problems)',
    )
    .argument('<dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const report = await check(dir);
      process.stdout.write(
        (opts.json === true ? JSON.stringify(report, null, 2) : formatCheck(report)) + '\n',
      );
      process.exitCode = report.clean ? 0 : 1;
    });

  program
    .command('sql')
    .description('run SQL statements (separated by ;) against a database directory and print the results')
    .argument('<dir>', 'data directory (created if missing)')
    .requiredOption('-e, --execute <sql>', 'the SQL to run')
    .addOption(
      new Option('--mode <mode>', 'output format').choices(['table', 'json', 'tsv']).default('table'),
    )
    .action(async (dir: string, opts: { execute: string; mode: OutputMode }) => {
      process.exitCode = await runSql(dir, opts.execute, { mode: opts.mode });
    });

  program
    .command('shell')
    .description(
      'an interactive SQL shell on a database directory (statements end with ;, .help for commands); reads a script from a pipe',
    )
    .argument('<dir>', 'data directory (created if missing)')
    .action(async (dir: string) => {
      process.exitCode = await runShell(dir);
    });

  program
    .command('leakcheck')
    .description(
      'the leak soak: checkpoints, recovery, compaction, GC, flush, merge, abandoned scans, failed checkpoints, busy closes, TidemarkLevel use and SQL in turn, checking memory pools, file handles, files, timers, listeners and the heap after every cycle',
    )
    .option('--cycles <n>', 'cycles to run (default 300)', (v) => positiveInt(v, '--cycles'))
    .option('--minutes <m>', 'run for this many minutes instead', (v) => positiveNumber(v, '--minutes'))
    .option('--warmup <n>', 'cycles before the heap is sampled (default 100)', (v) =>
      positiveInt(v, '--warmup'),
    )
    .option('--dir <dir>', 'data directory (default: a new temporary one, removed afterwards)')
    .option('--plot <file>', 'where to write the plot (SVG)', 'leakcheck.svg')
    .option('--json', 'print the report as JSON')
    .addOption(
      new Option('--plant <kind>', 'plant a kind of leak (the check must fail)').choices([...PLANT_KINDS]),
    )
    .option(
      '--faults [rate]',
      'also fail random reads, writes and fdatasyncs during each cycle (probability per operation, default 0.005)',
      (v) => faultRate(v),
    )
    .option('--seed <n>', 'the seed of --faults (default 1): the same seed fails the same operations', (v) =>
      positiveInt(v, '--seed'),
    )
    .action(async (opts: LeakcheckOptions) => {
      process.exitCode = await leakcheck(opts);
    });

  return program;
}

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
}

function faultRate(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1)
    throw new InvalidArgumentError('--faults must be a probability in (0, 1]');
  return n;
}

function positiveNumber(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    // A command that sets an exit code (leakcheck's verdict) keeps it.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof TidemarkError) {
      process.stderr.write(`tidemark: ${e.code}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
