import type {
  AggName,
  ArithOp,
  CompareOp,
  Expr,
  FnName,
  FromItem,
  Join,
  Limit,
  LogicalOp,
  OrderKey,
  Query,
  Select,
  SelectItem,
  SetOp,
  TableRef,
  ValueType,
} from './ast.js';
import { typeOf, width } from './ast.js';
import type { Feature } from './features.js';
import type { Rng } from './random.js';

/**
 * The random generator of schemas, data and queries. What it makes is meant to look like what
 * people write (docs: /work/shared/notes/verification.md): small tables full of NULLs, duplicates,
 * negative numbers and numeric strings; operator chains without parentheses; columns compared with
 * columns and with literals of the other type; joins with ON and WHERE conditions; subqueries in
 * every position. Everything it makes is deterministic in MySQL: no RAND/NOW, no dates, ORDER BY
 * with LIMIT only over every output column, no column outside GROUP BY that is not aggregated
 * (sql_mode ONLY_FULL_GROUP_BY, as MySQL 8), no LIMIT in IN subqueries (MariaDB refuses them).
 */

// ---------------------------------------------------------------------------------------------
// Schemas and data

export type ColumnType = 'INT' | 'BIGINT' | 'DOUBLE' | 'VARCHAR' | 'DECIMAL';

export interface ColumnDef {
  name: string;
  type: ColumnType;
  /** VARCHAR(length); DECIMAL(length, scale). */
  length: number;
  /** DECIMAL's digits after the point. */
  scale?: number;
  nullable: boolean;
}

export interface TableDef {
  name: string;
  columns: ColumnDef[];
  /** Column names; empty: no primary key. */
  primaryKey: string[];
  /** One SQL literal per column, as inserted. */
  rows: string[][];
}

export interface Schema {
  tables: TableDef[];
}

// DECIMAL columns count as 'double' for the generator: numbers that need not be integers.
const valueType = (t: ColumnType): ValueType =>
  t === 'VARCHAR' ? 'string' : t === 'DOUBLE' || t === 'DECIMAL' ? 'double' : 'int';

/** SQL text of a string literal: quotes doubled. Backslashes are never generated (their escaping differs by sql_mode). */
export const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;

const SMALL_INTS = [0, 1, -1, 2, 3, -2, 5, 7, 10, 12, 100, -100];
const RARE_INTS = [127, -128, 255, 65535, 2147483647, -2147483648];
// 64-bit integers, past 2^53 and at BIGINT's ends too (kept as text: exact on both engines).
const RARE_BIGINTS = [
  '4294967296',
  '-1099511627776',
  '123456789012345',
  '140737488355327',
  '-140737488355327',
  '9007199254740993',
  '-9007199254740993',
  '1234567890123456789',
  '9223372036854775807',
  '-9223372036854775808',
];
// DECIMAL(p, s) columns: a narrow one (scaled integers in 64 bits) and a wide one (65 digits' kind).
const DECIMAL_TYPES: [number, number][] = [
  [10, 2],
  [15, 4],
  [30, 10],
];
const DECIMALS = [
  '0',
  '1',
  '-1',
  '0.5',
  '-2.5',
  '0.1',
  '0.2',
  '0.3',
  '12.34',
  '-0.05',
  '100',
  '99.99',
  '7.125',
  '-3',
];
// Plain decimal notation only: an INSERT must load on both engines whatever the parser.
const DOUBLES = [
  '0',
  '1',
  '-1',
  '0.5',
  '-2.5',
  '3.25',
  '0.1',
  '12',
  '100',
  '-0.75',
  '1234.5',
  '2',
  '7.125',
  '-3',
];
const STRINGS = [
  '',
  'a',
  'A',
  'b',
  'abc',
  'ABC',
  'aBc',
  'abd',
  '12',
  ' 3',
  '1e2',
  '-4',
  '0',
  '1.5',
  '10',
  '9',
  '3',
  'x_y',
  '%',
  'é',
  'Ä',
  'ß',
  "it's",
  'hello world',
  'Zebra',
  'zebra',
];
const TRAILING_SPACE_STRINGS = ['a ', 'abc  ', '12 '];

function intValue(rng: Rng, big: boolean): string {
  const r = rng.float();
  if (r < 0.75) return String(rng.pick(SMALL_INTS));
  if (r < 0.9) return String(rng.range(-20, 40));
  return big && rng.chance(0.5) ? rng.pick(RARE_BIGINTS) : String(rng.pick(RARE_INTS));
}

/** A DECIMAL(p, s) value's literal: one of DECIMALS that fits, written with up to s digits. */
function decimalValue(rng: Rng, c: ColumnDef): string {
  const s = c.scale ?? 0;
  const fits = DECIMALS.filter((d) => (d.split('.')[1]?.length ?? 0) <= s);
  return rng.pick(fits);
}

function stringPool(features: ReadonlySet<Feature>): string[] {
  return features.has('trailingSpaces') ? [...STRINGS, ...TRAILING_SPACE_STRINGS] : STRINGS;
}

function columnValue(
  rng: Rng,
  c: ColumnDef,
  features: ReadonlySet<Feature>,
  pool: readonly string[],
): string {
  if (c.nullable && rng.chance(0.25)) return 'NULL';
  switch (c.type) {
    case 'INT':
      return intValue(rng, false);
    case 'BIGINT':
      return intValue(rng, true);
    case 'DOUBLE':
      return rng.pick(DOUBLES);
    case 'DECIMAL':
      return decimalValue(rng, c);
    case 'VARCHAR': {
      const fits = stringPool(features).filter((s) => [...s].length <= c.length);
      // A per-table pool of a few values makes duplicates (GROUP BY, DISTINCT, joins) common.
      const local = pool.filter((s) => [...s].length <= c.length);
      return sqlString(local.length > 0 && rng.chance(0.7) ? rng.pick(local) : rng.pick(fits));
    }
  }
}

export function generateSchema(rng: Rng, features: ReadonlySet<Feature>): Schema {
  const tables: TableDef[] = [];
  const count = rng.range(2, 4);
  for (let i = 0; i < count; i++) {
    const columns: ColumnDef[] = [];
    const ncols = rng.range(2, 5);
    for (let j = 0; j < ncols; j++) {
      const type = rng.weighted<ColumnType>([
        ['INT', 4],
        ['BIGINT', 2],
        ['DOUBLE', 2],
        ['DECIMAL', 2],
        ['VARCHAR', 3],
      ]);
      if (type === 'DECIMAL') {
        const [p, s] = rng.pick(DECIMAL_TYPES);
        columns.push({ name: `c${j}`, type, length: p, scale: s, nullable: rng.chance(0.7) });
      } else
        columns.push({ name: `c${j}`, type, length: rng.pick([1, 3, 5, 10, 20]), nullable: rng.chance(0.7) });
    }
    let primaryKey: string[] = [];
    const keyable = columns.filter((c) => c.type !== 'DOUBLE');
    const kind = rng.weighted([
      ['single', 6],
      ['composite', 2],
      ['none', 2],
    ] as const);
    if (kind !== 'none' && keyable.length > 0) {
      const n = kind === 'composite' && keyable.length >= 2 ? 2 : 1;
      primaryKey = rng
        .shuffle(keyable)
        .slice(0, n)
        .map((c) => c.name);
      for (const c of columns) if (primaryKey.includes(c.name)) c.nullable = false;
    }
    const size = rng.weighted([
      [0, 1],
      [rng.range(1, 5), 5],
      [rng.range(6, 20), 8],
      [rng.range(21, 40), 5],
    ]);
    const pool = rng.shuffle(stringPool(features)).slice(0, 5);
    const rows: string[][] = [];
    const keys = new Set<string>();
    for (let r = 0; r < size * 2 && rows.length < size; r++) {
      const row = columns.map((c) => columnValue(rng, c, features, pool));
      // Keys compare as their literal texts (keys are never DOUBLE, whose '1.5' and '1.50' would
      // be one value), except for trailing spaces: utf8mb4_bin is PAD SPACE, 'a' and 'a ' one key.
      const key = primaryKey
        .map((k) => row[columns.findIndex((c) => c.name === k)]!.replace(/ +'$/, "'"))
        .join('\u0000');
      if (primaryKey.length > 0 && keys.has(key)) continue;
      keys.add(key);
      rows.push(row);
    }
    tables.push({ name: `t${i}`, columns, primaryKey, rows });
  }
  return { tables };
}

/** The statements that create and fill a schema, the same text for both engines. */
export function schemaStatements(schema: Schema): string[] {
  const out: string[] = [];
  for (const t of schema.tables) {
    const cols = t.columns.map((c) => {
      const type =
        c.type === 'VARCHAR'
          ? `VARCHAR(${c.length})`
          : c.type === 'DECIMAL'
            ? `DECIMAL(${c.length},${c.scale ?? 0})`
            : c.type;
      return `${c.name} ${type}${c.nullable ? '' : ' NOT NULL'}`;
    });
    if (t.primaryKey.length > 0) cols.push(`PRIMARY KEY (${t.primaryKey.join(', ')})`);
    out.push(`CREATE TABLE ${t.name} (${cols.join(', ')}) DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_bin`);
    if (t.rows.length > 0) {
      out.push(
        `INSERT INTO ${t.name} (${t.columns.map((c) => c.name).join(', ')}) VALUES ${t.rows
          .map((r) => `(${r.join(', ')})`)
          .join(', ')}`,
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Queries

/** A column a query may name: of a table in its FROM, or of an enclosing query's. */
interface ColRef {
  alias: string;
  name: string;
  t: ValueType;
  /** The bare name would resolve to this column (the only one of that name in its FROM). */
  bareOk: boolean;
}

/** A table in a FROM as the generator sees it: its columns and about how many rows it has. */
interface Source {
  ref: TableRef;
  cols: ColRef[];
  rows: number;
}

/** Where an expression is generated: which columns it may name, and whether aggregates. */
interface Env {
  /** Columns an expression may name bare: in a grouped query only the grouped ones. */
  cols: ColRef[];
  /** When aggregates are allowed: the columns their arguments may use (this query's own). */
  aggCols: ColRef[] | undefined;
  /** Columns a subquery here may correlate with. */
  outer: ColRef[];
  /** Subquery nesting depth here. */
  depth: number;
  /** Aggregates must combine across TLP partitions: COUNT, SUM, MIN, MAX without DISTINCT. */
  combinableOnly?: boolean;
}

/** Row-count bound of a FROM (product of its tables): keeps joins of 40-row tables small. */
const MAX_JOIN_ROWS = 3000;
const MAX_SUBQUERY_ROWS = 400;
const MAX_SUBQUERY_DEPTH = 2;

export class QueryGenerator {
  private aliasCount = 0;

  constructor(
    readonly rng: Rng,
    readonly schema: Schema,
    readonly features: ReadonlySet<Feature>,
  ) {}

  private on(f: Feature): boolean {
    return this.features.has(f);
  }

  /** Weight w if feature f is enabled, else 0. */
  private w(f: Feature, w: number): number {
    return this.features.has(f) ? w : 0;
  }

  // ------------------------------------------------------------------ FROM

  private baseSource(t: TableDef): Source {
    const alias = `${t.name}a${this.aliasCount++}`;
    // Sometimes the table's own name, as people write when a table appears once.
    const self = this.rng.chance(0.15) && !this.usedNames.has(t.name);
    const name = self ? t.name : alias;
    this.usedNames.add(name);
    return {
      ref: { k: 'table', name: t.name, alias: name, as: this.rng.chance(0.5) },
      // Bare names are allowed once the whole FROM is known (from()): until then, qualified.
      cols: t.columns.map((c) => ({ alias: name, name: c.name, t: valueType(c.type), bareOk: false })),
      rows: t.rows.length,
    };
  }

  private readonly usedNames = new Set<string>();

  private derivedSource(depth: number): Source {
    const alias = `d${this.aliasCount++}`;
    this.usedNames.add(alias);
    const n = this.rng.range(1, 3);
    // A derived table cannot see the query around it: no outer columns.
    const q = this.query({ outer: [], depth: depth + 1, width: n, derived: true });
    const types = this.outputTypes(q);
    const names = this.outputNames(q);
    return {
      ref: { k: 'derived', q, alias },
      cols: types.map((t, i) => ({ alias, name: names[i]!, t, bareOk: false })),
      rows: this.estimateRows(q),
    };
  }

  private outputTypes(q: Query): ValueType[] {
    if (q.k === 'setop') return this.outputTypes(q.l);
    return q.items.map((i) => {
      const t = typeOf(i.e);
      return t === 'unknown' ? 'int' : t;
    });
  }

  private outputNames(q: Query): string[] {
    if (q.k === 'setop') return this.outputNames(q.l);
    return q.items.map((i, j) => i.alias ?? `c${j}`);
  }

  private estimateRows(q: Query): number {
    if (q.k === 'setop') return this.estimateRows(q.l) + this.estimateRows(q.r);
    if (q.limit !== undefined) return q.limit.count;
    if (q.groupBy.length === 0 && q.items.some((i) => i.e.k === 'agg')) return 1;
    return this.sourcesRows.get(q) ?? 40;
  }

  private readonly sourcesRows = new WeakMap<Query, number>();

  /** A FROM clause: sources joined (or listed with commas) and the WHERE conditions of comma joins. */
  private from(
    depth: number,
    maxRows: number,
    maxTables: number,
  ): { items: FromItem[]; sources: Source[]; conds: Expr[] } {
    const joins = this.on('innerJoin') || this.on('leftJoin') || this.on('crossJoin') || this.on('commaJoin');
    const n = joins
      ? Math.min(
          maxTables,
          this.rng.weighted([
            [1, 5],
            [2, 5],
            [3, 2],
            [4, 1],
          ]),
        )
      : 1;
    const sources: Source[] = [];
    const items: FromItem[] = [];
    const conds: Expr[] = [];
    let rows = 1;
    for (let i = 0; i < n; i++) {
      let src: Source | undefined;
      for (let attempt = 0; attempt < 6 && src === undefined; attempt++) {
        const cand =
          this.on('derivedTables') && depth < MAX_SUBQUERY_DEPTH && this.rng.chance(0.12)
            ? this.derivedSource(depth)
            : this.baseSource(this.rng.pick(this.schema.tables));
        if (i === 0 || rows * Math.max(cand.rows, 1) <= maxRows) src = cand;
      }
      if (src === undefined) break;
      rows *= Math.max(src.rows, 1);
      if (i === 0) {
        sources.push(src);
        items.push(src.ref);
        continue;
      }
      const kind = this.rng.weighted([
        ['INNER', this.w('innerJoin', 3)],
        ['JOIN', this.w('innerJoin', 2)],
        ['LEFT', this.w('leftJoin', 4)],
        ['CROSS', this.w('crossJoin', 1)],
        ['comma', this.w('commaJoin', 3)],
      ] as const);
      if (kind === 'comma') {
        // A new comma item; ON conditions inside the earlier items cannot see it, WHERE can.
        const cond = this.rng.chance(0.8) ? this.joinCondition(sources, src) : undefined;
        if (cond !== undefined) conds.push(cond);
        sources.push(src);
        items.push(src.ref);
        continue;
      }
      // Join onto the last comma item: its ON may name that item's tables and the new one.
      const last = items.length - 1;
      const visible = this.itemSources(items[last]!, sources);
      const on = kind === 'CROSS' ? undefined : this.joinCondition(visible, src);
      const join: Join = {
        k: 'join',
        type: kind,
        l: items[last]!,
        r: src.ref,
        on: on ?? this.lit('int', '1'),
      };
      if (kind === 'CROSS') join.on = undefined;
      items[last] = join;
      sources.push(src);
    }
    // Columns whose name appears in one source only may be written bare.
    const count = new Map<string, number>();
    for (const s of sources) for (const c of s.cols) count.set(c.name, (count.get(c.name) ?? 0) + 1);
    for (const s of sources) for (const c of s.cols) c.bareOk = count.get(c.name) === 1;
    return { items, sources, conds };
  }

  private itemSources(item: FromItem, sources: readonly Source[]): Source[] {
    const refs = new Set<TableRef>();
    const walk = (f: FromItem): void => {
      if (f.k === 'join') {
        walk(f.l);
        refs.add(f.r);
      } else refs.add(f);
    };
    walk(item);
    return sources.filter((s) => refs.has(s.ref));
  }

  /** Usually an equality between the new source and an earlier one, sometimes with more. */
  private joinCondition(earlier: readonly Source[], src: Source): Expr {
    const left = this.rng.pick(earlier);
    const all = [...earlier.flatMap((s) => s.cols), ...src.cols];
    const env: Env = { cols: all, aggCols: undefined, outer: [], depth: MAX_SUBQUERY_DEPTH };
    if (this.rng.chance(0.2)) return this.pred(env, 1);
    const a = this.rng.pick(left.cols);
    const same = src.cols.filter((c) => c.t === a.t);
    const b = same.length > 0 && this.rng.chance(0.85) ? this.rng.pick(same) : this.rng.pick(src.cols);
    let cond: Expr = {
      k: 'cmp',
      op: this.rng.chance(0.9) ? '=' : this.rng.pick(this.compareOps()),
      l: this.col(a),
      r: this.col(b),
    };
    if (this.rng.chance(0.25)) cond = { k: 'logic', op: 'AND', l: cond, r: this.pred(env, 1) };
    return cond;
  }

  // ------------------------------------------------------------------ queries

  /**
   * A query: a SELECT, or (at most `width`-column) set operations of them. `width` fixes the number
   * of output columns (set operation branches, derived tables, IN subqueries). `derived`: its items
   * are named c0, c1, ... (a derived table's columns must have distinct names).
   */
  query(opts: { outer: ColRef[]; depth: number; width?: number; derived?: boolean; top?: boolean }): Query {
    const setOps = (
      ['union', 'unionAll', 'intersect', 'intersectAll', 'except', 'exceptAll'] as const
    ).filter((f) => this.on(f));
    if (setOps.length > 0 && this.rng.chance(opts.top === true ? 0.2 : 0.1)) {
      const w = opts.width ?? this.rng.range(1, 3);
      return this.setOp({ ...opts, width: w }, this.rng.range(1, 3), setOps);
    }
    return this.select({ ...opts, order: opts.top === true || opts.derived === true });
  }

  private setOp(
    opts: { outer: ColRef[]; depth: number; width?: number; derived?: boolean; top?: boolean },
    ops: number,
    kinds: readonly ('union' | 'unionAll' | 'intersect' | 'intersectAll' | 'except' | 'exceptAll')[],
  ): SetOp {
    // MariaDB also nests a chain implicitly where INTERSECT binds tighter (A EXCEPT B INTERSECT C),
    // with the same effect: a subquery that may see enclosing columns gets one operator only.
    if (opts.outer.length > 0) ops = 1;
    const parens = this.on('setOpParens');
    // MariaDB makes a parenthesized set operation inside another a derived table, which cannot see
    // an enclosing query's columns (error 1054): such nesting only where there are none to see.
    const nest = parens && opts.outer.length === 0;
    const branch = (): Query => this.select({ ...opts, order: parens && this.rng.chance(0.2), named: true });
    let q: Query = branch();
    let result: SetOp | undefined;
    for (let i = 0; i < ops; i++) {
      const kind = this.rng.pick(kinds);
      const op = kind.startsWith('union') ? 'UNION' : kind.startsWith('intersect') ? 'INTERSECT' : 'EXCEPT';
      const all = kind.endsWith('All');
      const r = nest && this.rng.chance(0.15) ? this.setOp(opts, 1, kinds) : branch();
      result = {
        k: 'setop',
        op,
        quant: all ? 'ALL' : this.rng.chance(0.15) ? 'DISTINCT' : undefined,
        l: q,
        r,
        lParens: q.k === 'setop' ? nest && this.rng.chance(0.15) : parens && this.rng.chance(0.15),
        rParens: r.k === 'setop' || (parens && this.rng.chance(0.15)),
        orderBy: [],
        limit: undefined,
      };
      q = result;
    }
    const out = result!;
    if ((opts.top === true || opts.derived === true) && this.on('orderLimit') && this.rng.chance(0.3)) {
      out.orderBy = this.orderKeys(width(out), false);
      out.limit = this.limit();
    }
    return out;
  }

  /** ORDER BY every output column (so the order is total), in a random order and directions. */
  private orderKeys(n: number, exprForm: boolean): OrderKey[] {
    return this.rng.shuffle([...Array(n).keys()]).map((index) => ({
      index,
      desc: this.rng.chance(0.4),
      form: this.rng.weighted([
        ['position', 3],
        ['alias', 2],
        ['expr', exprForm ? 3 : 0],
      ] as const),
    }));
  }

  private limit(): Limit | undefined {
    if (this.rng.chance(0.3)) return undefined;
    const offset = this.rng.chance(0.4) ? this.rng.range(0, 5) : undefined;
    return { count: this.rng.range(0, 8), offset, comma: offset !== undefined && this.rng.chance(0.4) };
  }

  select(opts: {
    outer: ColRef[];
    depth: number;
    width?: number;
    derived?: boolean;
    order?: boolean;
    /** Restrict the shape (TLP variants). */
    mode?: 'row' | 'agg' | 'group';
    /** Name every output column distinctly (the first branch of a set operation). */
    named?: boolean;
    /** In 'agg' mode: every item a bare aggregate, so the result is one row (scalar subqueries). */
    single?: boolean;
    maxRows?: number;
  }): Select {
    const sub = opts.depth > 0;
    const noFrom = !sub && opts.mode === undefined && this.rng.chance(0.03);
    const f = noFrom
      ? { items: [], sources: [], conds: [] }
      : this.from(opts.depth, opts.maxRows ?? (sub ? MAX_SUBQUERY_ROWS : MAX_JOIN_ROWS), sub ? 2 : 4);
    const local = f.sources.flatMap((s) => s.cols);
    const rowEnv: Env = {
      cols: [...local, ...(this.on('correlated') ? opts.outer : [])],
      aggCols: undefined,
      outer: [...local, ...(this.on('correlated') ? opts.outer : [])],
      depth: opts.depth,
    };
    const mode =
      opts.mode ??
      (local.length === 0
        ? 'row'
        : this.rng.weighted([
            ['row', 6],
            ['agg', this.w('aggregates', 1.5)],
            ['group', this.on('groupBy') ? 2.5 : 0],
          ] as const));
    let groupBy: Expr[] = [];
    let keys: ColRef[] = [];
    let env: Env = rowEnv;
    if (mode === 'group') {
      // Keys of distinct names: MariaDB refuses a grouped column in HAVING when another key has
      // the same name (error 1463).
      keys = this.pickKeys(local, 3);
      groupBy = keys.map((c) => this.col(c));
      // Only grouped columns outside aggregates (ONLY_FULL_GROUP_BY), and no outer ones: MariaDB
      // refuses an outer column beside an aggregate (error 1463), which MySQL allows.
      env = {
        cols: keys,
        aggCols: this.on('aggregates') ? local : undefined,
        outer: keys,
        depth: opts.depth,
      };
    } else if (mode === 'agg') {
      // No GROUP BY: every column of this query's FROM must be inside an aggregate.
      env = { cols: [], aggCols: local, outer: [], depth: opts.depth };
    }
    const n =
      opts.width ??
      this.rng.weighted([
        [1, 4],
        [2, 4],
        [3, 2],
        [4, 1],
      ]);
    const item = (): Expr => {
      if (mode === 'agg')
        return opts.single === true || this.rng.chance(0.8) ? this.aggregate(env) : this.value(env, 1).e;
      if (mode === 'group') {
        const r = this.rng.float();
        if (r < 0.4 && env.aggCols !== undefined) return this.aggregate(env);
        if (r < 0.8) return this.col(this.rng.pick(keys));
        return this.value(env, 2).e;
      }
      if (local.length > 0 && this.rng.chance(0.35)) return this.col(this.rng.pick(local));
      return this.rng.chance(0.25) ? this.pred(env, 2) : this.value(env, 2).e;
    };
    const items: SelectItem[] = [];
    for (let i = 0; i < n; i++) {
      // A derived table's columns need distinct names, and so does a parenthesized set operation
      // inside another (MariaDB makes it a derived table: error 1060). Names unique in the whole
      // query (v7, v8, ...), so that none is also a column name in a HAVING or ORDER BY (error 1052).
      const alias =
        opts.derived === true || opts.named === true
          ? `v${this.aliasCount++}`
          : this.rng.chance(0.3)
            ? `x${i}`
            : undefined;
      items.push({ e: item(), alias });
    }
    let where: Expr | undefined =
      f.conds.length > 0 ? f.conds.reduce((a, b) => ({ k: 'logic', op: 'AND', l: a, r: b })) : undefined;
    if (local.length > 0 && this.rng.chance(0.6)) {
      const p = this.pred(rowEnv, 3);
      where =
        where === undefined
          ? p
          : { k: 'logic', op: this.rng.chance(0.8) ? 'AND' : this.rng.pick(this.andOps()), l: where, r: p };
    }
    const having =
      mode === 'group' && this.on('having') && this.rng.chance(0.4) ? this.pred(env, 2) : undefined;
    const quant = this.rng.weighted([
      [undefined, 8],
      ['DISTINCT', this.w('distinct', 2)],
      ['ALL', this.w('selectAll', 0.7)],
    ] as const);
    const s: Select = {
      k: 'select',
      quant,
      items,
      from: f.items,
      where,
      groupBy,
      having,
      orderBy: [],
      limit: undefined,
    };
    if (opts.order === true && this.on('orderLimit') && this.rng.chance(0.3)) {
      s.orderBy = this.orderKeys(items.length, mode === 'row' && quant === undefined);
      s.limit = this.limit();
    }
    this.sourcesRows.set(
      s,
      f.sources.reduce((a, x) => a * Math.max(1, x.rows), 1),
    );
    return s;
  }

  // ------------------------------------------------------------------ expressions

  private col(c: ColRef): Expr {
    return { k: 'col', alias: c.alias, name: c.name, t: c.t, qualified: !c.bareOk || this.rng.chance(0.6) };
  }

  private lit(t: ValueType | 'decimal', text: string): Expr {
    return { k: 'lit', t, text };
  }

  literal(t: ValueType): Expr {
    if (t === 'null' || this.rng.chance(0.06)) return this.lit('null', 'NULL');
    if (t === 'string') return this.lit('string', sqlString(this.rng.pick(stringPool(this.features))));
    if (t === 'double') {
      const choices: [Expr, number][] = [
        [
          this.lit(
            'double',
            this.rng.pick(['2.5e0', '-1e0', '1e2', '0.5e0', '3e-1', '1.25e1', '-7.5e0', '0e0']),
          ),
          this.w('doubleLiterals', 2),
        ],
        [
          this.lit('decimal', this.rng.pick(['1.5', '-0.25', '0.1', '2.0', '100.75'])),
          this.w('decimalLiterals', 2),
        ],
        [this.lit('int', String(intValue(this.rng, true))), 1],
      ];
      return this.rng.weighted(choices);
    }
    return this.lit('int', String(intValue(this.rng, true)));
  }

  private compareOps(): CompareOp[] {
    const ops: CompareOp[] = ['=', '<>', '!=', '<', '<=', '>', '>='];
    if (this.on('nullSafeEqual')) ops.push('<=>');
    return ops;
  }

  private andOps(): LogicalOp[] {
    const ops: LogicalOp[] = ['AND', 'OR'];
    if (this.on('xor')) ops.push('XOR');
    if (this.on('logicalSymbols')) ops.push('&&', '||');
    return ops;
  }

  /** A column or literal of about type t (another type with mixedTypes, sometimes). */
  private operand(env: Env, t: ValueType): Expr {
    const want =
      this.on('mixedTypes') && this.rng.chance(0.25)
        ? this.rng.pick<ValueType>(['int', 'string', 'double'])
        : t;
    const cols = env.cols.filter((c) => c.t === want || (want !== 'string' && c.t !== 'string'));
    if (cols.length > 0 && this.rng.chance(0.45)) return this.col(this.rng.pick(cols));
    return this.literal(want);
  }

  /** A condition: comparisons, predicates and their chains (without parentheses, mostly). */
  pred(env: Env, d: number): Expr {
    if (d <= 0) return this.atom(env, 0);
    const kind = this.rng.weighted([
      ['chain', 3],
      ['atom', 4],
      ['not', 1],
      ['paren', 0.5],
    ] as const);
    switch (kind) {
      case 'chain': {
        const ops = this.andOps();
        let e = this.pred(env, d - 1);
        const n = this.rng.range(1, 3);
        for (let i = 0; i < n; i++)
          e = { k: 'logic', op: this.rng.pick(ops), l: e, r: this.pred(env, d - 1) };
        return e;
      }
      case 'not':
        return this.on('logicalSymbols') && this.rng.chance(0.25)
          ? { k: 'unary', op: '!', e: this.atom(env, d - 1) }
          : { k: 'not', e: this.pred(env, d - 1) };
      case 'paren':
        return { k: 'paren', e: this.pred(env, d - 1) };
      case 'atom':
        return this.atom(env, d - 1);
    }
  }

  /** One predicate: a comparison, IS, BETWEEN, IN, EXISTS, LIKE, or a bare value used as a truth value. */
  private atom(env: Env, d: number): Expr {
    const sub = env.depth < MAX_SUBQUERY_DEPTH;
    const kind = this.rng.weighted([
      ['cmp', 8],
      ['isNull', 2],
      ['isBool', this.w('isBoolean', 1)],
      ['between', this.w('between', 1.5)],
      ['inList', this.w('inList', 1.5)],
      ['inSub', sub ? this.w('inSubquery', 1) : 0],
      ['exists', sub ? this.w('exists', 1) : 0],
      ['like', this.w('like', 1.5)],
      ['value', 1],
    ] as const);
    const v = (): { e: Expr; t: ValueType } => this.value(env, d);
    switch (kind) {
      case 'cmp': {
        const l = v();
        const r = this.rng.chance(0.5) ? { e: this.operand(env, l.t), t: l.t } : v();
        return { k: 'cmp', op: this.rng.pick(this.compareOps()), l: l.e, r: r.e };
      }
      case 'isNull':
        return {
          k: 'is',
          e: this.rng.chance(0.7) ? v().e : this.pred(env, d - 1),
          not: this.rng.chance(0.4),
          what: 'NULL',
        };
      case 'isBool':
        return {
          k: 'is',
          e: this.rng.chance(0.6) ? this.pred(env, d - 1) : v().e,
          not: this.rng.chance(0.4),
          what: this.rng.pick(['TRUE', 'FALSE', 'UNKNOWN'] as const),
        };
      case 'between': {
        const x = v();
        return {
          k: 'between',
          e: x.e,
          not: this.rng.chance(0.3),
          lo: this.operand(env, x.t),
          hi: this.operand(env, x.t),
        };
      }
      case 'inList': {
        const x = v();
        const list = Array.from({ length: this.rng.range(1, 4) }, () =>
          this.rng.chance(0.15) ? this.lit('null', 'NULL') : this.operand(env, x.t),
        );
        return { k: 'inList', e: x.e, not: this.rng.chance(0.35), list };
      }
      case 'inSub': {
        const x = v();
        return { k: 'inSub', e: x.e, not: this.rng.chance(0.35), q: this.subquery(env, 'in') };
      }
      case 'exists':
        return { k: 'exists', not: this.rng.chance(0.35), q: this.subquery(env, 'exists') };
      case 'like': {
        const strings = env.cols.filter((c) => c.t === 'string');
        const x =
          strings.length > 0 && this.rng.chance(0.7)
            ? this.col(this.rng.pick(strings))
            : this.on('mixedTypes')
              ? v().e
              : this.literal('string');
        const pattern = this.rng.chance(0.85)
          ? this.lit('string', sqlString(this.rng.pick(LIKE_PATTERNS)))
          : this.operand(env, 'string');
        return { k: 'like', e: x, not: this.rng.chance(0.3), pattern };
      }
      case 'value':
        return v().e;
    }
  }

  /** A value expression and (about) its type. */
  value(env: Env, d: number, hint?: ValueType): { e: Expr; t: ValueType } {
    const sub = env.depth < MAX_SUBQUERY_DEPTH;
    const numeric =
      this.on('arithmetic') ||
      this.on('modulo') ||
      this.on('intDiv') ||
      this.on('bitOps') ||
      this.on('division');
    const kind =
      d <= 0
        ? this.rng.weighted([
            ['col', env.cols.length > 0 ? 3 : 0],
            ['lit', 1.5],
            ['agg', env.aggCols !== undefined ? 1.5 : 0],
          ] as const)
        : this.rng.weighted([
            ['col', env.cols.length > 0 ? 5 : 0],
            ['lit', 2],
            ['agg', env.aggCols !== undefined ? 3 : 0],
            ['arith', numeric ? 3 : 0],
            ['unary', this.on('unaryChains') || this.on('bitOps') ? 1 : 0],
            ['fn', this.w('functions', 2)],
            ['case', this.w('caseExpr', 1)],
            ['scalar', sub ? this.w('scalarSubquery', 1) : 0],
            ['bool', 0.7],
            ['paren', 0.3],
          ] as const);
    switch (kind) {
      case 'col': {
        const typed = hint === undefined ? env.cols : env.cols.filter((c) => c.t === hint);
        const c = this.rng.pick(typed.length > 0 && this.rng.chance(0.8) ? typed : env.cols);
        return { e: this.col(c), t: c.t };
      }
      case 'lit': {
        const t =
          hint ??
          this.rng.weighted<ValueType>([
            ['int', 4],
            ['string', 3],
            ['double', 1],
            ['null', 0.5],
          ]);
        const e = this.literal(t);
        return { e, t: e.k === 'lit' && e.t !== 'decimal' ? e.t : 'double' };
      }
      case 'agg': {
        const e = this.aggregate(env);
        return { e, t: typeOf(e) === 'string' ? 'string' : 'int' };
      }
      case 'arith':
        return this.arith(env, d);
      case 'unary': {
        const ops: ('-' | '+' | '~')[] = [];
        if (this.on('unaryChains')) ops.push('-', '-', '+');
        if (this.on('bitOps')) ops.push('~');
        let e = this.value(env, d - 1, 'int').e;
        const n = this.rng.weighted([
          [1, 3],
          [2, 2],
          [3, 1],
        ]);
        for (let i = 0; i < n; i++) e = { k: 'unary', op: this.rng.pick(ops), e };
        return { e, t: 'int' };
      }
      case 'fn':
        return this.fn(env, d);
      case 'case':
        return this.caseExpr(env, d, hint);
      case 'scalar':
        return { e: { k: 'scalar', q: this.subquery(env, 'scalar') }, t: 'int' };
      case 'bool':
        return { e: this.pred(env, d - 1), t: 'int' };
      case 'paren': {
        const x = this.value(env, d - 1, hint);
        return { e: { k: 'paren', e: x.e }, t: x.t };
      }
    }
  }

  /** An arithmetic or bit operator chain of 2-4 operands, without parentheses. */
  private arith(env: Env, d: number): { e: Expr; t: ValueType } {
    const ops: ArithOp[] = [];
    if (this.on('arithmetic')) ops.push('+', '-', '*', '+', '-');
    if (this.on('modulo')) ops.push('%', 'MOD');
    if (this.on('intDiv')) ops.push('DIV');
    if (this.on('division')) ops.push('/');
    if (this.on('bitOps')) ops.push('|', '&', '^', '<<', '>>');
    const num = (): Expr => {
      const t =
        this.on('mixedTypes') && this.rng.chance(0.15) ? 'string' : this.rng.chance(0.75) ? 'int' : 'double';
      return this.rng.chance(0.6) ? this.operand(env, t) : this.value(env, d - 1, t).e;
    };
    let e = num();
    let t: ValueType = typeOf(e) === 'double' ? 'double' : 'int';
    const n = this.rng.weighted([
      [1, 4],
      [2, 3],
      [3, 1],
    ]);
    for (let i = 0; i < n; i++) {
      const op = this.rng.pick(ops);
      // Shifts by a small count mostly: a shift past 63 is 0, worth a few, not most.
      const r =
        (op === '<<' || op === '>>') && this.rng.chance(0.7)
          ? this.lit('int', String(this.rng.range(0, 4)))
          : num();
      if (typeOf(r) === 'double' || op === '/') t = 'double';
      e = { k: 'arith', op, l: e, r };
    }
    return { e, t };
  }

  private fn(env: Env, d: number): { e: Expr; t: ValueType } {
    const name = this.rng.pick<FnName>([
      'COALESCE',
      'IFNULL',
      'NULLIF',
      'IF',
      'ABS',
      'LENGTH',
      'CONCAT',
      'UPPER',
      'LOWER',
    ]);
    const t = this.rng.weighted<ValueType>([
      ['int', 3],
      ['string', 2],
      ['double', 1],
    ]);
    const v = (h: ValueType = t): Expr =>
      this.rng.chance(0.5) ? this.operand(env, h) : this.value(env, d - 1, h).e;
    switch (name) {
      case 'COALESCE':
        return { e: { k: 'fn', name, args: Array.from({ length: this.rng.range(2, 3) }, () => v()) }, t };
      case 'IFNULL':
      case 'NULLIF':
        return { e: { k: 'fn', name, args: [v(), v()] }, t };
      case 'IF':
        return { e: { k: 'fn', name, args: [this.pred(env, d - 1), v(), v()] }, t };
      case 'ABS':
        return { e: { k: 'fn', name, args: [v(t === 'string' ? 'int' : t)] }, t: t === 'string' ? 'int' : t };
      case 'LENGTH':
        return { e: { k: 'fn', name, args: [v('string')] }, t: 'int' };
      case 'CONCAT':
        return {
          e: { k: 'fn', name, args: Array.from({ length: this.rng.range(1, 3) }, () => v()) },
          t: 'string',
        };
      case 'UPPER':
      case 'LOWER':
        return { e: { k: 'fn', name, args: [v('string')] }, t: 'string' };
    }
  }

  private caseExpr(env: Env, d: number, hint?: ValueType): { e: Expr; t: ValueType } {
    const t =
      hint ??
      this.rng.weighted<ValueType>([
        ['int', 3],
        ['string', 2],
        ['double', 1],
      ]);
    // Branches of one type mostly: MySQL's CASE of mixed types is a string.
    const result = (): Expr =>
      this.operand(env, this.rng.chance(0.85) ? t : this.rng.pick<ValueType>(['int', 'string']));
    const n = this.rng.range(1, 3);
    const whens: { when: Expr; then: Expr }[] = [];
    if (this.rng.chance(0.5)) {
      const x = this.value(env, d - 1);
      for (let i = 0; i < n; i++) whens.push({ when: this.operand(env, x.t), then: result() });
      return { e: { k: 'case', operand: x.e, whens, else: this.rng.chance(0.6) ? result() : undefined }, t };
    }
    for (let i = 0; i < n; i++) whens.push({ when: this.pred(env, d - 1), then: result() });
    return {
      e: { k: 'case', operand: undefined, whens, else: this.rng.chance(0.6) ? result() : undefined },
      t,
    };
  }

  /** An aggregate over this query's own columns (Env.aggCols). */
  aggregate(env: Env): Expr {
    const cols = env.aggCols ?? [];
    const names: AggName[] =
      env.combinableOnly === true ? ['COUNT', 'SUM', 'MIN', 'MAX'] : ['COUNT', 'SUM', 'MIN', 'MAX', 'AVG'];
    const name = this.rng.pick(names);
    if (name === 'COUNT' && (cols.length === 0 || this.rng.chance(0.35)))
      return { k: 'agg', name, quant: undefined, arg: undefined };
    // The argument: a column mostly, an expression of this query's columns sometimes; no subqueries.
    const argEnv: Env = { cols, aggCols: undefined, outer: [], depth: MAX_SUBQUERY_DEPTH };
    const numeric = name === 'SUM' || name === 'AVG';
    const typed = numeric ? cols.filter((c) => c.t !== 'string') : cols;
    const arg =
      cols.length === 0
        ? this.literal('int')
        : this.rng.chance(0.7)
          ? this.col(this.rng.pick(typed.length > 0 && this.rng.chance(0.85) ? typed : cols))
          : this.value(argEnv, 1, numeric ? 'int' : undefined).e;
    const quant =
      env.combinableOnly === true
        ? undefined
        : this.rng.weighted([
            [undefined, 6],
            ['DISTINCT', this.w('aggregateDistinct', 2)],
            ['ALL', this.w('aggregateAll', 1)],
          ] as const);
    return { k: 'agg', name, quant, arg };
  }

  /** A subquery for IN (one column, no LIMIT), EXISTS or a scalar (one column, one row mostly). */
  private subquery(env: Env, kind: 'in' | 'exists' | 'scalar'): Query {
    // Inside the subquery a bare name would find the subquery's own column first: qualified.
    const outer = env.outer.map((c) => ({ ...c, bareOk: false }));
    const depth = env.depth + 1;
    if (kind !== 'scalar') {
      if (this.rng.chance(0.1)) return this.query({ outer, depth, width: 1 });
      return this.select({ outer, depth, width: 1 });
    }
    // A scalar subquery gives one row at most, always: an aggregate without GROUP BY, or the
    // smallest or greatest value (ORDER BY its one column, LIMIT 1). One that may give two rows is
    // an error only if it is evaluated, and when it is evaluated is the engine's choice: MariaDB
    // skips it over an empty outer table, tidemark evaluates uncorrelated ones once up front.
    const ordered = this.on('orderLimit') && this.rng.chance(0.4);
    const s = this.select({ outer, depth, width: 1, mode: ordered ? 'row' : 'agg', single: true });
    if (ordered) {
      s.orderBy = [{ index: 0, desc: this.rng.chance(0.5), form: 'position' }];
      s.limit = { count: 1, offset: undefined, comma: false };
    }
    return s;
  }

  // ------------------------------------------------------------------ oracle cases

  /** A FROM for NoREC and TLP: sources and the WHERE conditions of comma joins. */
  fromClause(): { items: FromItem[]; env: Env; local: ColRef[]; conds: Expr[] } {
    const f = this.from(0, MAX_JOIN_ROWS, 4);
    const local = f.sources.flatMap((s) => s.cols);
    return {
      items: f.items,
      env: { cols: local, aggCols: undefined, outer: local, depth: 0 },
      local,
      conds: f.conds,
    };
  }

  /** Env of a grouped query over `keys` (for TLP's HAVING partitions). */
  groupEnv(keys: ColRef[], local: ColRef[], combinableOnly: boolean): Env {
    return { cols: keys, aggCols: local, outer: keys, depth: 0, combinableOnly };
  }

  /** GROUP BY keys: 1 to max columns of distinct names. */
  pickKeys(local: ColRef[], max = 2): ColRef[] {
    const n = this.rng.weighted([
      [1, 3],
      [2, 2],
      [3, max >= 3 ? 1 : 0],
    ]);
    const out: ColRef[] = [];
    for (const c of this.rng.shuffle(local))
      if (out.length < n && !out.some((k) => k.name === c.name)) out.push(c);
    return out;
  }

  colExpr(c: ColRef): Expr {
    return this.col(c);
  }
}

const LIKE_PATTERNS = [
  '%',
  'a%',
  '%a',
  '_',
  '__',
  '%1%',
  'A%',
  '%b_',
  '1%',
  '',
  '%é%',
  'x_y',
  '1e%',
  '_3',
  'abc',
  '%c',
  'Z%',
  '% %',
];

export type { ColRef, Env };
