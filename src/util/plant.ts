/**
 * Planted leaks, for proving that the leak suite can fail (`tidemark leakcheck --plant KIND`, and
 * the leak tests). Each kind makes one place in the engine leak one thing on purpose. Nothing is
 * planted unless asked: the checks are one comparison each.
 */
export const PLANT_KINDS = [
  'checkpoint-buffer',
  'replay-batch',
  'file-handle',
  'listener',
  'map-entry',
  'timer',
  'level-iterator',
  'sql-query-memory',
  'heap-growth',
] as const;

export type PlantKind = (typeof PLANT_KINDS)[number];

let current: PlantKind | undefined;

/** Plant a kind of leak (undefined: none). Process-wide: for test and leakcheck processes only. */
export function plantLeak(kind: PlantKind | undefined): void {
  current = kind;
}

export function planted(kind: PlantKind): boolean {
  return current === kind;
}

/** What planted leaks keep alive (never cleared: that is the leak). */
export const plantedKeep: unknown[] = [];

/**
 * Planted bugs, for proving that the torture suite can fail: each breaks one promise of the engine
 * on purpose. 'early-ack': a WAL append resolves before its record is written (a commit is
 * acknowledged that a crash can lose). 'replay-gap': recovery skips the first logged commit the
 * checkpoint does not hold already. 'skip-chunk-crc': object chunks are decoded without checking their checksum.
 * 'error-path-pin': an object scan whose read fails does not release the row group's key pin (the
 * fault sweep, test/torture/faultsweep.test.ts, must go red). 'adopt-error-layers': a replica's
 * refresh that fails midway keeps the object layers it opened before the failure (the object-store
 * fault sweep, test/objectstore/faultsweep.test.ts, must go red). 'index-stale-entry': a write
 * that changes an indexed value leaves the old entry in the index. 'index-unique-race': the commit
 * does not check index entries against concurrent commits (only the writes' own checks at their
 * snapshots remain; the index tests, test/index/, must go red for both).
 */
export const BUG_KINDS = [
  'early-ack',
  'replay-gap',
  'skip-chunk-crc',
  'error-path-pin',
  'adopt-error-layers',
  'index-stale-entry',
  'index-unique-race',
] as const;

export type BugKind = (typeof BUG_KINDS)[number];

let bug: BugKind | undefined;

/** Plant a bug (undefined: none). Process-wide: for test processes only. */
export function plantBug(kind: BugKind | undefined): void {
  bug = kind;
}

export function plantedBug(kind: BugKind): boolean {
  return bug === kind;
}
