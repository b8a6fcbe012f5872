/**
 * SQL statements against a tidemark database: `db.query`, `tx.query` and sessions (the shell, the
 * server). Parsed and planned statements are cached by their text (and the schema they were planned
 * against), so a repeated statement with `?` parameters costs its execution only.
 */
import type { ColumnType, Row, TableSpec } from '../catalog/schema.js';
import { TidemarkError } from '../errors.js';
import type { MemoryPool } from '../mem/index.js';
import type { Transaction } from '../txn/transaction.js';
import {
  columnTypeOf,
  defaultValue,
  encodeTuple,
  META_TABLE,
  metaKey,
  ROWID,
  specOf,
  tableFromSpec,
  TUPLE_KEY,
  type SqlColumn,
  type SqlIndex,
  type SqlObject,
  type SqlTable,
  type SqlView,
} from './catalog.js';
import type { Expr } from './expr.js';
import { constantLevel, mentionExpr, mentionQuery, mentions, unsupported } from './bind.js';
import { constValue, materialize, type Op } from './ops/op.js';
import { pointKey, type KeyDigits } from './ops/keys.js';
import { rowValue, TableScan } from './ops/scan.js';
import { Project } from './ops/rows.js';
import { parseSql } from './parse.js';
import type * as A from './parser/ast.js';
import { Planner } from './plan/planner.js';
import type { PlanCatalog } from './plan/rel.js';
import { getv, QueryMemory, type Batch, type Ctx, type SessionInfo, type SqlCounters } from './vector.js';
import {
  dateText,
  Decimal,
  exactOf,
  hashKey,
  sameKey,
  likeRegex,
  parseDate,
  roundHalfAway,
  stringToDecimal,
  stringToNumber,
  toNumber,
  toText,
  type SqlValue,
} from './values.js';
import {
  canonicalInt,
  DECIMAL_MAX_PRECISION,
  DECIMAL_MAX_SCALE,
  divRound as divRoundHalfAway,
  INT64_MIN,
  UINT64_MAX,
} from '../util/decimal.js';

export interface QueryResult {
  /** Output column names (empty for statements that return no rows). */
  columns: string[];
  rows: unknown[][];
  /** Rows inserted, updated (changed) or deleted; 0 for queries. */
  affectedRows: number;
  /** After an INSERT that made AUTO_INCREMENT values: the first of them (MySQL's LAST_INSERT_ID). */
  insertId?: number | bigint;
}

/** What the SQL layer needs of the database. */
export interface SqlHost {
  tables(): string[];
  describeTable(name: string): TableSpec;
  createTable(name: string, spec: TableSpec): Promise<void>;
  dropTable(name: string): Promise<void>;
  /** A transaction that the caller commits or rolls back. */
  _begin(): Transaction;
  _commit(tx: Transaction): Promise<void>;
  _rollback(tx: Transaction, reason: string, cause?: unknown): void;
  /** A point read at the newest commit, without a transaction (db.get). */
  get(
    table: string,
    key: unknown,
    options: { columns?: readonly string[] },
  ): Promise<Record<string, unknown> | undefined>;
  /** About how many rows a table holds (join ordering). */
  _estimatedRows(name: string): number;
  /** Bumped by every createTable/dropTable. */
  readonly _schemaVersion: number;
  _queryPool(): MemoryPool;
}

const PLAN_CACHE_ENTRIES = 1000;
const STATEMENT_ATTEMPTS = 8;

interface Prepared {
  version: number;
  statements: A.Statement[];
  params: number;
  /** Plans of SELECT statements by position. */
  plans: Map<number, { op: Op; names: string[] }>;
  /** SELECTs that are one point read of plain columns, by position (null: not one). */
  points: Map<number, PointPlan | null>;
  /** The planned VALUES of short INSERTs with placeholders, by position (DEFAULT: undefined). */
  values: Map<number, (Expr | undefined)[][]>;
}

/** INSERTs of at most this many rows keep their planned VALUES with the statement. */
const KEPT_VALUES_ROWS = 64;

/** A SELECT of plain columns by a key equality: run as one lookup, without a transaction. */
interface PointPlan {
  table: string;
  keyType: ColumnType;
  keyDigits: KeyDigits | undefined;
  key: Expr;
  fetch: string[];
  types: ColumnType[];
  /** For each output column, its index in `fetch`. */
  out: number[];
  names: string[];
}

const NO_ROWS: Batch = { len: 1, cols: [] };

function conflict(e: unknown): boolean {
  return e instanceof TidemarkError && e.code === 'CONFLICT';
}

/** The SQL engine of one database. */
export class SqlEngine implements PlanCatalog {
  private readonly cache = new Map<string, Prepared>();
  readonly counters: SqlCounters = { statements: 0, failed: 0, zoneSkippedGroups: 0 };

  get plansCached(): number {
    return this.cache.size;
  }
  private meta: Map<string, SqlObject> | undefined;
  private metaVersion = -1;
  private readonly parsedViews = new Map<string, { sql: string; query: A.Query; columns?: string[] }>();
  /** Next values of auto-increment columns and hidden row ids (exact past 2^53: bigints). */
  private readonly nextIds = new Map<string, bigint>();
  readonly session: SqlSession;
  /** DDL statements run one at a time. */
  private ddlTurn: Promise<void> = Promise.resolve();

  constructor(readonly host: SqlHost) {
    this.session = new SqlSession(this);
  }

  // ---- catalog ----

  /** Whether the catalog in memory is the one of the current schema version. */
  private get metaCurrent(): boolean {
    return this.meta !== undefined && this.metaVersion === this.host._schemaVersion;
  }

  /** The SQL catalog, read at the newest commit when it changed (never at a caller's old snapshot). */
  private async withMeta(): Promise<void> {
    if (this.metaCurrent) return;
    const version = this.host._schemaVersion;
    const meta = new Map<string, SqlObject>();
    if (this.host.tables().includes(META_TABLE)) {
      await this.atNewest(async (tx) => {
        for await (const row of tx.scan(META_TABLE)) {
          meta.set(String(row.name), JSON.parse(String(row.def)) as SqlObject);
        }
      });
    }
    this.meta = meta;
    this.metaVersion = version;
    this.parsedViews.clear();
  }

  /** Run fn in a read transaction at the newest commit, rolled back however fn ends. */
  private async atNewest<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const tx = this.host._begin();
    try {
      return await fn(tx);
    } finally {
      this.host._rollback(tx, 'rolled back');
    }
  }

  table(name: string): SqlTable | undefined {
    const m = this.meta?.get(`table:${name}`);
    if (m !== undefined && m.kind === 'table' && this.host.tables().includes(name)) return m;
    if (name === META_TABLE || !this.host.tables().includes(name)) return undefined;
    return tableFromSpec(name, this.host.describeTable(name));
  }

  view(name: string): { query: A.Query; columns?: string[] } | undefined {
    const m = this.meta?.get(`view:${name}`);
    if (m === undefined || m.kind !== 'view') return undefined;
    let p = this.parsedViews.get(name);
    if (p === undefined || p.sql !== m.sql) {
      p = { sql: m.sql, query: viewQuery(m.sql), ...(m.columns !== undefined ? { columns: m.columns } : {}) };
      this.parsedViews.set(name, p);
    }
    return p;
  }

  estimatedRows(name: string): number {
    return this.host._estimatedRows(name);
  }

  /** Tables and views (the shell's .tables), the catalog read first. */
  async listObjects(): Promise<{ name: string; kind: 'table' | 'view' }[]> {
    await this.withMeta();
    return this.objects();
  }

  /** The CREATE statement of a table or view (the shell's .schema), or undefined. */
  async createStatement(name: string): Promise<string | undefined> {
    await this.withMeta();
    const v = this.meta?.get(`view:${name}`);
    if (v !== undefined && v.kind === 'view') return `CREATE VIEW ${name} AS ${v.sql}`;
    const t = this.table(name);
    if (t === undefined) return undefined;
    const lines = t.columns.map((c) => {
      let s = `  ${c.name} ${sqlTypeText(c)}`;
      if (!c.nullable) s += ' NOT NULL';
      if (c.autoIncrement === true) s += ' AUTO_INCREMENT';
      if (c.default !== undefined) {
        const d = defaultValue(c);
        s += ` DEFAULT ${c.default === 'CURRENT_TIMESTAMP' ? 'CURRENT_TIMESTAMP' : typeof d === 'string' ? `'${d.replace(/'/g, "''")}'` : d instanceof Date ? `'${dateText(d)}'` : String(d)}`;
      }
      return s;
    });
    if (t.primaryKey.length > 0) lines.push(`  PRIMARY KEY (${t.primaryKey.join(', ')})`);
    for (const u of t.unique) lines.push(`  UNIQUE (${u.join(', ')})`);
    const out = [`CREATE TABLE ${name} (\n${lines.join(',\n')}\n)`];
    for (const m of this.meta?.values() ?? []) {
      if (m.kind === 'index' && m.table === name && !m.unique)
        out.push(`CREATE INDEX ${m.name} ON ${name} (${m.columns.join(', ')})`);
    }
    return out.join(';\n');
  }

  /** Table names for SHOW TABLES and the shell (views included, the meta table not). */
  objects(): { name: string; kind: 'table' | 'view' }[] {
    const out: { name: string; kind: 'table' | 'view' }[] = this.host
      .tables()
      .filter((t) => t !== META_TABLE)
      .map((name) => ({ name, kind: 'table' as const }));
    for (const m of this.meta?.values() ?? [])
      if (m.kind === 'view') out.push({ name: m.name, kind: 'view' });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private async putMeta(o: SqlObject | undefined, key: string): Promise<void> {
    if (!this.host.tables().includes(META_TABLE)) {
      await this.host.createTable(META_TABLE, {
        columns: { name: 'string', def: 'string' },
        primaryKey: 'name',
      });
    }
    const tx = this.host._begin();
    try {
      if (o === undefined) await tx.delete(META_TABLE, key);
      else await tx.upsert(META_TABLE, { name: key, def: JSON.stringify(o) });
      await this.host._commit(tx);
    } catch (e) {
      this.host._rollback(tx, 'rolled back', e);
      throw e;
    }
    if (o === undefined) this.meta?.delete(key);
    else this.meta?.set(key, o);
    this.cache.clear();
  }

  // ---- preparing ----

  prepare(sql: string): Prepared {
    const version = this.host._schemaVersion;
    const hit = this.cache.get(sql);
    // Oldest first out past PLAN_CACHE_ENTRIES (a hit is not moved: that costs more than it saves).
    if (hit !== undefined && hit.version === version) return hit;
    const parsed = parseSql(sql);
    const p: Prepared = {
      version,
      statements: parsed.statements,
      params: parsed.params,
      plans: new Map(),
      points: new Map(),
      values: new Map(),
    };
    this.cache.set(sql, p);
    if (this.cache.size > PLAN_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    return p;
  }

  planSelect(p: Prepared, i: number, query: A.Query): { op: Op; names: string[] } {
    let plan = p.plans.get(i);
    if (plan === undefined) {
      plan = plannerFor(this, query).select(query);
      p.plans.set(i, plan);
    }
    return plan;
  }

  /** `tx.query`. */
  queryIn(tx: Transaction, sql: string, params: readonly unknown[]): Promise<QueryResult> {
    return queryInTransaction(this, tx, sql, params);
  }

  /** A constant expression of a session statement (SET), evaluated at once. */
  async constant(ast: A.Expr, params: readonly SqlValue[], session: SessionInfo): Promise<SqlValue> {
    const m = mentions();
    mentionExpr(ast, m);
    const e = new Planner(this, m).expr(ast, constantLevel());
    return this.atNewest(async (tx) => {
      const ctx = this.ctx(tx, params, 'SET', session);
      try {
        return await constValue(e, ctx);
      } finally {
        ctx.mem.release();
      }
    });
  }

  /** SHOW TABLES, SHOW DATABASES, SHOW COLUMNS FROM t, DESCRIBE t, SHOW VARIABLES and the like. */
  async show(ast: A.ShowStatement | A.DescribeStatement, session: SessionInfo): Promise<QueryResult> {
    await this.withMeta();
    const result = (columns: string[], rows: unknown[][]): QueryResult => ({
      columns,
      rows,
      affectedRows: 0,
    });
    if (ast.kind === 'describe') return this.columnsOf(ast.table.name);
    if (ast.where !== undefined) throw unsupported('SHOW ... WHERE');
    const like = ast.like !== undefined ? likeRegex(ast.like) : undefined;
    const matches = (name: string) => like === undefined || like.test(name);
    switch (ast.what) {
      case 'DATABASES':
        return result(['Database'], matches(session.database) ? [[session.database]] : []);
      case 'TABLES': {
        const rows = this.objects()
          .filter((o) => matches(o.name))
          .map((o) => (ast.full ? [o.name, o.kind === 'view' ? 'VIEW' : 'BASE TABLE'] : [o.name]));
        const name = `Tables_in_${session.database}${ast.like !== undefined ? ` (${ast.like})` : ''}`;
        return result(ast.full ? [name, 'Table_type'] : [name], rows);
      }
      case 'COLUMNS':
        return this.columnsOf(ast.target!.name, matches);
      case 'VARIABLES': {
        const rows = [...session.system.entries()]
          .filter(([k]) => matches(k))
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, v]) => [k, v === null ? null : toText(v)]);
        return result(['Variable_name', 'Value'], rows);
      }
      case 'WARNINGS':
      case 'ERRORS':
        return result(['Level', 'Code', 'Message'], []);
      case 'COUNT WARNINGS':
      case 'COUNT ERRORS':
        return result([`@@session.${ast.what === 'COUNT WARNINGS' ? 'warning' : 'error'}_count`], [[0]]);
      case 'STATUS':
        return result(['Variable_name', 'Value'], []);
      case 'CREATE TABLE': {
        const name = ast.target!.name;
        const create = await this.createStatement(name);
        if (create === undefined) {
          throw new TidemarkError('NOT_FOUND', `unknown table ${name}`, { details: { mysqlErrno: 1146 } });
        }
        return result(['Table', 'Create Table'], [[name, create]]);
      }
    }
    throw unsupported(`SHOW ${ast.what}`);
  }

  /** DESCRIBE t and SHOW COLUMNS FROM t. */
  private columnsOf(name: string, matches: (name: string) => boolean = () => true): QueryResult {
    const t = this.targetTable(name);
    const rows = t.columns
      .filter((c) => matches(c.name))
      .map((c) => [
        c.name,
        sqlTypeText(c).toLowerCase(),
        c.nullable ? 'YES' : 'NO',
        t.primaryKey.includes(c.name) ? 'PRI' : t.unique.some((u) => u[0] === c.name) ? 'UNI' : '',
        c.default === undefined || c.default === null
          ? null
          : c.default === 'CURRENT_TIMESTAMP'
            ? 'CURRENT_TIMESTAMP'
            : toText(defaultValue(c)),
        c.autoIncrement === true ? 'auto_increment' : '',
      ]);
    return { columns: ['Field', 'Type', 'Null', 'Key', 'Default', 'Extra'], rows, affectedRows: 0 };
  }

  /** The statement as a point read, if it is one. */
  pointPlan(p: Prepared, i: number): PointPlan | undefined {
    let pp = p.points.get(i);
    if (pp === undefined) {
      // Planned against the current catalog only (the next statement's run loads it).
      if (!this.metaCurrent) return undefined;
      pp = null;
      const ast = p.statements[i]!;
      if (ast.kind === 'select') {
        let plan: { op: Op; names: string[] };
        try {
          plan = this.planSelect(p, i, ast.query);
        } catch {
          // The statement's full run reports the error (and counts it).
          return undefined;
        }
        const op = plan.op;
        if (op instanceof Project && op.input instanceof TableScan) {
          const scan = op.input;
          const eq = scan.range?.eq;
          if (
            scan.pointOnly &&
            eq !== undefined &&
            eq.subs.length === 0 &&
            op.exprs.every((e) => e.column !== undefined && e.subs.length === 0)
          ) {
            pp = {
              table: scan.table,
              keyType: scan.keyType,
              keyDigits: scan.keyDigits,
              key: eq,
              fetch: scan.columns.map((c) => c.name),
              types: scan.columns.map((c) => c.type),
              out: op.exprs.map((e) => e.column!),
              names: plan.names,
            };
          }
        }
      }
      p.points.set(i, pp);
    }
    return pp ?? undefined;
  }

  /** Run a point read; undefined when the key is not of the key's kind (the plan then runs). */
  point(
    pp: PointPlan,
    params: readonly SqlValue[],
    tx: Transaction | undefined,
  ): QueryResult | undefined | Promise<QueryResult | undefined> {
    const v = getv(pp.key.ev(NO_ROWS, { params } as Ctx), 0);
    const key = pointKey(v, pp.keyType, pp.keyDigits);
    if (key === undefined) return undefined;
    const result: QueryResult = { columns: [...pp.names], rows: [], affectedRows: 0 };
    if (key === 'empty') return result;
    const found = (row: Row | undefined): QueryResult => {
      if (row !== undefined) result.rows.push(pp.out.map((j) => rowValue(pp.types[j]!, row[pp.fetch[j]!])));
      return result;
    };
    // In a transaction, synchronously when its writes or the memtables hold the answer.
    const row =
      tx !== undefined
        ? tx._get(pp.table, key, pp.fetch)
        : this.host.get(pp.table, key, { columns: pp.fetch });
    return row instanceof Promise ? row.then(found) : found(row);
  }

  // ---- running ----

  private ctx(tx: Transaction, params: readonly SqlValue[], what: string, session: SessionInfo): Ctx {
    const mem = new QueryMemory(this.host._queryPool(), what);
    const check = (): void => {
      if (tx.state !== 'active') {
        throw new TidemarkError('CLOSED', `the query's transaction ended (${tx.endReason ?? tx.state})`);
      }
    };
    let last = performance.now();
    return {
      tx,
      params,
      session,
      outer: [],
      cache: new Map(),
      mem,
      counters: this.counters,
      check,
      breathe() {
        check();
        if (performance.now() - last < BREATHE_MS) return undefined;
        return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
          last = performance.now();
          check();
        });
      },
    };
  }

  /** Run a statement (already prepared) in `tx`. */
  async runStatement(
    p: Prepared,
    i: number,
    tx: Transaction,
    params: readonly SqlValue[],
    sql: string,
    session: SessionInfo = defaultSession(),
  ): Promise<QueryResult> {
    if (!this.metaCurrent) await this.withMeta();
    const ast = p.statements[i]!;
    const ctx = this.ctx(tx, params, sql, session);
    try {
      switch (ast.kind) {
        case 'select': {
          const plan = this.planSelect(p, i, ast.query);
          // A sort on top hands over its rows as they are (their memory already charged).
          if (plan.op.rows !== undefined && plan.op.width === plan.names.length)
            return { columns: [...plan.names], rows: await plan.op.rows(ctx), affectedRows: 0 };
          const rows: unknown[][] = [];
          for await (const b of plan.op.run(ctx)) {
            for (let r = 0; r < b.len; r++) {
              const row = new Array<unknown>(plan.names.length);
              for (let c = 0; c < plan.names.length; c++) row[c] = getv(b.cols[c]!, r);
              rows.push(row);
            }
            ctx.mem.charge(64 + 16 * plan.names.length * b.len);
          }
          return { columns: [...plan.names], rows, affectedRows: 0 };
        }
        case 'explain': {
          const inner = ast.statement;
          if (inner.kind !== 'select') throw unsupported('EXPLAIN of anything but SELECT');
          const plan = this.planSelect(p, i, inner.query);
          return { columns: ['plan'], rows: plan.op.explain().map((l) => [l]), affectedRows: 0 };
        }
        // A failed write statement leaves nothing behind in the transaction (it goes on).
        case 'insert':
          return await tx._statement(() => this.insert(ast, tx, ctx, p, i));
        case 'update':
          return await tx._statement(() => this.update(ast, tx, ctx, p, i));
        case 'delete':
          return await tx._statement(() => this.delete(ast, tx, ctx, p, i));
      }
      throw unsupported(`the statement ${ast.kind}`);
    } finally {
      ctx.mem.release();
    }
  }

  // ---- DML ----

  private targetTable(name: string): SqlTable {
    const t = this.table(name);
    if (t === undefined) {
      if (this.view(name) !== undefined) throw unsupported('writing to a view');
      throw new TidemarkError('NOT_FOUND', `unknown table ${name}`, {
        details: { table: name, mysqlErrno: 1146 },
      });
    }
    return t;
  }

  /** A row of values (in t.columns order, undefined where not given) to a tidemark row. */
  private async completeRow(
    t: SqlTable,
    given: (SqlValue | undefined)[],
    tx: Transaction,
    generated?: { first?: number | bigint },
  ): Promise<Record<string, unknown>> {
    const row: Record<string, unknown> = {};
    for (let c = 0; c < t.columns.length; c++) {
      const col = t.columns[c]!;
      let v = given[c];
      if (col.autoIncrement === true) {
        if (v === undefined || v === null || v === 0) {
          v = await this.nextId(t, col.name, tx);
          if (generated !== undefined) generated.first ??= v;
        } else if (typeof v === 'number' || typeof v === 'bigint' || v instanceof Decimal) {
          const d = exactOf(v);
          if (d !== undefined) await this.sawId(t, col.name, divRoundHalfAway(d.u, d.s), tx);
        }
      }
      if (v === undefined) {
        if (
          col.default === undefined &&
          !col.nullable &&
          !(t.primaryKey.includes(col.name) && col.autoIncrement)
        ) {
          throw new TidemarkError('SCHEMA', `column ${col.name} has no default value`, {
            details: { table: t.name, column: col.name, mysqlErrno: 1364 },
          });
        }
        v = defaultValue(col);
      }
      row[col.name] = coerce(t, col, v);
    }
    if (t.keyColumn === ROWID) row[ROWID] = await this.nextId(t, ROWID, tx);
    if (t.keyColumn === TUPLE_KEY) {
      row[TUPLE_KEY] = encodeTuple(
        t.primaryKey.map((k) =>
          sqlOf(
            t.columns.find((c) => c.name === k)!,
            row[k],
          ),
        ),
      );
    }
    return row;
  }

  /** The next value of an auto-increment column or hidden row id: one more than the greatest. */
  private async nextId(t: SqlTable, column: string, tx: Transaction): Promise<number | bigint> {
    const key = `${t.name}\u0000${column}`;
    let next = this.nextIds.get(key);
    if (next === undefined) {
      // The greatest value at the newest commit and in the caller's transaction (its own writes).
      const newest = await this.atNewest((fresh) => greatest(fresh, t, column));
      const mine = await greatest(tx, t, column);
      next = (newest > mine ? newest : mine) + 1n;
    }
    this.nextIds.set(key, next + 1n);
    return canonicalInt(next);
  }

  /** An explicit value in an auto-increment column: later automatic values go past it, as MySQL's do. */
  private async sawId(t: SqlTable, column: string, v: bigint, tx: Transaction): Promise<void> {
    const key = `${t.name}\u0000${column}`;
    let next = this.nextIds.get(key);
    if (next === undefined) {
      next = BigInt(await this.nextId(t, column, tx));
      this.nextIds.set(key, next);
    }
    if (v >= next) this.nextIds.set(key, v + 1n);
  }

  private async insert(
    ast: A.InsertStatement,
    tx: Transaction,
    ctx: Ctx,
    p: Prepared,
    i: number,
  ): Promise<QueryResult> {
    // The first AUTO_INCREMENT value this INSERT makes: MySQL's LAST_INSERT_ID.
    const generated: { first?: number | bigint } = {};
    const r = await this.insertRows(ast, tx, ctx, p, i, generated);
    if (generated.first !== undefined) r.insertId = generated.first;
    return r;
  }

  private async insertRows(
    ast: A.InsertStatement,
    tx: Transaction,
    ctx: Ctx,
    p: Prepared,
    i: number,
    generated: { first?: number | bigint },
  ): Promise<QueryResult> {
    if (ast.onDuplicate !== undefined) throw unsupported('ON DUPLICATE KEY UPDATE');
    if (ast.ignore) throw unsupported('INSERT IGNORE');
    const t = this.targetTable(ast.table.name);
    const source = ast.source;
    const columns = source.kind === 'set' ? source.set.map((a) => a.column.name) : ast.columns;
    const positions = this.columnPositions(t, columns);
    const tuples: SqlValue[][] = [];
    if (source.kind === 'values' || source.kind === 'set') {
      // Planned once for a statement run again and again (short, with placeholders).
      let planned = p.values.get(i);
      if (planned === undefined) {
        const rows = source.kind === 'values' ? source.rows : [source.set.map((a) => a.value)];
        const m = mentions();
        for (const r of rows) for (const e of r) mentionExpr(e, m);
        const planner = new Planner(this, m);
        const level = constantLevel();
        planned = rows.map((row) =>
          row.map((e) =>
            e.kind === 'default' && e.column === undefined ? undefined : planner.expr(e, level),
          ),
        );
        if (p.params > 0 && planned.length <= KEPT_VALUES_ROWS) p.values.set(i, planned);
      }
      for (const row of planned) {
        const vals: SqlValue[] = [];
        for (const e of row)
          vals.push(e === undefined ? (undefined as unknown as SqlValue) : await constValue(e, ctx));
        // VALUES () gives every column its default.
        if (vals.length === 0 && columns === undefined)
          for (let c = 0; c < positions.length; c++) vals.push(undefined as unknown as SqlValue);
        tuples.push(vals);
      }
    } else {
      const plan = this.planSelect(p, i, source.query);
      for (const r of await materialize(plan.op, ctx)) tuples.push(r);
    }
    const rows: Record<string, unknown>[] = [];
    for (const vals of tuples) {
      if (vals.length !== positions.length) {
        throw new TidemarkError('INVALID_ARGUMENT', `${vals.length} values for ${positions.length} columns`, {
          details: { mysqlErrno: 1136 },
        });
      }
      const given = new Array<SqlValue | undefined>(t.columns.length).fill(undefined);
      positions.forEach((pos, k) => (given[pos] = vals[k]));
      rows.push(await this.completeRow(t, given, tx, generated));
    }
    if (rows.length === 0) return { columns: [], rows: [], affectedRows: 0 };
    await this.checkUnique(t, rows, tx, []);
    if (ast.replace) {
      let affected = 0;
      for (const r of rows) {
        const existed = (await tx.get(t.name, r[t.keyColumn], { columns: [t.keyColumn] })) !== undefined;
        affected += existed ? 2 : 1;
        await tx.upsert(t.name, r);
      }
      return { columns: [], rows: [], affectedRows: affected };
    }
    await tx.insert(t.name, rows);
    return { columns: [], rows: [], affectedRows: rows.length };
  }

  private columnPositions(t: SqlTable, columns: readonly string[] | undefined): number[] {
    if (columns === undefined) return t.columns.map((_, i) => i);
    const seen = new Set<number>();
    return columns.map((c) => {
      const n = c.toLowerCase();
      const i = t.columns.findIndex((x) => x.name.toLowerCase() === n);
      if (i < 0) {
        throw new TidemarkError('SCHEMA', `unknown column ${c} in ${t.name}`, {
          details: { table: t.name, column: c, mysqlErrno: 1054 },
        });
      }
      if (seen.has(i))
        throw new TidemarkError('INVALID_ARGUMENT', `column ${c} given twice`, {
          details: { mysqlErrno: 1110 },
        });
      seen.add(i);
      return i;
    });
  }

  /** UNIQUE columns: no two rows (committed, or being written) with the same non-null values. */
  private async checkUnique(
    t: SqlTable,
    rows: Record<string, unknown>[],
    tx: Transaction,
    replacing: unknown[],
  ): Promise<void> {
    if (t.unique.length === 0) return;
    // Keys compared as SQL values (a DECIMAL key comes from a scan as its text, from a row as a Decimal).
    const keyCol = t.columns.find((c) => c.name === t.keyColumn);
    const kh = (v: unknown): string => hashKey(keyCol !== undefined ? sqlOf(keyCol, v) : (v as SqlValue));
    const skip = new Set(replacing.map(kh));
    for (const cols of t.unique) {
      const keyOf = (r: Record<string, unknown>): string | undefined => {
        let k = '';
        for (const c of cols) {
          const v = r[c];
          if (v === null || v === undefined) return undefined;
          k += `${hashKey(
            sqlOf(
              t.columns.find((x) => x.name === c)!,
              v,
            ),
          )}\u0001`;
        }
        return k;
      };
      const mine = new Map<string, unknown>();
      for (const r of rows) {
        const k = keyOf(r);
        if (k === undefined) continue;
        if (mine.has(k)) throw duplicate(t, cols);
        mine.set(k, r[t.keyColumn]);
      }
      for await (const b of tx.scanBatches(t.name, { columns: [t.keyColumn, ...cols] })) {
        for (let i = 0; i < b.length; i++) {
          const r: Record<string, unknown> = {};
          for (const c of [t.keyColumn, ...cols]) {
            r[c] = b.nulls?.[c]?.[i] === 1 ? null : (b.columns[c] as ArrayLike<unknown>)[i];
          }
          const k = keyOf(r);
          if (k === undefined) continue;
          const owner = mine.get(k);
          if (owner === undefined && !mine.has(k)) continue;
          const key = r[t.keyColumn];
          if (skip.has(kh(key))) continue;
          if (kh(owner) === kh(key)) continue;
          throw duplicate(t, cols);
        }
      }
    }
  }

  /**
   * The rows a write statement's WHERE selects: a plan over the table with its hidden key visible,
   * giving the key, then (with `wholeRows`) every column, then the `extra` expressions.
   */
  private matching(
    target: A.TableName,
    where: A.Expr | undefined,
    orderBy: A.OrderItem[],
    limit: A.Limit | undefined,
    t: SqlTable,
    extra: A.Expr[],
    wholeRows = true,
  ): { op: Op; names: string[] } {
    const withKey: SqlTable =
      t.keyColumn === ROWID || t.keyColumn === TUPLE_KEY
        ? {
            ...t,
            columns: [
              ...t.columns,
              {
                name: t.keyColumn,
                sqlType: 'BIGINT',
                type: t.keyColumn === ROWID ? 'int64' : 'bytes',
                nullable: false,
              },
            ],
          }
        : t;
    const catalog: PlanCatalog = {
      table: (n) => (n === t.name ? withKey : this.table(n)),
      view: (n) => this.view(n),
      estimatedRows: (n) => this.estimatedRows(n),
    };
    const column = (name: string): A.Expr => ({ kind: 'column', at: 0, name });
    const items: A.SelectItem[] = [
      column(t.keyColumn),
      ...(wholeRows ? t.columns : []).map((c) => column(c.name)),
      ...extra,
    ].map((expr) => ({ kind: 'item', expr, text: '' }));
    const query: A.Query = {
      kind: 'query',
      at: 0,
      body: {
        kind: 'select',
        at: 0,
        distinct: false,
        items,
        from: [target],
        ...(where !== undefined ? { where } : {}),
        groupBy: [],
        withRollup: false,
      },
      orderBy,
      ...(limit !== undefined ? { limit } : {}),
      text: '',
    };
    return plannerFor(catalog, query).select(query);
  }

  private async update(
    ast: A.UpdateStatement,
    tx: Transaction,
    ctx: Ctx,
    p: Prepared,
    i: number,
  ): Promise<QueryResult> {
    const target = ast.tables[0]!;
    if (ast.tables.length !== 1 || target.kind !== 'table') throw unsupported('UPDATE of several tables');
    if (ast.ignore) throw unsupported('UPDATE IGNORE');
    const t = this.targetTable(target.name);
    const alias = target.alias ?? target.name;
    const sets: { pos: number; e: A.Expr }[] = ast.set.map((s) => {
      const n = s.column.name.toLowerCase();
      const pos = t.columns.findIndex((c) => c.name.toLowerCase() === n);
      if (pos < 0 || (s.column.table !== undefined && s.column.table.toLowerCase() !== alias.toLowerCase())) {
        throw new TidemarkError('SCHEMA', `unknown column ${s.column.name} in ${t.name}`, {
          details: { table: t.name, column: s.column.name, mysqlErrno: 1054 },
        });
      }
      return { pos, e: s.value };
    });
    // The plan of the rows to change is kept with the statement, as a SELECT's is.
    let plan = p.plans.get(i);
    if (plan === undefined) {
      // Assignments apply left to right (MySQL's single-table UPDATE): a later one reads the
      // columns an earlier one assigned as assigned.
      const assigned = new Map<string, A.Expr>();
      for (const set of sets) {
        if (set.e.kind === 'default') throw unsupported('SET column = DEFAULT');
        set.e = substituteColumns(set.e, assigned, alias);
        assigned.set(t.columns[set.pos]!.name.toLowerCase(), set.e);
      }
      plan = this.matching(
        target,
        ast.where,
        ast.orderBy,
        ast.limit,
        t,
        sets.map((s) => s.e),
      );
      p.plans.set(i, plan);
    }
    const found = await materialize(plan.op, ctx);
    const ncols = t.columns.length;
    let changed = 0;
    const newRows: {
      oldKey: unknown;
      row: Record<string, unknown>;
      /** The assigned columns only: what an update in place changes. */
      patch: Record<string, unknown>;
      keyChanged: boolean;
    }[] = [];
    for (const r of found) {
      const oldKey = r[0];
      const row: Record<string, unknown> = {};
      const patch: Record<string, unknown> = {};
      let differs = false;
      let keyChanged = false;
      for (let c = 0; c < ncols; c++) row[t.columns[c]!.name] = engineOf(t.columns[c]!, r[1 + c]!);
      sets.forEach((s, k) => {
        const col = t.columns[s.pos]!;
        const v = coerce(t, col, r[1 + ncols + k]!);
        const before = r[1 + s.pos]!;
        if (!sameKey(sqlOf(col, v), before)) {
          differs = true;
          if (t.primaryKey.includes(col.name)) keyChanged = true;
        }
        row[col.name] = v;
        patch[col.name] = v;
      });
      if (!differs) continue;
      changed++;
      if (t.keyColumn === ROWID) row[ROWID] = oldKey;
      else if (t.keyColumn === TUPLE_KEY) {
        row[TUPLE_KEY] = encodeTuple(
          t.primaryKey.map((k) =>
            sqlOf(
              t.columns.find((c) => c.name === k)!,
              row[k],
            ),
          ),
        );
      }
      newRows.push({ oldKey, row, patch, keyChanged });
    }
    await this.checkUnique(
      t,
      newRows.map((n) => n.row),
      tx,
      newRows.map((n) => n.oldKey),
    );
    // Keys that change: delete every old row first, then insert (a key may move onto another's old key).
    for (const n of newRows) if (n.keyChanged) await tx.delete(t.name, keyValue(t, n.oldKey));
    const moved = newRows.filter((n) => n.keyChanged).map((n) => n.row);
    if (moved.length > 0) await tx.insert(t.name, moved);
    for (const n of newRows) {
      if (n.keyChanged) continue;
      await tx.update(t.name, keyValue(t, n.oldKey), n.patch);
    }
    return { columns: [], rows: [], affectedRows: changed };
  }

  private async delete(
    ast: A.DeleteStatement,
    tx: Transaction,
    ctx: Ctx,
    p: Prepared,
    i: number,
  ): Promise<QueryResult> {
    const target = ast.from[0]!;
    if (ast.targets.length > 0 || ast.from.length !== 1 || target.kind !== 'table')
      throw unsupported('DELETE from several tables');
    if (ast.ignore) throw unsupported('DELETE IGNORE');
    const t = this.targetTable(target.name);
    let plan = p.plans.get(i);
    if (plan === undefined) {
      // Only the keys are needed: no other column is read (or decoded). With ORDER BY, the whole
      // rows, as before: a position there counts in the key-and-columns list.
      plan = this.matching(target, ast.where, ast.orderBy, ast.limit, t, [], ast.orderBy.length > 0);
      p.plans.set(i, plan);
    }
    const found = await materialize(plan.op, ctx);
    let n = 0;
    for (const r of found) if (await tx.delete(t.name, keyValue(t, r[0]))) n++;
    return { columns: [], rows: [], affectedRows: n };
  }

  // ---- DDL ----

  async ddl(ast: A.Statement): Promise<QueryResult> {
    const turn = this.ddlTurn.then(() => this.ddlNow(ast));
    this.ddlTurn = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private async ddlNow(ast: A.Statement): Promise<QueryResult> {
    await this.withMeta();
    const none: QueryResult = { columns: [], rows: [], affectedRows: 0 };
    switch (ast.kind) {
      case 'createTable':
        await this.createTable(ast);
        return none;
      case 'dropTable':
        await this.dropEach(ast.tables, ast.ifExists, 'table', async (name) => {
          await this.host.dropTable(name);
          for (const m of [...(this.meta?.values() ?? [])]) {
            if (m.kind === 'index' && m.table === name) await this.putMeta(undefined, metaKey(m));
          }
          if (this.meta?.has(`table:${name}`)) await this.putMeta(undefined, `table:${name}`);
          for (const k of [...this.nextIds.keys()]) if (k.startsWith(`${name}\u0000`)) this.nextIds.delete(k);
          this.cache.clear();
        });
        return none;
      case 'createView': {
        const name = ast.view.name;
        if (this.table(name) !== undefined || (this.view(name) !== undefined && !ast.orReplace)) {
          throw new TidemarkError('INVALID_ARGUMENT', `table or view ${name} already exists`, {
            details: { mysqlErrno: 1050 },
          });
        }
        const text = ast.query.text;
        // Check it plans now, as the catalog will be (this view replaced), so that a broken view, or
        // one reaching itself, is refused at creation.
        const query = viewQuery(text);
        const next: PlanCatalog = {
          table: (n) => this.table(n),
          view: (n) => (n === name ? { query } : this.view(n)),
          estimatedRows: (n) => this.estimatedRows(n),
        };
        const planned = plannerFor(next, query).select(query);
        if (ast.columns !== undefined && ast.columns.length !== planned.names.length) {
          throw new TidemarkError(
            'INVALID_ARGUMENT',
            'the view column list and the SELECT differ in length',
            {
              details: { mysqlErrno: 1353 },
            },
          );
        }
        const view: SqlView = {
          kind: 'view',
          name,
          sql: text,
          ...(ast.columns !== undefined ? { columns: ast.columns } : {}),
        };
        await this.putMeta(view, metaKey(view));
        return none;
      }
      case 'dropView':
        await this.dropEach(ast.views, ast.ifExists, 'view', (name) =>
          this.putMeta(undefined, `view:${name}`),
        );
        return none;
      case 'createIndex': {
        const tname = ast.table.name;
        const t = this.targetTable(tname);
        const name = ast.name;
        const cols: string[] = ast.parts.map((part) => {
          const n = part.column.toLowerCase();
          const col = t.columns.find((x) => x.name.toLowerCase() === n);
          if (col === undefined)
            throw new TidemarkError('SCHEMA', `unknown column ${part.column} in ${tname}`, {
              details: { mysqlErrno: 1072 },
            });
          return col.name;
        });
        if (this.meta?.has(`index:${tname}:${name}`)) {
          throw new TidemarkError('INVALID_ARGUMENT', `duplicate index name ${name}`, {
            details: { mysqlErrno: 1061 },
          });
        }
        if (ast.unique) {
          const t2: SqlTable = { ...t, unique: [...t.unique, cols] };
          await this.checkExistingUnique(t2, cols);
          await this.putMeta(t2, metaKey(t2));
        }
        const idx: SqlIndex = { kind: 'index', name, table: tname, columns: cols, unique: ast.unique };
        await this.putMeta(idx, metaKey(idx));
        return none;
      }
      case 'dropIndex': {
        const name = ast.name;
        let tname: string;
        if (ast.table === undefined) {
          // Without ON: the index of that name, if exactly one table has one.
          const owners = [...(this.meta?.values() ?? [])].filter(
            (m) => m.kind === 'index' && m.name === name,
          );
          if (owners.length > 1) {
            throw new TidemarkError(
              'INVALID_ARGUMENT',
              `several tables have an index ${name}: say which with ON`,
            );
          }
          tname = owners.length === 1 ? (owners[0] as SqlIndex).table : '';
        } else tname = ast.table.name;
        const m = this.meta?.get(`index:${tname}:${name}`);
        if (m === undefined || m.kind !== 'index') {
          throw new TidemarkError('NOT_FOUND', `unknown index ${name} on ${tname}`, {
            details: { mysqlErrno: 1091 },
          });
        }
        if (m.unique) {
          const t = this.targetTable(tname);
          const t2: SqlTable = { ...t, unique: t.unique.filter((u) => u.join(',') !== m.columns.join(',')) };
          await this.putMeta(t2, metaKey(t2));
        }
        await this.putMeta(undefined, metaKey(m));
        return none;
      }
    }
    throw unsupported(ddlName(ast));
  }

  /** DROP TABLE/VIEW [IF EXISTS] a, b: each dropped in turn; a missing one is NOT_FOUND unless IF EXISTS. */
  private async dropEach(
    names: readonly A.TableName[],
    ifExists: boolean,
    kind: 'table' | 'view',
    drop: (name: string) => Promise<void>,
  ): Promise<void> {
    for (const n of names) {
      const name = n.name;
      if ((kind === 'table' ? this.table(name) : this.view(name)) === undefined) {
        if (ifExists) continue;
        throw new TidemarkError('NOT_FOUND', `unknown ${kind} ${name}`, {
          details: { table: name, mysqlErrno: 1051 },
        });
      }
      await drop(name);
    }
  }

  private async checkExistingUnique(t: SqlTable, cols: string[]): Promise<void> {
    await this.atNewest(async (tx) => {
      const seen = new Set<string>();
      for await (const b of tx.scanBatches(t.name, { columns: cols })) {
        for (let i = 0; i < b.length; i++) {
          let k = '';
          let hasNull = false;
          for (const c of cols) {
            if (b.nulls?.[c]?.[i] === 1) hasNull = true;
            k += `${hashKey((b.columns[c] as ArrayLike<SqlValue>)[i] as SqlValue)}\u0001`;
          }
          if (hasNull) continue;
          if (seen.has(k)) throw duplicate(t, cols);
          seen.add(k);
        }
      }
    });
  }

  private async createTable(ast: A.CreateTableStatement): Promise<void> {
    const name = ast.table.name;
    if (this.table(name) !== undefined || this.view(name) !== undefined || name === META_TABLE) {
      if (ast.ifNotExists) return;
      throw new TidemarkError('INVALID_ARGUMENT', `table ${name} already exists`, {
        details: { table: name, mysqlErrno: 1050 },
      });
    }
    if (ast.as !== undefined || ast.like !== undefined) throw unsupported('CREATE TABLE ... AS/LIKE');
    if (ast.temporary) throw unsupported('CREATE TEMPORARY TABLE');
    const columns: SqlColumn[] = [];
    let primaryKey: string[] = [];
    const unique: string[][] = [];
    const colNames = (parts: readonly A.KeyPart[]): string[] =>
      parts.map((d) => {
        const n = d.column.toLowerCase();
        const c = columns.find((x) => x.name.toLowerCase() === n);
        if (c === undefined)
          throw new TidemarkError('SCHEMA', `unknown column ${d.column} in a key`, {
            details: { mysqlErrno: 1072 },
          });
        return c.name;
      });
    const onePrimary = (cols: string[]): void => {
      if (primaryKey.length > 0)
        throw new TidemarkError('SCHEMA', 'multiple primary keys defined', {
          details: { mysqlErrno: 1068 },
        });
      primaryKey = cols;
    };
    for (const d of ast.columns) {
      const cname = d.name;
      if (columns.some((c) => c.name.toLowerCase() === cname.toLowerCase())) {
        throw new TidemarkError('SCHEMA', `column ${cname} declared twice`, {
          details: { mysqlErrno: 1060 },
        });
      }
      if (d.generated !== undefined) throw unsupported('generated columns');
      if (d.references !== undefined) throw unsupported('FOREIGN KEY');
      if (d.check !== undefined) throw unsupported('CHECK');
      const sqlType = d.type.name;
      const type = columnTypeOf(sqlType, d.type.unsigned);
      const col: SqlColumn = { name: cname, sqlType, type, nullable: d.nullable !== false };
      if (d.type.unsigned && type !== 'float64' && type !== 'decimal') col.unsigned = true;
      if ((sqlType === 'VARCHAR' || sqlType === 'CHAR') && d.type.length !== undefined)
        col.length = d.type.length;
      if (type === 'decimal') {
        // DECIMAL is DECIMAL(10, 0); DECIMAL(p) is DECIMAL(p, 0); MySQL's limits 65 and 30.
        const p = d.type.length ?? 10;
        const s = d.type.scale ?? 0;
        if (p < 1 || p > DECIMAL_MAX_PRECISION)
          throw new TidemarkError(
            'SCHEMA',
            `Too-big precision ${p} specified for '${cname}'. Maximum is 65.`,
            {
              details: { mysqlErrno: 1426 },
            },
          );
        if (s > DECIMAL_MAX_SCALE)
          throw new TidemarkError(
            'SCHEMA',
            `Too big scale ${s} specified for column '${cname}'. Maximum is 30.`,
            {
              details: { mysqlErrno: 1425 },
            },
          );
        if (s > p)
          throw new TidemarkError(
            'SCHEMA',
            `For float(M,D), double(M,D) or decimal(M,D), M must be >= D (column '${cname}').`,
            {
              details: { mysqlErrno: 1427 },
            },
          );
        col.precision = p;
        col.scale = s;
      } else if (type === 'float64' && d.type.scale !== undefined) col.scale = d.type.scale;
      if (d.autoIncrement) {
        if (type !== 'int32' && type !== 'int64' && type !== 'uint64')
          throw new TidemarkError('SCHEMA', `AUTO_INCREMENT column ${cname} must be an integer`);
        col.autoIncrement = true;
      }
      if (d.default !== undefined && d.default.kind !== 'null') {
        const v = this.defaultOf(d.default);
        // JSON-able: dates as { date: ms }, integers past 2^53 as { int: digits }, DECIMALs as text.
        col.default =
          v === null
            ? null
            : v instanceof Date
              ? { date: v.getTime() }
              : typeof v === 'bigint'
                ? { int: v.toString() }
                : v instanceof Decimal
                  ? v.toString()
                  : v;
        if (v !== null && v !== 'CURRENT_TIMESTAMP') coerce({ name } as SqlTable, col, v);
      } else if (d.default !== undefined) col.default = null;
      if (d.primaryKey) onePrimary([cname]);
      if (d.unique) unique.push([cname]);
      columns.push(col);
    }
    for (const c of ast.constraints) {
      if (c.kind === 'primary') onePrimary(colNames(c.parts));
      else if (c.kind === 'unique') unique.push(colNames(c.parts));
      else if (c.kind === 'foreign') throw unsupported('FOREIGN KEY');
      else if (c.kind === 'check') throw unsupported('CHECK');
      // A plain INDEX/KEY in CREATE TABLE: accepted, not used (see the README).
      else colNames(c.parts);
    }
    if (columns.length === 0) throw new TidemarkError('SCHEMA', 'a table needs at least one column');
    for (const k of primaryKey) {
      const c = columns.find((x) => x.name === k)!;
      c.nullable = false;
    }
    const keyColumn = primaryKey.length === 1 ? primaryKey[0]! : primaryKey.length === 0 ? ROWID : TUPLE_KEY;
    const t: SqlTable = { kind: 'table', name, columns, primaryKey, keyColumn, unique };
    await this.host.createTable(name, specOf(t));
    await this.putMeta(t, metaKey(t));
  }

  /** A column's DEFAULT: a constant, or the string 'CURRENT_TIMESTAMP' for the time of each insert. */
  private defaultOf(dv: A.Expr): SqlValue {
    if (dv.kind === 'call' && dv.args.length === 0 && NOW_NAMES.has(dv.name.toUpperCase()))
      return 'CURRENT_TIMESTAMP';
    const m = mentions();
    mentionExpr(dv, m);
    const e: Expr = new Planner(this, m).expr(dv, constantLevel());
    if (!e.constant || e.subs.length > 0) throw unsupported('a DEFAULT that is not a constant');
    const c = e.ev({ len: 1, cols: [] }, {} as Ctx);
    return getv(c, 0);
  }
}

/** How long a query works before it lets the event loop run (Ctx.breathe). */
const BREATHE_MS = 20;

/** Names of the current time a DEFAULT may give: the column then defaults to the time of each insert. */
const NOW_NAMES = new Set(['CURRENT_TIMESTAMP', 'NOW', 'LOCALTIMESTAMP', 'LOCALTIME']);

/** A view's stored text as a query. */
function viewQuery(sql: string): A.Query {
  const s = parseSql(sql).statements[0]!;
  if (s.kind !== 'select')
    throw new TidemarkError('CORRUPTION', `a view's text is not a query: ${sql.slice(0, 80)}`);
  return s.query;
}

/** A planner for one query, reading the columns the query mentions. */
function plannerFor(catalog: PlanCatalog, query: A.Query): Planner {
  const m = mentions();
  mentionQuery(query, m);
  return new Planner(catalog, m);
}

/** How an unsupported DDL statement is named in its error. */
function ddlName(ast: A.Statement): string {
  switch (ast.kind) {
    case 'alterTable':
      return 'ALTER TABLE';
    case 'truncate':
      return 'TRUNCATE';
    case 'createDatabase':
      return 'CREATE DATABASE';
    case 'dropDatabase':
      return 'DROP DATABASE';
  }
  return ast.kind;
}

/** An expression with references to the assigned columns replaced by what they were assigned. */
function substituteColumns(e: A.Expr, assigned: ReadonlyMap<string, A.Expr>, table: string): A.Expr {
  if (assigned.size === 0) return e;
  if (e.kind === 'column') {
    const to = assigned.get(e.name.toLowerCase());
    if (to !== undefined && (e.table === undefined || e.table.toLowerCase() === table.toLowerCase()))
      return to;
    return e;
  }
  // Subqueries see the row as it was (their columns are their own): only this level's nodes change.
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) out[k] = substituteValue(v, assigned, table);
  return out as unknown as A.Expr;
}

function substituteValue(v: unknown, assigned: ReadonlyMap<string, A.Expr>, table: string): unknown {
  if (Array.isArray(v)) return v.map((x) => substituteValue(x, assigned, table));
  if (v === null || typeof v !== 'object') return v;
  const kind = (v as { kind?: string }).kind;
  if (kind === 'query') return v;
  if (kind !== undefined) return substituteColumns(v as A.Expr, assigned, table);
  // { when, then } of CASE and { expr, desc } of GROUP_CONCAT's ORDER BY.
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = substituteValue(x, assigned, table);
  return out;
}

/** The greatest value of an integer column as `tx` sees it (0 when none), exactly. */
async function greatest(tx: Transaction, t: SqlTable, column: string): Promise<bigint> {
  let max: number | bigint = 0;
  if (column === t.keyColumn) {
    for await (const r of tx.scan(t.name, { reverse: true, limit: 1, columns: [column] })) {
      const v = (r as Record<string, unknown>)[column];
      if (typeof v === 'number' || typeof v === 'bigint') max = v;
    }
  } else {
    for await (const b of tx.scanBatches(t.name, { columns: [column] })) {
      const d = b.columns[column] as ArrayLike<number | bigint | null>;
      for (let i = 0; i < b.length; i++) {
        const v = d[i];
        if (v !== null && v !== undefined && v > max) max = v;
      }
    }
  }
  return typeof max === 'bigint' ? max : BigInt(Math.max(0, Math.trunc(max)));
}

function duplicate(t: SqlTable, cols: string[]): TidemarkError {
  return new TidemarkError('DUPLICATE_KEY', `duplicate value for UNIQUE (${cols.join(', ')}) of ${t.name}`, {
    details: { table: t.name, columns: cols, mysqlErrno: 1062 },
  });
}

/** A key as the engine takes it. */
function keyValue(t: SqlTable, v: unknown): unknown {
  if (t.keyColumn === ROWID || t.keyColumn === TUPLE_KEY) return v;
  const c = t.columns.find((x) => x.name === t.keyColumn)!;
  return engineOf(c, v as SqlValue);
}

/** The range of a declared integer type (with UNSIGNED), as MySQL checks it. */
function integerRange(c: SqlColumn): [bigint, bigint] {
  const bits: Record<string, number> = {
    TINYINT: 8,
    SMALLINT: 16,
    MEDIUMINT: 24,
    INT: 32,
    INTEGER: 32,
    YEAR: 16,
  };
  const b = bits[c.sqlType.toUpperCase()] ?? (c.type === 'int32' ? 32 : 64);
  if (c.unsigned === true) return [0n, (1n << BigInt(b)) - 1n];
  return [-(1n << BigInt(b - 1)), (1n << BigInt(b - 1)) - 1n];
}

/** A column's type as MySQL shows it: DECIMAL(10,2), INT UNSIGNED, VARCHAR(20). */
export function sqlTypeText(c: SqlColumn): string {
  let t = c.sqlType.toUpperCase();
  if (c.type === 'decimal') t += `(${c.precision ?? 10},${c.scale ?? 0})`;
  else if (c.length !== undefined) t += `(${c.length})`;
  if (c.unsigned === true) t += ' UNSIGNED';
  return t;
}

/** A SQL value as the engine stores it in this column (no checks: it came from the engine). */
function engineOf(c: SqlColumn, v: SqlValue): unknown {
  if (v === null) return null;
  if (c.type === 'bool') return v !== 0;
  return v;
}

/** An engine value as a SQL value. */
function sqlOf(c: SqlColumn, v: unknown): SqlValue {
  if (v === null || v === undefined) return null;
  if (c.type === 'bool') return v === true || v === 1 ? 1 : 0;
  if (c.type === 'timestamp' && typeof v === 'number') return new Date(v);
  if (c.type === 'decimal' && typeof v === 'string') return Decimal.parse(v) ?? null;
  return v as SqlValue;
}

/** A value for a column, converted as MySQL (strict mode) converts it, or a SCHEMA error. */
function coerce(t: SqlTable, c: SqlColumn, v: SqlValue): unknown {
  if (v === null) {
    if (!c.nullable) {
      throw new TidemarkError('SCHEMA', `column ${c.name} cannot be null`, {
        details: { table: t.name, column: c.name, mysqlErrno: 1048 },
      });
    }
    return null;
  }
  const bad = (): TidemarkError =>
    new TidemarkError(
      'SCHEMA',
      `incorrect ${c.sqlType} value ${JSON.stringify(toText(v)).slice(0, 60)} for column ${c.name}`,
      {
        details: { table: t.name, column: c.name, mysqlErrno: 1366 },
      },
    );
  const outOfRange = (shown: string): TidemarkError =>
    new TidemarkError('SCHEMA', `Out of range value ${shown} for column ${c.name} (${sqlTypeText(c)})`, {
      details: { table: t.name, column: c.name, mysqlErrno: 1264 },
    });
  /** The value as an exact number (strings must be numbers whole), or a 1366 error. */
  const exact = (): Decimal => {
    if (typeof v === 'string') {
      if (!/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v)) throw bad();
      return Decimal.parse(v.trim()) ?? stringToDecimal(v);
    }
    if (v instanceof Date || v instanceof Uint8Array) throw bad();
    const d = exactOf(v);
    if (d === undefined) throw bad();
    return d;
  };
  switch (c.type) {
    case 'int32':
    case 'int64':
    case 'uint64': {
      // MySQL rounds a fraction away (half away from zero) and checks the declared type's range.
      const d = exact();
      const u = divRoundHalfAway(d.u, d.s);
      const [lo, hi] = integerRange(c);
      if (u < lo || u > hi) throw outOfRange(d.toString());
      return canonicalInt(u);
    }
    case 'decimal': {
      const p = c.precision ?? 10;
      const s = c.scale ?? 0;
      const d = exact();
      const r = d.rescale(s);
      if (r.intDigits > p - s) throw outOfRange(d.toString());
      return r;
    }
    case 'float64': {
      let n: number;
      if (typeof v === 'number') n = v;
      else if (typeof v === 'bigint' || v instanceof Decimal) n = toNumber(v);
      else if (typeof v === 'string') {
        if (!/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v)) throw bad();
        n = stringToNumber(v);
      } else throw bad();
      if (c.scale !== undefined) n = roundHalfAway(n, c.scale);
      return n;
    }
    case 'bool':
      if (typeof v === 'number') return v !== 0;
      if (typeof v === 'bigint') return v !== 0n;
      if (v instanceof Decimal) return v.sign() !== 0;
      if (typeof v === 'string') return stringToNumber(v) !== 0;
      throw bad();
    case 'string': {
      const s = v instanceof Date ? dateText(v) : toText(v);
      if (c.length !== undefined && [...s].length > c.length) {
        throw new TidemarkError('SCHEMA', `value too long for column ${c.name} (${c.sqlType}(${c.length}))`, {
          details: { table: t.name, column: c.name, mysqlErrno: 1406 },
        });
      }
      return s;
    }
    case 'bytes':
      return v instanceof Uint8Array ? v : new Uint8Array(Buffer.from(toText(v), 'utf8'));
    case 'timestamp': {
      if (v instanceof Date) return v;
      if (typeof v === 'string') {
        const d = parseDate(v);
        if (d === undefined) throw bad();
        return d;
      }
      throw bad();
    }
  }
}

/** A connection's state: its explicit transaction, if BEGIN opened one. */
export class SqlSession {
  private tx: Transaction | undefined;
  /** Variables, current database and user: what `SET`, `@@x`, `DATABASE()` and `USE` see. */
  readonly info: SessionInfo;
  /** With autocommit off (SET autocommit = 0), statements open a transaction that COMMIT ends. */
  autocommit = true;

  constructor(
    private readonly engine: SqlEngine,
    who: { user?: string; connectionId?: number } = {},
  ) {
    this.info = defaultSession(who.user, who.connectionId);
  }

  get inTransaction(): boolean {
    return this.tx !== undefined && this.tx.state === 'active';
  }

  /** Run SQL (one or more statements; the last one's result is returned). */
  async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    const p = this.engine.prepare(sql);
    const values = bindParams(p, params);
    // A single point read, the most frequent statement there is: straight to the lookup.
    if (p.statements.length === 1 && (this.tx === undefined || this.tx.state === 'active')) {
      const pp = this.engine.pointPlan(p, 0);
      if (pp !== undefined) {
        const counters = this.engine.counters;
        let r: QueryResult | undefined;
        try {
          const pr = this.engine.point(pp, values, this.tx);
          r = pr instanceof Promise ? await pr : pr;
        } catch (e) {
          counters.statements++;
          counters.failed++;
          throw e;
        }
        // Undefined: not a point read after all (a key of another kind); the full run below.
        if (r !== undefined) {
          counters.statements++;
          return r;
        }
      }
    }
    const all = await this.run(p, values, sql);
    return all[all.length - 1] ?? { columns: [], rows: [], affectedRows: 0 };
  }

  /** Run SQL of one or more statements: one result per statement (up to the first that fails). */
  async queryAll(
    sql: string,
    params: readonly unknown[] = [],
    each?: (r: QueryResult, i: number) => void,
  ): Promise<QueryResult[]> {
    const p = this.engine.prepare(sql);
    return this.run(p, bindParams(p, params), sql, each);
  }

  private async run(
    p: Prepared,
    values: readonly SqlValue[],
    sql: string,
    each?: (r: QueryResult, i: number) => void,
  ): Promise<QueryResult[]> {
    const results: QueryResult[] = [];
    for (let i = 0; i < p.statements.length; i++) {
      const r = await this.one(p, i, values, sql);
      results.push(r);
      each?.(r, i);
    }
    return results;
  }

  private async one(p: Prepared, i: number, params: readonly SqlValue[], sql: string): Promise<QueryResult> {
    const counters = this.engine.counters;
    counters.statements++;
    try {
      return await this.statement(p, i, params, sql);
    } catch (e) {
      counters.failed++;
      throw e;
    }
  }

  private async statement(
    p: Prepared,
    i: number,
    params: readonly SqlValue[],
    sql: string,
  ): Promise<QueryResult> {
    const ast = p.statements[i]!;
    const none: QueryResult = { columns: [], rows: [], affectedRows: 0 };
    switch (ast.kind) {
      case 'set':
        return this.set(ast, params);
      case 'setNames':
        for (const v of ['character_set_client', 'character_set_connection', 'character_set_results'])
          this.info.system.set(v, (ast.charset ?? 'utf8mb4').toLowerCase());
        if (ast.collation !== undefined)
          this.info.system.set('collation_connection', ast.collation.toLowerCase());
        return none;
      case 'setTransaction':
        // Snapshot isolation gives every level MySQL has but SERIALIZABLE.
        if (ast.isolation === 'SERIALIZABLE')
          throw unsupported('SERIALIZABLE (transactions are snapshot-isolated)');
        if (ast.isolation !== undefined) this.info.system.set('transaction_isolation', ast.isolation);
        return none;
      case 'show':
      case 'describe':
        return this.engine.show(ast, this.info);
      case 'use':
        if (ast.database !== this.info.database) {
          throw new TidemarkError(
            'NOT_FOUND',
            `unknown database ${ast.database} (this server has one: ${this.info.database})`,
            {
              details: { mysqlErrno: 1049 },
            },
          );
        }
        return none;
      case 'begin':
        if (this.inTransaction) await this.commit();
        this.tx = this.engine.host._begin();
        return none;
      case 'commit':
        await this.commit();
        return none;
      case 'rollback':
        if (ast.savepoint !== undefined) throw unsupported('savepoints');
        if (this.tx !== undefined) this.engine.host._rollback(this.tx, 'rolled back by ROLLBACK');
        this.tx = undefined;
        return none;
      case 'savepoint':
      case 'releaseSavepoint':
        throw unsupported('savepoints');
      case 'lockTables':
      case 'unlockTables':
        throw unsupported(ast.kind === 'lockTables' ? 'LOCK TABLES' : 'UNLOCK TABLES');
    }
    if (isDdl(ast)) {
      if (p.params > 0)
        throw new TidemarkError('INVALID_ARGUMENT', 'placeholders (?) are not allowed in DDL');
      // MySQL commits an open transaction before DDL.
      if (this.tx !== undefined) await this.commit();
      return this.engine.ddl(ast);
    }
    // With autocommit off, the first statement opens a transaction that COMMIT or ROLLBACK ends.
    if (!this.autocommit && this.tx === undefined) this.tx = this.engine.host._begin();
    if (this.tx !== undefined && this.tx.state !== 'active') {
      const reason = this.tx.endReason ?? this.tx.state;
      this.tx = undefined;
      throw new TidemarkError('CLOSED', `the transaction ended (${reason}): ROLLBACK and start again`);
    }
    const pp = this.engine.pointPlan(p, i);
    if (pp !== undefined) {
      const r = await this.engine.point(pp, params, this.tx);
      if (r !== undefined) return r;
    }
    if (this.tx !== undefined) return this.engine.runStatement(p, i, this.tx, params, sql, this.info);
    // Autocommit: each statement its own transaction, retried on a write-write conflict (it saw
    // nothing the caller could act on, so running it again on a newer snapshot is the same request).
    for (let attempt = 1; ; attempt++) {
      const tx = this.engine.host._begin();
      try {
        const r = await this.engine.runStatement(p, i, tx, params, sql, this.info);
        await this.engine.host._commit(tx);
        return r;
      } catch (e) {
        this.engine.host._rollback(tx, 'rolled back', e);
        if (!conflict(e) || attempt >= STATEMENT_ATTEMPTS) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  /** SET [SESSION|GLOBAL] name = value, @user = value, autocommit = 0|1. */
  private async set(
    ast: { assignments: A.SetAssignment[] },
    params: readonly SqlValue[],
  ): Promise<QueryResult> {
    for (const a of ast.assignments) {
      const name = a.target.name.toLowerCase();
      const value =
        a.value.kind === 'default'
          ? (systemVariables().get(name) ?? null)
          : await this.engine.constant(a.value, params, this.info);
      if (!a.target.system) {
        this.info.user.set(name, value);
        continue;
      }
      if (name === 'autocommit') {
        const on =
          value === 1 || value === '1' || (typeof value === 'string' && value.toUpperCase() === 'ON');
        // Turning autocommit on commits what is open, as MySQL does.
        if (on && !this.autocommit) await this.commit();
        this.autocommit = on;
        this.info.system.set('autocommit', on ? 1 : 0);
        continue;
      }
      this.info.system.set(name, value);
    }
    return { columns: [], rows: [], affectedRows: 0 };
  }

  private async commit(): Promise<void> {
    const tx = this.tx;
    this.tx = undefined;
    if (tx === undefined) return;
    await this.engine.host._commit(tx);
  }

  /** Roll back an open transaction (a connection closing). */
  end(): void {
    if (this.tx !== undefined) this.engine.host._rollback(this.tx, 'the session ended');
    this.tx = undefined;
  }
}

/** Run SQL inside a transaction the caller owns (`tx.query`). */
export async function queryInTransaction(
  engine: SqlEngine,
  tx: Transaction,
  sql: string,
  params: readonly unknown[] = [],
): Promise<QueryResult> {
  const p = engine.prepare(sql);
  const values = bindParams(p, params);
  let result: QueryResult = { columns: [], rows: [], affectedRows: 0 };
  for (let i = 0; i < p.statements.length; i++) {
    const ast = p.statements[i]!;
    if (ast.kind === 'begin' || ast.kind === 'commit' || ast.kind === 'rollback' || isDdl(ast)) {
      throw new TidemarkError(
        'INVALID_ARGUMENT',
        `${isDdl(ast) ? 'DDL' : ast.kind.toUpperCase()} is not allowed in tx.query: the transaction belongs to db.transaction`,
      );
    }
    engine.counters.statements++;
    try {
      result = await engine.runStatement(p, i, tx, values, sql);
    } catch (e) {
      engine.counters.failed++;
      throw e;
    }
  }
  return result;
}

/** The parameters as SQL values, as many as the statement has placeholders, or INVALID_ARGUMENT. */
function bindParams(p: Prepared, params: readonly unknown[]): SqlValue[] {
  return checkCount(p.params, checkParams(params));
}

/** The parameters, when there are as many as the SQL has placeholders. */
function checkCount(placeholders: number, values: SqlValue[]): SqlValue[] {
  if (values.length !== placeholders) {
    throw new TidemarkError(
      'INVALID_ARGUMENT',
      `the SQL has ${placeholders} placeholders, got ${values.length} parameters`,
    );
  }
  return values;
}

function checkParams(params: readonly unknown[]): SqlValue[] {
  if (!Array.isArray(params)) throw new TidemarkError('INVALID_ARGUMENT', 'params must be an array');
  return params.map((v, i) => {
    if (v === null || v === undefined) return null;
    if (typeof v === 'number' || typeof v === 'string' || v instanceof Uint8Array || v instanceof Date)
      return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'bigint') {
      if (v > UINT64_MAX || v < INT64_MIN) {
        throw new TidemarkError(
          'INVALID_ARGUMENT',
          `parameter ${i + 1}: ${v} is outside the 64-bit integer range (BIGINT and BIGINT UNSIGNED)`,
        );
      }
      return canonicalInt(v);
    }
    if (v instanceof Decimal) return v;
    throw new TidemarkError('INVALID_ARGUMENT', `parameter ${i + 1}: cannot bind a ${typeof v}`);
  });
}

const DDL_KINDS = new Set([
  'createTable',
  'dropTable',
  'createView',
  'dropView',
  'createIndex',
  'dropIndex',
  'alterTable',
  'truncate',
  'createDatabase',
  'dropDatabase',
]);

function isDdl(ast: A.Statement): boolean {
  return DDL_KINDS.has(ast.kind);
}

/** The system variables a MySQL client may ask for, and what they hold here. */
export function systemVariables(): Map<string, SqlValue> {
  return new Map<string, SqlValue>([
    ['version', '8.0.36-tidemark'],
    ['version_comment', 'tidemark'],
    ['autocommit', 1],
    ['sql_mode', 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'],
    ['character_set_client', 'utf8mb4'],
    ['character_set_connection', 'utf8mb4'],
    ['character_set_results', 'utf8mb4'],
    ['character_set_server', 'utf8mb4'],
    ['collation_connection', 'utf8mb4_bin'],
    ['collation_server', 'utf8mb4_bin'],
    ['max_allowed_packet', 64 * 1024 * 1024],
    ['transaction_isolation', 'REPEATABLE-READ'],
    ['tx_isolation', 'REPEATABLE-READ'],
    ['transaction_read_only', 0],
    ['tx_read_only', 0],
    ['wait_timeout', 28800],
    ['interactive_timeout', 28800],
    ['net_write_timeout', 60],
    ['lower_case_table_names', 0],
    ['time_zone', 'UTC'],
    ['system_time_zone', 'UTC'],
    ['auto_increment_increment', 1],
    ['license', 'Apache-2.0'],
    ['have_ssl', 'DISABLED'],
    ['init_connect', ''],
    ['query_cache_size', 0],
    ['query_cache_type', 'OFF'],
    ['performance_schema', 0],
    ['sql_select_limit', '18446744073709551615'],
  ]);
}

function defaultSession(user = 'root', connectionId = 0): SessionInfo {
  return { system: systemVariables(), user: new Map(), database: 'tidemark', userName: user, connectionId };
}
