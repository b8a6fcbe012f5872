import type { Key, KeyCompare } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import type { CursorBuffer, LayerCursor } from './cursor.js';
import type { Layer } from './layer.js';
import type { RowSource } from './source.js';

/** Rows a scan hands out: per row a source and a row in it, or one range of one source. */
export interface ScanChunk {
  n: number;
  src: Int32Array;
  row: Int32Array;
  sources: RowSource[];
  /** When >= 0: rows rangeStart..rangeStart+n of sources[0] (src and row unused). */
  rangeStart: number;
  /** The key of each row, when asked for. */
  keys: Key[] | undefined;
  /** The last key the chunk covers. */
  last: Key | undefined;
  /** No more rows after this chunk. */
  done: boolean;
}

const NO_ROWS = new Int32Array(0);
/** The smallest row arrays a chunk allocates. */
const MIN_ROW_ARRAY = 256;

interface Head {
  cursor: LayerCursor;
  buf: CursorBuffer | undefined;
  pos: number;
  exhausted: boolean;
}

/**
 * A snapshot scan over a table's layers (newest first), pinned for its whole life: the k-way merge
 * of their cursors by key, where for equal keys the newest layer wins and a delete hides the key.
 * Runs of one layer with no key of another in between go through whole (and a range of one memtable
 * or row group stays a range, copied out as slices).
 *
 * The rows of a chunk stay readable until the next call to `next` or `close`, which release what
 * the chunk used. `close` releases everything: the scan's pins on layers and cached chunks.
 */
export class TableScan {
  private readonly heads: Head[];
  /** Buffers fully consumed: released at the next call (the last chunk may still use them). */
  private used: CursorBuffer[] = [];
  private closed = false;
  /** The size the last chunk's row arrays reached: where the next one's start. */
  private rowArraySize = MIN_ROW_ARRAY;

  constructor(
    private readonly layers: Layer[],
    cursors: LayerCursor[],
    private readonly cmp: KeyCompare,
  ) {
    this.heads = cursors.map((cursor) => ({ cursor, buf: undefined, pos: 0, exhausted: false }));
  }

  async next(max: number, wantKeys: boolean): Promise<ScanChunk> {
    if (this.closed) throw new TidemarkError('CLOSED', 'the scan was closed');
    this.releaseUsed();
    const srcOf = new Map<RowSource, number>();
    const sources: RowSource[] = [];
    // Row-by-row chunks only: a chunk that is one range of one source needs neither. They grow
    // as rows come (a short range allocates little, however large `max`), from the size the last
    // chunk reached (a long scan does not grow them again for every chunk).
    let src = NO_ROWS;
    let row = NO_ROWS;
    const room = (k: number) => {
      if (n + k <= src.length) return;
      const size = Math.min(max, Math.max(n + k, src.length * 2, this.rowArraySize));
      this.rowArraySize = size;
      const s2 = new Int32Array(size);
      const r2 = new Int32Array(size);
      s2.set(src.subarray(0, n));
      r2.set(row.subarray(0, n));
      src = s2;
      row = r2;
    };
    const keys: Key[] | undefined = wantKeys ? [] : undefined;
    let n = 0;
    let last: Key | undefined;
    for (;;) {
      await this.fill();
      if (this.closed) throw new TidemarkError('CLOSED', 'the scan was closed');
      const live = this.heads.filter((h) => h.buf !== undefined);
      if (live.length === 0) return { n, src, row, sources, rangeStart: -1, keys, last, done: true };
      // The head with the smallest key (the newest layer among equals, heads being newest first).
      let head = live[0]!;
      let headKey = head.buf!.keyAt(head.pos);
      for (let i = 1; i < live.length; i++) {
        const k = live[i]!.buf!.keyAt(live[i]!.pos);
        if (this.cmp(k, headKey) < 0) {
          head = live[i]!;
          headKey = k;
        }
      }
      // Up to where no other layer has a key: the smallest key of the other heads.
      let bound: Key | undefined;
      for (const h of live) {
        if (h === head) continue;
        const k = h.buf!.keyAt(h.pos);
        if (bound === undefined || this.cmp(k, bound) < 0) bound = k;
      }
      const b = head.buf!;
      let take: number;
      if (bound === undefined) take = b.n - head.pos;
      else {
        let lo = head.pos;
        let hi = b.n;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (this.cmp(b.keyAt(mid), bound) < 0) lo = mid + 1;
          else hi = mid;
        }
        take = lo - head.pos;
      }
      if (take === 0) {
        // Equal keys at the front of several layers: the head (newest) decides; the others skip it.
        if (b.deleted?.[head.pos] !== 1) {
          room(1);
          n = this.emit(b, head.pos, 1, src, row, sources, srcOf, keys, n);
        }
        last = headKey;
        for (const h of live) if (this.cmp(h.buf!.keyAt(h.pos), headKey) === 0) this.advance(h, 1);
      } else {
        take = Math.min(take, max - n);
        // A whole chunk from one range of one source, with no deletes: hand it out as a range.
        if (n === 0 && b.rows === undefined && b.deleted === undefined) {
          const start = b.rangeStart + head.pos;
          // Nothing was emitted yet (deletes may have been passed over): the range is the only source.
          sources.length = 0;
          sources.push(b.source);
          if (keys !== undefined) for (let i = 0; i < take; i++) keys.push(b.keyAt(head.pos + i));
          const lastKey = b.keyAt(head.pos + take - 1);
          this.advance(head, take);
          // Know whether anything follows, so that a caller merging its own rows finishes in one chunk.
          await this.fill();
          if (this.closed) throw new TidemarkError('CLOSED', 'the scan was closed');
          return {
            n: take,
            src,
            row,
            sources,
            rangeStart: start,
            keys,
            last: lastKey,
            done: this.finished(),
          };
        }
        room(take);
        n = this.emit(b, head.pos, take, src, row, sources, srcOf, keys, n);
        last = b.keyAt(head.pos + take - 1);
        this.advance(head, take);
      }
      if (n >= max) {
        await this.fill();
        if (this.closed) throw new TidemarkError('CLOSED', 'the scan was closed');
        return { n, src, row, sources, rangeStart: -1, keys, last, done: this.finished() };
      }
    }
  }

  /** Whether every layer is at its end (without waiting for more). */
  private finished(): boolean {
    return this.heads.every((h) => h.exhausted && h.buf === undefined);
  }

  private emit(
    b: CursorBuffer,
    from: number,
    count: number,
    src: Int32Array,
    row: Int32Array,
    sources: RowSource[],
    srcOf: Map<RowSource, number>,
    keys: Key[] | undefined,
    n: number,
  ): number {
    let s = srcOf.get(b.source);
    for (let i = from; i < from + count; i++) {
      if (b.deleted?.[i] === 1) continue;
      if (s === undefined) {
        s = sources.length;
        sources.push(b.source);
        srcOf.set(b.source, s);
      }
      src[n] = s;
      row[n] = b.rows === undefined ? b.rangeStart + i : b.rows[i]!;
      if (keys !== undefined) keys.push(b.keyAt(i));
      n++;
    }
    return n;
  }

  private advance(h: Head, count: number): void {
    h.pos += count;
    if (h.pos >= h.buf!.n) {
      this.used.push(h.buf!);
      h.buf = undefined;
      h.pos = 0;
    }
  }

  /** Give every head without a buffer its next one, if its layer has more. */
  private async fill(): Promise<void> {
    for (const h of this.heads) {
      while (h.buf === undefined && !h.exhausted) {
        const b = await h.cursor.next();
        if (this.closed) {
          // Closed while the read was under way (its transaction ended): nothing may stay pinned.
          b?.release?.();
          return;
        }
        if (b === undefined) h.exhausted = true;
        else if (b.n > 0) {
          h.buf = b;
          h.pos = 0;
        } else b.release?.();
      }
    }
  }

  private releaseUsed(): void {
    for (const b of this.used) b.release?.();
    this.used = [];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseUsed();
    for (const h of this.heads) {
      h.buf?.release?.();
      h.buf = undefined;
      h.cursor.close();
    }
    for (const l of this.layers) l.release();
  }
}
