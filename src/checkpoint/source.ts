import type { FileHold } from '../storage/file_registry.js';
import type { LayersSnapshot, StorageCut } from '../storage/storage.js';

/**
 * What the checkpointer needs of the storage layer, and all it may touch: the storage engine
 * (src/storage/storage.ts) provides it; the checkpointer reads no table internals.
 */
export interface CheckpointSource {
  /** Freeze every memtable holding data; `flushed()` resolves once they are all in objects. */
  cut(): StorageCut;
  /** Resolves in a turn where no FLUSH or MERGE record is between its append and its effect. */
  settled(): Promise<void>;
  readonly isSettled: boolean;
  /** Flushes and merges published so far. */
  readonly changes: number;
  /** Call where `isSettled`: every live table's layers, and the first LSN its memtables hold. */
  snapshot(): LayersSnapshot;
  /** Delete again the object files whose deletion failed; resolves with the paths deleted. */
  collect(): Promise<string[]>;
  /** Hold the object files a checkpoint names while it is retained; release() deletes unheld ones. */
  hold(ids: Iterable<number>): FileHold;
}

/** What the checkpointer needs of the transaction layer. */
export interface CommitSource {
  /** Commits with writes and DDL statements published so far. */
  readonly changes: number;
  /** Resolves in a turn where no DDL record is between its append and its effect on the catalog. */
  ddlSettled(): Promise<void>;
  readonly isDdlSettled: boolean;
  /** The newest timestamp the clock handed out. */
  readonly clock: { peek(): number };
}
