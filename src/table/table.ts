import type { Key, Row, TableSchema } from '../catalog/schema.js';
import type { MemoryPool } from '../mem/pool.js';
import { ABSENT, DELETED, MemTable, type ProbeResult } from './memtable.js';
import type { RowSource } from './source.js';

/** Where a visible row lives: a source (a memtable) and a row id in it. */
export interface RowRef {
  source: RowSource;
  row: number;
}

/**
 * A chunk of keys in order with what a snapshot sees for each: `src[i]` indexes `sources` (or is -1
 * for a delete, which hides the key), `row[i]` is the row in that source. `keys` is filled only when
 * asked for; `last` is always the chunk's last key (where a scan resumes).
 */
export interface VisibleChunk {
  n: number;
  keys: Key[] | undefined;
  last: Key | undefined;
  src: Int32Array;
  row: Int32Array;
  sources: RowSource[];
  /** True when the range has no more keys after this chunk. */
  done: boolean;
  /** How many entries are deletes. */
  deletes: number;
  /** When >= 0, the chunk is rows rangeStart..rangeStart+n of sources[0]; src/row are not filled. */
  rangeStart: number;
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
   * Up to `max` keys in [from, to) in order (after `from` when `after`), with what `ts` sees, into
   * the caller's `src`/`row` arrays (at least `max` long, reused from chunk to chunk).
   * Synchronous: the chunk is consistent, and a scan resumes after its last key.
   */
  collect(
    from: Key | undefined,
    after: boolean,
    to: Key | undefined,
    ts: number,
    max: number,
    wantKeys: boolean,
    src: Int32Array,
    row: Int32Array,
  ): VisibleChunk {
    const keys = wantKeys ? [] : undefined;
    const r = this.memtable.collectRows(from, after, to, ts, max, src, row, keys);
    return {
      n: r.n,
      keys,
      last: r.last,
      src,
      row,
      sources: [this.memtable],
      done: r.done,
      deletes: r.deletes,
      rangeStart: r.rangeStart,
    };
  }

  /** For a write: what `ts` sees of `key`, and the newest committed version, in one lookup. */
  probe(key: Key, ts: number): ProbeResult {
    return this.memtable.probe(key, ts);
  }

  get bytes(): number {
    return this.memtable.bytes;
  }

  release(): void {
    this.memtable.release();
  }
}
