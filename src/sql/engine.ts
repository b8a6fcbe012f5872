/**
 * SQL statements against a tidemark database: `db.query`, `tx.query` and sessions (the shell, the
 * server). Parsed and planned statements are cached by their text (and the schema they were planned
 * against), so a repeated statement with `?` parameters costs its execution only.
 *
 * The engine holds a database's SQL state and runs a prepared statement in a transaction; the
 * pieces have files of their own: prepared.ts (the statement cache), select.ts, dml.ts, ddl.ts,
 * show.ts, meta.ts (the SQL catalog), session.ts (connections), result.ts (what a statement gives).
 */
import type * as A from './parser/ast.js';
import { TidemarkError } from '../errors.js';
import type { Transaction } from '../txn/transaction.js';
import { constValue } from './ops/op.js';
import { Planner } from './plan/planner.js';
import { QueryMemory, type Ctx, type SessionInfo, type SqlCounters } from './vector.js';
import type { SqlValue } from './values.js';
import { constantLevel, mentionExpr, mentions, unsupported } from './bind.js';
import type { QueryResult } from '../txn/query.js';
import { atNewest, type SqlHost } from './host.js';
import { SqlMeta } from './meta.js';
import { AutoIncrement } from './autoincrement.js';
import { PlanCache, planSelect, type PointPlan, type Prepared } from './prepared.js';
import { pointPlanOf, pointRead, selectRows } from './select.js';
import { describeStatement, type StatementShape } from './describe.js';
import { SqlDml } from './dml.js';
import { SqlDdl } from './ddl.js';
import { runShow } from './show.js';
import { defaultSession } from './variables.js';
import { queryInTransaction, SqlSession, type SessionEngine } from './session.js';

/** The SQL engine of one database. */
export class SqlEngine implements SessionEngine {
  private readonly plans = new PlanCache();
  readonly counters: SqlCounters = {
    statements: 0,
    failed: 0,
    zoneSkippedGroups: 0,
    indexScans: 0,
    indexLookups: 0,
    indexJoins: 0,
  };

  get plansCached(): number {
    return this.plans.size;
  }

  /** The SQL catalog (tables' SQL shapes, views, indexes). */
  private readonly meta: SqlMeta;
  private readonly dml: SqlDml;
  private readonly ddlStatements: SqlDdl;
  readonly session: SqlSession;

  constructor(readonly host: SqlHost) {
    this.meta = new SqlMeta(host, () => this.plans.clear());
    const ids = new AutoIncrement(host);
    this.dml = new SqlDml(this.meta, ids);
    this.ddlStatements = new SqlDdl(host, this.meta, ids, this.plans);
    this.session = new SqlSession(this);
  }

  /** Tables and views (the shell's .tables), the catalog read first. */
  listObjects(): Promise<{ name: string; kind: 'table' | 'view' }[]> {
    return this.meta.listObjects();
  }

  /** The CREATE statement of a table or view (the shell's .schema), or undefined. */
  createStatement(name: string): Promise<string | undefined> {
    return this.meta.createStatement(name);
  }

  /** The statement of this text, parsed once and kept with its plans (see prepared.ts). */
  prepare(sql: string): Prepared {
    return this.plans.prepare(sql, this.host._schemaVersion);
  }

  /**
   * What the statement gives, without running it (a prepared statement's metadata, describe.ts):
   * its placeholders and its result set's columns. Unknown tables and columns throw.
   */
  async describe(sql: string, database: string): Promise<StatementShape> {
    const p = this.prepare(sql);
    if (!this.meta.current) await this.meta.load();
    return describeStatement(this.meta, p, database);
  }

  /** `tx.query`. */
  queryIn(tx: Transaction, sql: string, params: readonly unknown[]): Promise<QueryResult> {
    return queryInTransaction(this, tx, sql, params);
  }

  /** A constant expression of a session statement (SET), evaluated at once. */
  async constant(ast: A.Expr, params: readonly SqlValue[], session: SessionInfo): Promise<SqlValue> {
    const m = mentions();
    mentionExpr(ast, m);
    const e = new Planner(this.meta, m).expr(ast, constantLevel());
    return atNewest(this.host, async (tx) => {
      const ctx = this.ctx(tx, params, 'SET', session);
      try {
        return await constValue(e, ctx);
      } finally {
        ctx.mem.release();
      }
    });
  }

  /** SHOW TABLES, SHOW DATABASES, SHOW COLUMNS FROM t, DESCRIBE t, SHOW VARIABLES and the like. */
  show(ast: A.ShowStatement | A.DescribeStatement, session: SessionInfo): Promise<QueryResult> {
    return runShow(this.meta, ast, session);
  }

  /** The statement as a point read, if it is one. */
  pointPlan(p: Prepared, i: number): PointPlan | undefined {
    return pointPlanOf(this.meta, p, i);
  }

  /** Run a point read; undefined when the key is not of the key's kind (the plan then runs). */
  point(
    pp: PointPlan,
    params: readonly SqlValue[],
    tx: Transaction | undefined,
  ): QueryResult | undefined | Promise<QueryResult | undefined> {
    return pointRead(this.host, pp, params, tx);
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
    if (!this.meta.current) await this.meta.load();
    const ast = p.statements[i]!;
    const ctx = this.ctx(tx, params, sql, session);
    try {
      switch (ast.kind) {
        case 'select':
          return await selectRows(planSelect(this.meta, p, i, ast.query), ctx);
        case 'explain': {
          const inner = ast.statement;
          if (inner.kind !== 'select') throw unsupported('EXPLAIN of anything but SELECT');
          const plan = planSelect(this.meta, p, i, inner.query);
          // How each scan reads for these parameters (as a run would choose), then the tree.
          const choices = new Map<object, unknown>();
          for (const s of plan.scans ?? []) choices.set(s, await s.choose(ctx));
          return { columns: ['plan'], rows: plan.op.explain(choices).map((l) => [l]), affectedRows: 0 };
        }
        // A failed write statement leaves nothing behind in the transaction (it goes on).
        case 'insert':
          return await tx._statement(() => this.dml.insert(ast, tx, ctx, p, i));
        case 'update':
          return await tx._statement(() => this.dml.update(ast, tx, ctx, p, i));
        case 'delete':
          return await tx._statement(() => this.dml.delete(ast, tx, ctx, p, i));
      }
      throw unsupported(`the statement ${ast.kind}`);
    } finally {
      ctx.mem.release();
    }
  }

  /** A DDL statement (they run one at a time). */
  ddl(ast: A.Statement): Promise<QueryResult> {
    return this.ddlStatements.run(ast);
  }
}

/** How long a query works before it lets the event loop run (Ctx.breathe). */
const BREATHE_MS = 20;
