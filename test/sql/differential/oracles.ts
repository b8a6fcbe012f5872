import type { Expr, FromItem, Query, Select } from './ast.js';
import {
  exprChildren,
  exprQueries,
  featuresOf,
  fromTables,
  mapQuery,
  renderQuery,
  selectExprs,
  width,
} from './ast.js';
import type { Cell } from './compare.js';
import { compareCells, compareRows, mariaCell, showRow, tidemarkCell } from './compare.js';
import type { Engine, EngineError, Outcome } from './engines.js';
import { PLAIN_SWITCHES, TIDEMARK_QUERY_LIMIT_MS, trace } from './engines.js';
import type { Feature } from './features.js';
import type { ColRef, QueryGenerator, Schema } from './generator.js';
import { schemaStatements, sqlString } from './generator.js';
import { exprVariants, queryVariants, schemaVariants, tablesOf } from './reduce.js';

/**
 * The three oracles. Each takes a case (a schema with its data, and what to run on it), runs it, and
 * says pass, both-failed, unsupported (tidemark's parser or planner does not know a construct yet),
 * or mismatch:
 *
 * - differential: the query on tidemark and on MariaDB, results compared (compare.ts);
 * - TLP (ternary logic partitioning, SQLancer): on tidemark alone, Q against the union of Q WHERE p,
 *   Q WHERE NOT (p) and Q WHERE (p) IS NULL, which together hold every row exactly once whatever p
 *   is; for plain rows, DISTINCT, aggregates (COUNT and SUM add up over the partitions, MIN and MAX
 *   combine), GROUP BY (per group) and HAVING (groups partitioned by a condition on groups);
 * - NoREC (SQLancer): on tidemark alone, SELECT COUNT(*) ... WHERE p, which the planner optimizes
 *   (key ranges, pushed filters), against SUM(CASE WHEN p THEN 1 ELSE 0 END) over the same rows,
 *   which it cannot.
 */

export type OracleName = 'differential' | 'tlp' | 'norec';
export const ORACLES: readonly OracleName[] = ['differential', 'tlp', 'norec'];

export type MismatchKind = 'wrongResult' | 'errorMismatch' | 'crash' | 'leak';

export type Verdict =
  | { status: 'pass'; typeOnly: number }
  /** Both engines failed (differential), or a TLP/NoREC query failed (nothing to compare). */
  | { status: 'bothError'; detail: string }
  /**
   * A known difference, counted apart: MariaDB's 64-bit integer overflow errors (1690, BIGINT
   * [UNSIGNED] value is out of range), where tidemark's integers are still doubles (exact 64-bit
   * integers are issue 23); and MariaDB's own wrong answers, where checked (see below).
   */
  | { status: 'deferred'; detail: string }
  | { status: 'unsupported'; signature: string; message: string }
  | {
      status: 'mismatch';
      kind: MismatchKind;
      /** What must stay the same while reducing. */
      signature: string;
      detail: string;
      tidemark: string;
      reference: string;
    };

export interface DiffCase {
  oracle: 'differential';
  schema: Schema;
  query: Query;
}

export type TlpVariant = 'where' | 'distinct' | 'aggregate' | 'groupby' | 'having';
/** How each output column of a TLP query combines across partitions. */
export type ItemKind = 'plain' | 'key' | 'COUNT' | 'SUM' | 'MIN' | 'MAX';

export interface TlpCase {
  oracle: 'tlp';
  schema: Schema;
  variant: TlpVariant;
  /** Q without the partitioning condition (its WHERE: the comma joins' conditions, if any). */
  base: Select;
  pred: Expr;
  kinds: ItemKind[];
}

export interface NorecCase {
  oracle: 'norec';
  schema: Schema;
  from: FromItem[];
  /** The comma joins' conditions, in both queries. */
  where: Expr | undefined;
  pred: Expr;
}

export type OracleCase = DiffCase | TlpCase | NorecCase;

// ---------------------------------------------------------------------------------------------
// Generating cases

export function generateCase(oracle: OracleName, gen: QueryGenerator, schema: Schema): OracleCase {
  if (oracle === 'differential')
    return { oracle, schema, query: gen.query({ outer: [], depth: 0, top: true }) };
  if (oracle === 'norec') {
    const f = gen.fromClause();
    return { oracle, schema, from: f.items, where: andAll(f.conds), pred: gen.pred(f.env, 3) };
  }
  return generateTlp(gen, schema);
}

function andAll(conds: readonly Expr[]): Expr | undefined {
  if (conds.length === 0) return undefined;
  return conds.reduce((a, b) => ({ k: 'logic', op: 'AND', l: a, r: b }));
}

function generateTlp(gen: QueryGenerator, schema: Schema): TlpCase {
  const f = gen.fromClause();
  const rng = gen.rng;
  const features = gen.features;
  const variant = rng.weighted<TlpVariant>([
    ['where', 4],
    ['distinct', features.has('distinct') ? 1.5 : 0],
    ['aggregate', features.has('aggregates') ? 2 : 0],
    ['groupby', features.has('groupBy') ? 2 : 0],
    ['having', features.has('groupBy') && features.has('having') && features.has('aggregates') ? 1.5 : 0],
  ]);
  const base: Select = {
    k: 'select',
    quant: undefined,
    items: [],
    from: f.items,
    where: andAll(f.conds),
    groupBy: [],
    having: undefined,
    orderBy: [],
    limit: undefined,
  };
  const kinds: ItemKind[] = [];
  const n = rng.range(1, 3);
  const aggKind = (e: Expr): ItemKind => (e.k === 'agg' && e.name !== 'AVG' ? e.name : 'plain');
  if (variant === 'where' || variant === 'distinct') {
    if (variant === 'distinct') base.quant = 'DISTINCT';
    for (let i = 0; i < n; i++) {
      base.items.push({
        e: rng.chance(0.5) ? gen.colExpr(rng.pick(f.local)) : gen.value(f.env, 2).e,
        alias: undefined,
      });
      kinds.push('plain');
    }
    return { oracle: 'tlp', schema, variant, base, pred: gen.pred(f.env, 3), kinds };
  }
  if (variant === 'aggregate') {
    const env = gen.groupEnv([], f.local, true);
    for (let i = 0; i < n; i++) {
      const e = gen.aggregate(env);
      base.items.push({ e, alias: undefined });
      kinds.push(aggKind(e));
    }
    return { oracle: 'tlp', schema, variant, base, pred: gen.pred(f.env, 3), kinds };
  }
  // GROUP BY: every key is an output column, so partitions' rows of one group can be matched up.
  const keys: ColRef[] = gen.pickKeys(f.local);
  base.groupBy = keys.map((c) => gen.colExpr(c));
  for (const c of keys) {
    base.items.push({ e: gen.colExpr(c), alias: undefined });
    kinds.push('key');
  }
  const env = gen.groupEnv(keys, f.local, true);
  const aggs = features.has('aggregates') ? rng.range(0, 2) : 0;
  for (let i = 0; i < aggs; i++) {
    const e = gen.aggregate(env);
    base.items.push({ e, alias: undefined });
    kinds.push(aggKind(e));
  }
  const pred = variant === 'having' ? gen.pred(env, 2) : gen.pred(f.env, 3);
  return { oracle: 'tlp', schema, variant, base, pred, kinds };
}

// ---------------------------------------------------------------------------------------------
// The queries each case runs

const paren = (e: Expr): Expr => (e.k === 'paren' ? e : { k: 'paren', e });

/** TLP's Q and its three partitions. */
export function tlpQueries(c: TlpCase): { q: Select; parts: Select[] } {
  const ps: Expr[] = [
    c.pred,
    { k: 'not', e: paren(c.pred) },
    { k: 'is', e: paren(c.pred), not: false, what: 'NULL' },
  ];
  if (c.variant === 'having') return { q: c.base, parts: ps.map((p) => ({ ...c.base, having: p })) };
  const where = c.base.where;
  return {
    q: c.base,
    parts: ps.map((p) => ({
      ...c.base,
      where: where === undefined ? p : { k: 'logic', op: 'AND', l: paren(where), r: paren(p) },
    })),
  };
}

/** NoREC's two queries: the optimizable COUNT(*) ... WHERE p and the unoptimizable SUM(CASE ...). */
export function norecQueries(c: NorecCase): { optimized: Select; reference: Select } {
  const base: Select = {
    k: 'select',
    quant: undefined,
    items: [],
    from: c.from,
    where: c.where,
    groupBy: [],
    having: undefined,
    orderBy: [],
    limit: undefined,
  };
  const optimized: Select = {
    ...base,
    items: [{ e: { k: 'agg', name: 'COUNT', quant: undefined, arg: undefined }, alias: undefined }],
    where: c.where === undefined ? c.pred : { k: 'logic', op: 'AND', l: paren(c.where), r: paren(c.pred) },
  };
  const flag: Expr = {
    k: 'case',
    operand: undefined,
    whens: [{ when: c.pred, then: { k: 'lit', t: 'int', text: '1' } }],
    else: { k: 'lit', t: 'int', text: '0' },
  };
  const reference: Select = {
    ...base,
    items: [{ e: { k: 'agg', name: 'SUM', quant: undefined, arg: flag }, alias: undefined }],
  };
  return { optimized, reference };
}

/** Every statement text a case runs (for reports). */
export function caseQueries(c: OracleCase): string[] {
  if (c.oracle === 'differential') return [renderQuery(c.query)];
  if (c.oracle === 'norec') {
    const { optimized, reference } = norecQueries(c);
    return [renderQuery(optimized), renderQuery(reference)];
  }
  const { q, parts } = tlpQueries(c);
  return [q, ...parts].map(renderQuery);
}

/** The features a case's queries use. */
export function caseFeatures(c: OracleCase): Set<Feature> {
  if (c.oracle === 'differential') return featuresOf(c.query);
  if (c.oracle === 'norec') return featuresOf(norecQueries(c).optimized);
  const out = featuresOf(tlpQueries(c).parts[0]!);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checking

/** Whether the query's ORDER BY fixes the order of its result: it covers every output column. */
export function totallyOrdered(q: Query): boolean {
  const keys = new Set(q.orderBy.map((k) => k.index));
  const n = width(q);
  for (let i = 0; i < n; i++) if (!keys.has(i)) return false;
  return n > 0;
}

const showError = (e: EngineError): string => `${e.class === 'crash' ? 'CRASH ' : ''}${e.code}: ${e.message}`;

/** Up to 12 rows, for a report. */
function showRows(rows: readonly Cell[][]): string {
  const shown = rows.slice(0, 12).map(showRow).join(' ');
  return `${rows.length} row${rows.length === 1 ? '' : 's'}${rows.length > 0 ? ': ' : ''}${shown}${rows.length > 12 ? ' ...' : ''}`;
}

function showOutcome(o: Outcome, cells: (o: Outcome & { ok: true }) => Cell[][]): string {
  return o.ok ? showRows(cells(o)) : showError(o.error);
}

/** Normalize what varies between occurrences of one error (positions, names, values) to group them. */
export function errorSignature(e: EngineError): string {
  let m = e.message
    .replace(/line \d+, column \d+/g, 'line L, column C')
    .replace(
      /"[^"]*"/g,
      (s) =>
        `"${s
          .slice(1)
          .split(/[\s,()]/)[0]!
          .replace(/^[a-z]+\d+[a-z\d]*$/i, 'name')}…"`,
    )
    .replace(/'[^']*'/g, "'…'")
    .replace(/\b[td]\d+a?\d*\.c\d+\b|\b[a-z]\d+a\d+\b|\bc\d+\b/g, 'name')
    .replace(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi, 'N');
  if (e.class === 'crash') m = m.split(' | ')[0]!.slice(0, 160);
  return `${e.code}: ${m}`;
}

export type Tamper = (oracle: OracleName, sql: string, rows: unknown[][]) => unknown[][];

export interface Engines {
  tidemark: Engine;
  /** Absent: the differential oracle cannot run. */
  mariadb: Engine | undefined;
  /** For testing the harness itself: alters tidemark's rows before they are compared. */
  tamper?: Tamper;
  /** Statements run, per engine. */
  statements: { tidemark: number; mariadb: number };
}

/** Queries slower than this on tidemark are printed (TIDEMARK_DIFF_SLOW_MS; default 5 s). */
const SLOW_MS = Number(process.env.TIDEMARK_DIFF_SLOW_MS ?? 5000);

async function runTidemark(engines: Engines, oracle: OracleName, sql: string): Promise<Outcome> {
  engines.statements.tidemark++;
  trace(`tidemark: ${sql}`);
  const started = Date.now();
  const o = await engines.tidemark.run(sql);
  const took = Date.now() - started;
  if (took > SLOW_MS) process.stderr.write(`slow query (${took} ms on tidemark): ${sql}\n`);
  if (o.ok && engines.tamper !== undefined) return { ...o, rows: engines.tamper(oracle, sql, o.rows) };
  return o;
}

/** Optimizer switches MariaDB's answer is rechecked with (each alone, then all rewrites off). */
const RECHECK_SWITCHES = [
  'subquery_cache=off',
  'in_to_exists=off',
  'materialization=off',
  'semijoin=off',
  'derived_merge=off,derived_with_keys=off',
  PLAIN_SWITCHES,
];

async function checkDifferential(c: DiffCase, engines: Engines): Promise<Verdict> {
  const mariadb = engines.mariadb;
  if (mariadb === undefined) throw new Error('the differential oracle needs MariaDB');
  const sql = renderQuery(c.query);
  engines.statements.mariadb++;
  // MariaDB works in its own process while tidemark works in this one.
  const [m, t] = await Promise.all([mariadb.run(sql), runTidemark(engines, 'differential', sql)]);
  const mCells = (o: Outcome & { ok: true }): Cell[][] =>
    o.rows.map((r) => r.map((v, i) => mariaCell(v, o.columns?.[i])));
  const tCells = (o: Outcome & { ok: true }): Cell[][] => o.rows.map((r) => r.map(tidemarkCell));
  const both = { tidemark: showOutcome(t, tCells), reference: showOutcome(m, mCells) };
  // MariaDB crashing (the connection lost) says nothing about tidemark; the campaign restarts it.
  if (!m.ok && m.error.class === 'crash')
    return { status: 'bothError', detail: `MariaDB crashed (${m.error.code})` };
  if (!t.ok && t.error.class === 'crash')
    return {
      status: 'mismatch',
      kind: 'crash',
      signature: `crash ${errorSignature(t.error)}`,
      detail: showError(t.error),
      ...both,
    };
  if (!t.ok && !m.ok)
    return {
      status: 'bothError',
      detail: `${t.error.code} / ${m.error.code} ${m.error.message.slice(0, 60)}`,
    };
  if (!t.ok && t.error.code === 'CLOSED' && /timed out/i.test(t.error.message))
    return {
      status: 'deferred',
      detail: `tidemark took longer than ${TIDEMARK_QUERY_LIMIT_MS} ms (cut off)`,
    };
  if (!t.ok && t.error.class === 'unsupported')
    return { status: 'unsupported', signature: errorSignature(t.error), message: t.error.message };
  // An overflow (1690) only tidemark reached: MySQL leaves open which rows and branches an engine
  // evaluates (MariaDB skips a derived table joined ON NULL, a CASE branch no row takes; tidemark
  // computes expressions a batch at a time). Like SQLancer's expected errors: nothing to compare.
  // The other way round (MariaDB overflows, tidemark does not) stays a mismatch: a missing check.
  if (!t.ok && /^(BIGINT|BIGINT UNSIGNED|DECIMAL) value is out of range/.test(t.error.message))
    return {
      status: 'deferred',
      detail: 'out of range (1690) on tidemark only: evaluation order (MySQL leaves it open)',
    };
  if (!t.ok)
    return {
      status: 'mismatch',
      kind: 'errorMismatch',
      signature: `tidemark failed ${t.error.code}`,
      detail: `tidemark failed where MariaDB did not: ${showError(t.error)}`,
      ...both,
    };
  // MariaDB's own limits (1235: LIMIT in an IN subquery, "doesn't yet support"): nothing to compare.
  // 1055, 1140: ONLY_FULL_GROUP_BY (engines.ts), which tidemark does not enforce: nothing to compare.
  if (!m.ok && (m.error.code === '1055' || m.error.code === '1140'))
    return { status: 'bothError', detail: 'MariaDB refused a column neither grouped nor aggregated' };
  // 1969, 1114: MariaDB's statement time or temporary space limit cut the query off (engines.ts).
  if (!m.ok && (m.error.code === '1969' || m.error.code === '1114'))
    return { status: 'bothError', detail: 'MariaDB exceeded its statement time or temporary space limit' };
  // An overflow only MariaDB reached (it merges a derived table and evaluates a condition for rows
  // tidemark's plan never reads): evaluation order, as above.
  if (!m.ok && m.error.code === '1690')
    return {
      status: 'deferred',
      detail: 'out of range (1690) on MariaDB only: evaluation order (MySQL leaves it open)',
    };
  if (!m.ok && m.error.code === '1235')
    return { status: 'bothError', detail: `MariaDB does not support: ${m.error.message.slice(0, 80)}` };
  if (!m.ok)
    return {
      status: 'mismatch',
      kind: 'errorMismatch',
      signature: `mariadb failed ${m.error.code}`,
      detail: `MariaDB failed where tidemark did not: ${showError(m.error)}`,
      ...both,
    };
  const ordered = totallyOrdered(c.query);
  const v = compareRows(mCells(m), tCells(t), ordered);
  if (v.equal) return { status: 'pass', typeOnly: v.typeOnly };
  const q = c.query;
  /** One recheck run on MariaDB: whether its rows are tidemark's. */
  const agrees = async (run: () => Promise<Outcome>): Promise<boolean> => {
    engines.statements.mariadb++;
    const o = await run();
    return o.ok && compareRows(mCells(o), tCells(t), ordered).equal;
  };
  const known = (detail: string): Verdict => ({ status: 'deferred', detail });
  // MariaDB's index lookups convert a string to the key's integer type ('1e2' finds key 1, not
  // 100), where MySQL compares a string with a number as doubles; and it pushes conditions into a
  // derived UNION's branches, where they compare with the branch's type, not the column's: checked
  // by running the query on the same data in tables without keys, with those rewrites off.
  const withoutKeys = mariadb.runWithoutKeys?.bind(mariadb);
  if (withoutKeys !== undefined && (await agrees(() => withoutKeys(schemaStatements(c.schema), sql))))
    return known('MariaDB bug: an index lookup converts the string (without keys it agrees)');
  // MariaDB's answers that change with its optimizer's switches (10.11: the subquery cache
  // answers an IN inside a CASE of a grouped query from another group's entry): a correct engine's
  // answer does not depend on them, so MariaDB is wrong in one of them; tidemark's must be the
  // other's.
  const withSwitches = mariadb.runWithSwitches?.bind(mariadb);
  for (const switches of withSwitches === undefined ? [] : RECHECK_SWITCHES) {
    if (await agrees(() => withSwitches!(sql, switches)))
      return known(`MariaDB bug: its answer changes with optimizer_switch='${switches}' (and then agrees)`);
  }
  // MariaDB's own set-operation bugs (10.11: INTERSECT ALL with EXCEPT ALL keeps rows it should
  // not, or loops for ever): checked by running each branch on MariaDB alone and combining them
  // here, with MySQL's precedence, as multisets.
  // Set operations nested in derived tables and subqueries are replaced first by their rows,
  // combined here from their branches the same way.
  const inlined = await inlineNestedSetOps(q, engines, mCells);
  const top = inlined ?? q;
  if (top.k === 'setop') {
    const combined = await combineOnMariaDb(top, engines, mCells);
    // With a LIMIT, tidemark's rows must be as many as it keeps, all of them among the combined.
    const limited = (all: Cell[][]): boolean => {
      const got = tCells(t);
      const want = Math.min(top.limit!.count, Math.max(0, all.length - (top.limit!.offset ?? 0)));
      if (got.length !== want) return false;
      const pool = [...all];
      return got.every((r) => {
        const i = pool.findIndex((x) => compareRows([x], [r], false).equal);
        if (i < 0) return false;
        pool.splice(i, 1);
        return true;
      });
    };
    if (
      combined !== undefined &&
      (top.limit === undefined ? compareRows(combined, tCells(t), false).equal : limited(combined))
    )
      return { status: 'deferred', detail: 'MariaDB set-operation bug (its branches, combined here, agree)' };
  } else if (inlined !== undefined) {
    if (await agrees(() => mariadb.run(renderQuery(inlined))))
      return known(
        'MariaDB bug in a nested set operation or SELECT DISTINCT (computed here from its parts, it agrees)',
      );
  }
  // MariaDB's own bugs with SELECT DISTINCT: over GROUP BY it drops or keeps rows wrongly
  // (DISTINCT -COUNT(*) ... GROUP BY gives one row of two distinct ones), and with LIMIT ... OFFSET
  // it skips rows before deduplicating. Checked, not assumed: its rows without DISTINCT,
  // deduplicated here, must be what tidemark gave.
  if (q.k === 'select' && q.quant === 'DISTINCT' && (q.limit === undefined || ordered)) {
    engines.statements.mariadb++;
    const all = await mariadb.run(renderQuery({ ...q, quant: undefined, limit: undefined }));
    if (all.ok) {
      let deduped = dedupe(mCells(all));
      // LIMIT after DISTINCT (the ORDER BY covers every column, so the rows kept are determined).
      if (q.limit !== undefined) {
        const from = q.limit.offset ?? 0;
        deduped = deduped.slice(from, from + q.limit.count);
      }
      if (compareRows(deduped, tCells(t), ordered).equal)
        return {
          status: 'deferred',
          detail: 'MariaDB bug: SELECT DISTINCT (its rows, deduplicated here, agree)',
        };
    }
  }
  // MariaDB's answers for subqueries whose column reads only the enclosing query (their rows all
  // hold one value): with a subquery or aggregate on the left of IN it answers 1 for
  // -2147483648 IN (SELECT outer.c ...) with c = 1, and 0 for AVG(NULL) IN (...); with an ORDER BY,
  // HAVING (SELECT outer.c FROM t ORDER BY 1) keeps a group whose c is NULL. Checked by
  // equivalent forms (outerOnlySubqueries).
  const viaExists = outerOnlySubqueries(q);
  if (viaExists !== undefined) {
    if (await agrees(() => mariadb.run(renderQuery(viaExists))))
      return known(
        "MariaDB bug: a subquery of the enclosing query's columns only (IN as EXISTS and =, no ORDER BY: it agrees)",
      );
  }
  // Several of the above in one query: outer-only subqueries rewritten, then nested set operations
  // and DISTINCTs computed and a set operation combined from its branches.
  let every = q;
  every = outerOnlySubqueries(every) ?? every;
  const last = (await inlineNestedSetOps(every, engines, mCells)) ?? every;
  if (last !== q && last.limit === undefined) {
    let rows: Cell[][] | undefined;
    if (last.k === 'setop') rows = await combineOnMariaDb(last, engines, mCells);
    else {
      engines.statements.mariadb++;
      const o = await mariadb.run(renderQuery(last));
      if (o.ok) rows = mCells(o);
    }
    if (rows !== undefined && compareRows(rows, tCells(t), ordered && last.k === 'select').equal)
      return {
        status: 'deferred',
        detail:
          'several of the differences above at once (each rewritten or computed as above, MariaDB agrees)',
      };
  }
  return {
    status: 'mismatch',
    kind: 'wrongResult',
    signature: 'wrongResult',
    detail: v.detail ?? '',
    ...both,
  };
}

/**
 * A set operation evaluated from its branches: each SELECT (or parenthesized branch) run on
 * MariaDB alone, then combined as MySQL defines the operators (INTERSECT before UNION and EXCEPT,
 * left to right; DISTINCT forms deduplicate, ALL forms count). Undefined when a branch fails.
 */
async function combineOnMariaDb(
  q: Query,
  engines: Engines,
  cells: (o: Outcome & { ok: true }) => Cell[][],
): Promise<Cell[][] | undefined> {
  type SetOpNode = Extract<Query, { k: 'setop' }>;
  // The operands and operators as the SQL text reads (a parenthesized operand is one operand).
  const operands: Query[] = [];
  const ops: SetOpNode[] = [];
  // The top's own ORDER BY is not an operand's (rows compare as a multiset here).
  const flatten = (x: Query, parens: boolean, top = false): void => {
    if (x.k !== 'setop' || parens || (!top && (x.orderBy.length > 0 || x.limit !== undefined))) {
      operands.push(x);
      return;
    }
    flatten(x.l, x.lParens);
    ops.push(x);
    flatten(x.r, x.rParens);
  };
  flatten(q, false, true);
  const results: Cell[][][] = [];
  for (const x of operands) {
    // A parenthesized set operation is combined here too (MariaDB's bugs are not only on top).
    if (x.k === 'setop' && x.orderBy.length === 0 && x.limit === undefined) {
      const rows = await combineOnMariaDb(x, engines, cells);
      if (rows === undefined) return undefined;
      results.push(rows);
      continue;
    }
    // A SELECT DISTINCT operand runs without DISTINCT, deduplicated here (MariaDB's DISTINCT over
    // GROUP BY is wrong at times: see checkDifferential).
    // With a LIMIT only where the ORDER BY covers every column (then the rows kept are determined):
    // MariaDB applies LIMIT ... OFFSET before deduplicating.
    const distinct =
      x.k === 'select' && x.quant === 'DISTINCT' && (x.limit === undefined || totallyOrdered(x));
    engines.statements.mariadb++;
    const o = await engines.mariadb!.run(
      renderQuery(distinct ? { ...x, quant: undefined, limit: undefined } : x),
    );
    if (!o.ok) return undefined;
    let rows = distinct ? dedupe(cells(o)) : cells(o);
    if (distinct && x.limit !== undefined)
      rows = rows.slice(x.limit.offset ?? 0, (x.limit.offset ?? 0) + x.limit.count);
    results.push(rows);
  }
  // A column with a string in any branch compares as text (MySQL's type of the column).
  const width = results.find((r) => r.length > 0)?.[0]?.length ?? 0;
  const textual = Array.from({ length: width }, (_, c) =>
    results.some((r) => r.some((row) => row[c] !== null && 's' in row[c]!)),
  );
  const key = (row: Cell[]): string =>
    row
      .map((v, c) => {
        if (v === null) return 'N';
        if ('s' in v) return `s${v.s}`;
        return textual[c] ? `s${v.exact !== undefined ? String(v.exact) : String(v.n)}` : `n${v.n}`;
      })
      .join('\u0001');
  const counts = (rows: Cell[][]): Map<string, { row: Cell[]; n: number }> => {
    const m = new Map<string, { row: Cell[]; n: number }>();
    for (const r of rows) {
      const k = key(r);
      const e = m.get(k);
      if (e === undefined) m.set(k, { row: r, n: 1 });
      else e.n++;
    }
    return m;
  };
  const apply = (op: SetOpNode, l: Cell[][], r: Cell[][]): Cell[][] => {
    const all = op.quant === 'ALL';
    const out: Cell[][] = [];
    if (op.op === 'UNION') {
      if (all) return [...l, ...r];
      for (const e of counts([...l, ...r]).values()) out.push(e.row);
      return out;
    }
    const right = counts(r);
    for (const [k, e] of counts(l)) {
      const other = right.get(k)?.n ?? 0;
      const n =
        op.op === 'INTERSECT'
          ? all
            ? Math.min(e.n, other)
            : other > 0
              ? 1
              : 0
          : all
            ? Math.max(0, e.n - other)
            : other > 0
              ? 0
              : 1;
      for (let i = 0; i < n; i++) out.push(e.row);
    }
    return out;
  };
  // INTERSECT first, then UNION and EXCEPT, each left to right.
  let vals = results;
  let pending = ops;
  for (const tier of [['INTERSECT'], ['UNION', 'EXCEPT']]) {
    const nextVals: Cell[][][] = [vals[0]!];
    const nextOps: SetOpNode[] = [];
    pending.forEach((op, i) => {
      if (tier.includes(op.op))
        nextVals[nextVals.length - 1] = apply(op, nextVals[nextVals.length - 1]!, vals[i + 1]!);
      else {
        nextOps.push(op);
        nextVals.push(vals[i + 1]!);
      }
    });
    vals = nextVals;
    pending = nextOps;
  }
  return vals[0];
}

/**
 * Whether a subquery's single column reads nothing of its own rows: no column of its own tables
 * (at any depth: aliases are unique in generated queries), no aggregate of its own. Every row of
 * it then holds the same value, v.
 */
function outerOnlyColumn(sub: Select): Expr | undefined {
  if (sub.items.length !== 1) return undefined;
  const own = new Set(sub.from.flatMap((f) => fromTables(f).map((t) => t.alias)));
  let outerOnly = true;
  const walkQuery = (q: Query): void => {
    mapQuery(q, (x) => {
      if (x.k === 'col' && own.has(x.alias)) outerOnly = false;
      return x;
    });
  };
  const walk = (x: Expr, top: boolean): void => {
    if ((x.k === 'col' && own.has(x.alias)) || (top && x.k === 'agg')) outerOnly = false;
    exprChildren(x).forEach((c) => walk(c, top));
    exprQueries(x).forEach(walkQuery);
  };
  const v = sub.items[0]!.e;
  walk(v, true);
  return outerOnly ? v : undefined;
}

/** Whether a subquery's HAVING may name its column by its alias (then the rewrites leave it). */
function namesItsColumn(sub: Select): boolean {
  if (sub.having === undefined) return false;
  const alias = sub.items[0]?.alias;
  if (alias === undefined) return false;
  let named = false;
  mapQuery({ ...sub, items: [], where: sub.having, groupBy: [], having: undefined, from: [] }, (x) => {
    if (x.k === 'col' && x.name === alias) named = true;
    return x;
  });
  return named;
}

/**
 * q with its subqueries whose column reads only the enclosing query (outerOnlyColumn: all their
 * rows hold one value v) written in forms MariaDB answers right: `L [NOT] IN (SELECT v FROM ...
 * WHERE ...)` as `[NOT] (CASE WHEN EXISTS (SELECT 1 FROM ... WHERE ...) THEN (L) = (v) ELSE 0
 * END)` (L IN (v, v, ...) is L = v when there are rows, NULL if either is; false when there are
 * none), and a scalar `(SELECT v ... ORDER BY ...)` without its ORDER BY (every row is the same).
 * Subqueries whose HAVING names v by its alias, or an IN's with ORDER BY, are left alone. Undefined when q has none.
 */
export function outerOnlySubqueries(q: Query): Query | undefined {
  let changed = false;
  const out = mapQuery(q, (e) => {
    if (e.k === 'scalar' && e.q.k === 'select' && e.q.orderBy.length > 0 && !namesItsColumn(e.q)) {
      if (outerOnlyColumn(e.q) === undefined) return e;
      changed = true;
      return { ...e, q: { ...e.q, orderBy: [] } };
    }
    if (e.k !== 'inSub' || e.q.k !== 'select') return e;
    const sub = e.q;
    if (namesItsColumn(sub) || sub.orderBy.length > 0) return e;
    const v = outerOnlyColumn(sub);
    if (v === undefined) return e;
    changed = true;
    const exists: Expr = {
      k: 'exists',
      not: false,
      q: { ...sub, items: [{ e: { k: 'lit', t: 'int', text: '1' }, alias: undefined }] },
    };
    const test: Expr = {
      k: 'case',
      operand: undefined,
      whens: [
        { when: exists, then: { k: 'cmp', op: '=', l: { k: 'paren', e: e.e }, r: { k: 'paren', e: v } } },
      ],
      else: { k: 'lit', t: 'int', text: '0' },
    };
    return { k: 'paren', e: e.not ? { k: 'not', e: test } : test };
  });
  return changed ? out : undefined;
}

/** The rows without repeats, first occurrences kept. */
function dedupe(rows: readonly Cell[][]): Cell[][] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const k = showRow(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * The set operations and SELECT DISTINCTs in q's derived tables and subqueries, at any depth,
 * innermost first.
 */
function nestedSetOps(q: Query, out: Query[] = []): Query[] {
  const visit = (x: Query): void => {
    nestedSetOps(x, out);
    if (x.k === 'setop' || x.quant === 'DISTINCT') out.push(x);
  };
  const walk = (e: Expr): void => {
    exprChildren(e).forEach(walk);
    exprQueries(e).forEach(visit);
  };
  if (q.k === 'setop') {
    nestedSetOps(q.l, out);
    nestedSetOps(q.r, out);
    return out;
  }
  for (const f of q.from) for (const t of fromTables(f)) if (t.k === 'derived') visit(t.q);
  selectExprs(q).forEach(walk);
  return out;
}

function firstSelect(q: Query): Select {
  return q.k === 'select' ? q : firstSelect(q.l);
}

/** A cell as a MySQL literal of its type. */
function cellLiteral(c: Cell): Expr {
  if (c === null) return { k: 'lit', t: 'null', text: 'NULL' };
  if ('s' in c) return { k: 'lit', t: 'string', text: sqlString(c.s) };
  if (c.kind === 'int') return { k: 'lit', t: 'int', text: String(c.exact ?? c.n) };
  if (c.kind === 'decimal') return { k: 'lit', t: 'decimal', text: c.n.toFixed(c.decimals ?? 0) };
  const text = String(c.n);
  return { k: 'lit', t: 'double', text: /e/i.test(text) ? text : `${text}e0` };
}

/** The rows as a query of literals (UNION ALL of one-row SELECTs) with `names` as its columns. */
export function rowsQuery(rows: readonly Cell[][], names: readonly string[]): Query {
  const select = (row: readonly Cell[] | undefined): Select => ({
    k: 'select',
    quant: undefined,
    items: names.map((alias, i) => ({
      e: row === undefined ? { k: 'lit', t: 'null', text: 'NULL' } : cellLiteral(row[i]!),
      alias,
    })),
    from: [],
    where: row === undefined ? { k: 'lit', t: 'int', text: '0' } : undefined,
    groupBy: [],
    having: undefined,
    orderBy: [],
    limit: undefined,
  });
  if (rows.length === 0) return select(undefined);
  let q: Query = select(rows[0]);
  for (const row of rows.slice(1))
    q = {
      k: 'setop',
      op: 'UNION',
      quant: 'ALL',
      l: q,
      r: select(row),
      lParens: false,
      rParens: false,
      orderBy: [],
      limit: undefined,
    };
  return q;
}

/**
 * q with each set operation nested in it (derived tables, subqueries) replaced by its rows, combined
 * from its branches on MariaDB (combineOnMariaDb), and each nested SELECT DISTINCT by its rows
 * deduplicated here, innermost first. One that cannot be (it reads the enclosing query, or its
 * LIMIT keeps rows not determined) is left as it is. Undefined when none was replaced.
 */
async function inlineNestedSetOps(
  q: Query,
  engines: Engines,
  cells: (o: Outcome & { ok: true }) => Cell[][],
): Promise<Query | undefined> {
  const stands = new Map<Query, Query>();
  const subst = (x: Query): Query =>
    mapQuery(
      x,
      (e) => e,
      (y) => stands.get(y),
    );
  for (const d of nestedSetOps(q)) {
    const names = firstSelect(d).items.map((it) => it.alias ?? (it.e.k === 'col' ? it.e.name : undefined));
    if (names.some((n) => n === undefined)) continue;
    let rows: Cell[][] | undefined;
    if (d.k === 'setop') {
      if (d.limit !== undefined) continue;
      rows = await combineOnMariaDb(subst(d), engines, cells);
    } else {
      // SELECT DISTINCT: its rows without DISTINCT, deduplicated here; a LIMIT only where the
      // ORDER BY covers every column (then which rows it keeps is determined).
      if (d.limit !== undefined && !totallyOrdered(d)) continue;
      engines.statements.mariadb++;
      const o = await engines.mariadb!.run(renderQuery(subst({ ...d, quant: undefined, limit: undefined })));
      if (o.ok) {
        rows = dedupe(cells(o));
        if (d.limit !== undefined)
          rows = rows.slice(d.limit.offset ?? 0, (d.limit.offset ?? 0) + d.limit.count);
      }
    }
    if (rows !== undefined) stands.set(d, rowsQuery(rows, names as string[]));
  }
  return stands.size === 0 ? undefined : subst(q);
}

/** Run tidemark's statements of a single-engine oracle; a verdict if any failed. */
async function runAll(
  engines: Engines,
  oracle: OracleName,
  sqls: readonly string[],
): Promise<{ rows: unknown[][][] } | { verdict: Verdict }> {
  const out: unknown[][][] = [];
  const outcomes: Outcome[] = [];
  for (const sql of sqls) outcomes.push(await runTidemark(engines, oracle, sql));
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i]!;
    if (o.ok) continue;
    if (o.error.class === 'crash')
      return {
        verdict: {
          status: 'mismatch',
          kind: 'crash',
          signature: `crash ${errorSignature(o.error)}`,
          detail: `${showError(o.error)} (query ${i + 1})`,
          tidemark: showError(o.error),
          reference: '',
        },
      };
  }
  for (const o of outcomes) {
    if (!o.ok && o.error.class === 'unsupported')
      return {
        verdict: { status: 'unsupported', signature: errorSignature(o.error), message: o.error.message },
      };
  }
  for (const o of outcomes) {
    // A query failing (a subquery of p returning two rows, say) leaves nothing to compare.
    if (!o.ok) return { verdict: { status: 'bothError', detail: o.error.code } };
    out.push(o.rows);
  }
  return { rows: out };
}

const jsonKey = (r: readonly unknown[]): string =>
  JSON.stringify(r, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v));

/** MIN or MAX of partition values, as MySQL orders them: numbers by value, strings by bytes. */
function extreme(values: unknown[], max: boolean): { value: unknown } | undefined {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length === 0) return { value: null };
  if (present.every((v) => typeof v === 'number')) {
    const ns = present;
    return { value: max ? Math.max(...ns) : Math.min(...ns) };
  }
  if (present.every((v) => typeof v === 'string')) {
    const sorted = [...present].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return { value: max ? sorted[sorted.length - 1] : sorted[0] };
  }
  return undefined; // mixed types: the order is the expression's type's, not known here
}

/** Combine one column's values from the partitions' rows of one group. */
function combine(kind: ItemKind, values: unknown[]): { value: unknown } | undefined {
  switch (kind) {
    case 'COUNT':
      return { value: values.reduce<number>((a, v) => a + Number(v ?? 0), 0) };
    case 'SUM': {
      const present = values.filter((v) => v !== null && v !== undefined);
      return { value: present.length === 0 ? null : present.reduce<number>((a, v) => a + Number(v), 0) };
    }
    case 'MIN':
    case 'MAX':
      return extreme(values, kind === 'MAX');
    case 'key':
    case 'plain':
      return { value: values[0] };
  }
}

/**
 * How far a SUM of doubles may move with the order of its additions: the partitions add their
 * terms in other orders than Q, and terms that cancel (2^31 - 0.3 and -2^31 - 0.3) leave an error
 * in proportion to their size, not the sum's. Per SUM column, 2^-48 of the partitions' magnitudes
 * and at least 1e-4.
 */
function sumSlack(kinds: readonly ItemKind[], rows: unknown[][]): number[] {
  return kinds.map((k, i) =>
    // At least 1e-4: the terms that cancel inside one partition (2^31 each, a few dozen rows of
    // a join) are not seen here, only their sums.
    k === 'SUM'
      ? Math.max(1e-4, rows.reduce<number>((a, r) => a + Math.abs(Number(r[i] ?? 0)), 0) * 2 ** -48)
      : 0,
  );
}

/** Q's rows equal the expected ones by their keys, SUMs within their slack. */
function withinSlack(
  kinds: readonly ItemKind[],
  q: unknown[][],
  expected: unknown[][],
  slack: Map<string, number[]>,
): boolean {
  if (q.length !== expected.length) return false;
  const keyIdx = kinds.flatMap((k, i) => (k === 'key' ? [i] : []));
  const byKey = new Map(expected.map((r) => [jsonKey(keyIdx.map((i) => r[i])), r]));
  return q.every((r) => {
    const k = jsonKey(keyIdx.map((i) => r[i]));
    const e = byKey.get(k);
    const sl = slack.get(k);
    if (e === undefined || sl === undefined) return false;
    return r.every((x, i) => {
      if (kinds[i] === 'SUM' && typeof x === 'number' && typeof e[i] === 'number')
        return Math.abs(x - e[i]) <= sl[i]! + 1e-9 * Math.abs(x);
      return compareCells(tidemarkCell(e[i]), tidemarkCell(x)) !== 'ne';
    });
  });
}

function checkTlpRows(c: TlpCase, q: unknown[][], parts: unknown[][][]): Verdict {
  const all = parts.flat();
  const slack = new Map<string, number[]>();
  let expected: unknown[][];
  if (c.variant === 'where' || c.variant === 'having') expected = all;
  else if (c.variant === 'distinct') expected = [...new Map(all.map((r) => [jsonKey(r), r])).values()];
  else {
    // aggregate (one group) or groupby: group the partitions' rows by their key columns.
    const keyIdx = c.kinds.flatMap((k, i) => (k === 'key' ? [i] : []));
    const groups = new Map<string, unknown[][]>();
    for (const r of all) {
      const key = jsonKey(keyIdx.map((i) => r[i]));
      const g = groups.get(key);
      if (g === undefined) groups.set(key, [r]);
      else g.push(r);
    }
    // An aggregate without GROUP BY gives one row per partition, even over no rows.
    expected = [];
    for (const rows of groups.values()) {
      const row: unknown[] = [];
      for (let i = 0; i < c.kinds.length; i++) {
        const v = combine(
          c.kinds[i]!,
          rows.map((r) => r[i]),
        );
        if (v === undefined) return { status: 'bothError', detail: 'MIN/MAX over mixed types' };
        row.push(v.value);
      }
      expected.push(row);
      slack.set(jsonKey(keyIdx.map((i) => row[i])), sumSlack(c.kinds, rows));
    }
  }
  const cells = (rows: unknown[][]): Cell[][] => rows.map((r) => r.map(tidemarkCell));
  const v = compareRows(cells(q), cells(expected), false);
  if (v.equal || (slack.size > 0 && withinSlack(c.kinds, q, expected, slack)))
    return { status: 'pass', typeOnly: 0 };
  return {
    status: 'mismatch',
    kind: 'wrongResult',
    signature: 'wrongResult',
    detail: `Q vs its partitions combined: ${v.detail ?? ''}`,
    tidemark: `partitions: ${parts.map((p) => showRows(cells(p))).join(' | ')}`,
    reference: `Q: ${showRows(cells(q))}`,
  };
}

async function checkTlp(c: TlpCase, engines: Engines): Promise<Verdict> {
  const { q, parts } = tlpQueries(c);
  const r = await runAll(engines, 'tlp', [q, ...parts].map(renderQuery));
  if ('verdict' in r) return r.verdict;
  return checkTlpRows(c, r.rows[0]!, r.rows.slice(1));
}

async function checkNorec(c: NorecCase, engines: Engines): Promise<Verdict> {
  const { optimized, reference } = norecQueries(c);
  const r = await runAll(engines, 'norec', [renderQuery(optimized), renderQuery(reference)]);
  if ('verdict' in r) return r.verdict;
  const count = tidemarkCell(r.rows[0]?.[0]?.[0] ?? null);
  // SUM over no rows is NULL: zero rows counted.
  const sum = tidemarkCell(r.rows[1]?.[0]?.[0] ?? 0);
  if (compareCells(sum, count) === 'eq') return { status: 'pass', typeOnly: 0 };
  return {
    status: 'mismatch',
    kind: 'wrongResult',
    signature: 'wrongResult',
    detail: `COUNT(*) ... WHERE p gave ${showRow([count])}, SUM(CASE WHEN p ...) gave ${showRow([sum])}`,
    tidemark: showRow([count]),
    reference: showRow([sum]),
  };
}

export function checkCase(c: OracleCase, engines: Engines): Promise<Verdict> {
  if (c.oracle === 'differential') return checkDifferential(c, engines);
  if (c.oracle === 'tlp') return checkTlp(c, engines);
  return checkNorec(c, engines);
}

// ---------------------------------------------------------------------------------------------
// Reduction

/** Simpler versions of a case: its query (or TLP/NoREC parts), then its data. */
export function* caseVariants(c: OracleCase, dataToo: boolean): Generator<OracleCase> {
  if (c.oracle === 'differential') {
    for (const q of queryVariants(c.query, false)) yield { ...c, query: q };
  } else if (c.oracle === 'norec') {
    if (c.where !== undefined) yield { ...c, where: undefined };
    for (const p of exprVariants(c.pred)) yield { ...c, pred: p };
    if (c.where !== undefined) for (const w of exprVariants(c.where)) yield { ...c, where: w };
    const s: Select = norecQueries(c).reference;
    for (const v of queryVariants({ ...s, items: [] }, true)) {
      if (v.k === 'select' && v.from !== s.from) yield { ...c, from: v.from };
    }
  } else {
    for (const p of exprVariants(c.pred)) yield { ...c, pred: p };
    // Drop a non-key column; keys and GROUP BY stay matched.
    if (c.base.items.length > 1)
      for (let i = 0; i < c.base.items.length; i++) {
        if (c.kinds[i] === 'key') continue;
        yield {
          ...c,
          base: { ...c.base, items: c.base.items.filter((_, j) => j !== i) },
          kinds: c.kinds.filter((_, j) => j !== i),
        };
      }
    for (const v of queryVariants(c.base, true)) {
      // Only simplifications that keep the shape the combination relies on.
      if (v.k !== 'select' || v.groupBy.length !== c.base.groupBy.length || v.quant !== c.base.quant)
        continue;
      if (v.items.some((it, i) => it.e.k !== c.base.items[i]!.e.k)) continue;
      yield { ...c, base: v };
    }
  }
  if (dataToo) {
    const used = new Set<string>();
    for (const q of caseSelects(c)) for (const t of tablesOf(q)) used.add(t);
    for (const s of schemaVariants(c.schema, used)) yield { ...c, schema: s };
  }
}

function caseSelects(c: OracleCase): Query[] {
  if (c.oracle === 'differential') return [c.query];
  if (c.oracle === 'norec') return [norecQueries(c).optimized];
  const { q, parts } = tlpQueries(c);
  return [q, ...parts];
}

export { schemaStatements };
