/** The database as the SQL layer sees it (the Database implements it), and reads at its newest commit. */
import type { TableSpec } from '../schema/schema.js';
import type { MemoryPool } from '../mem/pool.js';
import type { Transaction } from '../txn/transaction.js';

/** A secondary index of a table, as the engine keeps it. */
export interface EngineIndex {
  name: string;
  columns: string[];
  unique: boolean;
}

/**
 * A range of an index (tx.scan with `index`, tx.indexCount): `eq` fixes the leading columns; the
 * bounds are tuples over the columns after them (lte ['M'] takes every entry whose next column is 'M').
 */
export interface IndexRange {
  eq?: unknown[];
  gte?: unknown[];
  gt?: unknown[];
  lte?: unknown[];
  lt?: unknown[];
}

/** What the SQL layer needs of the database. */
export interface SqlHost {
  tables(): string[];
  /** A table's spec, with the indexes built (usable) at the newest commit. */
  describeTable(name: string): Omit<TableSpec, 'indexes'> & { indexes: EngineIndex[] };
  createTable(name: string, spec: TableSpec): Promise<void>;
  dropTable(name: string): Promise<void>;
  /** Build an index online; DUPLICATE_KEY when rows break UNIQUE. */
  createIndex(
    table: string,
    name: string,
    columns: readonly string[],
    options: { unique?: boolean },
  ): Promise<void>;
  dropIndex(table: string, name: string): Promise<void>;
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
  /** Bumped by every createTable/dropTable/createIndex/dropIndex. */
  readonly _schemaVersion: number;
  _queryPool(): MemoryPool;
}

/**
 * The row a UNIQUE index holds for these values (one per column, none NULL), or undefined.
 * tx.getBy normalizes the values twice (rowByUnique, then IndexCodec.range): a DECIMAL column's
 * value is scaled twice (DECIMAL(p <= 18): no row found) or refused (wider: SCHEMA); for an index
 * with a DECIMAL column the lookup is a scan of its one entry instead.
 */
export async function uniqueRow(
  tx: Transaction,
  table: string,
  index: string,
  values: unknown[],
  hasDecimal: boolean,
  columns?: readonly string[],
): Promise<Record<string, unknown> | undefined> {
  const options = columns !== undefined ? { columns } : {};
  if (!hasDecimal) return tx.getBy(table, index, values, options);
  for await (const r of tx.scan(table, { index, eq: values, limit: 1, ...options })) return r;
  return undefined;
}

/** Run fn in a read transaction at the newest commit, rolled back however fn ends. */
export async function atNewest<T>(host: SqlHost, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  const tx = host._begin();
  try {
    return await fn(tx);
  } finally {
    host._rollback(tx, 'rolled back');
  }
}
