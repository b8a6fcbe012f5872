#!/usr/bin/env node
// Makes a fresh clone ready: installs the dependencies when node_modules is missing or older than
// package-lock.json, and with --build compiles src/ to dist/ when any source is newer than the last
// build. Uses nothing but Node itself, since it runs before anything is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : mtime(p));
  }
  return t;
}

function run(cmd, args, what) {
  process.stderr.write(`tidemark: ${what}...\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`tidemark: ${what} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status ?? 1);
  }
}

const installed = path.join(root, 'node_modules', '.package-lock.json');
const lock = path.join(root, 'package-lock.json');
if (!existsSync(installed) || mtime(installed) < mtime(lock)) {
  run(
    npm,
    existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'],
    'installing dependencies',
  );
}

if (process.argv.includes('--build')) {
  const stamp = path.join(root, 'dist', '.build-stamp');
  const sources = Math.max(
    newest(path.join(root, 'src')),
    mtime(path.join(root, 'tsconfig.json')),
    mtime(path.join(root, 'tsconfig.build.json')),
    mtime(lock),
  );
  if (mtime(stamp) < sources) {
    run(
      process.execPath,
      [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      'building dist/',
    );
    mkdirSync(path.dirname(stamp), { recursive: true });
    writeFileSync(stamp, new Date().toISOString() + '\n');
  }
}

// What the tests and the benchmarks need beyond npm, each installed by its script when missing.
const TOOLS = [
  // The dashboard test drives a headless Chromium (the Debian package).
  ['--chromium', 'ensure-chromium.sh', 'no chromium: the dashboard test will fail'],
  // A test runs a SQL script through the mariadb command-line client.
  ['--mariadb-client', 'ensure-mariadb-client.sh', 'no mariadb client: its test will fail'],
  // The MySQL protocol benchmark compares against a MariaDB server.
  [
    '--mariadb-server',
    'ensure-mariadb-server.sh',
    'no MariaDB server: the differential SQL test and the mysql benchmark will fail',
  ],
  // The object-storage tests start moto_server (an S3-compatible server) on loopback.
  ['--moto', 'ensure-moto.sh', 'no moto_server: the object-storage tests will fail'],
];
for (const [flag, script, missing] of TOOLS) {
  if (!process.argv.includes(flag)) continue;
  const r = spawnSync('bash', [path.join(root, 'scripts', script)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (r.status !== 0) process.stderr.write(`tidemark: ${missing} (see the message above)\n`);
}
