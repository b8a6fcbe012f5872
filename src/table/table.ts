import type { Key, Row, TableSchema } from '../catalog/schema.js';
import type { MemoryPool } from '../mem/pool.js';
import { ABSENT, DELETED, MemTable } from './memtable.js';
import type { RowSource } from './source.js';

/** Where a visible row lives: a source (a memtable) and a row id in it. */
export interface RowRef {
  source: RowSource;
  row: number;
}

/**
 * A chunk of keys in order with what a snapshot sees for each: `src[i]` indexes `sources` (or is -1
 * for a delete, which hides the key), `row[i]` is the row in that source.
 */
export interface VisibleChunk {
  n: number;
  keys: Key[];
  src: Int32Array;
  row: Int32Array;
  sources: RowSource[];
  /** True when the range has no more keys after this chunk. */
  done: boolean;
}

/**
 * One table: its identity and schema, its lifetime in commit timestamps, and its storage. Reads take
 * a snapshot timestamp and see exactly the versions committed at or before it.
 */
export class Table {
  readonly memtable: MemTable;
  /** Set when a drop commits; the storage is released once no snapshot can see the table. */
  droppedTs: number | undefined;

  constructor(
    readonly id: number,
    readonly schema: TableSchema,
    readonly createdTs: number,
    pool: MemoryPool,
  ) {
    this.memtable = new MemTable(schema, pool);
  }

  get name(): string {
    return this.schema.name;
  }

  visibleAt(ts: number): boolean {
    return this.createdTs <= ts && (this.droppedTs === undefined || ts < this.droppedTs);
  }

  /** The row visible at `ts` for `key`, or undefined (absent or deleted). */
  lookup(key: Key, ts: number): RowRef | undefined {
    const row = this.memtable.find(key, ts);
    return row === ABSENT || row === DELETED ? undefined : { source: this.memtable, row };
  }

  /** The newest committed version of `key`, whatever the snapshot: for conflict checks. */
  newest(key: Key): { ts: number; deleted: boolean } | undefined {
    return this.memtable.newest(key);
  }

  readRow(ref: RowRef, cols: readonly number[] | undefined): Row {
    return ref.source.readRow(ref.row, cols);
  }

  /**
   * Up to `max` keys in [from, to) in order (after `from` when `after`), with what `ts` sees.
   * Synchronous: the chunk is consistent, and a scan resumes after its last key.
   */
  collect(from: Key | undefined, after: boolean, to: Key | undefined, ts: number, max: number): VisibleChunk {
    const keys: Key[] = [];
    const src = new Int32Array(max);
    const rows = new Int32Array(max);
    let n = 0;
    let done = true;
    this.memtable.forEachVisible(from, after, to, ts, (key, row) => {
      if (n === max) {
        done = false;
        return false;
      }
      keys.push(key);
      src[n] = row === DELETED ? -1 : 0;
      rows[n] = row;
      n++;
      return true;
    });
    return { n, keys, src, row: rows, sources: [this.memtable], done };
  }

  get bytes(): number {
    return this.memtable.bytes;
  }

  release(): void {
    this.memtable.release();
  }
}
