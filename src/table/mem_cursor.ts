import type { Key } from '../schema/schema.js';
import type { CursorBuffer, LayerCursor } from './cursor.js';
import type { RowSource } from './source.js';

/** What one call of MemTable.collectRows found. */
export interface CollectResult {
  n: number;
  last: Key | undefined;
  done: boolean;
  /** How many of the n entries are deletes (src -1). */
  deletes: number;
  /** When >= 0, the entries are rows rangeStart..rangeStart+n of source 0 and src/rows were not filled. */
  rangeStart: number;
}

/** What a MemCursor reads: a memtable, through collectRows. */
export interface MemCursorSource extends RowSource {
  /** Whether the memtable is append-ordered: collectRows then gives row ranges. */
  readonly isOrdered: boolean;
  collectRows(
    from: Key | undefined,
    after: boolean,
    to: Key | undefined,
    ts: number,
    max: number,
    src: Int32Array,
    rows: Int32Array,
    keys: Key[] | undefined,
  ): CollectResult;
  keyOfRow(row: number): Key;
}

/** Entries per buffer: index walks fill arrays, so modestly; an append-ordered memtable gives free ranges. */
const CURSOR_ENTRIES = 1024;
const FIRST_CURSOR_ENTRIES = 128;
const RANGE_ENTRIES = 65536;

/**
 * A memtable's entries for a scan, 128 at first and twice as many each time up to 1024; an
 * append-ordered memtable gives row ranges.
 */
export class MemCursor implements LayerCursor {
  private done = false;
  /** Entries asked for by the next call: doubled each call, so a short range allocates little. */
  private want = FIRST_CURSOR_ENTRIES;

  constructor(
    private readonly mt: MemCursorSource,
    private readonly ts: number,
    private from: Key | undefined,
    private after: boolean,
    private readonly to: Key | undefined,
  ) {}

  next(): CursorBuffer | undefined {
    if (this.done) return undefined;
    const mt = this.mt;
    const ordered = mt.isOrdered;
    const max = ordered ? RANGE_ENTRIES : this.want;
    this.want = Math.min(CURSOR_ENTRIES, this.want * 2);
    const src = new Int32Array(ordered ? 0 : max);
    const rows = new Int32Array(ordered ? 0 : max);
    const keys: Key[] | undefined = ordered ? undefined : [];
    const r = mt.collectRows(this.from, this.after, this.to, this.ts, max, src, rows, keys);
    this.from = r.last;
    this.after = true;
    if (r.done) this.done = true;
    if (r.n === 0) return undefined;
    if (r.rangeStart >= 0) {
      const start = r.rangeStart;
      return {
        n: r.n,
        keyAt: (i) => mt.keyOfRow(start + i),
        source: mt,
        rows: undefined,
        rangeStart: start,
        deleted: undefined,
        release: undefined,
      };
    }
    let deleted: Uint8Array | undefined;
    if (r.deletes > 0) {
      deleted = new Uint8Array(r.n);
      for (let i = 0; i < r.n; i++) if (src[i]! < 0) deleted[i] = 1;
    }
    return {
      n: r.n,
      keyAt: (i) => keys![i]!,
      source: mt,
      rows: rows.subarray(0, r.n),
      rangeStart: -1,
      deleted,
      release: undefined,
    };
  }

  close(): void {
    this.done = true;
  }
}
