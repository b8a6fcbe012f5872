import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDb, type MariaDb } from '../helpers/mariadb.js';
import { formatMismatch, formatSummary, runCampaign, type CampaignStats } from './differential/campaign.js';
import { describeFeatures, parseFeatures } from './differential/features.js';
import type { OracleName } from './differential/oracles.js';

/**
 * Differential SQL testing (test/sql/differential/): generated schemas, data and queries run on
 * tidemark and on a private MariaDB (MySQL's semantics), and checked on tidemark alone by TLP and
 * NoREC. Every mismatch is reduced and printed with its seed, schema, data and query.
 *
 * A bounded run with fixed seeds by default. Variables:
 * - TIDEMARK_DIFF_FEATURES: restrict (or widen) what is generated, e.g. `-intersect,-bitOps`
 *   (features.ts lists them); by default every feature MySQL's grammar has, so queries tidemark
 *   rejects as unsupported fail this test as mismatches do;
 * - TIDEMARK_DIFF_QUERIES: a long run of that many queries in all (half differential, a quarter
 *   each TLP and NoREC), TIDEMARK_DIFF_SEED its seed. scripts/difftest.mts does the same with
 *   progress output and a JSON-lines file of mismatches (npm run difftest).
 */

const env = process.env;
const features = parseFeatures(env.TIDEMARK_DIFF_FEATURES);
const long = env.TIDEMARK_DIFF_QUERIES !== undefined;
const seed = Number(env.TIDEMARK_DIFF_SEED ?? 20_251_207);

/** The bounded run: sized to take about a minute on a 2-core machine with MariaDB's start-up. */
const BOUNDED: Record<OracleName, number> = { differential: 2000, tlp: 1000, norec: 1000 };

function counts(): Record<OracleName, number> {
  if (!long) return BOUNDED;
  const total = Number(env.TIDEMARK_DIFF_QUERIES);
  if (!Number.isSafeInteger(total) || total <= 0)
    throw new Error(`bad TIDEMARK_DIFF_QUERIES ${env.TIDEMARK_DIFF_QUERIES}`);
  return { differential: Math.round(total / 2), tlp: Math.round(total / 4), norec: Math.round(total / 4) };
}

/** Why a run failed, for the assertion message: every mismatch (reduced), then what was unsupported. */
function failureText(s: CampaignStats): string {
  const parts: string[] = [];
  const shown = s.mismatches.slice(0, 20);
  for (const m of shown) parts.push(formatMismatch(m));
  if (s.mismatches.length > shown.length)
    parts.push(`... and ${s.mismatches.length - shown.length} more mismatches`);
  const unsupported =
    s.outcomes.differential.unsupported + s.outcomes.tlp.unsupported + s.outcomes.norec.unsupported;
  if (unsupported > 0) {
    parts.push(
      `${unsupported} queries used constructs tidemark rejects as unsupported (see the summary above); ` +
        `to test only what it accepts, restrict the features, e.g. TIDEMARK_DIFF_FEATURES=-intersect,-except`,
    );
  }
  return parts.join('\n\n');
}

describe('differential SQL testing against MariaDB, TLP and NoREC', () => {
  let server: MariaDb | undefined;
  beforeAll(async () => {
    server = await startMariaDb({ database: 'difftest' });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it(
    `generated queries agree (features: ${describeFeatures(features)})`,
    async () => {
      const stats = await runCampaign({
        seed,
        features,
        counts: counts(),
        mariadb: server,
        // Bounded: a run with many mismatches (or unsupported queries) still ends in time; the
        // first few are reduced, the rest printed as found.
        reduce: long
          ? { max: 200, checks: 2000, ms: 30_000 }
          : {
              max: 6,
              checks: 600,
              ms: 5_000,
              unsupportedMax: 8,
              unsupportedChecks: 150,
              unsupportedMs: 2_000,
            },
        progressEveryMs: long ? 10_000 : undefined,
        onProgress: (s) => process.stderr.write(formatSummary(s).split('\n')[0] + '\n'),
      });
      process.stdout.write(formatSummary(stats) + '\n');
      const failed =
        stats.mismatches.length > 0 || Object.values(stats.outcomes).some((o) => o.unsupported > 0);
      if (failed) expect.fail(failureText(stats));
      // The run must have checked something: every oracle ran its count.
      expect(stats.checks).toEqual(counts());
    },
    long ? 24 * 3600_000 : 150_000,
  );

  it('goes red on a planted wrong answer, with a reduced reproduction', async () => {
    // Alters one value of tidemark's results, as a wrong answer would, for each oracle: the first
    // cell of a differential result, the COUNT(*) of NoREC, a row of TLP's NOT partition.
    const stats = await runCampaign({
      seed: 7,
      features: parseFeatures('none'),
      counts: { differential: 40, tlp: 40, norec: 40 },
      mariadb: server,
      reduce: { max: 3, checks: 300, ms: 5_000, unsupportedMax: 0 },
      tamper: (oracle, sql, rows) => {
        if (oracle === 'differential' && rows.length > 0) {
          const v = rows[0]![0];
          const bumped = typeof v === 'number' ? v + 1 : typeof v === 'string' ? `${v}!` : 0;
          return [[bumped, ...rows[0]!.slice(1)], ...rows.slice(1)];
        }
        if (oracle === 'norec' && sql.startsWith('SELECT COUNT(*)')) return [[Number(rows[0]![0]) + 1]];
        if (oracle === 'tlp' && / WHERE NOT \(/.test(sql) && rows.length > 0) return rows.slice(1);
        return rows;
      },
    });
    const byOracle = (o: OracleName) =>
      stats.mismatches.filter((m) => m.oracle === o && m.kind === 'wrongResult');
    expect(byOracle('differential').length).toBeGreaterThan(0);
    expect(byOracle('norec').length).toBeGreaterThan(0);
    expect(byOracle('tlp').length).toBeGreaterThan(0);
    const first = stats.mismatches.find((m) => m.reduced)!;
    expect(first).toBeDefined();
    // Reduced: no longer than the original, and still a reproduction (schema and queries).
    expect(first.queries.join(' ').length).toBeLessThanOrEqual(first.original.queries.join(' ').length);
    expect(first.queries.length).toBeGreaterThan(0);
    expect(formatMismatch(first)).toContain(`seed 7, case ${first.caseIndex}`);
  }, 120_000);
});
