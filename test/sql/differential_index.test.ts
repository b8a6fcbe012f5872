import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/index.js';
import { TidemarkError } from '../../src/index.js';
import { memDb } from '../helpers/db.js';
import { deriveSeed, Rng } from './differential/random.js';
import {
  generateSchema,
  QueryGenerator,
  schemaStatements,
  type Schema,
  type TableDef,
} from './differential/generator.js';
import { DEFAULT_FEATURES } from './differential/features.js';
import { renderExpr, renderQuery } from './differential/ast.js';
import { compareRows, tidemarkCell } from './differential/compare.js';

/**
 * Index plans against scans: generated schemas and data (the differential harness's generator),
 * random secondary indexes on them (one or two columns, UNIQUE where the data allows), and queries
 * (the harness's own, and ones aimed at the indexes: equalities, IN, ranges, BETWEEN, IS NULL and
 * <=> on their columns, with values from the data and literals of every type; ORDER BY ... LIMIT in
 * and against index order; MIN/MAX; joins on indexed columns) run three times on one database: with
 * indexes used whenever one is usable (`SET tidemark_indexes = 'prefer'`), by cost (the default),
 * and never ('off', the reference). The three must agree. TIDEMARK_DIFF_INDEX_CASES widens the run.
 */

const CASES = Number(process.env.TIDEMARK_DIFF_INDEX_CASES ?? 40);
const QUERIES_PER_CASE = 60;
const SEED = Number(process.env.TIDEMARK_DIFF_SEED ?? 20_251_208);

/** An index made on a generated table. */
interface IndexDef {
  table: string;
  name: string;
  columns: string[];
  unique: boolean;
}

/** One generated case: its schema, the index statements, and the indexes they made. */
interface Case {
  schema: Schema;
  statements: string[];
  indexes: IndexDef[];
}

async function makeCase(db: Database, rng: Rng): Promise<Case> {
  const schema = generateSchema(rng, DEFAULT_FEATURES);
  const statements = schemaStatements(schema);
  for (const s of statements) await db.query(s);
  const indexes: IndexDef[] = [];
  for (const t of schema.tables) {
    const n = rng.range(1, 3);
    for (let k = 0; k < n; k++) {
      const cols = rng.shuffle(t.columns.map((c) => c.name)).slice(0, rng.chance(0.6) ? 1 : 2);
      const def: IndexDef = {
        table: t.name,
        name: `${t.name}_i${k}`,
        columns: cols,
        unique: rng.chance(0.3),
      };
      let sql = `CREATE ${def.unique ? 'UNIQUE ' : ''}INDEX ${def.name} ON ${t.name} (${cols.join(', ')})`;
      try {
        await db.query(sql);
      } catch (e) {
        // Rows with equal values: the UNIQUE index is not made; a plain one instead.
        if (!(e instanceof TidemarkError) || e.code !== 'DUPLICATE_KEY') throw e;
        def.unique = false;
        sql = `CREATE INDEX ${def.name} ON ${t.name} (${cols.join(', ')})`;
        await db.query(sql);
      }
      statements.push(sql);
      indexes.push(def);
    }
  }
  return { schema, statements, indexes };
}

/** Queries aimed at a case's indexes. */
class IndexQueries {
  constructor(
    private readonly rng: Rng,
    private readonly c: Case,
    private readonly gen: QueryGenerator,
  ) {}

  private table(name: string): TableDef {
    return this.c.schema.tables.find((t) => t.name === name)!;
  }

  /** A value to compare a column with: one of its rows' (usually), or a literal of any type. */
  private value(t: TableDef, col: string): string {
    const j = t.columns.findIndex((c) => c.name === col);
    if (t.rows.length > 0 && this.rng.chance(0.65)) return this.rng.pick(t.rows)[j]!;
    return renderExpr(this.gen.literal(this.rng.pick(['int', 'double', 'string'] as const)));
  }

  /** A condition on one column that an index may turn into bounds. */
  private condition(t: TableDef, col: string, qualifier: string): string {
    const c = `${qualifier}${col}`;
    const op = this.rng.weighted<string>([
      ['=', 6],
      ['<', 2],
      ['<=', 2],
      ['>', 2],
      ['>=', 2],
      ['<=>', 1],
      ['BETWEEN', 2],
      ['IN', 2],
      ['IS NULL', 1],
      ['IS NOT NULL', 1],
      ['<>', 1],
    ]);
    switch (op) {
      case 'BETWEEN':
        return `${c} BETWEEN ${this.value(t, col)} AND ${this.value(t, col)}`;
      case 'IN': {
        const vals = Array.from({ length: this.rng.range(1, 4) }, () => this.value(t, col));
        if (this.rng.chance(0.2)) vals.push('NULL');
        return `${c} IN (${vals.join(', ')})`;
      }
      case 'IS NULL':
      case 'IS NOT NULL':
        return `${c} ${op}`;
      default:
        return this.rng.chance(0.2)
          ? `${this.value(t, col)} ${flip(op)} ${c}`
          : `${c} ${op} ${this.value(t, col)}`;
    }
  }

  /** Conditions on an index's leading columns (and sometimes another column), ANDed. */
  private where(ix: IndexDef, qualifier = ''): string {
    const t = this.table(ix.table);
    const conds: string[] = [];
    const k = this.rng.range(1, ix.columns.length);
    for (let i = 0; i < k; i++) conds.push(this.condition(t, ix.columns[i]!, qualifier));
    if (this.rng.chance(0.3)) conds.push(this.condition(t, this.rng.pick(t.columns).name, qualifier));
    if (this.rng.chance(0.1))
      return `${conds.join(' AND ')} OR ${this.condition(t, ix.columns[0]!, qualifier)}`;
    return conds.join(' AND ');
  }

  /** A query and whether its rows come in a defined order. */
  next(): { sql: string; ordered: boolean } {
    const ix = this.rng.pick(this.c.indexes);
    const t = this.table(ix.table);
    const all = t.columns.map((c) => c.name);
    const pk = t.primaryKey.length === 1 ? t.primaryKey[0] : undefined;
    const shape = this.rng.weighted<string>([
      ['select', 5],
      ['count', 1],
      ['order', 3],
      ['extreme', 2],
      ['join', 3],
    ]);
    switch (shape) {
      case 'select':
        return { sql: `SELECT * FROM ${t.name} WHERE ${this.where(ix)}`, ordered: false };
      case 'count':
        return { sql: `SELECT COUNT(*), SUM(1) FROM ${t.name} WHERE ${this.where(ix)}`, ordered: false };
      case 'order': {
        // Ordered by an index column, then by what makes the order total (the key, or every column).
        const col = this.rng.pick(ix.columns);
        const desc = this.rng.chance(0.5) ? ' DESC' : '';
        const tail = pk !== undefined ? [`${pk}${desc}`] : all.map((c) => `${c}${desc}`);
        const where = this.rng.chance(0.6) ? ` WHERE ${this.where(ix)}` : '';
        const limit = this.rng.chance(0.8)
          ? ` LIMIT ${this.rng.range(1, 5)}${this.rng.chance(0.3) ? ` OFFSET ${this.rng.range(1, 3)}` : ''}`
          : '';
        return {
          sql: `SELECT * FROM ${t.name}${where} ORDER BY ${col}${desc}, ${tail.join(', ')}${limit}`,
          ordered: true,
        };
      }
      case 'extreme': {
        const col = this.rng.pick(ix.columns);
        const where = this.rng.chance(0.5) ? ` WHERE ${this.where(ix)}` : '';
        return {
          sql: `SELECT ${this.rng.pick(['MIN', 'MAX'])}(${col}) FROM ${t.name}${where}`,
          ordered: false,
        };
      }
      default: {
        // A join whose inner side is indexed on the join key, the outer side narrowed or not.
        const other = this.rng.pick(this.c.schema.tables);
        const oc = this.rng.pick(other.columns).name;
        const kind = this.rng.chance(0.3) ? 'LEFT JOIN' : 'JOIN';
        const narrow = this.rng.chance(0.5)
          ? ` WHERE ${this.condition(other, this.rng.pick(other.columns).name, 'o.')}`
          : '';
        return {
          sql: `SELECT * FROM ${other.name} o ${kind} ${t.name} i ON i.${ix.columns[0]!} = o.${oc}${this.rng.chance(0.3) ? ` AND ${this.where(ix, 'i.')}` : ''}${narrow}`,
          ordered: false,
        };
      }
    }
  }
}

function flip(op: string): string {
  return { '<': '>', '<=': '>=', '>': '<', '>=': '<=' }[op] ?? op;
}

type Outcome = { ok: true; rows: unknown[][] } | { ok: false; code: string; errno: unknown };

async function run(s: { query(sql: string): Promise<{ rows: unknown[][] }> }, sql: string): Promise<Outcome> {
  try {
    return { ok: true, rows: (await s.query(sql)).rows };
  } catch (e) {
    if (!(e instanceof TidemarkError)) throw e;
    return { ok: false, code: e.code, errno: e.details?.['mysqlErrno'] };
  }
}

/** Whether two outcomes agree; an out-of-range error on one side only is allowed (see below). */
function agree(ref: Outcome, got: Outcome, ordered: boolean): { equal: boolean; detail?: string } {
  if (!ref.ok || !got.ok) {
    if (!ref.ok && !got.ok && ref.code === got.code) return { equal: true };
    // MySQL leaves open which rows an expression is evaluated on: a path that reads fewer rows
    // may not meet the row whose value overflows (1690), as an index lookup may not.
    const overflow = (o: Outcome) => !o.ok && o.errno === 1690;
    if (overflow(ref) || overflow(got)) return { equal: true };
    return { equal: false, detail: `${JSON.stringify(ref)} vs ${JSON.stringify(got)}` };
  }
  const v = compareRows(
    ref.rows.map((r) => r.map(tidemarkCell)),
    got.rows.map((r) => r.map(tidemarkCell)),
    ordered,
  );
  return v.equal ? { equal: true } : { equal: false, detail: v.detail ?? 'differ' };
}

describe('index plans against scans, on generated schemas, indexes and queries', () => {
  it(`${CASES} cases of ${QUERIES_PER_CASE} queries: 'prefer' and 'cost' give what 'off' gives`, async () => {
    const mismatches: string[] = [];
    let compared = 0;
    let indexed = 0;
    for (let k = 0; k < CASES; k++) {
      const seed = deriveSeed(SEED, k);
      const rng = new Rng(seed);
      const { db } = await memDb({ memory: { leakDetection: 'simple' } });
      try {
        const c = await makeCase(db, rng);
        const sessions = { off: db.session(), prefer: db.session(), cost: db.session() };
        await sessions.off.query("SET SESSION tidemark_indexes = 'off'");
        await sessions.prefer.query("SET SESSION tidemark_indexes = 'prefer'");
        const gen = new QueryGenerator(rng, c.schema, DEFAULT_FEATURES);
        const aimed = new IndexQueries(rng, c, gen);
        for (let q = 0; q < QUERIES_PER_CASE; q++) {
          // Two in three aimed at the indexes, the rest the harness's own queries.
          const { sql, ordered } = rng.chance(0.67)
            ? aimed.next()
            : { sql: renderQuery(gen.query({ outer: [], depth: 0, top: true })), ordered: false };
          const before = db.stats().sql;
          const ref = await run(sessions.off, sql);
          for (const mode of ['prefer', 'cost'] as const) {
            const got = await run(sessions[mode], sql);
            compared++;
            const v = agree(ref, got, ordered);
            if (!v.equal && mismatches.length < 20)
              mismatches.push(
                `case ${k} (seed ${seed}), ${mode}: ${v.detail}\n  ${c.statements.join(';\n  ')};\n  ${sql}`,
              );
          }
          const after = db.stats().sql;
          if (
            (after.indexScans ?? 0) + (after.indexLookups ?? 0) >
            (before.indexScans ?? 0) + (before.indexLookups ?? 0)
          )
            indexed++;
        }
        for (const s of Object.values(sessions)) s.end();
      } finally {
        await db.close();
      }
    }
    expect(mismatches).toEqual([]);
    // The index paths were taken, not skipped.
    expect(indexed).toBeGreaterThan(CASES * QUERIES_PER_CASE * 0.25);
    expect(compared).toBe(2 * CASES * QUERIES_PER_CASE);
  }, 600_000);
});
