// The two MySQL-protocol servers the benchmarks compare, each in a process of its own on loopback:
// `tidemark serve` and Debian's mariadbd with durable settings (innodb_flush_log_at_trx_commit=1,
// binary log off). Both have the account root / `bench` and a database `tidemark`. Servers still
// running when the process exits (a benchmark that threw) are SIGKILLed, so none outlives it.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { freePort } from './proc.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PASSWORD = 'bench';

/** The settings line of each server, for the results' rows. */
export const SERVER_SETTINGS = {
  tidemark:
    "tidemark serve in its own process (wal.sync 'batch': every commit fdatasynced, shared by group commit), caching_sha2_password",
  mariadb:
    'mariadbd (Debian 10.11) in its own process, InnoDB, innodb_flush_log_at_trx_commit=1 (every commit fsynced), 1 GiB buffer pool, binary log off (so sync_binlog does not apply)',
};

const live = new Set();
let hooked = false;
function track(child) {
  live.add(child);
  child.on('exit', () => live.delete(child));
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
}

async function waitConnect(port, password, child) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password });
      await c.end();
      return;
    } catch (e) {
      if (child.exitCode !== null || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** SIGTERM a server process; resolves once it has exited. */
function stopChild(child) {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    child.on('exit', r);
    child.kill('SIGTERM');
  });
}

/**
 * Start a server: 'tidemark' serves `dir` (created if missing: it may hold a database loaded
 * beforehand); 'mariadb' gets a fresh data directory under `dir`. Resolves with its port, its
 * process id and stop().
 */
export async function startServer(engine, dir) {
  const port = await freePort();
  if (engine === 'tidemark') {
    const child = spawn(
      process.execPath,
      [
        path.join(root, 'bin', 'tidemark.js'),
        'serve',
        '--dir',
        dir,
        '--port',
        '0',
        '--mysql-port',
        String(port),
        '--password',
        PASSWORD,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    track(child);
    await waitConnect(port, PASSWORD, child);
    return { port, pid: child.pid, stop: () => stopChild(child) };
  }
  const base = mkdtempSync(path.join(dir, 'mariadb-'));
  const data = path.join(base, 'data');
  await new Promise((resolve, reject) => {
    const c = spawn(
      'mariadb-install-db',
      [
        '--no-defaults',
        `--datadir=${data}`,
        `--user=${os.userInfo().username}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ],
      { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/usr/bin` } },
    );
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mariadb-install-db exited ${code}`))));
  });
  const child = spawn(
    '/usr/sbin/mariadbd',
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--user=${os.userInfo().username}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${path.join(base, 'mariadb.sock')}`,
      `--pid-file=${path.join(base, 'mariadb.pid')}`,
      `--log-error=${path.join(base, 'error.log')}`,
      `--tmpdir=${base}`,
      '--innodb-flush-log-at-trx-commit=1',
      '--innodb-buffer-pool-size=1G',
      '--skip-name-resolve',
      '--max-connections=200',
    ],
    { stdio: 'ignore' },
  );
  track(child);
  await waitConnect(port, '', child);
  const admin = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '' });
  await admin.query(`SET PASSWORD = PASSWORD('${PASSWORD}')`);
  await admin.query('CREATE DATABASE tidemark');
  await admin.end();
  return {
    port,
    pid: child.pid,
    stop: async () => {
      await stopChild(child);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** A process's peak resident memory (VmHWM), in MiB; null once it is gone. */
export function peakRssMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Math.round(Number(m[1]) / 1024);
  } catch {
    return null;
  }
}
