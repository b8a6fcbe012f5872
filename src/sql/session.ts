/**
 * Sessions: a connection's state (its explicit transaction, autocommit, variables) and how its
 * statements run: session statements here, DDL and the rest through the engine, each statement in a
 * transaction of its own outside BEGIN (retried on a write-write conflict).
 */
import type * as A from './parser/ast.js';
import { TidemarkError } from '../errors.js';
import type { Transaction } from '../txn/transaction.js';
import type { SessionInfo, SqlCounters } from './vector.js';
import type { SqlValue } from './values.js';
import { unsupported } from './bind.js';
import type { QueryResult } from '../txn/query.js';
import type { SqlHost } from './host.js';
import type { PointPlan, Prepared } from './prepared.js';
import { bindParams } from './params.js';
import { isDdl } from './ddl.js';
import { defaultSession, systemVariables } from './variables.js';

const STATEMENT_ATTEMPTS = 8;

function conflict(e: unknown): boolean {
  return e instanceof TidemarkError && e.code === 'CONFLICT';
}

/** What a session runs its statements through: the database's SqlEngine. */
export interface SessionEngine {
  readonly host: SqlHost;
  readonly counters: SqlCounters;
  prepare(sql: string): Prepared;
  pointPlan(p: Prepared, i: number): PointPlan | undefined;
  point(
    pp: PointPlan,
    params: readonly SqlValue[],
    tx: Transaction | undefined,
  ): QueryResult | undefined | Promise<QueryResult | undefined>;
  runStatement(
    p: Prepared,
    i: number,
    tx: Transaction,
    params: readonly SqlValue[],
    sql: string,
    session?: SessionInfo,
  ): Promise<QueryResult>;
  show(ast: A.ShowStatement | A.DescribeStatement, session: SessionInfo): Promise<QueryResult>;
  constant(ast: A.Expr, params: readonly SqlValue[], session: SessionInfo): Promise<SqlValue>;
  ddl(ast: A.Statement): Promise<QueryResult>;
}

/** A connection's state: its explicit transaction, if BEGIN opened one. */
export class SqlSession {
  private tx: Transaction | undefined;
  /** Variables, current database and user: what `SET`, `@@x`, `DATABASE()` and `USE` see. */
  readonly info: SessionInfo;
  /** With autocommit off (SET autocommit = 0), statements open a transaction that COMMIT ends. */
  autocommit = true;

  constructor(
    private readonly engine: SessionEngine,
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
  engine: SessionEngine,
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
