import { setImmediate as nextTurn } from 'node:timers/promises';
import { canonicalInt } from '../util/decimal.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Row, TableSpec } from '../schema/schema.js';
import { describe } from '../schema/schema.js';
import { invalidArgument, LeakError, TidemarkError, type LeakHolder } from '../errors.js';
import { ObjectStoreFileService, type ObjectStoreStats } from '../fileservice/s3.js';
import type { DirectoryLock, FileService } from '../fileservice/types.js';
import type { FileKind } from '../fileservice/kinds.js';
import type { OpenFileInfo } from '../fileservice/registry.js';
import { type Logger } from '../log.js';
import type { MemoryManager } from '../mem/manager.js';
import type { PoolStats } from '../mem/pool.js';
import type { Batch } from '../txn/batch.js';
import type { TxnManager } from '../txn/manager.js';
import { indexInfo, type IndexInfo } from '../txn/indexes.js';
import { type TxnCounters } from '../txn/manager.js';
import type { QueryRunner, ScanBatchesOptions, ScanOptions, Transaction } from '../txn/transaction.js';
import { bigInts, columnIndexes, int64Columns } from '../txn/transaction.js';
import type { Wal } from '../wal/wal.js';
import type { MemoryPool } from '../mem/pool.js';
import type { Storage } from '../storage/storage.js';
import { type StorageStats } from '../storage/storage.js';
import type { Observers } from './events.js';
import { type DatabaseObserver } from './events.js';
import { Snapshot } from './snapshot.js';
import type { ReplicaRefresher } from './replica.js';
import { type ReplicaStats } from './replica.js';
import type { Checkpointer } from '../checkpoint/checkpointer.js';
import { type CheckpointInfo, type CheckpointStats } from '../checkpoint/checkpointer.js';
import type { Table } from '../table/table.js';
import type { QueryResult } from '../txn/query.js';
import { type OpenOptions, type ResolvedOptions } from './options.js';
import { recover, type EngineParts, type RecoveryStats } from './recover.js';

export interface EngineStats {
  memory: {
    /** Bytes the pools account: buffers, and reservations for structures on the V8 heap. */
    bytes: number;
    highWaterBytes: number;
    limitBytes: number;
    /** Memory the allocator holds in ArrayBuffers (slabs in use or free, large buffers). */
    bufferBytes: number;
    pools: Record<string, PoolStats>;
  };
  wal: {
    bytes: number;
    segments: number;
    durableLsn: number;
    /** The storage LSN of the newest checkpoint: everything at or below it is in the checkpoint. */
    checkpointLsn: number;
    /** Where replay would start. */
    replayFromLsn: number;
    /** WAL bytes the retained checkpoints still need (truncation cannot free them yet). */
    pinnedBytes: number;
    failed: boolean;
  };
  checkpoints: CheckpointStats;
  /** Open handles (in all and by kind), live objects, checkpoint files. */
  files: { open: number; byKind: Record<FileKind, number>; objects: number; checkpoint: number };
  /** How the last open went: from which checkpoint, how much of the WAL it replayed. */
  recovery: RecoveryStats;
  /** A read replica only: which checkpoint it serves, how often it moved, what held it back. */
  replica?: ReplicaStats;
  /** With objectStore: requests, retries, failures, uploads, downloads, files collected; the local cache. */
  objectStore?: ObjectStoreStats;
  storage: StorageStats;
  transactions: TxnCounters & { active: number };
  /** Tables, hidden tables of indexes included. */
  tables: number;
  /**
   * Secondary indexes: how many (and how many are being built), the memtable bytes and the object
   * layers their hidden tables hold (their share of the `memtable` pool and of `obj/`).
   */
  indexes: { count: number; building: number; memtableBytes: number; objectLayers: number };
}

type State =
  { state: 'open' } | { state: 'closing'; done: Promise<void> } | { state: 'closed'; done: Promise<void> };

/**
 * The storage engine: tables, transactions, storage, checkpoints, recovery, lifecycle. It knows no
 * SQL: the public `Database` (src/api/database.ts) extends it with `query` and `session`, and
 * answers `tx.query` (the engine hands itself to each transaction as its QueryRunner, and its own
 * `_queryIn` refuses). Every method is safe to call concurrently; after `close()` every call gives
 * CLOSED.
 */
export class Engine implements QueryRunner {
  private lifecycle: State = { state: 'open' };
  readonly dir: string;
  private readonly fs: FileService;
  private readonly lock: DirectoryLock;
  protected readonly memory: MemoryManager;
  private readonly wal: Wal;
  private readonly catalog: Catalog;
  private readonly txns: TxnManager;
  private readonly storage: Storage;
  private readonly checkpointer: Checkpointer;
  private readonly recovery: RecoveryStats;
  private readonly logger: Logger;
  readonly options: ResolvedOptions;
  private readonly observers: Observers;
  /** Set on a read replica (see ReplicaRefresher). */
  private readonly replica: ReplicaRefresher | undefined;

  protected constructor(p: EngineParts) {
    this.dir = p.dir;
    this.fs = p.fs;
    this.lock = p.lock;
    this.memory = p.memory;
    this.wal = p.wal;
    this.catalog = p.catalog;
    this.txns = p.txns;
    this.storage = p.storage;
    this.checkpointer = p.checkpointer;
    this.recovery = p.recovery;
    this.logger = p.logger;
    this.options = p.options;
    this.observers = p.observers;
    this.replica = p.replica;
    this.replica?.start();
  }

  /** The last queued one-statement write per row (see statement); empty when none is waiting. */
  private readonly rowTurns = new Map<string, Promise<void>>();

  /** Open (creating if missing) the engine of the database in `dir`, without SQL. */
  static async open(dir: string, options?: OpenOptions): Promise<Engine> {
    return new Engine(await recover(dir, options));
  }

  // ---- SQL's footing ----

  private schemaVersion = 0;

  /**
   * @internal Run `tx.query`: the engine knows no SQL. The public Database (src/api/database.ts)
   * answers it.
   */
  _queryIn(_tx: Transaction, _sql: string, _params: readonly unknown[]): Promise<QueryResult> {
    return Promise.reject(
      new TidemarkError('INVALID_ARGUMENT', 'SQL needs the database opened by open(), not a bare engine'),
    );
  }

  /** @internal For the SQL engine: a transaction the caller commits or rolls back. */
  _begin(): Transaction {
    this.checkOpen();
    return this.txns.begin(true, this);
  }

  /** @internal */
  _commit(tx: Transaction): Promise<void> {
    return this.txns.commit(tx);
  }

  /** @internal */
  _rollback(tx: Transaction, reason: string, cause?: unknown): void {
    this.txns.rollback(tx, reason, cause);
  }

  /**
   * @internal Grows with every createTable and dropTable, and every move of a read replica to a
   * newer checkpoint (whose catalog may differ): the SQL engine's cached plans and catalog follow it.
   */
  get _schemaVersion(): number {
    return this.schemaVersion + (this.replica?.stats.refreshes ?? 0);
  }

  /** @internal */
  _queryPool(): MemoryPool {
    return this.memory.pool('query');
  }

  /** @internal The pool network connections' buffers come from (the MySQL server's). */
  _ioPool(): MemoryPool {
    return this.memory.pool('io');
  }

  /**
   * A read replica: look for a newer published checkpoint now (instead of at the next `refreshMs`)
   * and move to it; resolves true if it moved. INVALID_ARGUMENT on a database that is not a replica.
   */
  async refresh(): Promise<boolean> {
    this.checkOpen();
    if (this.replica === undefined) throw invalidArgument('refresh() is for read replicas (readOnly: true)');
    return this.replica.refresh();
  }

  private checkWritable(): void {
    if (this.txns.readOnly !== undefined) throw this.txns.readOnlyError();
  }

  // ---- schema ----

  /** Create a table; resolves once the table is durable. */
  async createTable(name: string, spec: TableSpec): Promise<void> {
    this.checkOpen();
    try {
      await this.txns.createTable(name, spec);
    } finally {
      this.schemaVersion++;
    }
  }

  async dropTable(name: string): Promise<void> {
    this.checkOpen();
    try {
      await this.txns.dropTable(name);
    } finally {
      this.schemaVersion++;
    }
  }

  /**
   * Add a secondary index to a table (see TableSpec.indexes), built online from the rows already
   * committed while writes go on; resolves once it is built and durable. DUPLICATE_KEY if `unique`
   * and two rows share values (the index is then not made).
   */
  async createIndex(
    table: string,
    name: string,
    columns: readonly string[],
    options: { unique?: boolean } = {},
  ): Promise<void> {
    this.checkOpen();
    try {
      await this.txns.createIndex(table, name, columns, options);
    } finally {
      this.schemaVersion++;
    }
  }

  /** Remove a secondary index. */
  async dropIndex(table: string, name: string): Promise<void> {
    this.checkOpen();
    try {
      await this.txns.dropIndex(table, name);
    } finally {
      this.schemaVersion++;
    }
  }

  /** The names of the tables, sorted. */
  tables(): string[] {
    this.checkOpen();
    return this.catalog.names(this.txns.lastCommittedTs);
  }

  /** A table's definition, as given to createTable. */
  describeTable(name: string): TableSpec & { indexes: IndexInfo[] } {
    this.checkOpen();
    const ts = this.txns.lastCommittedTs;
    const t = this.catalog.get(name, ts);
    return { ...t.schema.toSpec(), indexes: t.indexesAt(ts).map(indexInfo) };
  }

  /** About how many rows a table holds (Table.estimatedRows): for SQL's join ordering. */
  _estimatedRows(name: string): number {
    this.checkOpen();
    return this.catalog.get(name, this.txns.lastCommittedTs).estimatedRows;
  }

  // ---- transactions ----

  /**
   * Run `fn` in a transaction: it commits, durably, when fn resolves, and rolls back when fn throws
   * (the thrown value comes out unchanged). Resolves with fn's result once the commit is durable.
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T> | T): Promise<T> {
    this.checkOpen();
    if (typeof fn !== 'function') throw invalidArgument('transaction takes a function (tx) => ...');
    const tx = this.txns.begin(true, this);
    let result: T;
    try {
      result = await fn(tx);
      await this.txns.commit(tx);
    } catch (e) {
      this.txns.rollback(tx, 'rolled back', e);
      // A conflict is settled without I/O, through microtasks only: an application retrying in a
      // loop would never let the event loop run the commits it conflicts with. Yield one turn.
      if (e instanceof TidemarkError && e.code === 'CONFLICT') await nextTurn();
      throw e;
    }
    return result;
  }

  insert(table: string, rows: Row | readonly Row[]): Promise<number> {
    return this.statement(undefined, (tx) => tx.insert(table, rows));
  }

  upsert(table: string, rows: Row | readonly Row[]): Promise<number> {
    return this.statement(undefined, (tx) => tx.upsert(table, rows));
  }

  update(table: string, key: unknown, patch: Row): Promise<boolean> {
    return this.statement(keyTag(table, key), (tx) => tx.update(table, key, patch));
  }

  delete(table: string, key: unknown): Promise<boolean> {
    return this.statement(keyTag(table, key), (tx) => tx.delete(table, key));
  }

  /**
   * A one-statement write transaction. Its outcome depends on its arguments only (the caller saw
   * nothing of its snapshot), so a write-write conflict is retried on a fresh snapshot, after a
   * short random pause, up to STATEMENT_ATTEMPTS times, before CONFLICT reaches the caller.
   */
  private async statement<T>(key: string | undefined, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    if (key === undefined) return this.retrying(fn);
    // One-statement writes to the same row take turns: under contention on a hot key they would
    // otherwise keep conflicting with one another.
    const before = this.rowTurns.get(key);
    const mine = (before ?? Promise.resolve()).then(() => this.retrying(fn));
    const turn = mine.then(
      () => undefined,
      () => undefined,
    );
    this.rowTurns.set(key, turn);
    try {
      return await mine;
    } finally {
      if (this.rowTurns.get(key) === turn) this.rowTurns.delete(key);
    }
  }

  private async retrying<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transaction(fn);
      } catch (e) {
        if (!(e instanceof TidemarkError) || e.code !== 'CONFLICT' || attempt >= STATEMENT_ATTEMPTS) throw e;
        // Each round of contenders has a winner; a random, growing pause spreads the others out.
        if (attempt < 3) await nextTurn();
        else await new Promise((r) => setTimeout(r, Math.random() * Math.min(8, 2 ** (attempt - 3))));
      }
    }
  }

  /** The row with this key in the latest committed state, or undefined. */
  async get(
    table: string,
    key: unknown,
    options: { columns?: readonly string[] } = {},
  ): Promise<Row | undefined> {
    this.checkOpen();
    if (typeof table !== 'string')
      throw invalidArgument(`table name must be a string, got ${describe(table)}`);
    // A point read needs no transaction: one lookup at the newest snapshot is consistent.
    const ts = this.txns.lastCommittedTs;
    const t = this.catalog.get(table, ts);
    const k = t.schema.normalizeKey(key);
    const cols = columnIndexes(t.schema, options?.columns);
    const found = t.lookup(k, ts);
    const ref = found instanceof Promise ? await found : found;
    if (ref === undefined) return undefined;
    const row = t.readRow(ref, cols);
    return this.txns.options.safeIntegers === true ? bigInts(row, int64Columns(t.schema)) : row;
  }

  /** The row a UNIQUE index holds for these values (one per column) in the latest committed state. */
  async getBy(
    table: string,
    index: string,
    values: unknown,
    options: { columns?: readonly string[] } = {},
  ): Promise<Row | undefined> {
    this.checkOpen();
    const tx = this.txns.begin(true, this);
    try {
      return await tx.getBy(table, index, values, options);
    } finally {
      if (tx.state === 'active') void this.txns.commit(tx);
    }
  }

  /**
   * A read view of the latest committed state, held until `release()`: see Snapshot. Taken
   * synchronously: a write that has not resolved yet may or may not be in it, one that has is.
   */
  snapshot(): Snapshot {
    this.checkOpen();
    return new Snapshot(this.txns.begin(false, this), this.txns);
  }

  /** Rows of the latest committed state in key order (a snapshot held until the scan ends). */
  scan(table: string, options: ScanOptions = {}): AsyncGenerator<Row> {
    return this.snapshotScan((tx) => tx.scan(table, options));
  }

  /** Columnar batches of the latest committed state. */
  scanBatches(table: string, options: ScanBatchesOptions = {}): AsyncGenerator<Batch> {
    return this.snapshotScan((tx) => tx.scanBatches(table, options));
  }

  /**
   * Run a scan in a read-only transaction of its own that ends however the scan ends: done, break,
   * or an error. Bad arguments throw here, at the call, not at the first iteration.
   */
  private snapshotScan<T>(start: (tx: Transaction) => AsyncGenerator<T>): AsyncGenerator<T> {
    const tx = this.txns.begin(true, this);
    let it: AsyncGenerator<T>;
    try {
      it = start(tx);
    } catch (e) {
      this.txns.rollback(tx);
      throw e;
    }
    const txns = this.txns;
    return (async function* () {
      try {
        yield* it;
      } finally {
        // It wrote nothing, so ending it is a read-only commit (unless it already ended: timed
        // out, or the database closed).
        if (tx.state === 'active') void txns.commit(tx);
      }
    })();
  }

  // ---- storage ----

  /**
   * Write what the tables (or one) hold in memory out to objects, and wait until it is there.
   * Happens in the background on its own (memtables past their limits, memory pressure). If a
   * flush fails (an `IO` error), this rejects with it; the flush is retried in the background.
   */
  async flush(table?: string): Promise<void> {
    this.checkOpen();
    this.checkWritable();
    await this.storage.flush(this.tablesFor(table));
  }

  /**
   * Take a checkpoint now (after the one running, if any): an incremental one, then a global one if
   * asked (`{ global: true }`) or due. Resolves with what was written; `kind: 'none'` when nothing
   * changed since the last checkpoint.
   */
  async checkpoint(options: { global?: boolean } = {}): Promise<CheckpointInfo> {
    this.checkOpen();
    this.checkWritable();
    if (typeof options !== 'object' || options === null)
      throw invalidArgument(`checkpoint options must be an object, got ${describe(options)}`);
    for (const k of Object.keys(options))
      if (k !== 'global') throw invalidArgument(`unknown checkpoint option ${k}; known: global`);
    if (options.global !== undefined && typeof options.global !== 'boolean')
      throw invalidArgument(`checkpoint option global must be a boolean, got ${describe(options.global)}`);
    return this.checkpointer.run('manual', options.global === true);
  }

  /**
   * The files the database holds, as it knows them: the LOCK, WAL segments, object files (live and
   * retired ones a retained checkpoint still names) and checkpoint files. At quiescence this equals
   * a listing of the directory.
   */
  files(): { path: string; kind: 'lock' | 'wal' | 'object' | 'checkpoint' }[] {
    this.checkOpen();
    return [
      { path: 'LOCK', kind: 'lock' as const },
      ...this.wal.segmentList().map((s) => ({ path: s.path, kind: 'wal' as const })),
      ...this.storage.objectFiles().map((path) => ({ path, kind: 'object' as const })),
      ...this.checkpointer.files().map((path) => ({ path, kind: 'checkpoint' as const })),
    ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * @internal For leak checks: resolves when no flush, merge or checkpoint is running or queued.
   */
  async _idle(): Promise<void> {
    this.checkOpen();
    for (let i = 0; i < 3; i++) {
      await this.checkpointer.idle();
      await this.storage.whenIdle();
    }
  }

  /** @internal For leak checks: evict every unpinned chunk from the block cache. */
  _dropCache(): number {
    this.checkOpen();
    return this.storage.cache.evictAll() + this.storage.mergeCache.evictAll();
  }

  /** @internal For leak checks: who holds each pool's live buffers, and every open file handle. */
  _holders(): { pools: LeakHolder[]; files: OpenFileInfo[] } {
    this.checkOpen();
    return { pools: this.memory.holders(), files: this.fs.handles.list() };
  }

  /** @internal For leak checks: what the database holds now (tables, layers, readers, filters). */
  _census(): ReturnType<Storage['census']> {
    this.checkOpen();
    return this.storage.census();
  }

  /** Flush, then merge every object layer of the tables (or one) into one; rejects if either fails. */
  async compact(table?: string): Promise<void> {
    this.checkOpen();
    this.checkWritable();
    await this.storage.compact(this.tablesFor(table));
  }

  private tablesFor(table: string | undefined): Table[] {
    const ts = this.txns.lastCommittedTs;
    if (table === undefined) return this.catalog.all().filter((t) => t.visibleAt(ts));
    if (typeof table !== 'string')
      throw invalidArgument(`table name must be a string, got ${describe(table)}`);
    return [this.catalog.get(table, ts)];
  }

  // ---- figures ----

  /**
   * Be told of every commit with writes (its latency, its outcome) and every checkpoint (kind,
   * trigger, duration, outcome) as they end. Returns the function that stops it; close stops all.
   * Observers run inline and must not block; one that throws is logged and ignored.
   */
  observe(observer: DatabaseObserver): () => void {
    this.checkOpen();
    if (typeof observer !== 'object' || observer === null)
      throw invalidArgument(
        `observe() takes an object with commit and/or checkpoint methods, got ${describe(observer)}`,
      );
    return this.observers.add(observer);
  }

  stats(): EngineStats {
    this.checkOpen();
    const m = this.memory.stats();
    const w = this.wal.stats();
    const st = this.storage.stats();
    const ck = this.checkpointer.stats();
    return {
      memory: {
        bytes: m.bytes,
        highWaterBytes: m.highWaterBytes,
        limitBytes: m.limitBytes,
        bufferBytes: m.bufferBytes,
        pools: m.pools,
      },
      wal: {
        bytes: w.bytes,
        segments: w.segments,
        durableLsn: w.durableLsn,
        checkpointLsn: ck.storageLsn,
        replayFromLsn: ck.replayFromLsn,
        pinnedBytes: this.walPinnedBytes(ck.walKeepFromLsn),
        failed: w.failed,
      },
      checkpoints: ck,
      files: {
        open: this.fs.handles.size,
        byKind: this.fs.handles.counts(),
        objects: st.objects,
        checkpoint: this.checkpointer.files().length,
      },
      recovery: { ...this.recovery },
      ...(this.replica !== undefined ? { replica: { ...this.replica.stats } } : {}),
      ...(this.fs instanceof ObjectStoreFileService ? { objectStore: this.fs.stats() } : {}),
      storage: st,
      transactions: { ...this.txns.counters, active: this.txns.activeCount },
      tables: this.catalog.all().length,
      indexes: this.indexStats(),
    };
  }

  private indexStats(): EngineStats['indexes'] {
    const out = { count: 0, building: 0, memtableBytes: 0, objectLayers: 0 };
    for (const t of this.catalog.all()) {
      if (t.schema.index === undefined || t.droppedTs !== undefined || t.isReleased) continue;
      out.count++;
      if (t.readyTs === undefined) out.building++;
      out.memtableBytes += t.memBytes;
      out.objectLayers += t.objects.length;
    }
    return out;
  }

  /** Bytes of WAL segments the retained checkpoints still need (from the one holding `fromLsn`). */
  private walPinnedBytes(fromLsn: number): number {
    const segs = this.wal.segmentList();
    let bytes = 0;
    for (let i = 0; i < segs.length; i++) {
      const next = segs[i + 1];
      if (next !== undefined && next.firstLsn <= fromLsn) continue;
      bytes += segs[i]!.bytes;
    }
    return bytes;
  }

  // ---- lifecycle ----

  /** Whether the database is open (not closing or closed). */
  get isOpen(): boolean {
    return this.lifecycle.state === 'open';
  }

  protected checkOpen(): void {
    if (this.lifecycle.state !== 'open') throw new TidemarkError('CLOSED', `database ${this.dir} is closed`);
  }

  /**
   * Close: open transactions are rolled back (their later calls get CLOSED), commits in flight
   * finish, the WAL is flushed and closed, every table's memory released and the LOCK released.
   * Rejects with a LeakError (code LEAK) listing every pooled buffer or file handle still held.
   */
  close(): Promise<void> {
    if (this.lifecycle.state !== 'open') return this.lifecycle.done;
    const done = this.closeNow();
    this.lifecycle = { state: 'closing', done };
    const settle = () => {
      this.lifecycle = { state: 'closed', done };
    };
    done.then(settle, settle);
    return done;
  }

  private async closeNow(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (e) {
        this.logger.error({ err: e }, `close: ${what} failed`);
        errors.push(e);
      }
    };
    await attempt('replica refresh', () => this.replica?.stop());
    await attempt('transactions', () => this.txns.close(`database ${this.dir} is closed`));
    this.observers.clear(); // (after the last commit ended: observers see every commit)
    await attempt('final checkpoint', () => this.checkpointer.stop(this.replica === undefined));
    await attempt('background work', () => this.storage.stop());
    await attempt('WAL', () => this.wal.close());
    for (const t of this.catalog.all()) t.release();
    await attempt('object files', () => this.storage.close());
    await attempt('LOCK', () => this.lock.release());
    const holders: LeakHolder[] = [];
    try {
      this.memory.close();
    } catch (e) {
      if (e instanceof LeakError) holders.push(...e.holders);
      else errors.push(e);
    }
    try {
      await this.fs.close();
    } catch (e) {
      if (e instanceof LeakError) holders.push(...e.holders);
      else errors.push(e);
    }
    if (holders.length > 0) {
      const leak = new LeakError(`database ${this.dir} closed with resources still held`, holders);
      this.logger.error({ holders: holders.length }, leak.message);
      throw leak;
    }
    if (errors.length > 0) throw errors[0];
    this.logger.info({ dir: this.dir }, 'database closed');
  }
}

/** What one-statement writes to one row queue on (see Database.statement). */
function keyTag(table: unknown, key: unknown): string | undefined {
  if (typeof table !== 'string') return undefined; // (the transaction reports it)
  // A bigint within the safe range is the same key as its number (canonical form).
  if (typeof key === 'bigint') key = canonicalInt(key);
  const k = key instanceof Uint8Array ? Buffer.from(key).toString('hex') : String(key);
  return `${table}\u0000${typeof key}\u0000${k}`;
}

/** How many times a one-statement write meets a write-write conflict before it gives up. */
const STATEMENT_ATTEMPTS = 64;
