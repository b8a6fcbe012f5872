import { appendFileSync } from 'node:fs';
import type { Engine, MariaDbAddress } from './engines.js';
import { MariaDbEngine, TidemarkEngine } from './engines.js';
import type { Feature } from './features.js';
import { describeFeatures } from './features.js';
import type { Schema } from './generator.js';
import { QueryGenerator, generateSchema, schemaStatements } from './generator.js';
import type { Engines, MismatchKind, OracleCase, OracleName, Tamper, Verdict } from './oracles.js';
import { ORACLES, caseFeatures, caseQueries, caseVariants, checkCase, generateCase } from './oracles.js';
import { Rng, deriveSeed } from './random.js';
import { reduce } from './reduce.js';

/**
 * A run of the oracles: schemas generated one after another (a case), each loaded into both
 * engines, then queries generated against it and checked, each oracle up to its count. Mismatches
 * are reduced and reported; queries tidemark cannot parse or plan yet are counted apart
 * ('unsupported'), a few of each kind reduced to show which construct it is. Shared by the bounded
 * test (test/sql/differential.test.ts) and the long-run script (scripts/difftest.mts).
 */

export interface CampaignOptions {
  seed: number;
  features: ReadonlySet<Feature>;
  /** Checks to run per oracle (a differential check is one query on each engine; TLP 4, NoREC 2 on tidemark). */
  counts: Record<OracleName, number>;
  /** Queries generated per schema (default 40). */
  perCase?: number;
  /** The server for the differential oracle; without it, its count must be 0. */
  mariadb?: MariaDbAddress;
  reduce?: {
    /** Mismatches reduced (the rest are reported as found). Default: all. */
    max?: number;
    checks?: number;
    ms?: number;
    /** Unsupported queries reduced per kind of error (to name the construct), default 2. */
    unsupportedPerSignature?: number;
    /** At most this many unsupported reductions in all (default 40). */
    unsupportedMax?: number;
    /** Budget of one unsupported reduction (default 300 checks, 10 s). */
    unsupportedChecks?: number;
    unsupportedMs?: number;
  };
  progressEveryMs?: number;
  onProgress?: (s: CampaignStats) => void;
  /** Told of each mismatch once it is reduced (the script writes it to a JSON-lines file). */
  onMismatch?: (r: MismatchReport) => void;
  /** Stop starting new cases after this long. */
  timeLimitMs?: number;
  /** For the harness's own test: alters tidemark's rows before they are compared. */
  tamper?: Tamper;
}

export interface MismatchReport {
  oracle: OracleName;
  kind: MismatchKind;
  /** Regenerate with: seed, case, query and the feature set (scripts/difftest.mts --replay). */
  seed: number;
  caseIndex: number;
  queryIndex: number;
  featureSet: string;
  /** The features the reduced case uses. */
  uses: Feature[];
  detail: string;
  tidemark: string;
  /** MariaDB's result (differential) or the other side of the single-engine comparison. */
  reference: string;
  /** The reduced schema and data, then the reduced queries. */
  schema: string[];
  queries: string[];
  original: { schema: string[]; queries: string[] };
  reduced: boolean;
  reductionChecks: number;
}

export interface BlockedKind {
  signature: string;
  count: number;
  /** Reduced examples: the smallest queries still rejected (MariaDB accepting them). */
  examples: { queries: string[]; uses: Feature[] }[];
}

export type Status = Verdict['status'];

export interface FeatureCount {
  used: number;
  pass: number;
  unsupported: number;
  mismatch: number;
}

export interface CampaignStats {
  seed: number;
  featureSet: string;
  startedAt: number;
  elapsedMs: number;
  cases: number;
  /** Checks done per oracle. */
  checks: Record<OracleName, number>;
  statements: { tidemark: number; mariadb: number };
  outcomes: Record<OracleName, Record<Status, number>>;
  /** Cells equal in value, number against text (MySQL's string-typed CASE/IF/UNION of mixed types). */
  typeOnly: number;
  typeOnlyExample: string | undefined;
  mismatches: MismatchReport[];
  blocked: Map<string, BlockedKind>;
  /** Queries that failed, by error codes (tidemark's / MariaDB's errno), with the first example. */
  bothErrors: Map<string, { count: number; example: string }>;
  features: Map<Feature, FeatureCount>;
}

const zero = (): Record<Status, number> => ({
  pass: 0,
  bothError: 0,
  deferred: 0,
  unsupported: 0,
  mismatch: 0,
});

/** The engines with a schema loaded, reloading only when the schema changes. */
class Workspace {
  private current: Schema | undefined;
  private currentMaria: Schema | undefined;
  readonly faults: Error[] = [];

  constructor(
    readonly engines: Engines,
    private readonly mariadb: MariaDbAddress | undefined,
  ) {}

  /** Check a case with its schema loaded; a MariaDB server that crashed is restarted afterwards. */
  async check(c: OracleCase): Promise<Verdict> {
    await this.ensure(c.schema, c.oracle === 'differential');
    const v = await checkCase(c, this.engines);
    const maria = this.engines.mariadb;
    if (maria instanceof MariaDbEngine && maria.lost) {
      await maria.close();
      if (this.mariadb?.restart === undefined)
        throw new Error('MariaDB lost the connection and cannot be restarted');
      await this.mariadb.restart();
      this.engines.mariadb = await MariaDbEngine.connect(this.mariadb);
      this.currentMaria = undefined;
    }
    return v;
  }

  async ensure(schema: Schema, maria: boolean): Promise<void> {
    const statements = schemaStatements(schema);
    const tables = schema.tables.map((t) => t.name);
    if (this.current !== schema) {
      this.current = undefined;
      const fault = await this.engines.tidemark.load(statements, tables);
      if (fault !== undefined) this.faults.push(fault);
      this.current = schema;
    }
    if (maria && this.engines.mariadb !== undefined && this.currentMaria !== schema) {
      this.currentMaria = undefined;
      await this.engines.mariadb.load(statements, tables);
      this.currentMaria = schema;
    }
  }

  async closeTidemark(): Promise<void> {
    this.current = undefined;
    const fault = await this.engines.tidemark.close();
    if (fault !== undefined) this.faults.push(fault);
  }
}

/** Which oracle each of a case's query slots runs: interleaved in proportion to the counts. */
function slotOracles(counts: Record<OracleName, number>, perCase: number): OracleName[] {
  const total = ORACLES.reduce((a, o) => a + counts[o], 0);
  const given: Record<OracleName, number> = { differential: 0, tlp: 0, norec: 0 };
  const out: OracleName[] = [];
  for (let j = 0; j < perCase; j++) {
    let best: OracleName | undefined;
    let deficit = -Infinity;
    for (const o of ORACLES) {
      if (counts[o] === 0) continue;
      const d = ((j + 1) * counts[o]) / total - given[o];
      if (d > deficit) {
        deficit = d;
        best = o;
      }
    }
    if (best === undefined) break;
    given[best]++;
    out.push(best);
  }
  return out;
}

const sameFailure = (a: Verdict, b: Verdict): boolean =>
  (a.status === 'mismatch' && b.status === 'mismatch' && a.kind === b.kind && a.signature === b.signature) ||
  (a.status === 'unsupported' && b.status === 'unsupported' && a.signature === b.signature);

/** The case reduced while `verdict`'s failure persists: the query first, then the data, then the query again. */
async function reduceCase(
  c: OracleCase,
  verdict: Verdict,
  ws: Workspace,
  budget: { checks: number; ms: number },
): Promise<{ result: OracleCase; checks: number; complete: boolean; verdict: Verdict }> {
  let last = verdict;
  const fails = async (v: OracleCase): Promise<boolean> => {
    const r = await ws.check(v);
    if (!sameFailure(r, verdict)) return false;
    last = r;
    return true;
  };
  const deadline = Date.now() + budget.ms;
  let checks = 0;
  let current = c;
  let complete = true;
  for (const dataToo of [false, true, false]) {
    const left = { checks: budget.checks - checks, ms: deadline - Date.now() };
    if (left.checks <= 0 || left.ms <= 0) {
      complete = false;
      break;
    }
    const variants = dataToo ? (x: OracleCase) => onlyData(x) : (x: OracleCase) => caseVariants(x, false);
    const r = await reduce(current, variants, fails, left);
    checks += r.checks;
    current = r.result;
    complete &&= r.complete;
  }
  // The verdict of the reduced case itself, for the report (its rows, not the original's).
  const final = await ws.check(current);
  return { result: current, checks, complete, verdict: sameFailure(final, verdict) ? final : last };
}

function* onlyData(c: OracleCase): Generator<OracleCase> {
  for (const v of caseVariants(c, true)) if (v.schema !== c.schema) yield v;
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignStats> {
  const perCase = options.perCase ?? 40;
  const counts = options.counts;
  if (counts.differential > 0 && options.mariadb === undefined)
    throw new Error('the differential oracle needs a MariaDB server (options.mariadb)');
  const reduceOpts = {
    max: options.reduce?.max ?? Infinity,
    checks: options.reduce?.checks ?? 2000,
    ms: options.reduce?.ms ?? 60_000,
    unsupportedPerSignature: options.reduce?.unsupportedPerSignature ?? 2,
    unsupportedMax: options.reduce?.unsupportedMax ?? 40,
    unsupportedChecks: options.reduce?.unsupportedChecks ?? 300,
    unsupportedMs: options.reduce?.unsupportedMs ?? 10_000,
  };
  const stats: CampaignStats = {
    seed: options.seed,
    featureSet: describeFeatures(options.features),
    startedAt: Date.now(),
    elapsedMs: 0,
    cases: 0,
    checks: { differential: 0, tlp: 0, norec: 0 },
    statements: { tidemark: 0, mariadb: 0 },
    outcomes: { differential: zero(), tlp: zero(), norec: zero() },
    typeOnly: 0,
    typeOnlyExample: undefined,
    mismatches: [],
    blocked: new Map(),
    bothErrors: new Map(),
    features: new Map(),
  };
  const engines: Engines = {
    tidemark: new TidemarkEngine(),
    mariadb: counts.differential > 0 ? await MariaDbEngine.connect(options.mariadb!) : undefined,
    tamper: options.tamper,
    statements: stats.statements,
  };
  const ws = new Workspace(engines, options.mariadb);
  const slots = slotOracles(counts, perCase);
  let reductions = 0;
  let unsupportedReductions = 0;
  let nextProgress = Date.now() + (options.progressEveryMs ?? Infinity);
  const done = (o: OracleName): boolean => stats.checks[o] >= counts[o];
  const report = (r: MismatchReport): void => {
    stats.mismatches.push(r);
    options.onMismatch?.(r);
  };
  /** A failure of a whole case (its schema's load, its database's close), not of one query. */
  const schemaReport = (
    kind: MismatchReport['kind'],
    detail: string,
    error: unknown,
    schema: Schema,
    caseIndex: number,
  ): MismatchReport => ({
    oracle: 'differential',
    kind,
    seed: options.seed,
    caseIndex,
    queryIndex: -1,
    featureSet: stats.featureSet,
    uses: [],
    detail,
    tidemark: String(error),
    reference: '',
    schema: schemaStatements(schema),
    queries: [],
    original: { schema: schemaStatements(schema), queries: [] },
    reduced: false,
    reductionChecks: 0,
  });
  try {
    for (let ci = 0; !ORACLES.every(done); ci++) {
      if (options.timeLimitMs !== undefined && Date.now() - stats.startedAt > options.timeLimitMs) break;
      const caseSeed = deriveSeed(options.seed, ci);
      const schema = generateSchema(new Rng(caseSeed), options.features);
      stats.cases++;
      try {
        await ws.ensure(schema, counts.differential > 0);
      } catch (e) {
        // MariaDB loads what the generator makes; tidemark refusing it is tidemark's failure.
        report(schemaReport('errorMismatch', `loading the schema failed: ${String(e)}`, e, schema, ci));
        continue;
      }
      for (let qi = 0; qi < slots.length; qi++) {
        const oracle = slots[qi]!;
        if (done(oracle)) continue;
        const gen = new QueryGenerator(new Rng(deriveSeed(caseSeed, qi)), schema, options.features);
        const c = generateCase(oracle, gen, schema);
        const verdict = await ws.check(c);
        stats.checks[oracle]++;
        stats.outcomes[oracle][verdict.status]++;
        const uses = caseFeatures(c);
        for (const f of uses) {
          const fc = stats.features.get(f) ?? { used: 0, pass: 0, unsupported: 0, mismatch: 0 };
          fc.used++;
          if (verdict.status === 'pass') fc.pass++;
          if (verdict.status === 'unsupported') fc.unsupported++;
          if (verdict.status === 'mismatch') fc.mismatch++;
          stats.features.set(f, fc);
        }
        if (verdict.status === 'pass' && verdict.typeOnly > 0) {
          stats.typeOnly += verdict.typeOnly;
          stats.typeOnlyExample ??= caseQueries(c)[0];
        }
        if (verdict.status === 'bothError' || verdict.status === 'deferred') {
          const b = stats.bothErrors.get(`${oracle} ${verdict.detail}`) ?? {
            count: 0,
            example: caseQueries(c)[0]!,
          };
          b.count++;
          stats.bothErrors.set(`${oracle} ${verdict.detail}`, b);
        }
        if (verdict.status === 'unsupported') {
          const b = stats.blocked.get(verdict.signature) ?? {
            signature: verdict.signature,
            count: 0,
            examples: [],
          };
          b.count++;
          stats.blocked.set(verdict.signature, b);
          // Reduced with the differential oracle only: MariaDB accepting each smaller query keeps
          // the reduction from ending at something that is not SQL at all.
          if (oracle !== 'differential' && b.examples.length === 0) {
            b.examples.push({ queries: caseQueries(c).slice(0, 1), uses: [...uses].sort() });
          } else if (
            oracle === 'differential' &&
            b.examples.length < reduceOpts.unsupportedPerSignature &&
            unsupportedReductions < reduceOpts.unsupportedMax
          ) {
            unsupportedReductions++;
            const r = await reduceCase(c, verdict, ws, {
              checks: reduceOpts.unsupportedChecks,
              ms: reduceOpts.unsupportedMs,
            });
            b.examples.push({ queries: caseQueries(r.result), uses: [...caseFeatures(r.result)].sort() });
            await ws.ensure(schema, counts.differential > 0);
          }
        }
        if (verdict.status === 'mismatch') {
          const original = { schema: schemaStatements(schema), queries: caseQueries(c) };
          let result = c;
          let final: Verdict = verdict;
          let checks = 0;
          let reduced = false;
          if (reductions < reduceOpts.max) {
            reductions++;
            const r = await reduceCase(c, verdict, ws, reduceOpts);
            result = r.result;
            final = r.verdict;
            checks = r.checks;
            reduced = true;
            await ws.ensure(schema, counts.differential > 0);
          }
          const v = final.status === 'mismatch' ? final : verdict;
          if (v.status !== 'mismatch') throw new Error('unreachable');
          report({
            oracle,
            kind: v.kind,
            seed: options.seed,
            caseIndex: ci,
            queryIndex: qi,
            featureSet: stats.featureSet,
            uses: [...caseFeatures(result)].sort(),
            detail: v.detail,
            tidemark: v.tidemark,
            reference: v.reference,
            schema: schemaStatements(result.schema),
            queries: caseQueries(result),
            original,
            reduced,
            reductionChecks: checks,
          });
        }
        if (Date.now() >= nextProgress) {
          stats.elapsedMs = Date.now() - stats.startedAt;
          options.onProgress?.(stats);
          nextProgress = Date.now() + (options.progressEveryMs ?? Infinity);
        }
      }
      await ws.closeTidemark();
      for (const fault of ws.faults.splice(0)) {
        report(
          schemaReport(
            'leak',
            `closing the database after the case's queries: ${String(fault)}`,
            fault,
            schema,
            ci,
          ),
        );
      }
    }
  } finally {
    await engines.tidemark.close();
    await engines.mariadb?.close();
  }
  stats.elapsedMs = Date.now() - stats.startedAt;
  return stats;
}

/** Regenerate one case of a run (for --replay): the same seed, case, query and feature set give the same case. */
export function replayCase(
  seed: number,
  caseIndex: number,
  queryIndex: number,
  oracle: OracleName,
  features: ReadonlySet<Feature>,
): OracleCase {
  const caseSeed = deriveSeed(seed, caseIndex);
  const schema = generateSchema(new Rng(caseSeed), features);
  return generateCase(
    oracle,
    new QueryGenerator(new Rng(deriveSeed(caseSeed, queryIndex)), schema, features),
    schema,
  );
}

/**
 * Check recorded mismatches again with today's engine and oracles: each regenerated from its seed,
 * case and query (the original, not the reduced one) and its verdict given. What a long run found
 * is re-examined after a fix, or after a recheck learned to tell a reference engine's bug apart.
 */
export async function recheckMismatches(
  reports: readonly Pick<MismatchReport, 'oracle' | 'seed' | 'caseIndex' | 'queryIndex'>[],
  features: ReadonlySet<Feature>,
  mariadb: MariaDbAddress | undefined,
): Promise<Verdict[]> {
  const engines: Engines = {
    tidemark: new TidemarkEngine(),
    mariadb: mariadb === undefined ? undefined : await MariaDbEngine.connect(mariadb),
    tamper: undefined,
    statements: { tidemark: 0, mariadb: 0 },
  };
  const ws = new Workspace(engines, mariadb);
  const out: Verdict[] = [];
  try {
    for (const r of reports) {
      if (r.queryIndex < 0) throw new Error(`case ${r.caseIndex}: a schema failure, not a query's`);
      out.push(await ws.check(replayCase(r.seed, r.caseIndex, r.queryIndex, r.oracle, features)));
    }
  } finally {
    await ws.closeTidemark();
    await engines.mariadb?.close();
  }
  if (ws.faults.length > 0) throw ws.faults[0]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reporting

export function formatMismatch(r: MismatchReport): string {
  const lines = [
    `${r.oracle} ${r.kind}: ${r.detail}`,
    `  seed ${r.seed}, case ${r.caseIndex}, query ${r.queryIndex}, features ${r.featureSet}${r.reduced ? `, reduced in ${r.reductionChecks} checks` : ', not reduced'}`,
    `  uses: ${r.uses.join(' ') || '(core only)'}`,
    ...r.schema.map((s) => `  ${s};`),
    ...r.queries.map((q) => `  ${q};`),
    `  tidemark: ${r.tidemark}`,
  ];
  if (r.reference !== '')
    lines.push(`  ${r.oracle === 'differential' ? 'MariaDB' : 'expected'}: ${r.reference}`);
  return lines.join('\n');
}

export function formatProgress(s: CampaignStats): string {
  const per = ORACLES.filter((o) => s.checks[o] > 0)
    .map((o) => {
      const x = s.outcomes[o];
      return `${o} ${s.checks[o]} (pass ${x.pass}, both-error ${x.bothError}, known differences ${x.deferred}, unsupported ${x.unsupported}, mismatch ${x.mismatch})`;
    })
    .join('; ');
  const total = ORACLES.reduce((a, o) => a + s.checks[o], 0);
  return `[${(s.elapsedMs / 1000).toFixed(1)} s] ${total} queries, ${s.cases} schemas: ${per}; mismatches so far ${s.mismatches.length}`;
}

export function formatSummary(s: CampaignStats): string {
  const lines = [formatProgress(s)];
  lines.push(
    `  statements run: tidemark ${s.statements.tidemark}, MariaDB ${s.statements.mariadb}; feature set: ${s.featureSet}; seed ${s.seed}`,
  );
  if (s.typeOnly > 0)
    lines.push(
      `  type-only differences (a number where MySQL gives its text): ${s.typeOnly}, e.g. ${s.typeOnlyExample ?? ''}`,
    );
  const failed = [...s.bothErrors.entries()].sort((a, b) => b[1].count - a[1].count);
  if (failed.length > 0) {
    lines.push(
      '  queries that failed on both engines (differential) or on tidemark (TLP, NoREC: nothing to compare), or deferred:',
    );
    for (const [k, v] of failed.slice(0, 12))
      lines.push(`    ${v.count} x ${k}, e.g. ${v.example.slice(0, 300)}`);
  }
  const blocked = [...s.blocked.values()].sort((a, b) => b.count - a.count);
  if (blocked.length > 0) {
    lines.push('  unsupported by tidemark today (SYNTAX, or INVALID_ARGUMENT "is not supported"):');
    for (const b of blocked) {
      lines.push(`    ${b.count} x ${b.signature}`);
      for (const ex of b.examples) lines.push(`      e.g. [${ex.uses.join(' ')}] ${ex.queries.join('; ')}`);
    }
    const rows = [...s.features.entries()]
      .filter(([, c]) => c.unsupported > 0)
      .sort((a, b) => b[1].unsupported / b[1].used - a[1].unsupported / a[1].used);
    lines.push('  share of queries using each feature that were unsupported:');
    for (const [f, c] of rows)
      lines.push(`    ${f}: ${c.unsupported}/${c.used} (${Math.round((100 * c.unsupported) / c.used)}%)`);
  }
  return lines.join('\n');
}

/** Append a mismatch to a JSON-lines file. */
export function appendJsonLine(file: string, value: unknown): void {
  appendFileSync(file, JSON.stringify(value) + '\n');
}

export type { Engine };
