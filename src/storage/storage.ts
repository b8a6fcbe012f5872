import type { Catalog } from '../catalog/catalog.js';
import type { TableSchema } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import type { FileService } from '../fileservice/types.js';
import type { Logger } from '../log.js';
import type { MemoryManager } from '../mem/manager.js';
import { BlockCache } from '../objectio/cache.js';
import { ObjectFiles } from '../objectio/files.js';
import { OBJ_DIR } from '../objectio/format.js';
import { DEFAULT_ROW_GROUP_ROWS, ROW_GROUP_BYTES_MAX } from '../objectio/writer.js';
import { writeMemTable, type FlushResult } from '../table/flush.js';
import { decodeStorage, encodeStorage, type LayerIds, type StorageOp } from '../table/log_records.js';
import { mergeLayers } from '../table/merge.js';
import { ObjectLayer, type ObjectContext } from '../table/object_layer.js';
import { Table, type MemLayer } from '../table/table.js';
import type { Wal } from '../wal/wal.js';
import { planted, plantedBug } from '../util/plant.js';
import { ObjectFileRegistry, type FileHold, type FileRegistryStats } from './file_registry.js';
import { JobRunner, type Job } from './jobs.js';
import { LayerReplay, type ReplayFrom } from './layer_replay.js';

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
  /** The object file registry: files held, by whom, deletions. */
  files: FileRegistryStats;
}

/** A table's object layers as a checkpoint records them. */
export interface TableLayers {
  id: number;
  schema: TableSchema;
  createdTs: number;
  layers: LayerIds[];
  /** An index's hidden table: since when it holds every entry (undefined while it is built). */
  readyTs?: number;
}

/** What a checkpoint records of the storage, taken in a turn where it has settled. */
export interface LayersSnapshot {
  tables: Map<number, TableLayers>;
  /** Per table: the first LSN its memtables (frozen and active) hold, Infinity if none. */
  firstLsn: Map<number, number>;
  nextObjectId: number;
  nextTableId: number;
}

/** A checkpoint's cut: the memtables frozen for it, and a wait until they are in objects. */
export interface StorageCut {
  readonly memtables: number;
  flushed(): Promise<void>;
}

/** The object files a flush or merge job writes (see withNewFiles). */
interface NewFiles {
  /** A new object id, held by the job until it is over. */
  readonly next: () => number;
  /** Keep the files on disk if the job fails: a durable record may name them. */
  keep: boolean;
}

/** Pool share of memtables, and the fraction of it past which the largest memtable is flushed. */
const PRESSURE_FRACTION = 0.6;

/**
 * The storage layer: the single owner of every table's layers (active and frozen memtables, object
 * layers) and of every object file's life (through its ObjectFileRegistry). It freezes memtables
 * (with a FREEZE record, so that the point is in the log), flushes them to objects and merges
 * objects in the background (src/storage/jobs.ts), publishes each new layer with a FLUSH or MERGE
 * record, and, at open, rebuilds each table's layers from a checkpoint and the log
 * (src/storage/layer_replay.ts). The checkpointer reaches it only through its narrow source
 * interface (cut, settled, snapshot, hold): it reads no table internals.
 */
export class Storage {
  /** Open handles of object files, shared by readers. */
  readonly handles: ObjectFiles;
  /** Every object file and who holds it: the one place object files are deleted. */
  readonly files: ObjectFileRegistry;
  readonly cache: BlockCache;
  readonly mergeCache: BlockCache;
  private readonly ctx: ObjectContext;
  private readonly jobs: JobRunner;
  private readonly replayed = new LayerReplay();
  /**
   * The FREEZE records' appends, per frozen memtable: a flush logs FLUSH only after its FREEZE.
   * Weak: a memtable of a table dropped before its flush goes without one.
   */
  private readonly freezeLogged = new WeakMap<MemLayer, Promise<unknown>>();
  /** FLUSH and MERGE records appended whose layers are not in place yet (see settled). */
  private publishing = 0;
  private publishIdle: (() => void)[] = [];
  private readonly counters = { flushes: 0, merges: 0 };

  constructor(
    private readonly fs: FileService,
    private readonly memory: MemoryManager,
    private readonly wal: Wal,
    private readonly catalog: Catalog,
    private readonly logger: Logger,
    readonly options: StorageOptions,
    private readonly oldestSnapshot: () => number,
    cacheBytes: number,
    /** false on a read replica: the object files are the writer's, never deleted here. */
    ownsFiles = true,
  ) {
    this.jobs = new JobRunner(
      (job) => this.run(job),
      logger,
      () => wal.failed,
    );
    wal.onFailure((err) => this.jobs.logFailure(err));
    this.handles = new ObjectFiles(fs);
    this.files = new ObjectFileRegistry(fs, this.handles, logger, ownsFiles);
    this.cache = new BlockCache(memory.pool('cache'), cacheBytes);
    // The merge reads through a cache of its own, so that merging does not evict what readers use.
    this.mergeCache = new BlockCache(
      memory.pool('merge'),
      Math.min(16 * 1024 * 1024, Math.floor(memory.limitBytes / 16)),
    );
    this.ctx = {
      files: this.handles,
      cache: this.cache,
      io: memory.pool('io'),
      metaPool: memory.pool('meta'),
      fileRefs: this.files,
    };
  }

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
  published(tables: readonly Table[]): void {
    if (this.jobs.isStopped) return;
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
    if (this.jobs.isStopped || t.isReleased || t.active.mt.keys === 0) return undefined;
    const layer = t.freeze();
    if (planted('map-entry')) plantedMap.set(plantedMap.size, layer);
    const { type, payload } = encodeStorage({ kind: 'freeze', tableId: t.id });
    const logged = this.wal.append(type, payload);
    logged.catch(() => undefined); // the flush job reports it
    this.freezeLogged.set(layer, logged);
    this.jobs.schedule({ kind: 'flush', table: t });
    return layer;
  }

  /** Freeze every table with data in memory (or one) and wait until it is all in objects. */
  async flush(tables: Table[]): Promise<void> {
    for (const t of tables) {
      this.freeze(t);
      // A memtable frozen earlier whose flush failed waits for its retry: a caller asking now is
      // served now (its wait is rejected if the flush fails again), not after the retry pause.
      if (t.frozen.length > 0) this.jobs.schedule({ kind: 'flush', table: t });
    }
    // A failed flush rejects the wait with its error (the flush is retried in the background).
    await this.jobs.waitFor(
      () => tables.every((t) => t.isReleased || t.frozen.length === 0),
      new Set(tables),
    );
  }

  /** Merge all of a table's object layers into one, and wait for it (a failure rejects it). */
  async compact(tables: Table[]): Promise<void> {
    await this.flush(tables);
    for (const t of tables)
      if (t.objects.length > 1) this.jobs.schedule({ kind: 'merge', table: t, all: true });
    await this.jobs.waitFor(
      () => tables.every((t) => t.isReleased || t.objects.length <= 1),
      new Set(tables),
    );
  }

  // ---- the checkpointer's source ----

  /**
   * A checkpoint's cut: freeze every table's active memtable that holds data; every frozen memtable
   * there is now holds, with the objects, all data committed so far. `flushed()` waits until they
   * are published as objects (rejected if a flush of one of their tables fails meanwhile; the
   * flush itself is retried later).
   */
  cut(): StorageCut {
    const layers: MemLayer[] = [];
    for (const t of this.catalog.all()) {
      if (t.isReleased) continue;
      this.freeze(t);
      layers.push(...t.frozen);
    }
    const tables = new Set(this.catalog.all().filter((t) => layers.some((l) => t.frozen.includes(l))));
    return {
      memtables: layers.length,
      flushed: () =>
        this.jobs.waitFor(
          () => layers.every((l) => !this.catalog.all().some((t) => !t.isReleased && t.frozen.includes(l))),
          tables,
        ),
    };
  }

  /**
   * Resolves in a turn in which no FLUSH or MERGE record is between its append and its effect: a
   * checkpoint taken synchronously then reflects every storage record logged so far.
   */
  async settled(): Promise<void> {
    while (this.publishing > 0) await new Promise<void>((r) => this.publishIdle.push(r));
  }

  get isSettled(): boolean {
    return this.publishing === 0;
  }

  /** Flushes and merges published so far (a checkpoint compares counts to know what changed). */
  get changes(): number {
    return this.counters.flushes + this.counters.merges;
  }

  /** Every live table's layers and the first LSN its memtables hold: call where `isSettled`. */
  snapshot(): LayersSnapshot {
    const tables = new Map<number, TableLayers>();
    const firstLsn = new Map<number, number>();
    for (const t of this.catalog.all()) {
      if (t.isReleased || t.droppedTs !== undefined) continue;
      tables.set(t.id, {
        id: t.id,
        schema: t.schema,
        createdTs: t.createdTs,
        layers: t.objects.map((o) => o.ids),
        ...(t.readyTs !== undefined ? { readyTs: t.readyTs } : {}),
      });
      let first = Infinity;
      for (const l of [...t.frozen, t.active]) if (l.mt.firstLsn < first) first = l.mt.firstLsn;
      firstLsn.set(t.id, first);
    }
    return { tables, firstLsn, nextObjectId: this.files.next, nextTableId: this.catalog.nextTableId };
  }

  /** Try again the object file deletions that failed (after a checkpoint). */
  collect(): Promise<string[]> {
    return this.files.retryDeletes();
  }

  /** Hold the object files a checkpoint names, for as long as it is retained. */
  hold(ids: Iterable<number>): FileHold {
    return this.files.hold(ids, 'checkpoint');
  }

  /** Resolves when no flush or merge job is queued or running (failed ones waiting to retry count),
   * no file deletion is in flight and no read-ahead is loading. */
  async whenIdle(): Promise<void> {
    for (;;) {
      const { running, deferred } = this.jobs.running();
      if (running.length === 0 && deferred === 0) {
        await this.files.settle();
        // Read-ahead still in flight would land in the cache after the caller thinks it is quiet.
        if (!this.cache.prefetchInFlight() && !this.mergeCache.prefetchInFlight()) return;
        await Promise.all([this.cache.settle(), this.mergeCache.settle()]);
        continue;
      }
      if (running.length > 0) await Promise.allSettled(running);
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

  /** The object files the database holds (live layers', and ones a retained checkpoint names). */
  objectFiles(): string[] {
    return this.files.paths();
  }

  // ---- the jobs ----

  private async run(job: Job): Promise<void> {
    // One flush job per table is queued at a time: it flushes every frozen memtable there is.
    if (job.kind === 'flush')
      while (job.table.frozen.length > 0 && !job.table.isReleased && !this.jobs.isStopped)
        await this.flushOldest(job.table);
    else await this.mergeLayers(job.table, job.all);
  }

  private async flushOldest(t: Table): Promise<void> {
    const layer = t.frozen[0];
    if (layer === undefined || t.isReleased) return;
    // Held while it is written out: a drop meanwhile retires it, and must not free it under us.
    layer.retain();
    try {
      await this.flushLayer(t, layer);
    } finally {
      layer.release();
    }
    if (this.pickMergeRun(t) !== undefined) this.jobs.schedule({ kind: 'merge', table: t, all: false });
  }

  private async flushLayer(t: Table, layer: MemLayer): Promise<void> {
    const mt = layer.mt;
    await mt.whenSettled();
    await this.freezeLogged.get(layer);
    await this.withNewFiles(async (outputs) => {
      const result = await writeMemTable({
        fs: this.fs,
        mt,
        tableId: t.id,
        oldestSnapshot: this.oldestSnapshot(),
        rowGroupRows: this.options.rowGroupRows,
        rowGroupBytes: this.rowGroupBytes,
        nextObjectId: outputs.next,
        io: this.memory.pool('io'),
      });
      const ids: LayerIds = result?.ids ?? { data: 0, tomb: 0, minTs: mt.minTs, maxTs: mt.maxTs };
      await this.publish(
        t,
        { kind: 'flush', tableId: t.id, layer: ids },
        result,
        (opened) => {
          if (t.frozen[0] !== layer)
            throw new TidemarkError('INVALID_ARGUMENT', `flush of ${t.name}: the frozen memtable changed`);
          t.frozen.shift();
          this.freezeLogged.delete(layer);
          layer.retire();
          if (opened !== undefined) t.objects.push(opened);
          this.counters.flushes++;
        },
        outputs,
      );
      this.logger.debug(
        { table: t.name, rows: result?.rows ?? 0, bytes: result?.bytes ?? 0, ids },
        'flushed a memtable',
      );
    });
  }

  /**
   * Run a job that writes new objects (their ids from `outputs.next`, held by the job). When it
   * ends, the job lets go of them: a published layer holds its files by then, and the files of a job that failed are
   * deleted by the registry. A job whose record may be in the log (the append failed with the log)
   * forgets its files instead: the next open deletes them if no durable record names them (so
   * does one whose record is durable but whose layer could not be placed: the reopen replays it).
   */
  private async withNewFiles(job: (outputs: NewFiles) => Promise<void>): Promise<void> {
    const ids: number[] = [];
    const outputs: NewFiles = {
      next: () => {
        const id = this.files.allocate();
        ids.push(id);
        return id;
      },
      keep: false,
    };
    try {
      await job(outputs);
    } catch (e) {
      if (outputs.keep || this.wal.failed !== undefined) {
        for (const id of ids) this.files.abandon(id, 'writer');
        ids.length = 0;
      }
      throw e;
    } finally {
      for (const id of ids) void this.files.unref(id, 'writer');
    }
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
      await this.withNewFiles(async (outputs) => {
        const result = await mergeLayers({
          fs: this.fs,
          files: this.handles,
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
          nextObjectId: outputs.next,
          shouldStop: () => this.jobs.isStopped || t.isReleased,
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
            for (const l of inputs) l.retire();
            this.counters.merges++;
          },
          outputs,
        );
        this.logger.debug({ table: t.name, inputs: count, rows: result?.rows ?? 0 }, 'merged object layers');
      });
    } finally {
      for (const l of inputs) l.release();
    }
    // More may be due (a merge makes a larger layer that may now qualify with older ones).
    if (!all && this.pickMergeRun(t) !== undefined)
      this.jobs.schedule({ kind: 'merge', table: t, all: false });
  }

  /**
   * Open the new layer, log the record, and (once durable) put it in place with `apply`. If anything
   * fails before the record is durable, the new layer is let go (its files are the job's, deleted
   * when the job lets go of them); a table dropped meanwhile gets nothing.
   */
  private async publish(
    t: Table,
    op: StorageOp,
    result: FlushResult | undefined,
    apply: (opened: ObjectLayer | undefined) => void,
    outputs: NewFiles,
  ): Promise<void> {
    let opened: ObjectLayer | undefined;
    try {
      if (result !== undefined) opened = await ObjectLayer.open(this.ctx, result.ids, t.schema, t.compare);
      if (t.isReleased) {
        opened?.retire();
        return;
      }
      const { type, payload } = encodeStorage(op);
      this.publishing++;
      try {
        await this.wal.append(type, payload);
      } catch (e) {
        this.publishDone();
        throw e;
      }
    } catch (e) {
      // The layer goes; the job still holds its files, which follow the job's end (deleted, or
      // kept for the reopen if the log failed with the record perhaps in it: see withNewFiles).
      opened?.retire();
      throw e;
    }
    try {
      this.place(t, opened, apply, outputs);
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
    outputs: NewFiles,
  ): void {
    if (t.isReleased) {
      // Dropped while the record was being written: these objects belong to no table now (the
      // job lets go of them, and they go unless a retained checkpoint names them).
      opened?.retire();
      return;
    }
    try {
      apply(opened);
    } catch (e) {
      // The layers changed under the record (a broken invariant, not an I/O failure): the layer
      // is not placed, so it is released here. Its files stay: the log names them, and a reopen
      // replays the record.
      outputs.keep = true;
      opened?.retire();
      throw e;
    }
  }

  // ---- recovery ----

  /** A table's object layers as a checkpoint recorded them: replay continues from there. */
  seedLayers(tableId: number, layers: readonly LayerIds[], source: string): void {
    this.replayed.seed(tableId, layers, source);
    for (const l of layers) {
      this.files.seen(l.data);
      this.files.seen(l.tomb);
    }
  }

  /** Object ids a checkpoint recorded as next (ids are never reused). */
  seedNextObjectId(id: number): void {
    if (id > 1) this.files.seen(id - 1);
  }

  /**
   * A FREEZE, FLUSH or MERGE record met while replaying the log. After a checkpoint (`from`), a
   * FLUSH or MERGE at or below its storage LSN is in its object lists already, and a FREEZE counts
   * only from the table's redo LSN (earlier memtables are in objects).
   */
  replay(type: number, payload: Uint8Array, where: string, lsn: number, from?: ReplayFrom): void {
    const op = decodeStorage(type, payload, where);
    if (op.kind !== 'freeze') {
      this.files.seen(op.layer.data);
      this.files.seen(op.layer.tomb);
    }
    const t = this.catalog.byTableId(op.tableId);
    if (t === undefined) {
      // A table dropped later in the log (the drop released it already): its objects are orphans.
      return;
    }
    if (from !== undefined) {
      if (op.kind === 'freeze' ? lsn < (from.redo.get(t.id) ?? 0) : lsn <= from.storageLsn) return;
    }
    if (op.kind === 'freeze') {
      t.freeze();
      return;
    }
    if (op.kind === 'flush') {
      const frozen = t.frozen.shift();
      if (frozen === undefined)
        throw new TidemarkError('CORRUPTION', `${where}: a flush of ${t.name} with no frozen memtable`, {
          details: { where },
        });
      frozen.retire();
    }
    this.replayed.apply(op, where);
  }

  /**
   * After replay: open each table's object layers (each holds its files), delete files in obj/
   * nothing holds (left by a crash, or by deletions a crash interrupted; files a retained
   * checkpoint names are held by it), and schedule flushes of memtables frozen before the crash.
   */
  async finishReplay(): Promise<{ orphans: string[] }> {
    for (const t of this.catalog.all()) {
      for (const ids of this.replayed.layers(t.id)) {
        try {
          t.objects.push(await ObjectLayer.open(this.ctx, ids, t.schema, t.compare));
        } catch (e) {
          // Name what named the object too: a log or checkpoint that is damaged (cut short, say)
          // can name an object that was rightly deleted.
          const source = this.replayed.source(ids);
          if (!(e instanceof TidemarkError) || e.code !== 'CORRUPTION' || source === undefined) throw e;
          throw new TidemarkError('CORRUPTION', `${e.message} (the table's layer named by ${source})`, {
            details: { ...e.details, namedBy: source },
            cause: e,
          });
        }
      }
    }
    this.replayed.clear();
    const orphans = await this.files.removeUnheld();
    if (orphans.length > 0)
      this.logger.info({ files: orphans }, 'recovery: removed object files no table names');
    for (const t of this.catalog.all()) {
      for (const f of t.frozen) this.freezeLogged.set(f, Promise.resolve());
      if (t.frozen.length > 0) this.jobs.schedule({ kind: 'flush', table: t });
    }
    return { orphans };
  }

  /**
   * A read replica moves to a newer checkpoint's state: each table's object layers become the ones
   * `state` lists (layers it has already are kept, the others opened), tables it lacks are added,
   * tables it no longer lists go. The new layers are opened first; then, if `canSwap()` still holds
   * (no reader at an older snapshot could see the change), everything is swapped at once; layers
   * taken out are retired (a replica's registry deletes nothing: the files are the writer's).
   * Resolves false if it did not swap.
   */
  async adoptState(
    state: { tables: ReadonlyMap<number, TableLayers> },
    canSwap: () => boolean,
  ): Promise<boolean> {
    const keyOf = (ids: LayerIds) => `${ids.data}/${ids.tomb}`;
    const plans: { table: Table; fresh: boolean; layers: ObjectLayer[]; readyTs: number | undefined }[] = [];
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
        plans.push({ table, fresh: isNew, layers, readyTs: ct.readyTs });
      }
    } catch (e) {
      if (!plantedBug('adopt-error-layers')) for (const l of opened) l.retire();
      for (const t of fresh) t.release();
      throw e;
    }
    if (!canSwap()) {
      for (const l of opened) l.retire();
      for (const t of fresh) t.release();
      return false;
    }
    for (const p of plans) {
      if (p.fresh) this.catalog.add(p.table);
      p.table.readyTs = p.readyTs;
      const keep = new Set(p.layers);
      for (const o of p.table.objects) if (!keep.has(o)) o.retire();
      p.table.objects = p.layers;
    }
    for (const t of this.catalog.all()) {
      if (state.tables.has(t.id)) continue;
      t.release();
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
    const files = this.files.stats();
    return {
      ...this.counters,
      flushFailures: this.jobs.failures.flush,
      mergeFailures: this.jobs.failures.merge,
      deletedFiles: files.deleted,
      objects,
      objectBytes,
      frozenMemtables: frozen,
      cache: this.cache.stats(),
      files,
    };
  }

  // ---- shutdown ----

  /** Stop taking work and wait for the running jobs; from now on no object file is deleted. */
  async stop(): Promise<void> {
    await this.jobs.stop();
    await this.files.settle();
    this.files.shutdown();
  }

  /** After the tables are released: close the caches and file handles. */
  async close(): Promise<void> {
    await this.files.settle();
    await this.cache.settle();
    this.cache.close();
    this.mergeCache.close();
    await this.handles.close();
  }
}
