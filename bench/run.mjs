#!/usr/bin/env node
// The benchmark runner: `npm run bench [-- --only NAME] [--quick] [--json FILE]`.
// Every suite runs in its own child process; each prints JSON lines of results. The runner prints a
// progress line per suite, then writes the tables into docs/benchmarks.md (between the suite's
// markers) and the raw results to bench/results/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fdatasyncRate, machine } from './lib/machine.mjs';
import { runJsonLines } from './lib/proc.mjs';
import { SUITES } from './suites.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const only = arg('--only');
const quick = process.argv.includes('--quick');
const jsonOut = arg('--json');

const selected = SUITES.filter(
  (s) => only === undefined || s.name === only || only.split(',').includes(s.name),
);
if (selected.length === 0) {
  process.stderr.write(`no suite named ${only}; suites: ${SUITES.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}

// Peer engines live in bench/package.json, installed here on first use: never by npm ci or npm test.
const peerDeps = Object.keys(JSON.parse(readFileSync(path.join(here, 'package.json'), 'utf8')).dependencies);
const missing = peerDeps.filter((d) => !existsSync(path.join(here, 'node_modules', d, 'package.json')));
if (selected.some((s) => s.peers) && missing.length > 0) {
  process.stderr.write(
    `bench: installing peer engines in bench/ (missing: ${missing.join(', ')}; better-sqlite3 builds from source: a few minutes)...\n`,
  );
  const lock = existsSync(path.join(here, 'package-lock.json'));
  const r = spawnSync('npm', [lock ? 'ci' : 'install', '--no-audit', '--no-fund'], {
    cwd: here,
    stdio: 'inherit',
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const runSuite = (suite) =>
  runJsonLines(path.join(here, 'suites', suite.script), quick ? ['--quick'] : [], (r) =>
    process.stderr.write(`  ${suite.name}: ${r.name} ... done\n`),
  );

const info = machine();
process.stderr.write(`bench: measuring this disk's fdatasync rate...\n`);
info.fdatasync = fdatasyncRate();
process.stderr.write(
  `bench: ${info.cores} cores, ${info.memoryGiB} GiB, fdatasync ${info.fdatasync.perSecond}/s (p50 ${info.fdatasync.p50Ms.toFixed(2)} ms)\n`,
);

const all = {};
for (const [i, suite] of selected.entries()) {
  process.stderr.write(`bench [${i + 1}/${selected.length}] ${suite.name}: ${suite.title}\n`);
  all[suite.name] = await runSuite(suite);
}

const report = { machine: info, quick, suites: all };
mkdirSync(path.join(here, 'results'), { recursive: true });
const stamp = info.date.replace(/[:.]/g, '-');
writeFileSync(path.join(here, 'results', `${stamp}.json`), JSON.stringify(report, null, 2));
if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify(report, null, 2));

// Update docs/benchmarks.md: each suite owns the text between its markers.
const docPath = path.join(root, 'docs', 'benchmarks.md');
let doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '# Benchmarks\n';
const machineLine = `Measured ${info.date.slice(0, 10)} on ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, Node ${info.node}; this disk's fdatasync: ${info.fdatasync.perSecond}/s (p50 ${info.fdatasync.p50Ms.toFixed(2)} ms, p99 ${info.fdatasync.p99Ms.toFixed(2)} ms)${quick ? '; --quick run' : ''}.`;
for (const suite of selected) {
  const body = `${machineLine}\n\n${suite.table(all[suite.name])}\n`;
  const start = `<!-- bench:${suite.name}:start -->`;
  const end = `<!-- bench:${suite.name}:end -->`;
  const block = `${start}\n${body}${end}`;
  if (doc.includes(start) && doc.includes(end)) {
    doc = doc.slice(0, doc.indexOf(start)) + block + doc.slice(doc.indexOf(end) + end.length);
  } else {
    doc += `\n## ${suite.title}\n\n${block}\n`;
  }
}
writeFileSync(docPath, doc);
process.stderr.write(`bench: results in bench/results/${stamp}.json; tables written to docs/benchmarks.md\n`);
for (const suite of selected)
  process.stdout.write(`\n## ${suite.title}\n\n${suite.table(all[suite.name])}\n`);
