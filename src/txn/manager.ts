import type { Catalog } from '../catalog/catalog.js';
import { describe, mapKey, TableSchema, type Key, type MapKey } from '../schema/schema.js';
import { checkIndexSpec, indexTableSchema, MAX_INDEXES, type IndexSpec } from '../schema/index_key.js';
import { buildIndex } from './index_build.js';
import { invalidArgument, TidemarkError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MemoryManager } from '../mem/manager.js';
import type { Reservation } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { Table, type TableStage } from '../table/table.js';
import type { Wal } from '../wal/wal.js';
import type { ReplayFrom } from '../storage/layer_replay.js';
import type { HybridClock } from './clock.js';
import type { CommitPipeline, CommitProgress } from './pipeline.js';
import { decodeTxn, encodeTxn, RecordType, type TxnOp, type TxnRecord } from './record.js';
import { conflict, duplicate, Transaction, type QueryRunner, type TxnHost } from './transaction.js';
import { uniqueViolation } from './indexes.js';
import { plantedBug } from '../util/plant.js';

export interface TransactionOptions {
  /** A transaction open longer than this is rolled back; its later calls get CLOSED. Default 5 min. */
  timeoutMs: number;
  /** The most bytes of writes one transaction may hold before commit. Default 64 MiB. */
  maxWriteBytes: number;
  /** How long a commit waits for memory before MEMORY_LIMIT. Default 30 s. */
  memoryWaitMs: number;
  /** Reads return int64 and uint64 values as bigints (OpenOptions.safeIntegers). */
  safeIntegers?: boolean;
}

export const DEFAULT_TRANSACTION_OPTIONS: TransactionOptions = {
  timeoutMs: 5 * 60_000,
  maxWriteBytes: 64 * 1024 * 1024,
  memoryWaitMs: 30_000,
};

export interface TxnCounters {
  committed: number;
  aborted: number;
  conflicts: number;
  readOnly: number;
}

/** What a commit stages and logs per table: rows put (with their keys) and keys deleted. */
function commitPlan(tx: Transaction): { table: Table; puts: unknown[][]; putKeys: Key[]; delKeys: Key[] }[] {
  const plan: { table: Table; puts: unknown[][]; putKeys: Key[]; delKeys: Key[] }[] = [];
  for (const tw of tx.writes.values()) {
    if (tw.entries.size === 0) continue;
    const puts: unknown[][] = [];
    const putKeys: Key[] = [];
    const delKeys: Key[] = [];
    for (const e of tw.entries.values()) {
      if (e.values === null) delKeys.push(e.key);
      else {
        puts.push(e.values);
        putKeys.push(e.key);
      }
    }
    plan.push({ table: tw.table, puts, putKeys, delKeys });
  }
  return plan;
}

/**
 * Transactions: snapshots, the commit pipeline, and the catalog's DDL.
 *
 * Commit: stage each table's writes in its memtable (may wait for memory), then, in one synchronous
 * step, check conflicts against everything committed and in flight, take the commit timestamp and
 * hand the record to the WAL; once the record is durable, publish the staged versions. Commit
 * timestamps are taken in the same order the WAL assigns LSNs, and records become durable in LSN
 * order, so versions are published in timestamp order and a snapshot (the newest published
 * timestamp) always sees a prefix of the commit history. A failed append publishes nothing.
 */
export class TxnManager implements TxnHost {
  readonly clock: HybridClock;
  /** The newest commit timestamp published: what a new snapshot sees. */
  lastCommittedTs = 0;
  readonly counters: TxnCounters = { committed: 0, aborted: 0, conflicts: 0, readOnly: 0 };
  /** The write sets of all open transactions, accounted in the memtable pool as one reservation. */
  private readonly writeRes: Reservation;
  private readonly memtablePool: MemoryPool;
  private readonly walPool: MemoryPool;
  /** Transactions between their conflict check and their publish (their write sets are final). */
  private readonly inflight = new Set<Transaction>();
  private readonly active = new Set<Transaction>();
  /** Commits and DDL under way, and who waits for them to be none (close). */
  private pendingCount = 0;
  private idle: (() => void) | undefined;
  private nextTxnId = 1;
  private ddlLock: Promise<unknown> = Promise.resolve();
  /** Set on a read replica: why writes are refused. */
  readOnly: string | undefined;
  private closedReason: string | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private prunedAt = -1;
  constructor(
    private readonly wal: Wal,
    readonly catalog: Catalog,
    memory: MemoryManager,
    private readonly logger: Logger,
    readonly options: TransactionOptions,
    /** The steps of a commit around staging, logging and publishing (see CommitPipeline). */
    private readonly pipeline: CommitPipeline,
    /** Updated here, read by the checkpointer. */
    private readonly progress: CommitProgress,
  ) {
    this.clock = progress.clock;
    this.writeRes = memory.pool('memtable').reserveSync(0, 'txn.writes');
    this.memtablePool = memory.pool('memtable');
    this.walPool = memory.pool('wal');
  }

  readOnlyError(): TidemarkError {
    return new TidemarkError('READ_ONLY', `the database is read-only: ${this.readOnly}`);
  }

  checkOpen(): void {
    if (this.closedReason !== undefined) throw new TidemarkError('CLOSED', this.closedReason);
  }

  /**
   * A new transaction; `expires` false exempts it from transaction.timeoutMs (snapshots); `queries`
   * runs its `tx.query`.
   */
  begin(expires = true, queries?: QueryRunner): Transaction {
    this.checkOpen();
    const tx = new Transaction(this.nextTxnId++, this.lastCommittedTs, this, queries);
    tx.expires = expires;
    this.active.add(tx);
    if (expires && this.sweeper === undefined && Number.isFinite(this.options.timeoutMs)) {
      // One timer for all transactions, not one each: it checks ages a few times per timeout.
      const every = Math.max(10, Math.min(1000, Math.floor(this.options.timeoutMs / 4)));
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
    return tx;
  }

  private sweep(): void {
    const now = performance.now();
    for (const tx of this.active) {
      if (tx.state === 'active' && tx.expires && now - tx.startedMs > this.options.timeoutMs) this.expire(tx);
    }
    if (this.active.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** The oldest snapshot any open transaction reads at (or the newest commit if none is open). */
  oldestSnapshot(): number {
    let oldest = this.lastCommittedTs;
    for (const tx of this.active) if (tx.snapshotTs < oldest) oldest = tx.snapshotTs;
    return oldest;
  }

  get activeCount(): number {
    return this.active.size;
  }

  isInflight(tableId: number, key: Key): boolean {
    if (this.inflight.size === 0) return false;
    const mk = mapKey(key);
    for (const tx of this.inflight) if (tx.writes.get(tableId)?.entries.has(mk) === true) return true;
    return false;
  }

  /** Roll back; `cause` is what made the caller give up (a CONFLICT counts as a conflict). */
  rollback(tx: Transaction, reason = 'rolled back', cause?: unknown): void {
    if (tx.state !== 'active') return;
    if (cause instanceof TidemarkError && (cause.code === 'CONFLICT' || cause.code === 'DUPLICATE_KEY'))
      this.counters.conflicts++;
    this.end(tx, 'aborted', reason);
  }

  commit(tx: Transaction): Promise<void> {
    tx.checkUsable();
    if (tx.hasWrites && this.readOnly !== undefined) {
      this.end(tx, 'aborted', 'the database is read-only');
      return Promise.reject(this.readOnlyError());
    }
    if (!tx.hasWrites) {
      this.counters.readOnly++;
      this.end(tx, 'committed');
      return Promise.resolve();
    }
    tx.state = 'committing';
    const started = performance.now();
    const p = this.commitWrites(tx);
    this.track(p);
    p.then(
      () => this.pipeline.finished(performance.now() - started, true),
      () => this.pipeline.finished(performance.now() - started, false),
    );
    return p;
  }

  private async commitWrites(tx: Transaction): Promise<void> {
    const wait = { timeoutMs: this.options.memoryWaitMs };
    const admitted = this.pipeline.admit();
    if (admitted !== undefined) {
      try {
        await admitted;
      } catch (e) {
        this.end(tx, 'aborted', 'commit failed');
        throw e;
      }
    }
    let staged: TableStage[] = [];
    let append: Promise<void>;
    let ts: number;
    try {
      for (;;) {
        // The index entries of the rows written, for the tables' indexes as they are now (one may
        // have been created or dropped since the writes began)...
        await tx._syncIndexes();
        const plan = commitPlan(tx);
        // Room first (this may wait for memory, while flushes make some)...
        this.pipeline.reserving(plan.map((p) => p.table));
        for (const p of plan) await p.table.ensureRoom(p.puts, p.delKeys.length, wait);
        // ...then, synchronously until the record is handed to the WAL: the conflict check, the
        // staging in the tables' active memtables, the commit timestamp and the LSN. A memtable
        // frozen meanwhile, or room taken by others, means another round.
        this.checkOpen();
        if (!tx._indexesCurrent()) continue;
        this.checkConflicts(tx);
        staged = [];
        for (const p of plan) {
          const s = p.table.tryStage(p.puts, p.putKeys, p.delKeys);
          if (s === undefined) break;
          staged.push(s);
        }
        if (staged.length < plan.length) {
          for (const s of staged) s.table.abandon(s);
          staged = []; // abandoned once: not again if the next round fails
          continue;
        }
        this.registerInflight(tx);
        ts = this.clock.now();
        const ops: TxnOp[] = plan.map((p) => ({
          kind: 'write',
          tableId: p.table.id,
          puts: p.puts,
          delKeys: p.delKeys,
        }));
        // The memtables learn the record's LSN as soon as it is assigned: a checkpoint taken
        // before the record is durable must still replay it.
        const tables = staged.map((s) => s.staged.memtable);
        append = this.appendRecord(ts, ops, (lsn) => {
          for (const mt of tables) if (lsn < mt.firstLsn) mt.firstLsn = lsn;
        });
        break;
      }
    } catch (e) {
      // Staged in some tables of this round before another's staging threw: abandoned, or those
      // memtables would wait for ever for a write nobody will publish (their flushes, and reads).
      for (const s of staged) s.table.abandon(s);
      if (e instanceof TidemarkError && (e.code === 'CONFLICT' || e.code === 'DUPLICATE_KEY'))
        this.counters.conflicts++;
      this.end(tx, 'aborted', 'commit failed');
      throw e;
    }
    try {
      await append;
    } catch (e) {
      for (const s of staged) s.table.abandon(s);
      this.unregisterInflight(tx);
      this.end(tx, 'aborted', 'commit failed');
      throw e;
    }
    // Durable: publish. Nothing here can fail. The recent-commit index needs these keys only if
    // another open transaction reads at a snapshot older than this commit (any that begins from
    // now on sees it): a lone writer, such as a bulk load, skips the index altogether.
    let remember = false;
    for (const other of this.active) {
      if (other !== tx && other.snapshotTs < ts) {
        remember = true;
        break;
      }
    }
    for (const s of staged) s.table.publish(s, ts, remember);
    this.progress.changes++;
    if (ts > this.lastCommittedTs) this.lastCommittedTs = ts;
    this.unregisterInflight(tx);
    this.end(tx, 'committed');
    this.pipeline.published(staged.map((s) => s.table));
  }

  /** Encode a transaction record and append it; resolves once it is durable. */
  private async appendRecord(ts: number, ops: TxnOp[], onLsn?: (lsn: number) => void): Promise<void> {
    const payload = encodeTxn(
      { commitTs: ts, ops },
      (id) => this.catalog.byTableId(id)!.schema,
      this.walPool,
    );
    try {
      // The WAL may copy the payload only after waiting for queue space: keep it until then.
      await this.wal.append(RecordType.TXN, payload.bytes, onLsn);
    } finally {
      payload.release();
    }
  }

  /** First committer wins: any key committed by others since our snapshot, or in flight, conflicts. */
  private checkConflicts(tx: Transaction): void {
    // Nothing published since our snapshot and nothing in flight: nothing can conflict.
    const committedSince = this.lastCommittedTs > tx.snapshotTs;
    if (!committedSince && this.inflight.size === 0) return;
    for (const tw of tx.writes.values()) {
      const t = tw.table;
      if (t.schema.index !== undefined && plantedBug('index-unique-race')) continue;
      if (t.droppedTs !== undefined) {
        throw new TidemarkError('CONFLICT', `table ${t.name} was dropped while the transaction ran`, {
          details: { table: t.name },
        });
      }
      const others: Map<MapKey, unknown>[] = [];
      for (const o of this.inflight) {
        const m = o.writes.get(t.id)?.entries;
        if (m !== undefined && m.size > 0) others.push(m);
      }
      for (const [mk, e] of tw.entries) {
        let flying = false;
        for (const m of others) if (m.has(mk)) flying = true;
        const newest = committedSince ? t.newest(e.key) : undefined;
        if (e.insert && ((newest !== undefined && !newest.deleted) || flying)) {
          const base = t.schema.index === undefined ? undefined : this.catalog.byTableId(t.schema.index.base);
          throw base !== undefined ? uniqueViolation(base, t) : duplicate(t.schema, e.key);
        }
        if (flying || (newest !== undefined && newest.ts > tx.snapshotTs)) throw conflict(t.schema, e.key);
      }
    }
  }

  private registerInflight(tx: Transaction): void {
    this.inflight.add(tx);
  }

  private unregisterInflight(tx: Transaction): void {
    this.inflight.delete(tx);
  }

  private end(tx: Transaction, state: 'committed' | 'aborted', reason?: string): void {
    tx.state = state;
    tx.endReason = reason;
    tx.releaseResources();
    this.active.delete(tx);
    if (state === 'committed') this.counters.committed++;
    else this.counters.aborted++;
    this.collectDroppedTables();
    this.pruneRecent();
  }

  /** Let tables forget recent commits no open snapshot predates (when the oldest snapshot moved). */
  private pruneRecent(): void {
    const oldest = this.oldestSnapshot();
    if (oldest === this.prunedAt) return;
    this.prunedAt = oldest;
    for (const t of this.catalog.all()) t.pruneRecent(oldest);
  }

  private expire(tx: Transaction): void {
    if (tx.state !== 'active') return;
    this.logger.warn(
      { txn: tx.id, timeoutMs: this.options.timeoutMs },
      'transaction timed out and was rolled back',
    );
    this.end(tx, 'aborted', `timed out after ${this.options.timeoutMs} ms and was rolled back`);
  }

  private track(p: Promise<unknown>): void {
    this.pendingCount++;
    const done = () => {
      if (--this.pendingCount === 0) this.idle?.();
    };
    p.then(done, done);
  }

  /** @internal Add (or, negative, remove) bytes of a transaction's write set; MEMORY_LIMIT if none left. */
  accountWrites(delta: number): void {
    if (delta !== 0) this.writeRes.resize(this.writeRes.bytes + delta);
  }

  // ---- DDL ----

  createTable(name: string, spec: unknown): Promise<void> {
    this.checkOpen();
    if (this.readOnly !== undefined) return Promise.reject(this.readOnlyError());
    const schema = TableSchema.fromSpec(name, spec);
    const indexes = checkIndexSpecs(schema, (spec as { indexes?: unknown }).indexes);
    return this.ddl(async () => {
      if (this.catalog.live(name) !== undefined) throw invalidArgument(`table ${name} already exists`);
      const id = this.catalog.nextTableId;
      // The table and its indexes in one record; an empty table's indexes are built at once.
      const ops: TxnOp[] = [{ kind: 'create', tableId: id, schema }];
      indexes.forEach((ix, i) =>
        ops.push(
          { kind: 'create', tableId: id + 1 + i, schema: indexTableSchema(schema, id, ix) },
          { kind: 'ready', tableId: id + 1 + i },
        ),
      );
      await this.commitDdl(ops);
    });
  }

  /**
   * Add an index to a table, built online: its hidden table is created (from then on every commit
   * writing the table keeps its entries), the rows committed before are added in batches, each a
   * transaction of its own at a fresh snapshot (one that meets a concurrent write of the same entry
   * conflicts and is redone), then the index is marked built: reads may use it from that commit on.
   * If the rows break a UNIQUE index (DUPLICATE_KEY) or the build fails, the index is dropped.
   */
  createIndex(table: string, name: string, columns: unknown, options: unknown = {}): Promise<void> {
    this.checkOpen();
    if (this.readOnly !== undefined) return Promise.reject(this.readOnlyError());
    if (typeof options !== 'object' || options === null)
      throw invalidArgument(`createIndex options must be an object, got ${describe(options)}`);
    for (const k of Object.keys(options))
      if (k !== 'unique') throw invalidArgument(`unknown createIndex option ${k}; known: unique`);
    const base = this.liveTable(table);
    const spec = checkIndexSpec(base.schema, {
      name,
      columns,
      unique: (options as { unique?: unknown }).unique,
    });
    return this.ddl(async () => {
      const t = this.liveTable(table);
      if (t.liveIndexes.some((h) => h.schema.index!.name === spec.name))
        throw invalidArgument(`table ${table} already has an index named ${spec.name}`);
      if (t.liveIndexes.length >= MAX_INDEXES)
        throw invalidArgument(`a table has at most ${MAX_INDEXES} indexes`);
      const id = this.catalog.nextTableId;
      await this.commitDdl([{ kind: 'create', tableId: id, schema: indexTableSchema(t.schema, t.id, spec) }]);
      const h = this.catalog.byTableId(id)!;
      try {
        await buildIndex(this, t, h, this.logger);
        this.checkOpen();
        await this.commitDdl([{ kind: 'ready', tableId: id }]);
      } catch (e) {
        if (h.droppedTs === undefined && this.closedReason === undefined)
          await this.commitDdl([{ kind: 'drop', tableId: id }]).catch((d: unknown) =>
            this.logger.warn({ err: d, index: spec.name }, 'could not drop an index whose build failed'),
          );
        throw e;
      }
    });
  }

  dropIndex(table: string, name: string): Promise<void> {
    this.checkOpen();
    if (this.readOnly !== undefined) return Promise.reject(this.readOnlyError());
    if (typeof name !== 'string') throw invalidArgument('index name must be a string');
    this.liveTable(table);
    return this.ddl(async () => {
      const h = this.liveTable(table).liveIndexes.find((i) => i.schema.index!.name === name);
      if (h === undefined)
        throw new TidemarkError('NOT_FOUND', `table ${table} has no index ${JSON.stringify(name)}`, {
          details: { table, index: name },
        });
      await this.commitDdl([{ kind: 'drop', tableId: h.id }]);
    });
  }

  /** At open: indexes whose build a crash cut short go (their createIndex never resolved). */
  dropUnbuiltIndexes(): Promise<void> {
    return this.ddl(async () => {
      const ops: TxnOp[] = [];
      for (const t of this.catalog.all())
        if (t.schema.index !== undefined && t.droppedTs === undefined && t.readyTs === undefined)
          ops.push({ kind: 'drop', tableId: t.id });
      if (ops.length === 0) return;
      this.logger.info({ indexes: ops.length }, 'recovery: dropping indexes whose build did not finish');
      await this.commitDdl(ops);
    });
  }

  private liveTable(name: unknown): Table {
    if (typeof name !== 'string') throw invalidArgument(`table name must be a string, got ${describe(name)}`);
    const t = this.catalog.live(name);
    if (t === undefined)
      throw new TidemarkError('NOT_FOUND', `no table named ${JSON.stringify(name)}`, {
        details: { table: name },
      });
    return t;
  }

  dropTable(name: string): Promise<void> {
    this.checkOpen();
    if (this.readOnly !== undefined) return Promise.reject(this.readOnlyError());
    if (typeof name !== 'string') throw invalidArgument('table name must be a string');
    return this.ddl(async () => {
      const t = this.catalog.live(name);
      if (t === undefined)
        throw new TidemarkError('NOT_FOUND', `no table named ${JSON.stringify(name)}`, {
          details: { table: name },
        });
      await this.commitDdl([
        ...t.liveIndexes.map((h): TxnOp => ({ kind: 'drop', tableId: h.id })),
        { kind: 'drop', tableId: t.id },
      ]);
    });
  }

  /** DDL runs one statement at a time. */
  private ddl(fn: () => Promise<void>): Promise<void> {
    const run = this.ddlLock.then(fn);
    this.ddlLock = run.catch(() => undefined);
    this.track(run);
    return run;
  }

  private async commitDdl(ops: TxnOp[]): Promise<void> {
    this.checkOpen();
    const admitted = this.pipeline.admit();
    if (admitted !== undefined) await admitted;
    this.checkOpen();
    const ts = this.clock.now();
    this.progress.ddlLogging();
    try {
      await this.appendRecord(ts, ops);
      if (ts > this.lastCommittedTs) this.lastCommittedTs = ts;
      this.applyDdl(ops, ts);
      this.progress.changes++;
    } finally {
      this.progress.ddlDone();
    }
  }

  private applyDdl(ops: TxnOp[], ts: number): void {
    for (const op of ops) {
      if (op.kind === 'create') this.catalog.add(new Table(op.tableId, op.schema, ts, this.memtablePool));
      else if (op.kind === 'drop') {
        const t = this.catalog.byTableId(op.tableId);
        if (t !== undefined) this.catalog.markDropped(t, ts);
      } else if (op.kind === 'ready') {
        const t = this.catalog.byTableId(op.tableId);
        if (t !== undefined) t.readyTs = ts;
      }
    }
    this.collectDroppedTables();
  }

  /** Release dropped tables that no open snapshot can see any more. */
  private collectDroppedTables(): void {
    const oldest = this.oldestSnapshot();
    for (const t of this.catalog.unreachable(oldest)) {
      t.release();
      this.catalog.remove(t.id);
      this.logger.debug({ table: t.name, id: t.id }, 'released a dropped table');
    }
  }

  // ---- recovery ----

  /**
   * Apply one WAL record at open. After a checkpoint (`from`), what the checkpoint holds already is
   * passed over: DDL logged at or before its storage LSN, and writes below their table's redo LSN
   * (writes of a table dropped before the checkpoint too). A write to a table that exists neither
   * in the checkpoint nor in the log before it is CORRUPTION.
   */
  async replay(payload: Uint8Array, where: string, lsn: number, from?: ReplayFrom): Promise<void> {
    const covered = from !== undefined && lsn <= from.storageLsn;
    const skipWrite = (tableId: number): boolean => {
      if (from === undefined) return false;
      const t = this.catalog.byTableId(tableId);
      if (t === undefined) return covered;
      return lsn < (from.redo.get(tableId) ?? 0);
    };
    const rec: TxnRecord = decodeTxn(payload, where, (id) => this.catalog.byTableId(id)?.schema, skipWrite);
    const ts = rec.commitTs;
    const wait = { timeoutMs: this.options.memoryWaitMs };
    for (const op of rec.ops) {
      if (op.kind !== 'write') {
        if (!covered) this.applyDdl([op], ts);
        continue;
      }
      if (skipWrite(op.tableId)) continue;
      const t = this.catalog.byTableId(op.tableId);
      if (t === undefined) {
        throw new TidemarkError(
          'CORRUPTION',
          `${where}: a write to table ${op.tableId}, which does not exist`,
          { details: { where } },
        );
      }
      const putKeys = op.puts.map((v) => t.schema.keyOf(v));
      for (;;) {
        await t.ensureRoom(op.puts, op.delKeys.length, wait);
        const s = t.tryStage(op.puts, putKeys, op.delKeys);
        if (s === undefined) continue;
        if (lsn < s.staged.memtable.firstLsn) s.staged.memtable.firstLsn = lsn;
        // No snapshot is open during replay: no conflict check will ask about these commits.
        t.publish(s, ts, false);
        break;
      }
    }
    this.clock.observe(ts);
    if (ts > this.lastCommittedTs) this.lastCommittedTs = ts;
  }

  /**
   * After the last replayed record: tables dropped by replayed records go (replay runs before any
   * snapshot exists; the drops did not see their commit timestamps as the oldest snapshot yet), and
   * the room replay grew in the tables' recent-commit indexes (none of it used: replayed commits
   * are not remembered) goes back now, not at the first commit.
   */
  replayDone(): void {
    // Tables the log dropped: no snapshot is open, none can see them (their files may be gone).
    this.collectDroppedTables();
    this.prunedAt = -1;
    this.pruneRecent();
  }

  // ---- shutdown ----

  /** Refuse new work, end open transactions, and wait for commits in flight. */
  async close(reason: string): Promise<void> {
    this.closedReason = reason;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const tx of [...this.active]) {
      if (tx.state === 'active') this.end(tx, 'aborted', 'the database was closed');
    }
    if (this.pendingCount > 0) await new Promise<void>((r) => (this.idle = r));
    this.writeRes.release();
  }
}

/** The `indexes` of a table spec, checked (names unique). */
function checkIndexSpecs(schema: TableSchema, indexes: unknown): Required<IndexSpec>[] {
  if (indexes === undefined) return [];
  if (!Array.isArray(indexes))
    throw invalidArgument('indexes must be an array of { name, columns, unique? }');
  if (indexes.length > MAX_INDEXES) throw invalidArgument(`a table has at most ${MAX_INDEXES} indexes`);
  const out = indexes.map((ix) => checkIndexSpec(schema, ix));
  const names = new Set<string>();
  for (const ix of out) {
    if (names.has(ix.name)) throw invalidArgument(`two indexes named ${ix.name}`);
    names.add(ix.name);
  }
  return out;
}
