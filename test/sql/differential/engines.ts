import { appendFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { TidemarkError } from '../../../src/errors.js';
import type { Database } from '../../../src/index.js';
import { memDb } from '../../helpers/db.js';

/**
 * The two engines behind one interface: load a schema's statements, run a query, get rows or a
 * classified error. tidemark runs in this process on an in-memory database; MariaDB over mysql2 on
 * a server of test/helpers/mariadb.ts.
 */

/** What a column of a MariaDB result is, from its field type: how to compare its values. */
export type ColumnKind = 'int' | 'double' | 'decimal' | 'string' | 'null' | 'other';

export interface ColumnInfo {
  kind: ColumnKind;
  /** Digits after the point (DECIMAL: AVG of integers has 4, SUM of integers 0). */
  decimals: number;
}

/**
 * How a statement failed. For tidemark: `unsupported` is a SYNTAX error or an INVALID_ARGUMENT
 * '... is not supported' (what the parser or planner does not know yet, as opposed to a wrong
 * answer); `error` any other TidemarkError; `crash` anything thrown that is not a TidemarkError
 * (a TypeError: always a bug). For MariaDB: `error`, with the server's errno as code.
 */
export interface EngineError {
  class: 'unsupported' | 'error' | 'crash';
  code: string;
  message: string;
}

export type Outcome =
  { ok: true; rows: unknown[][]; columns: ColumnInfo[] | undefined } | { ok: false; error: EngineError };

export interface Engine {
  readonly name: 'tidemark' | 'mariadb';
  /**
   * Drop what the last load made, then run these statements (a failure throws). Resolves with the
   * fault closing the previous database found, if any (tidemark's LEAK).
   */
  load(statements: readonly string[], tables: readonly string[]): Promise<Error | undefined>;
  run(sql: string): Promise<Outcome>;
  /** `sql` over the same data loaded into tables without keys (MariaDB only: see MariaDbEngine). */
  runWithoutKeys?(statements: readonly string[], sql: string): Promise<Outcome>;
  /** The query with another optimizer_switch (MariaDB). */
  runWithSwitches?(sql: string, switches: string): Promise<Outcome>;
  /** Release everything; resolves with an error if closing found a fault (tidemark's LEAK). */
  close(): Promise<Error | undefined>;
}

export function classifyTidemarkError(e: unknown): EngineError {
  if (!(e instanceof TidemarkError)) {
    const err = e instanceof Error ? e : new Error(String(e));
    const where = err.stack?.split('\n').slice(1, 4).join(' | ').trim() ?? '';
    return { class: 'crash', code: err.name, message: `${err.message} ${where}`.trim() };
  }
  const unsupported =
    e.code === 'SYNTAX' || (e.code === 'INVALID_ARGUMENT' && /is not supported/.test(e.message));
  return { class: unsupported ? 'unsupported' : 'error', code: e.code, message: e.message };
}

export const TIDEMARK_QUERY_LIMIT_MS = 10_000;

/** With TIDEMARK_DIFF_TRACE=FILE, each engine step is written there before it runs (finding a stall). */
export function trace(what: string): void {
  const file = process.env.TIDEMARK_DIFF_TRACE;
  if (file !== undefined) appendFileSync(file, `${new Date().toISOString()} ${what}\n`);
}
export const MARIADB_QUERY_LIMIT_S = 20;

/** MariaDB's optimizer_switch for the plain recheck (runWithoutKeys). */
export const PLAIN_SWITCHES = [
  'subquery_cache=off',
  'derived_merge=off',
  'condition_pushdown_for_derived=off',
  'condition_pushdown_for_subquery=off',
  'condition_pushdown_from_having=off',
  'semijoin=off',
  'materialization=off',
  'split_materialized=off',
].join(',');

/** tidemark on a fresh in-memory database per load (so a load starts from nothing, and close proves no leak). */
export class TidemarkEngine implements Engine {
  readonly name = 'tidemark';
  private db: Database | undefined;

  async load(statements: readonly string[]): Promise<Error | undefined> {
    trace('tidemark load: closing');
    const fault = await this.close();
    trace('tidemark load: opening');
    // Simple leak detection: paranoid records a stack per allocation, several times slower, and a
    // leak is still found at close (the stacks help only once one is).
    // A query is cut off after TIDEMARK_QUERY_LIMIT_MS (its transaction times out): deeply nested
    // correlated subqueries, run once per outer row, can take minutes where MariaDB's optimizer
    // flattens them; such a query is counted apart (oracles.ts), not waited for.
    this.db = (
      await memDb({
        memory: { leakDetection: 'simple' },
        transaction: { timeoutMs: TIDEMARK_QUERY_LIMIT_MS },
      })
    ).db;
    for (const s of statements) {
      trace(`tidemark load: ${s}`);
      await this.db.query(s);
    }
    return fault;
  }

  async run(sql: string): Promise<Outcome> {
    if (this.db === undefined) throw new Error('tidemark engine: nothing loaded');
    try {
      const r = await this.db.query(sql);
      return { ok: true, rows: r.rows, columns: undefined };
    } catch (e) {
      return { ok: false, error: classifyTidemarkError(e) };
    }
  }

  async close(): Promise<Error | undefined> {
    const db = this.db;
    this.db = undefined;
    if (db === undefined) return undefined;
    try {
      await db.close();
      return undefined;
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }
}

export interface MariaDbAddress {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Start the server again after it crashed (test/helpers/mariadb.ts). */
  restart?: () => Promise<void>;
}

/**
 * MySQL 8.0's default sql_mode; no PIPES_AS_CONCAT, so || is OR. ONLY_FULL_GROUP_BY keeps the
 * answers determined: a column neither grouped nor aggregated takes any row's value (tidemark
 * does not enforce the mode, docs/sql.md), so such queries are refused by MariaDB and not compared
 * (oracles.ts), and the reducer cannot turn a real mismatch into one of them.
 */
export const MYSQL8_SQL_MODE =
  'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

// mysql2's field type codes (the protocol's MYSQL_TYPE_*).
const INT_TYPES = new Set([1, 2, 3, 8, 9, 13]);
const DOUBLE_TYPES = new Set([4, 5]);
const DECIMAL_TYPES = new Set([0, 246]);
const STRING_TYPES = new Set([15, 249, 250, 251, 252, 253, 254]);

interface FieldMeta {
  columnType?: number;
  type?: number;
  decimals?: number;
}

function columnInfo(f: FieldMeta): ColumnInfo {
  const t = f.columnType ?? f.type ?? -1;
  const kind: ColumnKind = INT_TYPES.has(t)
    ? 'int'
    : DOUBLE_TYPES.has(t)
      ? 'double'
      : DECIMAL_TYPES.has(t)
        ? 'decimal'
        : STRING_TYPES.has(t)
          ? 'string'
          : t === 6
            ? 'null'
            : 'other';
  return { kind, decimals: f.decimals ?? 0 };
}

export class MariaDbEngine implements Engine {
  readonly name = 'mariadb';
  private loaded: readonly string[] = [];
  /** The connection was lost (the server crashed): reconnect before the next query. */
  lost = false;

  private constructor(
    private readonly conn: mysql.Connection,
    private readonly database: string,
  ) {}

  static async connect(addr: MariaDbAddress): Promise<MariaDbEngine> {
    const conn = await mysql.createConnection({
      host: addr.host,
      port: addr.port,
      user: addr.user,
      password: addr.password,
      database: addr.database,
      rowsAsArray: true,
      // Every BIGINT and DECIMAL as text: exact, compared as such (compare.ts).
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      dateStrings: true,
      charset: 'UTF8MB4_BIN',
    });
    await conn.query('SET NAMES utf8mb4 COLLATE utf8mb4_bin');
    await conn.query(`SET SESSION sql_mode = '${MYSQL8_SQL_MODE}'`);
    // MariaDB too can take minutes on a generated query (nested loops over cross joins): cut off.
    await conn.query(`SET SESSION max_statement_time = ${MARIADB_QUERY_LIMIT_S}`);
    // Such a runaway query also writes temporary tables without end (tens of GB in minutes):
    // bounded, it fails with 1114 (table is full) instead of filling the disk.
    await conn.query('SET SESSION tmp_disk_table_size = 268435456');
    // A generated query is small; one that runs away (a join the row bounds missed) is cut off.
    await conn.query('SET SESSION max_statement_time = 20');
    return new MariaDbEngine(conn, addr.database);
  }

  async load(statements: readonly string[], tables: readonly string[]): Promise<Error | undefined> {
    const drop = [...new Set([...this.loaded, ...tables])];
    trace('mariadb load: dropping');
    if (drop.length > 0) await this.conn.query(`DROP TABLE IF EXISTS ${drop.join(', ')}`);
    this.loaded = tables;
    for (const s of statements) {
      trace(`mariadb load: ${s}`);
      await this.conn.query(s);
    }
    return undefined;
  }

  /**
   * `sql` over the same data in tables without their keys (another database of the server), with
   * MariaDB's rewrites of derived tables and subqueries off: how the answer depends on its index
   * lookups and rewrites (oracles.ts).
   */
  async runWithoutKeys(statements: readonly string[], sql: string): Promise<Outcome> {
    const other = `${this.database}_nokeys`;
    try {
      await this.conn.query(`CREATE DATABASE IF NOT EXISTS \`${other}\``);
      await this.conn.query(`USE \`${other}\``);
      const tables = statements.flatMap((st) => /^CREATE TABLE (\w+)/i.exec(st)?.[1] ?? []);
      if (tables.length > 0) await this.conn.query(`DROP TABLE IF EXISTS ${tables.join(', ')}`);
      for (const st of statements) await this.conn.query(st.replace(/,\s*PRIMARY KEY\s*\([^)]*\)/i, ''));
      // And the rewrites off whose results have been seen to depend on types: conditions pushed
      // into a derived UNION's branches compared with each branch's type, not the column's.
      await this.conn.query(`SET SESSION optimizer_switch = '${PLAIN_SWITCHES}'`);
      return await this.run(sql);
    } catch (e) {
      return { ok: false, error: { class: 'error', code: 'SETUP', message: String(e) } };
    } finally {
      await this.conn.query(`USE \`${this.database}\``).catch(() => undefined);
      await this.conn.query("SET SESSION optimizer_switch = 'default'").catch(() => undefined);
    }
  }

  /** `sql` with the session's optimizer_switch set to `switches` for it (oracles.ts). */
  async runWithSwitches(sql: string, switches: string): Promise<Outcome> {
    try {
      await this.conn.query(`SET SESSION optimizer_switch = '${switches}'`);
    } catch (e) {
      return { ok: false, error: { class: 'error', code: 'SETUP', message: String(e) } };
    }
    try {
      return await this.run(sql);
    } finally {
      await this.conn.query("SET SESSION optimizer_switch = 'default'").catch(() => undefined);
    }
  }

  async run(sql: string): Promise<Outcome> {
    try {
      trace(`mariadb: ${sql}`);
      // max_statement_time does not stop every query (10.11 loops for ever on some INTERSECT ALL /
      // EXCEPT ALL queries): past this the connection is given up and the server restarted.
      const [rows, fields] = await this.conn.query({
        sql,
        rowsAsArray: true,
        timeout: MARIADB_QUERY_LIMIT_S * 1500,
      });
      const list = Array.isArray(rows) ? (rows as unknown[][]) : [];
      const meta = (fields ?? []) as FieldMeta[];
      return { ok: true, rows: list, columns: meta.map(columnInfo) };
    } catch (e) {
      const err = e as { errno?: number; code?: string; message?: string };
      if (err.errno === undefined) {
        // Not an SQL error: the connection is gone, most likely because the query crashed the server.
        this.lost = true;
        return {
          ok: false,
          error: { class: 'crash', code: err.code ?? 'CONNECTION', message: err.message ?? String(e) },
        };
      }
      return {
        ok: false,
        error: { class: 'error', code: String(err.errno), message: err.message ?? String(e) },
      };
    }
  }

  async close(): Promise<Error | undefined> {
    if (this.lost) this.conn.destroy();
    else await this.conn.end();
    return undefined;
  }
}
