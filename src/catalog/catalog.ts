import { TidemarkError } from '../errors.js';
import type { Table } from '../table/table.js';

/**
 * The tables of a database, versioned by commit timestamp: a table is visible to snapshots from its
 * creation up to (not including) its drop. Dropped tables stay registered until no snapshot can see
 * them, then the database releases their storage and forgets them.
 */
export class Catalog {
  private readonly byId = new Map<number, Table>();
  nextTableId = 1;
  private dropped = 0;

  add(t: Table): void {
    this.byId.set(t.id, t);
    if (t.id >= this.nextTableId) this.nextTableId = t.id + 1;
    // An index's hidden table joins its table's list (whichever of the two comes first).
    const of = t.schema.index;
    if (of !== undefined) {
      const base = this.byId.get(of.base);
      if (base !== undefined && !base.indexes.includes(t)) base.indexes.push(t);
    } else
      for (const h of this.byId.values())
        if (h.schema.index?.base === t.id && !t.indexes.includes(h)) t.indexes.push(h);
  }

  /** The index named `name` of `base` visible at `ts` (built or not), if any. */
  index(base: Table, name: string, ts: number): Table | undefined {
    return base.indexes.find((i) => i.schema.index!.name === name && i.visibleAt(ts));
  }

  byTableId(id: number): Table | undefined {
    return this.byId.get(id);
  }

  /** The table named `name` visible at `ts` (indexes' hidden tables are not found by name). */
  lookup(name: string, ts: number): Table | undefined {
    for (const t of this.byId.values())
      if (t.name === name && t.visibleAt(ts) && t.schema.index === undefined) return t;
    return undefined;
  }

  /** Like lookup, but an unknown name is NOT_FOUND. */
  get(name: string, ts: number): Table {
    const t = this.lookup(name, ts);
    if (t === undefined) {
      throw new TidemarkError('NOT_FOUND', `no table named ${JSON.stringify(name)}`, {
        details: { table: name },
      });
    }
    return t;
  }

  /** The live (not dropped) table named `name`. */
  live(name: string): Table | undefined {
    for (const t of this.byId.values())
      if (t.name === name && t.droppedTs === undefined && t.schema.index === undefined) return t;
    return undefined;
  }

  /** The names of the tables visible at `ts` (not the hidden tables of indexes). */
  names(ts: number): string[] {
    const out: string[] = [];
    for (const t of this.byId.values()) if (t.visibleAt(ts) && t.schema.index === undefined) out.push(t.name);
    return out.sort();
  }

  all(): Table[] {
    return [...this.byId.values()];
  }

  /** Dropped tables no snapshot at or after `oldestTs` can see. */
  unreachable(oldestTs: number): Table[] {
    if (this.dropped === 0) return [];
    return this.all().filter((t) => t.droppedTs !== undefined && t.droppedTs <= oldestTs);
  }

  /** Count a drop (so that looking for unreachable tables costs nothing when there are none). */
  markDropped(t: Table, ts: number): void {
    if (t.droppedTs === undefined) this.dropped++;
    t.droppedTs = ts;
  }

  remove(id: number): void {
    const t = this.byId.get(id);
    if (t?.droppedTs !== undefined) this.dropped--;
    this.byId.delete(id);
    const of = t?.schema.index;
    if (of !== undefined) {
      const list = this.byId.get(of.base)?.indexes;
      const i = list?.indexOf(t!) ?? -1;
      if (i >= 0) list!.splice(i, 1);
    }
  }
}
