import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDb, type MariaDb } from '../helpers/mariadb.js';
import { formatMismatch, formatSummary, runCampaign, type CampaignStats } from './differential/campaign.js';
import { describeFeatures, parseFeatures } from './differential/features.js';
import type { Expr, Query, Select } from './differential/ast.js';
import { renderQuery } from './differential/ast.js';
import { MariaDbEngine, TidemarkEngine } from './differential/engines.js';
import type { Schema } from './differential/generator.js';
import { schemaStatements } from './differential/generator.js';
import type { Engines, OracleName, Verdict } from './differential/oracles.js';
import { checkCase, outerOnlySubqueries, rowsQuery } from './differential/oracles.js';

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

  // First, on a fresh server: the rechecks' hand-built cases.
  describe("rechecks tell MariaDB's own bugs and issue 23's DECIMALs apart, and hide no wrong answer", () => {
    // Hand-built cases (the generator's tree), each a reduced mismatch a long run found.
    const lit = (text: string, t: 'int' | 'double' | 'string' | 'null' = 'int'): Expr => ({
      k: 'lit',
      t,
      text,
    });
    const col = (alias: string, name: string): Expr => ({ k: 'col', alias, name, t: 'int', qualified: true });
    const sel = (items: [Expr, string][], table: string | undefined, more: Partial<Select> = {}): Select => ({
      k: 'select',
      quant: undefined,
      items: items.map(([e, alias]) => ({ e, alias })),
      from: table === undefined ? [] : [{ k: 'table', name: table, alias: table, as: false }],
      where: undefined,
      groupBy: [],
      having: undefined,
      orderBy: [],
      limit: undefined,
      ...more,
    });
    const setop = (
      op: 'UNION' | 'INTERSECT' | 'EXCEPT',
      quant: 'ALL' | undefined,
      l: Query,
      r: Query,
    ): Query => ({
      k: 'setop',
      op,
      quant,
      l,
      r,
      lParens: false,
      rParens: false,
      orderBy: [],
      limit: undefined,
    });
    const schema: Schema = {
      tables: [
        {
          name: 't0',
          columns: [
            { name: 'c0', type: 'INT', length: 0, nullable: false },
            { name: 'c1', type: 'BIGINT', length: 0, nullable: true },
          ],
          primaryKey: ['c0'],
          rows: [
            ['3', '12'],
            ['7', '3'],
            ['0', '3'],
            ['1', '3'],
          ],
        },
        {
          name: 't3',
          columns: [{ name: 'c0', type: 'INT', length: 0, nullable: false }],
          primaryKey: [],
          rows: [['2147483647']],
        },
        {
          name: 't2',
          columns: [{ name: 'c0', type: 'VARCHAR', length: 20, nullable: false }],
          primaryKey: ['c0'],
          rows: [["' 3'"], ["'é'"]],
        },
        {
          name: 't1',
          columns: [
            { name: 'c0', type: 'INT', length: 0, nullable: true },
            { name: 'c1', type: 'BIGINT', length: 0, nullable: false },
          ],
          primaryKey: ['c1'],
          rows: [
            ['7', '1'],
            ['NULL', '-2'],
            ['NULL', '12'],
          ],
        },
      ],
    };
    const engines = { statements: { tidemark: 0, mariadb: 0 } } as Engines;
    beforeAll(async () => {
      engines.tidemark = new TidemarkEngine();
      engines.mariadb = await MariaDbEngine.connect(server!);
      const names = schema.tables.map((t) => t.name);
      await engines.tidemark.load(schemaStatements(schema), names);
      await engines.mariadb.load(schemaStatements(schema), names);
    });
    afterAll(async () => {
      expect(await engines.tidemark?.close()).toBeUndefined();
      await engines.mariadb?.close();
    });
    // A wrong value well outside the comparison's tolerance for doubles (relative 1e-9).
    const bumped = (v: unknown): number => Number(v) + 1 + Math.abs(Number(v)) * 1e-6;
    const check = async (query: Query, bump = false): Promise<Verdict> => {
      engines.tamper = bump
        ? (_o, _sql, rows) =>
            rows.length > 0 ? [[bumped(rows[0]![0]), ...rows[0]!.slice(1)], ...rows.slice(1)] : rows
        : undefined;
      return checkCase({ oracle: 'differential', schema, query }, engines);
    };

    // AVG of integers is a DECIMAL in MySQL (3.0000, 4 more decimals): in a UNION with a string it
    // is text, '3.0000' and '3' two rows, here too.
    const avgUnion = setop(
      'UNION',
      undefined,
      sel([[{ k: 'agg', name: 'AVG', quant: undefined, arg: col('t0', 'c0') }, 'v']], 't0', {
        groupBy: [col('t0', 'c1')],
      }),
      sel([[{ k: 'fn', name: 'LOWER', args: [lit('3')] }, 'v']], 't0'),
    );

    it('a DECIMAL written with another scale is a type-only difference; a wrong answer is not', async () => {
      // AVG is an exact DECIMAL now (issue 23): MySQL's 4 digits (2.6667) where MariaDB writes 9
      // in a set operation with a string branch (2.666666666): the same value, another text.
      const v = await check(avgUnion);
      expect(v.status, JSON.stringify(v)).toBe('pass');
      const wrong = await check(avgUnion, true);
      expect(wrong.status, JSON.stringify(wrong)).toBe('mismatch');
    });

    // MariaDB 10.11's SELECT DISTINCT over GROUP BY keeps both groups' equal rows; inside a set
    // operation's branch too (EXCEPT ALL then keeps two rows of -2 where there is one).
    const distinctBranch = setop(
      'EXCEPT',
      'ALL',
      sel([[{ k: 'agg', name: 'AVG', quant: undefined, arg: lit('-2') }, 'v2']], 't1', {
        quant: 'DISTINCT',
        groupBy: [col('t1', 'c0')],
      }),
      sel([[lit('NULL', 'null'), 'v6']], 't0'),
    );

    it("MariaDB's DISTINCT over GROUP BY in a set operation's branch", async () => {
      const v = await check(distinctBranch);
      // Deferred on MariaDB 10.11, which has the bug; a release without it passes.
      expect(v.status, JSON.stringify(v)).not.toBe('mismatch');
      expect((await check(distinctBranch, true)).status).toBe('mismatch');
    });

    // MariaDB 10.11's INTERSECT with UNION ALL and EXCEPT ALL in a derived table: rows it should
    // not keep. The derived table is replaced by its rows, combined from its branches.
    const nested: Query = sel([[lit('2.5e0', 'double'), 'v40']], undefined, {
      from: [
        {
          k: 'derived',
          alias: 'd16',
          q: setop(
            'EXCEPT',
            'ALL',
            setop(
              'UNION',
              'ALL',
              setop(
                'INTERSECT',
                undefined,
                sel([[lit('1'), 'v18']], 't1'),
                sel([[lit('NULL', 'null'), 'v22']], 't0'),
              ),
              sel([[lit('NULL', 'null'), 'v27']], 't1'),
            ),
            sel([[lit("'a'", 'string'), 'v32']], 't1'),
          ),
        },
      ],
    });

    it('nested set operations are combined from their branches', async () => {
      const v = await check(nested);
      // Deferred on MariaDB 10.11, which has the bug; a release without it passes.
      expect(v.status, JSON.stringify(v)).not.toBe('mismatch');
      expect((await check(nested, true)).status).toBe('mismatch');
    });

    // MariaDB 10.11's subquery cache answers an IN inside a CASE of a grouped query from another
    // group's entry: ' 3' IN (SELECT 0 ...) comes out true (the same IN alone says false).
    const cachedIn: Query = sel(
      [
        [
          {
            k: 'case',
            operand: undefined,
            whens: [
              {
                when: { k: 'agg', name: 'COUNT', quant: 'DISTINCT', arg: lit('NULL', 'null') },
                then: lit('1.25e1', 'double'),
              },
              {
                when: { k: 'inSub', e: col('t2', 'c0'), not: false, q: sel([[lit('0'), 'x0']], 't1') },
                then: lit('0'),
              },
            ],
            else: undefined,
          },
          'v',
        ],
      ],
      't2',
      { groupBy: [col('t2', 'c0')] },
    );

    it("MariaDB's answers that change with its optimizer switches, or with IN written as EXISTS", async () => {
      const v = await check(cachedIn);
      expect(v.status, JSON.stringify(v)).not.toBe('mismatch');
      expect((await check(cachedIn, true)).status).toBe('mismatch');
      // The same subquery as EXISTS and =, which the recheck runs when the switches do not help.
      expect(renderQuery(outerOnlySubqueries(cachedIn)!)).toBe(
        'SELECT CASE WHEN COUNT(DISTINCT NULL) THEN 1.25e1 WHEN (CASE WHEN EXISTS (SELECT 1 FROM t1) THEN (t2.c0) = (0) ELSE 0 END) THEN 0 END AS v FROM t2 GROUP BY t2.c0',
      );
      // A subquery reading its own rows is left alone.
      expect(outerOnlySubqueries(sel([[col('t1', 'c0'), 'v']], 't1'))).toBeUndefined();
    });

    // MariaDB 10.11's SELECT DISTINCT over GROUP BY in a derived table keeps equal rows.
    const distinctDerived: Query = sel([[lit('NULL', 'null'), 'x3']], undefined, {
      from: [
        {
          k: 'derived',
          alias: 'd0',
          q: sel([[{ k: 'agg', name: 'AVG', quant: undefined, arg: lit('1') }, 'v3']], 't0', {
            quant: 'DISTINCT',
            groupBy: [col('t0', 'c1')],
          }),
        },
      ],
    });

    it('a nested SELECT DISTINCT is computed from its rows without DISTINCT', async () => {
      const v = await check(distinctDerived);
      expect(v.status, JSON.stringify(v)).not.toBe('mismatch');
      expect((await check(distinctDerived, true)).status).toBe('mismatch');
    });

    // Integers past 2^53: 2147483647 * 2147483647 MOD 2147483647 is 0 exactly, 2147483646 in doubles.
    const bigProduct: Query = sel(
      [
        [
          {
            k: 'arith',
            op: 'MOD',
            l: { k: 'arith', op: '*', l: col('t3', 'c0'), r: col('t3', 'c0') },
            r: col('t3', 'c0'),
          },
          'v',
        ],
      ],
      't3',
    );

    it('integer arithmetic past 2^53 is exact (issue 23): it agrees with MariaDB without a rewrite', async () => {
      const v = await check(bigProduct);
      expect(v.status, JSON.stringify(v)).toBe('pass');
      expect((await check(bigProduct, true)).status).toBe('mismatch');
    });

    it('rows as a query of literals, typed as they came', () => {
      const q = rowsQuery(
        [
          [{ n: 1, exact: 1n, decimals: 0, kind: 'int' }, { s: "it's" }],
          [null, { n: 0.5, exact: undefined, decimals: undefined, kind: 'double' }],
        ],
        ['a', 'b'],
      );
      expect(renderQuery(q)).toBe("SELECT 1 AS a, 'it''s' AS b UNION ALL SELECT NULL AS a, 0.5e0 AS b");
      expect(renderQuery(rowsQuery([], ['a']))).toBe('SELECT NULL AS a WHERE 0');
    });
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
