import { Catalog } from '../catalog/catalog.js';
import { describe } from '../schema/schema.js';
import { invalidArgument, TidemarkError } from '../errors.js';
import { LocalFileService } from '../fileservice/local.js';
import { ObjectStoreFileService } from '../fileservice/s3.js';
import type { DirectoryLock, FileService } from '../fileservice/types.js';
import { createLogger, type Logger } from '../log.js';
import { planted, plantedBug } from '../util/plant.js';
import { MemoryManager } from '../mem/manager.js';
import { TxnManager } from '../txn/manager.js';
import { RecordType } from '../txn/record.js';
import { StorageRecord } from '../table/log_records.js';
import { Wal } from '../wal/wal.js';
import { Storage } from '../storage/storage.js';
import type { ReplayFrom } from '../storage/layer_replay.js';
import { Observers } from './events.js';
import { ReplicaRefresher } from './replica.js';
import { Checkpointer } from '../checkpoint/checkpointer.js';
import { CKP_DIR } from '../checkpoint/format.js';
import { loadChain } from '../checkpoint/recovery.js';
import { Table } from '../table/table.js';
import { HybridClock } from '../txn/clock.js';
import { CommitProgress } from '../txn/pipeline.js';
import { CommitCoordinator } from './commit_coordinator.js';
import { resolveOptions, type OpenOptions, type ResolvedOptions } from './options.js';

export interface RecoveryStats {
  /** The incremental checkpoint number the open started from (0: none, the whole log). */
  checkpointSeq: number;
  replayFromLsn: number;
  replayedRecords: number;
  /** Newer meta files found torn or corrupt (recovery fell back past them). */
  fellBack: string[];
  ms: number;
}

/** What an open engine is made of (see recover). */
export interface EngineParts {
  dir: string;
  fs: FileService;
  lock: DirectoryLock;
  memory: MemoryManager;
  wal: Wal;
  catalog: Catalog;
  txns: TxnManager;
  storage: Storage;
  checkpointer: Checkpointer;
  recovery: RecoveryStats;
  logger: Logger;
  options: ResolvedOptions;
  observers: Observers;
  /** Set on a read replica (see ReplicaRefresher). */
  replica: ReplicaRefresher | undefined;
}

/**
 * The open sequence: lock, memory, the newest valid checkpoint, the WAL after it, the storage
 * layer's layers and files, then the background work. Whatever fails leaves nothing behind.
 */
export async function recover(dir: string, options?: OpenOptions): Promise<EngineParts> {
  if (typeof dir !== 'string' || dir === '')
    throw invalidArgument(`open needs a directory path, got ${describe(dir)}`);
  const opts = resolveOptions(options);
  const logger = createLogger(options?.log);
  const observers = new Observers(logger);
  const fs =
    options?.fileService ??
    (opts.objectStore !== undefined
      ? new ObjectStoreFileService(
          new LocalFileService(dir),
          opts.objectStore,
          logger,
          undefined,
          opts.readOnly ? 'replica' : 'writer',
        )
      : new LocalFileService(dir));
  const started = performance.now();
  // A file service made here is closed here if the open fails (the S3 one holds a client).
  const ownFs = options?.fileService === undefined;
  let lock: DirectoryLock;
  try {
    lock = await fs.lock();
  } catch (e) {
    if (ownFs) await fs.close().catch(() => undefined);
    throw e;
  }
  const memory = new MemoryManager({
    limitBytes: opts.memory.limitBytes,
    leakDetection: opts.memory.leakDetection,
    ...(opts.memory.samplingInterval !== undefined ? { samplingInterval: opts.memory.samplingInterval } : {}),
    waitTimeoutMs: opts.transaction.memoryWaitMs,
    // Shares keep one subsystem from starving the others: memtables can never take the memory a
    // flush needs to free them, and the cache evicts within its own share.
    poolMaxBytes: {
      memtable: opts.memory.memtableBytes,
      cache: opts.memory.cacheBytes,
      query: opts.memory.queryBytes,
    },
  });
  memory.onLeak((r) => {
    if (!r.repeated)
      logger.error(
        { pool: r.pool, owner: r.owner, bytes: r.bytes, stack: r.stack, records: r.records },
        'leak: a pooled buffer was garbage-collected without release',
      );
  });
  let wal: Wal | undefined;
  const catalog = new Catalog();
  let txns: TxnManager | undefined;
  let storage: Storage | undefined;
  let checkpointer: Checkpointer | undefined;
  let recovery!: RecoveryStats;
  let replica: ReplicaRefresher | undefined;
  try {
    // The newest valid checkpoint first: the log continues after what it holds.
    if ((await fs.stat(CKP_DIR)) === undefined) {
      await fs.mkdir(CKP_DIR);
      await fs.syncDir('');
    }
    const loaded = await loadChain(fs, memory.pool('replay'), logger);
    const startLsn = loaded.newest === undefined ? 1 : loaded.newest.point.storageLsn + 1;
    wal = await Wal.open({ fs, memory, logger, options: opts.wal, startLsn });
    if (wal.recovery.tornTail !== undefined)
      logger.info(wal.recovery.tornTail, 'recovery: cut a torn WAL tail');
    // The layers, bottom up: storage, checkpoints (through their narrow sources), the commit
    // pipeline composing both, transactions.
    const progress = new CommitProgress(new HybridClock(options?.clock));
    storage = new Storage(
      fs,
      memory,
      wal,
      catalog,
      logger,
      opts.storage,
      // Flushes and merges keep every version an open snapshot may read (none is open before
      // the transaction manager exists).
      () => txns?.oldestSnapshot() ?? 0,
      opts.memory.cacheBytes,
      // A replica's files are its writer's: it deletes nothing.
      !opts.readOnly,
    );
    await storage.prepare();
    checkpointer = new Checkpointer(
      fs,
      wal,
      storage,
      progress,
      memory.pool('checkpoint'),
      logger,
      opts.checkpoint,
      (e) => observers.checkpoint(e),
    );
    const pipeline = new CommitCoordinator(storage, checkpointer, observers);
    txns = new TxnManager(wal, catalog, memory, logger, opts.transaction, pipeline, progress);
    await checkpointer.adopt(loaded);
    // The state the newest checkpoint holds, then the log after it.
    const point = checkpointer.recoveryPoint;
    let from: ReplayFrom | undefined;
    if (point !== undefined && loaded.newest !== undefined) {
      for (const t of loaded.newest.state.tables.values()) {
        const table = new Table(t.id, t.schema, t.createdTs, memory.pool('memtable'));
        table.readyTs = t.readyTs;
        catalog.add(table);
        storage.seedLayers(t.id, t.layers, `checkpoint ${loaded.newest.path}`);
      }
      catalog.nextTableId = Math.max(catalog.nextTableId, point.nextTableId);
      storage.seedNextObjectId(point.nextObjectId);
      txns.clock.observe(point.maxTs);
      txns.lastCommittedTs = Math.max(txns.lastCommittedTs, checkpointer.stats().lastEndTs);
      from = { storageLsn: point.storageLsn, redo: point.redo };
    }
    const replayFrom = point?.replayFromLsn ?? 1;
    let records = 0;
    // (Planted bug: skip the first commit the checkpoint does not hold already.)
    let gap = plantedBug('replay-gap');
    const held = from === undefined ? 0 : Math.max(from.storageLsn, ...from.redo.values());
    for await (const rec of wal.replay(replayFrom)) {
      const where = `WAL record ${rec.lsn} in ${rec.segment}`;
      if (rec.type === RecordType.TXN && gap && rec.lsn > held) gap = false;
      else if (rec.type === RecordType.TXN) await txns.replay(rec.payload, where, rec.lsn, from);
      else if (
        rec.type === StorageRecord.FREEZE ||
        rec.type === StorageRecord.FLUSH ||
        rec.type === StorageRecord.MERGE
      ) {
        storage.replay(rec.type, rec.payload, where, rec.lsn, from);
      } else {
        throw new TidemarkError('CORRUPTION', `WAL record ${rec.lsn} has unknown type ${rec.type}`, {
          details: { lsn: rec.lsn },
        });
      }
      records++;
    }
    txns.replayDone();
    const { orphans } = await storage.finishReplay();
    recovery = {
      checkpointSeq: point === undefined ? 0 : (loaded.newest?.meta.chain.at(-1)?.seq ?? 0),
      replayFromLsn: replayFrom,
      replayedRecords: records,
      fellBack: loaded.invalid.map((i) => i.path),
      ms: 0,
    };
    if (opts.readOnly) {
      if (!(fs instanceof ObjectStoreFileService) || fs.mode !== 'replica')
        throw invalidArgument(
          'option readOnly needs objectStore (or an ObjectStoreFileService in replica mode)',
        );
      txns.readOnly = `a read replica of ${fs.root}`;
      replica = new ReplicaRefresher(
        fs,
        storage,
        catalog,
        txns,
        memory.pool('replay'),
        logger,
        opts.refreshMs,
        loaded.newest?.meta.seq ?? 0,
        txns.lastCommittedTs,
      );
    } else {
      checkpointer.start();
      // An index whose build a crash interrupted: its createIndex never resolved; it goes.
      await txns.dropUnbuiltIndexes();
    }
    if (planted('listener')) process.on('beforeExit', () => undefined);
    logger.info(
      {
        dir,
        records,
        tables: catalog.all().length,
        orphansRemoved: orphans.length,
        checkpoint: recovery.checkpointSeq,
        replayFromLsn: replayFrom,
        ms: Math.round(performance.now() - started),
      },
      'database opened',
    );
    recovery.ms = performance.now() - started;
  } catch (e) {
    // Leave nothing behind: release what the failed open took, then report the first error.
    await txns?.close('the database failed to open').catch(() => undefined);
    await checkpointer?.stop(false);
    await storage?.stop();
    for (const t of catalog.all()) t.release();
    await storage?.close().catch(() => undefined);
    await wal?.close().catch(() => undefined);
    await lock.release().catch(() => undefined);
    if (ownFs) await fs.close().catch(() => undefined);
    try {
      memory.close();
    } catch (leak) {
      logger.error({ err: leak }, 'a failed open leaked memory');
    }
    throw e;
  }
  return {
    dir,
    fs,
    lock,
    memory,
    wal,
    catalog,
    txns,
    storage,
    checkpointer,
    recovery,
    logger,
    options: opts,
    observers,
    replica,
  };
}
