import type { Catalog } from '../catalog/catalog.js';
import { TidemarkError } from '../errors.js';
import type { FileService } from '../fileservice/types.js';
import { isTempName } from '../fileservice/paths.js';
import type { Logger } from '../log.js';
import type { MemoryManager } from '../mem/manager.js';
import { BlockCache } from '../objectio/cache.js';
import { ObjectFiles } from '../objectio/files.js';
import { OBJ_DIR, objectPath, parseObjectName } from '../objectio/format.js';
import { DEFAULT_ROW_GROUP_ROWS, ROW_GROUP_BYTES_MAX } from '../objectio/writer.js';
import { writeMemTable, type FlushResult } from '../table/flush.js';
import { decodeStorage, encodeStorage, type LayerIds, type StorageOp } from '../table/log_records.js';
import { mergeLayers } from '../table/merge.js';
import { ObjectLayer, type ObjectContext } from '../table/object_layer.js';
import { Table, type MemLayer } from '../table/table.js';
import type { CkpState } from '../checkpoint/format.js';
import type { ReplayFrom } from '../txn/manager.js';
import type { Wal } from '../wal/wal.js';
import { planted, plantedBug } from '../util/plant.js';

/** Planted leak 'map-entry': frozen memtables kept in a map forever. */
const plantedMap = new Map<number, MemLayer>();

export interface StorageOptions {
  /** A table's active memtable is frozen and flushed past this many pooled bytes. Default 64 MiB. */
  memtableBytesMax: number;
  /** ...or past this many rows. Default 1,000,000. */
  memtableRowsMax: number;
  /** Rows per row group in objects. Default 16,000 (see DEFAULT_ROW_GROUP_ROWS). */
  rowGroupRows: number;
  /** Merge a table's oldest object layers when it has this many. 0: never merge in the background. Default 4. */
  mergeMinObjects: number;
  /** The most layers one merge takes. Default 8. */
  mergeMaxInputs: number;
}

export const DEFAULT_STORAGE_OPTIONS: StorageOptions = {
  memtableBytesMax: 64 * 1024 * 1024,
  memtableRowsMax: 1_000_000,
  rowGroupRows: DEFAULT_ROW_GROUP_ROWS,
  mergeMinObjects: 4,
  mergeMaxInputs: 8,
};

export interface StorageStats {
  flushes: number;
  merges: number;
  flushFailures: number;
  mergeFailures: number;
  objects: number;
  objectBytes: number;
  frozenMemtables: number;
  deletedFiles: number;
  cache: ReturnType<BlockCache['stats']>;
}

/** Pool share of memtables, and the fraction of it past which the largest memtable is flushed. */
const PRESSURE_FRACTION = 0.6;
const RETRY_MS = 200;

type Job = { kind: 'flush'; table: Table } | { kind: 'merge'; table: Table; all: boolean };

interface Lane {
  queue: Job[];
  running: Promise<void> | undefined;
}

/**
 * The storage layer's background work and bookkeeping: freezing memtables (with a FREEZE record, so
 * that the point is in the log), flushing them to objects, merging objects, opening and deleting
 * object files, allocating object ids, and, at open, rebuilding each table's layers from the log and
 * removing files no layer names. Two lanes of jobs run side by side, flushes and merges, one job
 * each at a time; a failed job is logged, counted, and retried after a pause.
 */
export class Storage {
  readonly files: ObjectFiles;
  readonly cache: BlockCache;
  readonly mergeCache: BlockCache;
  private readonly ctx: ObjectContext;
  private nextId = 1;
  private readonly lanes: Record<Job['kind'], Lane> = {
    flush: { queue: [], running: undefined },
    merge: { queue: [], running: undefined },
  };
  /** Jobs that failed, waiting for the retry timer. */
  private readonly deferred: Job[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Per table, the layers replay found (object ids), oldest first. */
  private readonly replayLayers = new Map<number, LayerIds[]>();
  /** Where each replayed layer was named (a checkpoint, a log record): for error messages. */
  private readonly layerSources = new WeakMap<LayerIds, string>();
  /** The FREEZE records' appends, per frozen memtable: a flush logs FLUSH only after its FREEZE. */
  private readonly freezeLogged = new Map<MemLayer, Promise<unknown>>();
  private readonly deletions = new Set<Promise<void>>();
  private readonly waiters: {
    until: () => boolean;
    resolve: () => void;
    reject: (e: unknown) => void;
    /** Fail the wait when a job for one of these tables fails (otherwise failures are retried). */
    failFor?: ReadonlySet<Table>;
  }[] = [];
  /** FLUSH and MERGE records appended whose layers are not in place yet (see idle). */
  private publishing = 0;
  private publishIdle: (() => void)[] = [];
  /**
   * Object files of retired layers no reader holds any more, by id, that a retained checkpoint (or
   * the one being written) names: deleted by `collect` once none does.
   */
  private readonly retiredFiles = new Set<number>();
  /**
   * Object ids the retained checkpoints and the one being taken name (set by the checkpointer). A
   * retired file no checkpoint names is deleted at once: the log alone names it, and the log that
   * retired it is kept as long as a checkpoint before it is.
   */
  protectedObjects: ReadonlySet<number> = new Set();
  readonly counters = { flushes: 0, merges: 0, flushFailures: 0, mergeFailures: 0, deletedFiles: 0 };

  constructor(
    private readonly fs: FileService,
    private readonly memory: MemoryManager,
    private readonly wal: Wal,
    private readonly catalog: Catalog,
    private readonly logger: Logger,
    readonly options: StorageOptions,
    private readonly oldestSnapshot: () => number,
    cacheBytes: number,
  ) {
    // When the log fails, whoever waits for a flush or a merge to be published waits in vain.
    wal.onFailure((err) => {
      for (const w of this.waiters.splice(0)) {
        if (w.until())
          w.resolve(); // what it waited for happened before the failure
        else w.reject(err);
      }
    });
    this.files = new ObjectFiles(fs);
    this.cache = new BlockCache(memory.pool('cache'), cacheBytes);
    // The merge reads through a cache of its own, so that merging does not evict what readers use.
    this.mergeCache = new BlockCache(
      memory.pool('merge'),
      Math.min(16 * 1024 * 1024, Math.floor(memory.limitBytes / 16)),
    );
    this.ctx = {
      files: this.files,
      cache: this.cache,
      io: memory.pool('io'),
      metaPool: memory.pool('meta'),
      onFree: (ids, remove) => {
        for (const id of [ids.data, ids.tomb]) {
          if (id === 0) continue;
          const path = objectPath(id);
          const done = this.files.forget(path).then(async () => {
            if (!remove) return;
            if (this.protectedObjects.has(id)) {
              // A checkpoint still names it: deleted once none does (see collect).
              this.retiredFiles.add(id);
              return;
            }
            await this.fs.delete(path);
            this.counters.deletedFiles++;
          });
          const tracked = done.catch((e: unknown) =>
            this.logger.warn(
              { err: e, path },
              'could not delete an object file; it will be removed at the next open',
            ),
          );
          this.deletions.add(tracked);
          void tracked.finally(() => this.deletions.delete(tracked));
        }
      },
    };
  }

  private allocateId = (): number => this.nextId++;

  /**
   * Bytes of values a row group holds at most: ROW_GROUP_BYTES_MAX, less under a small memory limit,
   * so that what a scan pins (a row group of each layer it reads) stays small next to the limit.
   */
  private get rowGroupBytes(): number {
    return Math.min(ROW_GROUP_BYTES_MAX, Math.max(16 * 1024, Math.floor(this.memory.limitBytes / 256)));
  }

  // ---- triggers ----

  /**
   * After a commit, and before one stages its rows: flush tables whose memtable grew past the
   * limits, and the largest under memory pressure, so that a commit waiting for memory has a flush
   * on the way to free some.
   */
  published(tables: Table[]): void {
    if (this.stopped) return;
    for (const t of tables) {
      const mt = t.active.mt;
      if (mt.bytes >= this.options.memtableBytesMax || mt.rows >= this.options.memtableRowsMax)
        this.freeze(t);
    }
    this.relievePressure();
  }

  /** Memtables hold more than their share's threshold: flush the largest active one. */
  relievePressure(): void {
    const pool = this.memory.pool('memtable');
    const share = Math.min(pool.stats().maxBytes, this.memory.limitBytes);
    if (pool.stats().bytes < share * PRESSURE_FRACTION) return;
    let biggest: Table | undefined;
    for (const t of this.catalog.all()) {
      if (t.isReleased || t.active.mt.keys === 0) continue;
      if (biggest === undefined || t.active.mt.bytes > biggest.active.mt.bytes) biggest = t;
    }
    // Only when nothing is already on its way out: a flush in progress frees memory soon.
    if (biggest !== undefined && !this.catalog.all().some((t) => t.frozen.length > 0)) this.freeze(biggest);
  }

  /**
   * Freeze a table's active memtable now: synchronously, so that the FREEZE record takes its place in
   * the log between commits exactly where the memtables switch.
   */
  freeze(t: Table): MemLayer | undefined {
    if (this.stopped || t.isReleased || t.active.mt.keys === 0) return undefined;
    const layer = t.freeze();
    if (planted('map-entry')) plantedMap.set(plantedMap.size, layer);
    const { type, payload } = encodeStorage({ kind: 'freeze', tableId: t.id });
    const logged = this.wal.append(type, payload);
    logged.catch(() => undefined); // the flush job reports it
    this.freezeLogged.set(layer, logged);
    this.schedule({ kind: 'flush', table: t });
    return layer;
  }

  /** Freeze every table with data in memory (or one) and wait until it is all in objects. */
  async flush(tables: Table[]): Promise<void> {
    for (const t of tables) {
      this.freeze(t);
      // A memtable frozen earlier whose flush failed waits for its retry: a caller asking now is
      // served now (its wait is rejected if the flush fails again), not after the retry pause.
      if (t.frozen.length > 0) this.schedule({ kind: 'flush', table: t });
    }
    // A failed flush rejects the wait with its error (the flush is retried in the background).
    await this.waitFor(() => tables.every((t) => t.isReleased || t.frozen.length === 0), new Set(tables));
  }

  /** Merge all of a table's object layers into one, and wait for it (a failure rejects it). */
  async compact(tables: Table[]): Promise<void> {
    await this.flush(tables);
    for (const t of tables) if (t.objects.length > 1) this.schedule({ kind: 'merge', table: t, all: true });
    await this.waitFor(() => tables.every((t) => t.isReleased || t.objects.length <= 1), new Set(tables));
  }

  /**
   * A promise for a caller (flush, compact, a checkpoint's flush), settled when `until` holds or a
   * job for one of `failFor` fails. While any such caller waits, the retry timer is ref'd: what it
   * waits for must not be left to a timer that lets the process exit under an await.
   */
  private waitFor(until: () => boolean, failFor?: ReadonlySet<Table>): Promise<void> {
    if (until()) return Promise.resolve();
    // Nothing can be published without the log: fail now rather than wait until reopen.
    if (this.wal.failed !== undefined) return Promise.reject(this.wal.failed);
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ until, resolve, reject, ...(failFor !== undefined ? { failFor } : {}) });
      this.retryTimer?.ref();
    });
  }

  /**
   * Freeze every table's active memtable that holds data (a checkpoint's cut) and return every
   * frozen memtable there is now: all data committed so far is in them or in objects.
   */
  freezeAll(): MemLayer[] {
    const out: MemLayer[] = [];
    for (const t of this.catalog.all()) {
      if (t.isReleased) continue;
      this.freeze(t);
      out.push(...t.frozen);
    }
    return out;
  }

  /**
   * Wait until the given frozen memtables are flushed (published as objects). Rejects with the error
   * if a flush of one of their tables fails meanwhile (the flush itself is retried later).
   */
  async flushLayers(layers: readonly MemLayer[]): Promise<void> {
    const tables = new Set(this.catalog.all().filter((t) => layers.some((l) => t.frozen.includes(l))));
    await this.waitFor(
      () => layers.every((l) => !this.catalog.all().some((t) => !t.isReleased && t.frozen.includes(l))),
      tables,
    );
  }

  /**
   * Resolves in a turn in which no FLUSH or MERGE record is between its append and its effect: a
   * checkpoint taken synchronously then reflects every storage record logged so far.
   */
  async idle(): Promise<void> {
    while (this.publishing > 0) await new Promise<void>((r) => this.publishIdle.push(r));
  }

  get isIdle(): boolean {
    return this.publishing === 0;
  }

  /** Object ids of every table's current layers. */
  layerIds(t: Table): LayerIds[] {
    return t.objects.map((o) => o.ids);
  }

  /** The next object id (checkpoints record it). */
  get nextObjectId(): number {
    return this.nextId;
  }

  /**
   * Delete retired object files that none of `named` (the object ids the retained checkpoints name)
   * holds. Returns the paths deleted.
   */
  async collect(named: ReadonlySet<number>): Promise<string[]> {
    const gone: string[] = [];
    for (const id of [...this.retiredFiles]) {
      if (named.has(id)) continue;
      const path = objectPath(id);
      await this.fs.delete(path);
      this.retiredFiles.delete(id);
      this.counters.deletedFiles++;
      gone.push(path);
    }
    if (gone.length > 0) await this.fs.syncDir(OBJ_DIR);
    return gone;
  }

  /** Resolves when no flush or merge job is queued or running (failed ones waiting to retry count)
   * and no read-ahead is loading. */
  async whenIdle(): Promise<void> {
    for (;;) {
      const running = Object.values(this.lanes)
        .map((l) => l.running)
        .filter((r) => r !== undefined);
      if (running.length === 0 && this.deferred.length === 0 && this.deletions.size === 0) {
        // Read-ahead still in flight would land in the cache after the caller thinks it is quiet.
        if (!this.cache.prefetchInFlight() && !this.mergeCache.prefetchInFlight()) return;
        await Promise.all([this.cache.settle(), this.mergeCache.settle()]);
        continue;
      }
      if (running.length > 0) await Promise.allSettled(running);
      else if (this.deletions.size > 0) await Promise.allSettled([...this.deletions]);
      else await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** What the storage holds now: for leak checks (see the leakcheck harness). */
  census(): { tables: number; memLayers: number; objectLayers: number; readers: number; bloomBytes: number } {
    let memLayers = 0;
    let objectLayers = 0;
    let readers = 0;
    let bloomBytes = 0;
    let tables = 0;
    for (const t of this.catalog.all()) {
      if (t.isReleased) continue;
      tables++;
      memLayers += 1 + t.frozen.length;
      objectLayers += t.objects.length;
      for (const o of t.objects)
        for (const r of o.readers()) {
          readers++;
          bloomBytes += r.bloomBytes;
        }
    }
    return { tables, memLayers, objectLayers, readers, bloomBytes };
  }

  /** The object files the database holds: live layers' and retired ones not yet deleted. */
  objectFiles(): string[] {
    const out: string[] = [];
    for (const t of this.catalog.all())
      for (const o of t.objects)
        for (const id of [o.ids.data, o.ids.tomb]) if (id !== 0) out.push(objectPath(id));
    for (const id of this.retiredFiles) out.push(objectPath(id));
    return out;
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) {
      if (!w.until()) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  // ---- the worker ----

  private schedule(job: Job): void {
    if (this.stopped) return;
    const lane = this.lanes[job.kind];
    if (
      !lane.queue.some(
        (j) => j.table === job.table && (j.kind !== 'merge' || j.all === (job as { all: boolean }).all),
      )
    )
      lane.queue.push(job);
    lane.running ??= this.work(lane);
  }

  /**
   * Two lanes run side by side: flushes, and merges. A long merge never holds up the flush that a
   * commit waiting for memory needs.
   */
  private async work(lane: Lane): Promise<void> {
    // Yield first: a job with nothing to do (its table dropped, its memtable flushed meanwhile)
    // awaits nothing, and a worker that finished synchronously would clear `lane.running` before
    // `schedule` recorded it, leaving the lane marked running for ever.
    await Promise.resolve();
    try {
      while (!this.stopped && lane.queue.length > 0) {
        const job = lane.queue.shift()!;
        try {
          // One flush job per table is queued at a time: it flushes every frozen memtable there is.
          if (job.kind === 'flush')
            while (job.table.frozen.length > 0 && !job.table.isReleased && !this.stopped)
              await this.flushOldest(job.table);
          else await this.mergeLayers(job.table, job.all);
        } catch (e) {
          if (this.stopped) break;
          if (job.kind === 'flush') this.counters.flushFailures++;
          else this.counters.mergeFailures++;
          this.logger.error(
            { err: e, table: job.table.name, job: job.kind },
            `${job.kind} failed; retrying later`,
          );
          if (this.wal.failed !== undefined) {
            // The log is gone: nothing can be published until reopen. Fail whoever waits.
            for (const w of this.waiters.splice(0)) w.reject(e);
            break;
          }
          for (const w of [...this.waiters]) {
            if (w.failFor?.has(job.table) !== true) continue;
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.reject(e);
          }
          this.retryLater(job);
        }
        this.wakeWaiters();
      }
    } finally {
      lane.running = undefined;
    }
  }

  /** Put a failed job aside and try again after a pause (never in the same run of the loop). */
  private retryLater(job: Job): void {
    if (this.stopped) return;
    if (!this.deferred.some((j) => j.kind === job.kind && j.table === job.table)) this.deferred.push(job);
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const j of this.deferred.splice(0)) this.schedule(j);
    }, RETRY_MS);
    // A retry nobody awaits must not keep the process alive; one a caller waits on must (waitFor).
    if (this.waiters.length === 0) this.retryTimer.unref();
  }

  private async flushOldest(t: Table): Promise<void> {
    const layer = t.frozen[0];
    if (layer === undefined || t.isReleased) return;
    const mt = layer.mt;
    await mt.whenSettled();
    await this.freezeLogged.get(layer);
    const result = await writeMemTable({
      fs: this.fs,
      mt,
      tableId: t.id,
      oldestSnapshot: this.oldestSnapshot(),
      rowGroupRows: this.options.rowGroupRows,
      rowGroupBytes: this.rowGroupBytes,
      nextObjectId: this.allocateId,
      io: this.memory.pool('io'),
    });
    const ids: LayerIds = result?.ids ?? { data: 0, tomb: 0, minTs: mt.minTs, maxTs: mt.maxTs };
    await this.publish(t, { kind: 'flush', tableId: t.id, layer: ids }, result, (opened) => {
      if (t.frozen[0] !== layer)
        throw new TidemarkError('INVALID_ARGUMENT', `flush of ${t.name}: the frozen memtable changed`);
      t.frozen.shift();
      this.freezeLogged.delete(layer);
      layer.retire(false);
      if (opened !== undefined) t.objects.push(opened);
    });
    this.counters.flushes++;
    this.logger.debug(
      { table: t.name, rows: result?.rows ?? 0, bytes: result?.bytes ?? 0, ids },
      'flushed a memtable',
    );
    if (this.pickMergeRun(t) !== undefined) this.schedule({ kind: 'merge', table: t, all: false });
  }

  /**
   * Which of a table's object layers to merge: the newest run in which no layer is larger than all
   * the younger ones of the run together (size-tiered: a layer is rewritten again only once as much
   * new data has piled up on top of it, so rewrites stay logarithmic), of at least mergeMinObjects
   * and at most mergeMaxInputs layers.
   */
  private pickMergeRun(t: Table): { start: number; count: number } | undefined {
    const o = t.objects;
    const n = o.length;
    if (this.options.mergeMinObjects === 0 || n < this.options.mergeMinObjects) return undefined;
    let start = n - 1;
    let younger = o[n - 1]!.bytes;
    while (start > 0 && n - start < this.options.mergeMaxInputs && o[start - 1]!.bytes <= younger) {
      start--;
      younger += o[start]!.bytes;
    }
    const count = n - start;
    return count >= this.options.mergeMinObjects ? { start, count } : undefined;
  }

  private async mergeLayers(t: Table, all: boolean): Promise<void> {
    if (t.isReleased) return;
    const run = all ? { start: 0, count: t.objects.length } : this.pickMergeRun(t);
    if (run === undefined || run.count < 2) return;
    const { start, count } = run;
    const inputs = t.objects.slice(start, start + count);
    for (const l of inputs) l.retain();
    try {
      const result = await mergeLayers({
        fs: this.fs,
        files: this.files,
        cache: this.mergeCache,
        pool: this.memory.pool('merge'),
        schema: t.schema,
        compare: t.compare,
        tableId: t.id,
        inputs: inputs.map((l) => l.ids),
        // A delete with nothing older under it can go.
        includesBottom: start === 0,
        oldestSnapshot: this.oldestSnapshot(),
        rowGroupRows: this.options.rowGroupRows,
        rowGroupBytes: this.rowGroupBytes,
        nextObjectId: this.allocateId,
        shouldStop: () => this.stopped || t.isReleased,
      });
      const ids: LayerIds = result?.ids ?? {
        data: 0,
        tomb: 0,
        minTs: inputs[0]!.ids.minTs,
        maxTs: inputs[count - 1]!.ids.maxTs,
      };
      const inputIds = inputs.flatMap((l) => [l.ids.data, l.ids.tomb]);
      await this.publish(
        t,
        { kind: 'merge', tableId: t.id, inputs: inputIds, layer: ids },
        result,
        (opened) => {
          // Flushes only append and one merge runs at a time: the run is where it was.
          const at = t.objects.indexOf(inputs[0]!);
          for (let i = 0; i < count; i++) {
            if (t.objects[at + i] !== inputs[i])
              throw new TidemarkError('INVALID_ARGUMENT', `merge of ${t.name}: the layers changed`);
          }
          t.objects.splice(at, count, ...(opened !== undefined ? [opened] : []));
          for (const l of inputs) l.retire(true);
        },
      );
      this.counters.merges++;
      this.logger.debug({ table: t.name, inputs: count, rows: result?.rows ?? 0 }, 'merged object layers');
    } finally {
      for (const l of inputs) l.release();
    }
    // More may be due (a merge makes a larger layer that may now qualify with older ones).
    if (!all && this.pickMergeRun(t) !== undefined) this.schedule({ kind: 'merge', table: t, all: false });
  }

  /**
   * Open the new layer, log the record, and (once durable) put it in place with `apply`. If anything
   * fails before the record is durable, the new objects are deleted; a table dropped meanwhile gets
   * nothing.
   */
  private async publish(
    t: Table,
    op: StorageOp,
    result: FlushResult | undefined,
    apply: (opened: ObjectLayer | undefined) => void,
  ): Promise<void> {
    let opened: ObjectLayer | undefined;
    /** Set when the record's append failed with the log: it may be in the file. */
    let keepFiles = false;
    const discard = async () => {
      opened?.retire(true);
      if (opened === undefined && result !== undefined) {
        for (const id of [result.ids.data, result.ids.tomb]) {
          if (id === 0) continue;
          // Opening the layer may have failed after a read had opened the file's shared handle.
          await this.files.forget(objectPath(id)).catch(() => undefined);
          await this.fs.delete(objectPath(id)).catch(() => undefined);
        }
      }
    };
    try {
      if (result !== undefined) opened = await ObjectLayer.open(this.ctx, result.ids, t.schema, t.compare);
      if (t.isReleased) {
        await discard();
        return;
      }
      const { type, payload } = encodeStorage(op);
      this.publishing++;
      try {
        await this.wal.append(type, payload);
      } catch (e) {
        this.publishDone();
        if (this.wal.failed !== undefined) {
          // The log failed: whether the record reached the file is unknown until reopen, and a
          // replayed record must find its objects. Release the layer and keep its files: the open
          // deletes them if no durable record names them.
          opened?.retire(false);
          opened = undefined;
          keepFiles = true;
        }
        throw e;
      }
    } catch (e) {
      if (!keepFiles) await discard();
      throw e;
    }
    try {
      this.place(t, opened, apply, discard);
    } finally {
      this.publishDone();
    }
  }

  private publishDone(): void {
    if (--this.publishing === 0) for (const r of this.publishIdle.splice(0)) r();
  }

  /** Put a published layer in place (synchronously, in the turn its record became durable). */
  private place(
    t: Table,
    opened: ObjectLayer | undefined,
    apply: (opened: ObjectLayer | undefined) => void,
    discard: () => Promise<void>,
  ): void {
    if (t.isReleased) {
      // Dropped while the record was being written: these objects belong to no table now.
      void discard();
      return;
    }
    try {
      apply(opened);
    } catch (e) {
      // The layers changed under the record (a broken invariant, not an I/O failure): the layer
      // is not placed, so it is released here. Its files stay: the log names them, and a reopen
      // replays the record.
      opened?.retire(false);
      throw e;
    }
  }

  // ---- recovery ----

  /** A table's object layers as a checkpoint recorded them: replay continues from there. */
  seedLayers(tableId: number, layers: readonly LayerIds[], source: string): void {
    const copies = layers.map((l) => ({ ...l }));
    for (const l of copies) this.layerSources.set(l, source);
    this.replayLayers.set(tableId, copies);
    for (const l of layers) this.nextId = Math.max(this.nextId, l.data + 1, l.tomb + 1);
  }

  /** Object ids a checkpoint recorded as next (ids are never reused). */
  seedNextObjectId(id: number): void {
    this.nextId = Math.max(this.nextId, id);
  }

  /**
   * A FREEZE, FLUSH or MERGE record met while replaying the log. After a checkpoint (`from`), a
   * FLUSH or MERGE at or below its storage LSN is in its object lists already, and a FREEZE counts
   * only from the table's redo LSN (earlier memtables are in objects).
   */
  replay(type: number, payload: Uint8Array, where: string, lsn: number, from?: ReplayFrom): void {
    const op = decodeStorage(type, payload, where);
    const t = this.catalog.byTableId(op.tableId);
    this.noteIds(op);
    if (t === undefined) {
      // A table dropped later in the log (the drop released it already): its objects are orphans.
      return;
    }
    if (from !== undefined) {
      if (op.kind === 'freeze' ? lsn < (from.redo.get(t.id) ?? 0) : lsn <= from.storageLsn) return;
    }
    const layers = this.replayLayers.get(t.id) ?? [];
    this.replayLayers.set(t.id, layers);
    if (op.kind === 'freeze') {
      t.freeze();
    } else if (op.kind === 'flush') {
      const frozen = t.frozen.shift();
      if (frozen === undefined) throw corruption(where, `a flush of ${t.name} with no frozen memtable`);
      frozen.retire(false);
      if (op.layer.data !== 0 || op.layer.tomb !== 0) layers.push(op.layer);
      this.layerSources.set(op.layer, where);
    } else {
      const at = layers.findIndex((l) => l.data === op.inputs[0] && l.tomb === op.inputs[1]);
      const count = op.inputs.length / 2;
      const run = at < 0 ? [] : layers.slice(at, at + count).flatMap((l) => [l.data, l.tomb]);
      if (
        at < 0 ||
        !Number.isInteger(count) ||
        run.length !== op.inputs.length ||
        run.some((id, i) => id !== op.inputs[i])
      ) {
        throw corruption(where, `a merge of ${t.name} whose inputs are not a run of its layers`);
      }
      layers.splice(at, count, ...(op.layer.data !== 0 || op.layer.tomb !== 0 ? [op.layer] : []));
      this.layerSources.set(op.layer, where);
    }
  }

  private noteIds(op: StorageOp): void {
    if (op.kind === 'freeze') return;
    this.nextId = Math.max(this.nextId, op.layer.data + 1, op.layer.tomb + 1);
  }

  /**
   * After replay: open each table's object layers, delete files no layer and no retained checkpoint
   * (`named`) names (left by a crash, or by deletions a crash interrupted; files a checkpoint still
   * names wait for the next one), and schedule flushes of memtables frozen before the crash.
   */
  async finishReplay(
    named: ReadonlySet<number> = new Set(),
    /** false on a read replica: the files belong to the writer. */
    deleteOrphans = true,
  ): Promise<{ orphans: string[] }> {
    const live = new Set<number>();
    for (const t of this.catalog.all()) {
      const layers = this.replayLayers.get(t.id) ?? [];
      for (const ids of layers) {
        if (ids.data !== 0) live.add(ids.data);
        if (ids.tomb !== 0) live.add(ids.tomb);
        try {
          t.objects.push(await ObjectLayer.open(this.ctx, ids, t.schema, t.compare));
        } catch (e) {
          // Name what named the object too: a log or checkpoint that is damaged (cut short, say)
          // can name an object that was rightly deleted.
          const source = this.layerSources.get(ids);
          if (!(e instanceof TidemarkError) || e.code !== 'CORRUPTION' || source === undefined) throw e;
          throw new TidemarkError('CORRUPTION', `${e.message} (the table's layer named by ${source})`, {
            details: { ...e.details, namedBy: source },
            cause: e,
          });
        }
      }
    }
    this.replayLayers.clear();
    const orphans: string[] = [];
    if (!deleteOrphans) return { orphans };
    for (const name of await this.fs.list(OBJ_DIR)) {
      const id = parseObjectName(name);
      if (id !== undefined) this.nextId = Math.max(this.nextId, id + 1);
      if (id !== undefined && live.has(id)) continue;
      if (id !== undefined && named.has(id)) {
        this.retiredFiles.add(id);
        continue;
      }
      if (id === undefined && !isTempName(name)) {
        this.logger.warn({ file: `${OBJ_DIR}/${name}` }, 'leaving a file in obj/ that is not an object');
        continue;
      }
      await this.fs.delete(`${OBJ_DIR}/${name}`);
      orphans.push(`${OBJ_DIR}/${name}`);
    }
    if (orphans.length > 0) {
      await this.fs.syncDir(OBJ_DIR);
      this.logger.info({ files: orphans }, 'recovery: removed object files no table names');
    }
    for (const t of this.catalog.all()) {
      for (const f of t.frozen) this.freezeLogged.set(f, Promise.resolve());
      if (t.frozen.length > 0) this.schedule({ kind: 'flush', table: t });
    }
    return { orphans };
  }

  /**
   * A read replica moves to a newer checkpoint's state: each table's object layers become the ones
   * `state` lists (layers it has already are kept, the others opened), tables it lacks are added,
   * tables it no longer lists go. The new layers are opened first; then, if `canSwap()` still holds
   * (no reader at an older snapshot could see the change), everything is swapped at once; layers
   * taken out are retired, their files left alone (they are the writer's). Resolves false if it did
   * not swap.
   */
  async adoptState(state: CkpState, canSwap: () => boolean): Promise<boolean> {
    const keyOf = (ids: LayerIds) => `${ids.data}/${ids.tomb}`;
    const plans: { table: Table; fresh: boolean; layers: ObjectLayer[] }[] = [];
    const opened: ObjectLayer[] = [];
    const fresh: Table[] = [];
    try {
      for (const ct of state.tables.values()) {
        let table = this.catalog.byTableId(ct.id);
        const isNew = table === undefined;
        if (table === undefined) {
          table = new Table(ct.id, ct.schema, ct.createdTs, this.memory.pool('memtable'));
          fresh.push(table);
        }
        const have = new Map(table.objects.map((o) => [keyOf(o.ids), o]));
        const layers: ObjectLayer[] = [];
        for (const ids of ct.layers) {
          let layer = have.get(keyOf(ids));
          if (layer === undefined) {
            layer = await ObjectLayer.open(this.ctx, ids, table.schema, table.compare);
            opened.push(layer);
          }
          layers.push(layer);
        }
        plans.push({ table, fresh: isNew, layers });
      }
    } catch (e) {
      if (!plantedBug('adopt-error-layers')) for (const l of opened) l.retire(false);
      for (const t of fresh) t.release(false);
      throw e;
    }
    if (!canSwap()) {
      for (const l of opened) l.retire(false);
      for (const t of fresh) t.release(false);
      return false;
    }
    for (const p of plans) {
      if (p.fresh) this.catalog.add(p.table);
      const keep = new Set(p.layers);
      for (const o of p.table.objects) if (!keep.has(o)) o.retire(false);
      p.table.objects = p.layers;
    }
    for (const t of this.catalog.all()) {
      if (state.tables.has(t.id)) continue;
      t.release(false);
      this.catalog.remove(t.id);
    }
    return true;
  }

  /** Create obj/ (durably) if it does not exist. */
  async prepare(): Promise<void> {
    if ((await this.fs.stat(OBJ_DIR)) === undefined) {
      await this.fs.mkdir(OBJ_DIR);
      await this.fs.syncDir('');
    }
  }

  stats(): StorageStats {
    let objects = 0;
    let objectBytes = 0;
    let frozen = 0;
    for (const t of this.catalog.all()) {
      frozen += t.frozen.length;
      for (const o of t.objects) {
        objects += (o.ids.data !== 0 ? 1 : 0) + (o.ids.tomb !== 0 ? 1 : 0);
        objectBytes += o.bytes;
      }
    }
    return { ...this.counters, objects, objectBytes, frozenMemtables: frozen, cache: this.cache.stats() };
  }

  // ---- shutdown ----

  /** Stop taking work and wait for the running job and file deletions. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.deferred.length = 0;
    for (const lane of Object.values(this.lanes)) {
      lane.queue.length = 0;
      await lane.running?.catch(() => undefined);
    }
    const closed = new TidemarkError('CLOSED', 'the database was closed');
    for (const w of this.waiters.splice(0)) w.reject(closed);
  }

  /** After the tables are released: close the caches and file handles. */
  async close(): Promise<void> {
    while (this.deletions.size > 0) await Promise.allSettled([...this.deletions]);
    await this.cache.settle();
    this.cache.close();
    this.mergeCache.close();
    await this.files.close();
  }
}

function corruption(where: string, reason: string): TidemarkError {
  return new TidemarkError('CORRUPTION', `${where}: ${reason}`, { details: { where } });
}
