import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { freePort } from './net.js';
import * as os from 'node:os';
import * as path from 'node:path';
import mysql from 'mysql2/promise';

/**
 * A private MariaDB server for tests that compare tidemark with MySQL's semantics (the differential
 * SQL tests): Debian's mariadbd, started with --no-defaults on a fresh datadir in a temporary
 * directory, listening on 127.0.0.1 at a free port, with its own socket and pid files, so it touches
 * nothing of a system server that may also be running. The database `database` is created, empty;
 * user root, no password.
 *
 * `stop()` SIGTERMs it, waits for it to exit and removes the directory. If the test process ends
 * without calling stop (a crash, a test runner killing its worker with process.exit), an exit hook
 * SIGKILLs the server and removes the directory, so no mariadbd outlives the process that started it.
 */
export interface MariaDb {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** The server's version string (SELECT VERSION()). */
  version: string;
  /**
   * Start the server again on the same data directory and port, after it crashed (a generated query
   * can crash MariaDB) or to start clean; stops it first if it still runs.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface MariaDbOptions {
  /** The database to create (default `tidemark_test`). */
  database?: string;
  /** How long to wait for the server to accept connections (default 60 s). */
  startTimeoutMs?: number;
}

/** Where Debian puts the server; PATH may lack /usr/sbin for a non-root user. */
const SBIN_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'];

function findProgram(names: readonly string[]): string {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== ''), ...SBIN_DIRS];
  for (const name of names)
    for (const dir of dirs) if (existsSync(path.join(dir, name))) return path.join(dir, name);
  throw new Error(
    `no ${names.join(' or ')} on this machine: run scripts/ensure-mariadb-server.sh (Debian's mariadb-server)`,
  );
}

/** The error log is cut back to nothing past this size (see the trim in startMariaDb). */
const ERROR_LOG_LIMIT = 64 << 20;

/** The tail of the server's error log, for a start-up failure's message. */
function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-3000);
  } catch {
    return '(no error log)';
  }
}

/**
 * mariadbd refuses to run as root unless told which user to be; as any other user --user is
 * ignored with a warning, so passing the current user is right in both cases.
 */
const userArg = (): string => `--user=${os.userInfo().username}`;

/** Servers started by this process and not yet stopped: the exit hook's list. */
const live = new Set<{ child: ChildProcess; dir: string }>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // 'exit' handlers must be synchronous: SIGKILL (the server's shutdown would outlive us) and
  // remove the directory at once.
  process.on('exit', () => {
    for (const s of live) {
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
      rmSync(s.dir, { recursive: true, force: true });
    }
  });
}

export async function startMariaDb(options: MariaDbOptions = {}): Promise<MariaDb> {
  const database = options.database ?? 'tidemark_test';
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const mariadbd = findProgram(['mariadbd', 'mysqld']);
  const installDb = findProgram(['mariadb-install-db', 'mysql_install_db']);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-mariadb-'));
  const datadir = path.join(dir, 'data');
  const errorLog = path.join(dir, 'error.log');

  // The system tables, once per server: about a second. --auth-root-authentication-method=normal
  // gives root a password login (empty) over TCP instead of unix_socket authentication.
  const install = spawnSync(
    installDb,
    [
      '--no-defaults',
      `--datadir=${datadir}`,
      userArg(),
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--skip-name-resolve',
    ],
    { encoding: 'utf8', timeout: timeoutMs },
  );
  if (install.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `${installDb} failed (${install.status ?? install.signal}): ${(install.stderr + install.stdout).slice(-3000)}`,
    );
  }

  /** Start mariadbd on `port`; resolves once it accepts connections, or with why it did not. */
  const launch = async (
    port: number,
  ): Promise<{ child: ChildProcess; exited: Promise<void>; version: string } | string> => {
    const child = spawn(
      mariadbd,
      [
        '--no-defaults',
        `--datadir=${datadir}`,
        userArg(),
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--socket=${path.join(dir, 'mariadb.sock')}`,
        `--pid-file=${path.join(dir, 'mariadb.pid')}`,
        `--log-error=${errorLog}`,
        `--tmpdir=${dir}`,
        '--skip-name-resolve',
        // Small and fast: tests hold a few kilobytes of data, and lose nothing worth keeping in a crash.
        '--innodb-buffer-pool-size=32M',
        '--innodb-log-file-size=16M',
        '--innodb-flush-log-at-trx-commit=0',
        '--innodb-doublewrite=0',
        '--skip-log-bin',
        '--performance-schema=OFF',
        '--max-connections=20',
      ],
      { stdio: 'ignore' },
    );
    const entry = { child, dir };
    live.add(entry);
    hookExit();
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    }).then(() => {
      live.delete(entry);
    });
    child.on('error', () => undefined);
    const deadline = Date.now() + timeoutMs;
    let lastError = 'exited at once';
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      try {
        const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '' });
        try {
          await conn.query(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
          const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
          return { child, exited, version: String(rows[0]?.v) };
        } finally {
          await conn.end();
        }
      } catch (e) {
        lastError = String(e);
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    return lastError;
  };

  // A free port can be taken by someone else between freePort() and the server's bind: a server
  // that exits before accepting connections is retried on another port.
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const first = await launch(port);
    if (typeof first === 'string') {
      lastError = first;
      continue;
    }
    let server = first;
    let stopped: Promise<void> | undefined;
    // MariaDB 10.11 has queries (INTERSECT ALL with EXCEPT ALL) that loop, logging "The table
    // '(temporary)' is full" without pause until max_statement_time stops them: gigabytes of
    // error log in 20 seconds. The log is opened for appending, so cutting it back is safe.
    const trim = setInterval(() => {
      try {
        if (statSync(errorLog).size > ERROR_LOG_LIMIT) truncateSync(errorLog, 0);
      } catch {
        // gone with the directory
      }
    }, 5000);
    trim.unref();
    const halt = async (): Promise<void> => {
      const child = server.child;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      // A server busy in a query that never ends (MariaDB has such bugs) may not shut down.
      const kill = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, 5000);
      await server.exited;
      clearTimeout(kill);
    };
    return {
      host: '127.0.0.1',
      port,
      user: 'root',
      password: '',
      database,
      version: first.version,
      async restart() {
        if (stopped !== undefined) throw new Error('mariadbd was stopped');
        await halt();
        const again = await launch(port);
        if (typeof again === 'string')
          throw new Error(`mariadbd did not restart: ${again}\n${logTail(errorLog)}`);
        server = again;
      },
      stop() {
        stopped ??= (async () => {
          clearInterval(trim);
          await halt();
          rmSync(dir, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  }
  const tail = logTail(errorLog);
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`mariadbd did not start: ${lastError}\n${tail}`);
}
