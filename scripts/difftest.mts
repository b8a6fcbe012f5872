// Long runs of the differential SQL harness (test/sql/differential/): tidemark against a private
// MariaDB, and TLP and NoREC on tidemark alone. Prints progress every few seconds and writes every
// reduced mismatch to a JSON-lines file.
//
//   npx tsx scripts/difftest.mts --queries 1000000 [--seed N] [--features -xor,-bitOps] [--out FILE]
//   npm run difftest -- --queries 100000
//   npx tsx scripts/difftest.mts --probe              # which features tidemark rejects today
//   npx tsx scripts/difftest.mts --replay SEED:CASE:QUERY:ORACLE [--features ...]
//   npx tsx scripts/difftest.mts --recheck FILE.jsonl [--features ...]   # verdicts today
//
// Environment variables stand in for the options: TIDEMARK_DIFF_QUERIES, TIDEMARK_DIFF_SEED,
// TIDEMARK_DIFF_FEATURES, TIDEMARK_DIFF_ORACLES (comma list of differential, tlp, norec).
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { startMariaDb, type MariaDb } from '../test/helpers/mariadb.js';
import {
  appendJsonLine,
  formatMismatch,
  formatProgress,
  formatSummary,
  recheckMismatches,
  replayCase,
  runCampaign,
  type CampaignStats,
  type MismatchReport,
} from '../test/sql/differential/campaign.js';
import {
  ALL_FEATURES,
  describeFeatures,
  parseFeatures,
  type Feature,
} from '../test/sql/differential/features.js';
import { ORACLES, caseQueries, type OracleName } from '../test/sql/differential/oracles.js';
import { schemaStatements } from '../test/sql/differential/generator.js';

const { values } = parseArgs({
  options: {
    queries: { type: 'string' },
    seed: { type: 'string' },
    features: { type: 'string' },
    oracles: { type: 'string' },
    out: { type: 'string' },
    'per-case': { type: 'string' },
    'progress-seconds': { type: 'string', default: '5' },
    'time-limit-seconds': { type: 'string' },
    probe: { type: 'boolean', default: false },
    'probe-queries': { type: 'string', default: '300' },
    replay: { type: 'string' },
    recheck: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    [
      'usage: npx tsx scripts/difftest.mts [options]',
      '  --queries N            checks in all (default TIDEMARK_DIFF_QUERIES or 10000): half differential, a quarter each TLP and NoREC',
      '  --seed N               (default TIDEMARK_DIFF_SEED or the time)',
      '  --features LIST        e.g. -xor,-bitOps or union,xor (exactly these); default TIDEMARK_DIFF_FEATURES or all defaults',
      `                         known: ${ALL_FEATURES.join(', ')}`,
      '  --oracles LIST         differential,tlp,norec (default all)',
      '  --out FILE             JSON lines of reduced mismatches (default test-artifacts/difftest-SEED.jsonl)',
      '  --per-case N           queries per generated schema (default 40)',
      '  --time-limit-seconds N stop starting new schemas after N seconds',
      '  --probe                per feature: the share of queries using it that tidemark rejects',
      '  --replay S:C:Q:ORACLE  print one generated case (schema and queries)',
      '  --recheck FILE         check the mismatches a run wrote (JSON lines) again, each from its seed',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const env = process.env;
const features = parseFeatures(values.features ?? env.TIDEMARK_DIFF_FEATURES);
const seed = Number(values.seed ?? env.TIDEMARK_DIFF_SEED ?? Date.now() % 2 ** 31);
if (!Number.isSafeInteger(seed)) throw new Error(`bad seed ${String(values.seed ?? env.TIDEMARK_DIFF_SEED)}`);
const oracleList = (values.oracles ?? env.TIDEMARK_DIFF_ORACLES ?? ORACLES.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '');
for (const o of oracleList)
  if (!(ORACLES as readonly string[]).includes(o)) throw new Error(`unknown oracle ${o}`);
const oracles = new Set(oracleList as OracleName[]);

if (values.replay !== undefined) {
  const [s, c, q, o] = values.replay.split(':');
  const oracle = (o ?? 'differential') as OracleName;
  const kase = replayCase(Number(s), Number(c), Number(q), oracle, features);
  for (const st of schemaStatements(kase.schema)) process.stdout.write(`${st};\n`);
  for (const st of caseQueries(kase)) process.stdout.write(`${st};\n`);
  process.exit(0);
}

/** Splits a total over the chosen oracles: differential twice the weight of the others. */
function split(total: number): Record<OracleName, number> {
  const weight: Record<OracleName, number> = { differential: 2, tlp: 1, norec: 1 };
  const sum = [...oracles].reduce((a, o) => a + weight[o], 0);
  const out: Record<OracleName, number> = { differential: 0, tlp: 0, norec: 0 };
  for (const o of oracles) out[o] = Math.round((total * weight[o]) / sum);
  return out;
}

let server: MariaDb | undefined;
const stopServer = async (): Promise<void> => {
  await server?.stop();
  server = undefined;
};
// Ctrl-C: stop the server (the exit hook would SIGKILL it; a clean stop is quicker to restart).
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: stopping MariaDB\n`);
    void stopServer().finally(() => process.exit(130));
  });
}

/** The features a feature needs to be generated at all (HAVING needs GROUP BY, ...). */
const NEEDS: Partial<Record<Feature, Feature[]>> = {
  having: ['groupBy', 'aggregates'],
  aggregateDistinct: ['aggregates'],
  aggregateAll: ['aggregates'],
  correlated: ['scalarSubquery', 'exists', 'inSubquery'],
  setOpParens: ['union', 'unionAll'],
};

try {
  if (oracles.has('differential') || values.probe || values.recheck !== undefined) {
    const t0 = Date.now();
    server = await startMariaDb({ database: 'difftest' });
    process.stderr.write(
      `MariaDB ${server.version} on port ${server.port}, started in ${Date.now() - t0} ms\n`,
    );
  }
  if (values.recheck !== undefined) {
    const reports = readFileSync(values.recheck, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as MismatchReport)
      .filter((r) => r.queryIndex >= 0);
    const verdicts = await recheckMismatches(reports, features, server);
    const tally = new Map<string, number>();
    reports.forEach((r, i) => {
      const v = verdicts[i]!;
      const what =
        v.status === 'mismatch'
          ? `mismatch ${v.kind}: ${v.detail}`
          : `${v.status}${'detail' in v ? `: ${v.detail}` : ''}`;
      const key = v.status === 'mismatch' ? 'mismatch' : what;
      tally.set(key, (tally.get(key) ?? 0) + 1);
      process.stdout.write(`${r.oracle} seed ${r.seed} case ${r.caseIndex} query ${r.queryIndex}: ${what}\n`);
    });
    process.stdout.write(`\n${reports.length} rechecked:\n`);
    for (const [k, n] of [...tally].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${n}  ${k}\n`);
    process.exitCode = (tally.get('mismatch') ?? 0) > 0 ? 1 : 0;
  } else if (values.probe) {
    // Each feature alone on top of the core: which ones tidemark rejects, and how often.
    const n = Number(values['probe-queries']);
    const rows: string[] = [];
    for (const f of ['none', ...ALL_FEATURES] as const) {
      const set = new Set<Feature>(f === 'none' ? [] : [f, ...(NEEDS[f] ?? [])]);
      const stats = await runCampaign({
        seed,
        features: set,
        counts: { differential: n, tlp: 0, norec: 0 },
        perCase: 20,
        mariadb: server,
        reduce: { max: 3, checks: 400, ms: 15_000, unsupportedPerSignature: 1, unsupportedMax: 3 },
      });
      const c = stats.features.get(f as Feature);
      const o = stats.outcomes.differential;
      const used = f === 'none' ? stats.checks.differential : (c?.used ?? 0);
      const blocked = f === 'none' ? o.unsupported : (c?.unsupported ?? 0);
      const examples = [...stats.blocked.values()].map(
        (b) => `${b.signature} e.g. ${b.examples[0]?.queries[0] ?? ''}`,
      );
      rows.push(
        `${f.padEnd(18)} used by ${String(used).padStart(4)}, unsupported ${String(blocked).padStart(4)} (${used === 0 ? '-' : Math.round((100 * blocked) / used)}%), mismatches ${o.mismatch}${examples.length > 0 ? `\n${examples.map((e) => `    ${e}`).join('\n')}` : ''}`,
      );
      process.stdout.write(rows[rows.length - 1] + '\n');
      for (const m of stats.mismatches) process.stdout.write(formatMismatch(m).replace(/^/gm, '    ') + '\n');
    }
  } else {
    const total = Number(values.queries ?? env.TIDEMARK_DIFF_QUERIES ?? 10_000);
    const out = path.resolve(values.out ?? `test-artifacts/difftest-${seed}.jsonl`);
    mkdirSync(path.dirname(out), { recursive: true });
    process.stderr.write(
      `seed ${seed}, ${total} queries over ${[...oracles].join(', ')}, features ${describeFeatures(features)}; mismatches to ${out}\n`,
    );
    const stats: CampaignStats = await runCampaign({
      seed,
      features,
      counts: split(total),
      perCase: values['per-case'] === undefined ? undefined : Number(values['per-case']),
      mariadb: oracles.has('differential') ? server : undefined,
      progressEveryMs: Number(values['progress-seconds']) * 1000,
      timeLimitMs:
        values['time-limit-seconds'] === undefined ? undefined : Number(values['time-limit-seconds']) * 1000,
      onProgress: (s) => process.stderr.write(formatProgress(s) + '\n'),
      onMismatch: (m) => {
        appendJsonLine(out, m);
        process.stdout.write(formatMismatch(m) + '\n\n');
      },
    });
    process.stdout.write(formatSummary(stats) + '\n');
    process.exitCode = stats.mismatches.length > 0 ? 1 : 0;
  }
} finally {
  await stopServer();
}
