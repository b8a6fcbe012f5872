import { Engine, type EngineStats } from '../db/engine.js';
import { recover } from '../db/recover.js';
import type { OpenOptions } from '../db/options.js';
import { SqlEngine } from '../sql/engine.js';
import { SqlSession } from '../sql/session.js';
import type { SqlCounters } from '../sql/vector.js';
import type { QueryResult } from '../txn/query.js';
import type { Transaction } from '../txn/transaction.js';

export interface DatabaseStats extends EngineStats {
  /** SQL: statements run and failed, row groups its scans left unread (zone maps), plans cached. */
  sql: SqlCounters & { plansCached: number };
}

/**
 * A tidemark database: the engine (src/db/engine.ts) with SQL over it. Open one with
 * `open(dir, options)`; every method is safe to call concurrently; after `close()` every call gives
 * CLOSED. The engine knows nothing of SQL; this facade composes the two: `query`, `session`, and the
 * `tx.query` of every transaction the engine begins (the engine hands itself to each as the runner
 * of its queries, and this class answers).
 */
export class Database extends Engine {
  private sqlEngine: SqlEngine | undefined;

  /** Open (creating if missing) the database in `dir`. */
  static override async open(dir: string, options?: OpenOptions): Promise<Database> {
    return new Database(await recover(dir, options));
  }

  /** @internal The SQL engine, made on first use (the shell lists tables and views through it). */
  get _sql(): SqlEngine {
    this.sqlEngine ??= new SqlEngine(this);
    return this.sqlEngine;
  }

  /**
   * Run SQL (MySQL dialect; `?` placeholders bind `params`). Outside BEGIN ... COMMIT each statement
   * is its own transaction; BEGIN opens a transaction that later `db.query` calls run in until COMMIT
   * or ROLLBACK (one session per database: for several concurrent ones use `db.session()`).
   */
  query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    this.checkOpen();
    return this._sql.session.query(sql, params);
  }

  /**
   * A SQL session of its own (its own BEGIN ... COMMIT, variables, autocommit), as a connection of
   * a server has. `user` and `connectionId` are what USER() and CONNECTION_ID() give.
   */
  session(who: { user?: string; connectionId?: number } = {}): SqlSession {
    this.checkOpen();
    return new SqlSession(this._sql, who);
  }

  /** @internal `tx.query`: SQL in a transaction the engine began. */
  override _queryIn(tx: Transaction, sql: string, params: readonly unknown[]): Promise<QueryResult> {
    return this._sql.queryIn(tx, sql, params);
  }

  override stats(): DatabaseStats {
    const engine = super.stats();
    const sql = this.sqlEngine;
    return {
      ...engine,
      sql:
        sql === undefined
          ? { statements: 0, failed: 0, zoneSkippedGroups: 0, plansCached: 0 }
          : { ...sql.counters, plansCached: sql.plansCached },
    };
  }
}

/** Open (creating if missing) the database in `dir`. */
export function open(dir: string, options?: OpenOptions): Promise<Database> {
  return Database.open(dir, options);
}
