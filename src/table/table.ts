import { mapKey, type Key, type MapKey, type Row, type TableSchema } from '../schema/schema.js';
import { IndexCodec } from '../schema/index_key.js';
import type { Reservation } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import type { WaitOptions } from '../mem/types.js';
import type { LayerCursor } from './cursor.js';
import { Layer } from './layer.js';
import { ABSENT, DELETED, MemTable, type StagedWrite } from './memtable.js';
import { NOT_CACHED, type ObjectLayer, type ZoneFilter } from './object_layer.js';
import { TableScan } from './scan.js';
import { ValuesSource, type RowSource } from './source.js';

const NO_TABLES = Object.freeze([]) as unknown as Table[];

/** Where a visible row lives: a source (a memtable, or a row read out of an object) and a row in it. */
export interface RowRef {
  source: RowSource;
  row: number;
}

/** A memtable as a layer: freed (its memory released) when retired and no reader holds it. */
export class MemLayer extends Layer {
  constructor(readonly mt: MemTable) {
    super();
  }

  describe(): string {
    return `memtable of ${this.mt.schema.name}`;
  }

  protected free(): void {
    this.mt.release();
  }
}

/** What conflict checks need of recent commits: per key, the newest commit timestamp and kind. */
const RECENT_ENTRY_BYTES = 96;

/**
 * Keys committed since the oldest open snapshot, with their newest commit timestamp. A conflict
 * check asks "was this key committed after my snapshot?": the answer is always here, whatever
 * layer the version has since moved to, so the check is synchronous and never reads objects.
 * Entries older than every open snapshot can answer "no" to everyone and are pruned.
 */
class RecentVersions {
  private readonly map = new Map<MapKey, { ts: number; deleted: boolean }>();
  private readonly queue: { ts: number; mk: MapKey }[] = [];
  private head = 0;
  /** Bytes of the reservation claimed by entries and by staged writes about to add entries. */
  private used = 0;

  constructor(private readonly res: Reservation) {}

  get(mk: MapKey): { ts: number; deleted: boolean } | undefined {
    return this.map.get(mk);
  }

  /** Claim room for `count` entries without waiting (false if memory does not allow it now). */
  tryClaim(count: number): boolean {
    const need = this.used + count * RECENT_ENTRY_BYTES - this.res.bytes;
    if (need > 0 && !this.res.tryGrow(need)) return false;
    this.used += count * RECENT_ENTRY_BYTES;
    return true;
  }

  async ensure(count: number, wait: WaitOptions): Promise<void> {
    const need = this.used + count * RECENT_ENTRY_BYTES - this.res.bytes;
    if (need > 0) await this.res.grow(need, wait);
  }

  unclaim(count: number): void {
    this.used -= count * RECENT_ENTRY_BYTES;
  }

  /**
   * Give memory back, keeping a little headroom for the next commits while there are entries; none
   * once there are none, so that an idle table holds no more than a new one.
   */
  trim(): void {
    const spare = this.res.bytes - this.used;
    if (this.map.size === 0 && spare > 0) this.res.resize(this.used);
    else if (spare > 64 * RECENT_ENTRY_BYTES) this.res.resize(this.used + 16 * RECENT_ENTRY_BYTES);
  }

  /** Record a commit of `key` (its room was claimed at staging). */
  note(mk: MapKey, ts: number, deleted: boolean): void {
    if (this.map.has(mk)) this.used -= RECENT_ENTRY_BYTES; // replaced: one entry, not two
    this.map.set(mk, { ts, deleted });
    this.queue.push({ ts, mk });
  }

  /** Forget entries no open snapshot predates. */
  prune(oldestSnapshot: number): void {
    const q = this.queue;
    while (this.head < q.length && q[this.head]!.ts <= oldestSnapshot) {
      const { ts, mk } = q[this.head++]!;
      const e = this.map.get(mk);
      if (e !== undefined && e.ts === ts) {
        this.map.delete(mk);
        this.used -= RECENT_ENTRY_BYTES;
      }
    }
    if (this.head > 1024 && this.head * 2 > q.length) {
      q.splice(0, this.head);
      this.head = 0;
    }
    this.trim();
  }

  get size(): number {
    return this.map.size;
  }

  release(): void {
    this.res.release();
  }
}

/**
 * A table's writes staged by one commit: in which memtable, and the room claimed for its recent
 * entries. The stage holds a reference to the memtable's layer from staging until it is published
 * or abandoned: a commit waiting for its log record never writes into a layer a flush has freed.
 */
export interface TableStage {
  table: Table;
  staged: StagedWrite;
  entries: number;
  layer: MemLayer;
}

/**
 * One table: its identity and schema, its lifetime in commit timestamps, and its storage: the
 * active memtable that takes commits, frozen memtables waiting to be flushed, and object layers,
 * all reference counted (see Layer). Versions in newer layers are newer, so a read at a snapshot
 * takes, per key, the first layer (newest first) that has a version at or before it.
 */
export class Table {
  active: MemLayer;
  /** Oldest first. */
  readonly frozen: MemLayer[] = [];
  /** Oldest first. */
  objects: ObjectLayer[] = [];
  /** Set when a drop commits; the storage is released once no snapshot can see the table. */
  droppedTs: number | undefined;
  /**
   * The hidden tables of this table's indexes (schema.index set), including ones being built and
   * dropped ones snapshots may still see. The catalog keeps the list.
   */
  readonly indexes: Table[] = [];
  /** An index's hidden table: the commit after which it holds every entry (undefined while built). */
  readyTs: number | undefined;
  private indexCodec: IndexCodec | undefined;
  private readonly recent: RecentVersions;
  private released = false;

  constructor(
    readonly id: number,
    readonly schema: TableSchema,
    readonly createdTs: number,
    private readonly pool: MemoryPool,
  ) {
    this.active = new MemLayer(new MemTable(schema, pool));
    this.recent = new RecentVersions(pool.reserveSync(0, 'table.recent'));
  }

  get name(): string {
    return this.schema.name;
  }

  get compare() {
    return this.active.mt.compare;
  }

  /**
   * About how many rows the table holds, for SQL's join ordering: versions in memory and rows in
   * objects (an overwritten or deleted key counts more than once). Costs no I/O.
   */
  get estimatedRows(): number {
    let n = this.active.mt.versions;
    for (const f of this.frozen) n += f.mt.versions;
    for (const o of this.objects) n += o.data?.meta.rows ?? 0;
    return n;
  }

  visibleAt(ts: number): boolean {
    return this.createdTs <= ts && (this.droppedTs === undefined || ts < this.droppedTs);
  }

  /** An index's hidden table: how its entries' keys are made from rows of `base`. */
  codec(base: Table): IndexCodec {
    if (this.indexCodec === undefined) this.indexCodec = new IndexCodec(base.schema, this.schema.index!);
    return this.indexCodec;
  }

  /** The indexes a snapshot at `ts` may read through: built by then, and not dropped. */
  indexesAt(ts: number): Table[] {
    if (this.indexes.length === 0) return NO_TABLES;
    return this.indexes.filter((i) => i.visibleAt(ts) && i.readyTs !== undefined && i.readyTs <= ts);
  }

  /** The indexes writes must keep up to date: every one not dropped, built or being built. */
  get liveIndexes(): Table[] {
    if (this.indexes.length === 0) return NO_TABLES;
    return this.indexes.filter((i) => i.droppedTs === undefined);
  }

  // ---- writes ----

  /** Make sure the active memtable (and the recent-commit index) has room; may wait for memory. */
  async ensureRoom(puts: readonly (readonly unknown[])[], deletes: number, wait: WaitOptions): Promise<void> {
    // Held while it grows: a flush may freeze and retire this memtable during the wait for memory,
    // and must not free it under the growth (what is grown is then freed with it; the commit finds
    // the new active memtable short of room at tryStage and comes back here).
    const layer = this.active.retain();
    try {
      await layer.mt.ensureRoom(puts, deletes, wait);
    } finally {
      layer.release();
    }
    await this.recent.ensure(puts.length + deletes, wait);
  }

  /** Stage in the active memtable now, or undefined if it lacks room (call ensureRoom, then again). */
  tryStage(
    puts: readonly (readonly unknown[])[],
    putKeys: readonly Key[],
    delKeys: readonly Key[],
  ): TableStage | undefined {
    const entries = putKeys.length + delKeys.length;
    if (!this.recent.tryClaim(entries)) return undefined;
    const layer = this.active;
    const staged = layer.mt.tryStage(puts, putKeys, delKeys);
    if (staged === undefined) {
      this.recent.unclaim(entries);
      return undefined;
    }
    return { table: this, staged, entries, layer: layer.retain() };
  }

  /**
   * Make a staged write visible at `ts`. `remember` false skips the recent-commit index: when no
   * open snapshot is older than the commit (replay; a lone writer), no conflict check will ask.
   */
  publish(s: TableStage, ts: number, remember = true): void {
    s.staged.memtable.publish(s.staged, ts);
    s.layer.release();
    if (!remember) {
      this.recent.unclaim(s.entries);
      return;
    }
    for (const k of s.staged.putKeys) this.recent.note(mapKey(k), ts, false);
    for (const k of s.staged.delKeys) this.recent.note(mapKey(k), ts, true);
  }

  abandon(s: TableStage): void {
    s.staged.memtable.abandon(s.staged);
    s.layer.release();
    this.recent.unclaim(s.entries);
    // The room grown for this commit goes back now: no commit may come to prune (a failed log).
    if (!this.released) this.recent.trim();
  }

  /** The newest commit of `key` by anyone, if it is newer than the oldest open snapshot. */
  newest(key: Key): { ts: number; deleted: boolean } | undefined {
    return this.recent.get(mapKey(key));
  }

  pruneRecent(oldestSnapshot: number): void {
    if (!this.released) this.recent.prune(oldestSnapshot);
  }

  /** Make the active memtable immutable and start a new one; returns the frozen layer. */
  freeze(): MemLayer {
    const old = this.active;
    this.frozen.push(old);
    this.active = new MemLayer(new MemTable(this.schema, this.pool));
    return old;
  }

  // ---- reads ----

  /**
   * The row visible at `ts` for `key`: synchronously when the memtables decide it or no object may
   * hold the key; otherwise a promise (objects are read through the block cache).
   */
  lookup(key: Key, ts: number): RowRef | undefined | Promise<RowRef | undefined> {
    for (const l of this.memLayersNewestFirst()) {
      const row = l.mt.find(key, ts);
      if (row === DELETED) return undefined;
      if (row !== ABSENT) return { source: l.mt, row };
    }
    // Newest first, through the block cache without I/O while it has what is needed (the zone maps
    // and bloom filters skip objects that cannot hold the key); the rest asynchronously.
    for (let i = this.objects.length - 1; i >= 0; i--) {
      const f = this.objects[i]!.findCached(key, ts);
      if (f === NOT_CACHED) {
        const rest: ObjectLayer[] = [];
        for (let j = i; j >= 0; j--)
          if (this.objects[j]!.mayContain(key)) rest.push(this.objects[j]!.retain());
        return this.lookupObjects(rest, key, ts);
      }
      if (f !== undefined)
        return f.values === undefined
          ? undefined
          : { source: new ValuesSource(this.schema, f.values), row: 0 };
    }
    return undefined;
  }

  private async lookupObjects(layers: ObjectLayer[], key: Key, ts: number): Promise<RowRef | undefined> {
    try {
      for (const l of layers) {
        const f = await l.find(key, ts);
        if (f === undefined) continue;
        return f.values === undefined
          ? undefined
          : { source: new ValuesSource(this.schema, f.values), row: 0 };
      }
      return undefined;
    } finally {
      for (const l of layers) l.release();
    }
  }

  readRow(ref: RowRef, cols: readonly number[] | undefined): Row {
    return ref.source.readRow(ref.row, cols);
  }

  /**
   * A scan of [from, to) at `ts`, reading columns `cols`. Pins every layer it may read until closed.
   */
  openScan(
    ts: number,
    from: Key | undefined,
    to: Key | undefined,
    cols: readonly number[],
    zone?: ZoneFilter,
  ): TableScan {
    const layers: Layer[] = [];
    const cursors: LayerCursor[] = [];
    for (const l of this.memLayersNewestFirst()) {
      layers.push(l.retain());
      cursors.push(l.mt.cursor(ts, from, false, to));
    }
    for (let i = this.objects.length - 1; i >= 0; i--) {
      const o = this.objects[i]!;
      // Objects written after the snapshot can hold nothing it sees (their versions are newer).
      if (o.ids.minTs > ts || !o.overlaps(from, to)) continue;
      layers.push(o.retain());
      cursors.push(o.cursor(ts, from, false, to, cols, zone));
    }
    return new TableScan(layers, cursors, this.compare);
  }

  /**
   * Keys strictly inside (from, to), ascending, where the table's layers divide their entries: about
   * every `every` entries of each memtable's index, and the first key of every row group of every
   * object. Between two neighbours, each layer holds at most about one such part (reverse scans).
   */
  splitKeys(from: Key | undefined, to: Key | undefined, every: number): Key[] {
    const cmp = this.compare;
    const inside = (k: Key) =>
      (from === undefined || cmp(k, from) > 0) && (to === undefined || cmp(k, to) < 0);
    const keys: Key[] = [];
    for (const l of this.memLayersNewestFirst()) l.mt.sampleKeys(from, to, every, keys);
    for (const o of this.objects)
      for (const r of [o.data, o.tomb])
        if (r !== undefined) for (const g of r.meta.rowGroups) if (inside(g.minKey)) keys.push(g.minKey);
    keys.sort(cmp);
    const out: Key[] = [];
    for (const k of keys)
      if (inside(k) && (out.length === 0 || cmp(out[out.length - 1]!, k) !== 0)) out.push(k);
    return out;
  }

  private memLayersNewestFirst(): MemLayer[] {
    const out = [this.active];
    for (let i = this.frozen.length - 1; i >= 0; i--) out.push(this.frozen[i]!);
    return out;
  }

  /** Pooled bytes of the memtables. */
  get memBytes(): number {
    let n = this.active.mt.bytes;
    for (const f of this.frozen) n += f.mt.bytes;
    return n;
  }

  /**
   * Retire every layer (the table was dropped, or the database is closing): each is freed when its
   * last reader lets go.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.active.retire();
    for (const f of this.frozen.splice(0)) f.retire();
    for (const o of this.objects.splice(0)) o.retire();
    this.recent.release();
  }

  get isReleased(): boolean {
    return this.released;
  }
}
