import type { Key, MapKey } from '../schema/schema.js';
import type { Table } from '../table/table.js';

/** One pending write of a transaction: a row (put), or null for a delete. */
export interface WriteEntry {
  key: Key;
  values: unknown[] | null;
  /** The key was absent at the snapshot and must still be absent at commit (an insert). */
  insert: boolean;
  /**
   * The row's values at the snapshot (null: no row), when known: what the table's indexes hold for
   * the key at the snapshot, so that their entries can be brought from there to `values`.
   */
  old?: unknown[] | null;
}

export class TableWrites {
  readonly entries = new Map<MapKey, WriteEntry>();
  /** The indexes (hidden tables) whose entries these writes keep up to date (see src/txn/indexes.ts). */
  indexed: Table[] = [];
  constructor(readonly table: Table) {}

  /** Entries with keys in [from, to), sorted by key. */
  sortedIn(from: Key | undefined, to: Key | undefined): WriteEntry[] {
    const cmp = this.table.compare;
    const out: WriteEntry[] = [];
    for (const e of this.entries.values()) {
      if (from !== undefined && cmp(e.key, from) < 0) continue;
      if (to !== undefined && cmp(e.key, to) >= 0) continue;
      out.push(e);
    }
    return out.sort((a, b) => cmp(a.key, b.key));
  }
}
