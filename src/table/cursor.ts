import type { Key } from '../schema/schema.js';
import type { RowSource } from './source.js';

/**
 * What one layer of a table shows a scan: a buffer of consecutive entries in key order, each a
 * visible row of `source` or a delete (which hides the key in older layers).
 */
export interface CursorBuffer {
  n: number;
  /** The key of entry i (keys are compared while layers are merged). */
  keyAt(i: number): Key;
  source: RowSource;
  /** Rows of `source`; undefined when entry i is row rangeStart + i. */
  rows: Int32Array | undefined;
  rangeStart: number;
  /** 1 where entry i is a delete; undefined when there is none. */
  deleted: Uint8Array | undefined;
  /** Release what the buffer pins; the scan calls it once it no longer needs the buffer's rows. */
  release: (() => void) | undefined;
}

/**
 * A layer's entries in [from, to) at a snapshot, one buffer at a time. `next` gives the buffer after
 * the previous one (undefined at the end). A buffer stays valid until its own `release` (the caller
 * releases every buffer it got); `close` releases what the cursor still holds for what comes next.
 */
export interface LayerCursor {
  next(): Promise<CursorBuffer | undefined> | CursorBuffer | undefined;
  close(): void;
}
