/** The database as the SQL layer sees it (the Database implements it), and reads at its newest commit. */
import type { TableSpec } from '../schema/schema.js';
import type { MemoryPool } from '../mem/pool.js';
import type { Transaction } from '../txn/transaction.js';

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

/** Run fn in a read transaction at the newest commit, rolled back however fn ends. */
export async function atNewest<T>(host: SqlHost, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  const tx = host._begin();
  try {
    return await fn(tx);
  } finally {
    host._rollback(tx, 'rolled back');
  }
}
