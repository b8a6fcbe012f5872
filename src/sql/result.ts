/** What a SQL statement gives back: `db.query`, `tx.query` and sessions return it. */

export interface QueryResult {
  /** Output column names (empty for statements that return no rows). */
  columns: string[];
  rows: unknown[][];
  /** Rows inserted, updated (changed) or deleted; 0 for queries. */
  affectedRows: number;
  /** After an INSERT that made AUTO_INCREMENT values: the first of them (MySQL's LAST_INSERT_ID). */
  insertId?: number | bigint;
}
