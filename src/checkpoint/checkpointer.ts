import { keptError, TidemarkError } from '../errors.js';
import type { FileService } from '../fileservice/types.js';
import type { CheckpointEvent } from './events.js';
import type { Logger } from '../log.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { HybridClock } from '../txn/clock.js';
import { crc32 } from '../util/crc.js';
import { planted, plantedKeep } from '../util/plant.js';
import type { Wal } from '../wal/wal.js';
import {
  CKP_DIR,
  dataName,
  diffOps,
  encodeData,
  encodeMeta,
  fullOps,
  metaName,
  namedObjects,
  type ChainEntry,
  type CheckpointKind,
  type CkpData,
  type CkpState,
  type RecoveryPoint,
} from './format.js';
import type { LoadedChain } from './recovery.js';
import type { FileHold } from '../storage/file_registry.js';
import type { CheckpointSource, CommitSource } from './source.js';

export interface CheckpointPolicy {
  /** Timed checkpoints: at most this long apart while there are changes; 0: none on a timer. */
  intervalMs: number;
  /** A global checkpoint after this many incrementals. */
  incrementalsPerGlobal: number;
  /** WAL size past which a checkpoint is forced (escalation); past twice this, writers wait. */
  walBytesMax: number;
  /** Changes (commits, flushes, merges) since the last checkpoint that make a timed one worth it. */
  minChanges: number;
  /** Take a checkpoint when the database closes, so that the next open replays little. */
  onClose: boolean;
}

export type CheckpointTrigger = 'manual' | 'interval' | 'wal' | 'close';

/** What a checkpoint wrote and removed (`db.checkpoint()` resolves with it). */
export interface CheckpointInfo {
  /** 'none' when nothing changed since the last checkpoint (nothing was written). */
  kind: CheckpointKind | 'none';
  trigger: CheckpointTrigger;
  /** The incremental checkpoint number (a global carries the number of the one it was built from). */
  seq: number;
  /** Commit timestamps covered: (start, end]. */
  start: number;
  end: number;
  /** Every DDL, FLUSH and MERGE record at or below this LSN is in the checkpoint. */
  storageLsn: number;
  /** Where replay starts now; the WAL below the previous checkpoint's start was truncated. */
  replayFromLsn: number;
  /** Memtables flushed for it. */
  flushed: number;
  /** Files written (data files, then the meta file) and their bytes. */
  files: string[];
  bytes: number;
  durationMs: number;
  /** What garbage collection removed after it: WAL segments, checkpoint files, object files. */
  deleted: { walSegments: number; checkpointFiles: string[]; objectFiles: string[] };
}

export interface CheckpointStats {
  incremental: number;
  global: number;
  failed: number;
  running: boolean;
  /** The end timestamp of the newest checkpoint (0: none yet). */
  lastEndTs: number;
  /** Wall-clock time (ms since the epoch) the newest checkpoint finished (0: none yet). */
  lastAt: number;
  /**
   * How far behind the newest checkpoint is: ms from its end timestamp to now; 0 before the first
   * and while nothing has changed since it.
   */
  lagMs: number;
  lastDurationMs: number;
  /** Durations of finished checkpoints (ms), by kind, newest last, at most 256 kept. */
  durations: { incremental: number[]; global: number[] };
  bytesWritten: number;
  /** Checkpoints forced because the WAL passed `walBytesMax`. */
  escalations: number;
  /** Commits now waiting for the WAL to shrink below twice `walBytesMax`. */
  writersWaiting: number;
  /** Files removed by garbage collection, by kind. */
  gcDeleted: { object: number; checkpoint: number; walSegment: number };
  /** Entries in the newest chain (a global and the incrementals after it). */
  chainLength: number;
  /** The storage LSN and replay start of the newest checkpoint (0: none). */
  storageLsn: number;
  replayFromLsn: number;
  /** The oldest replay start the retained checkpoints need: the WAL is kept from there. */
  walKeepFromLsn: number;
}

interface Retained {
  metaPath: string;
  files: string[];
  /** The object files it names, held (in the storage layer's registry) while it is retained. */
  objects: FileHold;
  replayFromLsn: number;
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 30_000;
const TICK_MAX_MS = 1000;

/**
 * The checkpoint subsystem: the chain of incremental and global checkpoints, the policies that
 * schedule them, garbage collection of what they make unnecessary, and the WAL cap.
 *
 * An incremental checkpoint:
 * 1. cuts: freezes every memtable holding data; everything committed so far is now in frozen
 *    memtables or objects (`end` = the newest commit timestamp handed out);
 * 2. waits until those memtables are flushed (their FLUSH records durable, the objects published);
 * 3. in a turn with no FLUSH, MERGE or DDL record between its append and its effect, snapshots the
 *    catalog and every table's object list, with the storage LSN S (the last LSN assigned) and, per
 *    table, the redo LSN (the first LSN of a write still only in memtables; S + 1 if none);
 * 4. waits until the WAL is durable up to S, writes the data file (the changes since the previous
 *    checkpoint), then the meta file, atomically: the commit point;
 * 5. garbage-collects: keeps the newest two meta files (the newest, and the one to fall back on if
 *    it is ever found corrupt) and the files their chains name; truncates the WAL below the older
 *    one's replay start; deletes retired object files neither names.
 * Every `incrementalsPerGlobal` incrementals, a global checkpoint (the full state of the newest
 * incremental) replaces the chain. Checkpoints run one at a time; commits go on meanwhile.
 *
 * A failure at any step before the meta file is durable deletes what the attempt wrote (the
 * previous chain stays as it was), counts and logs the failure; a timed or escalated checkpoint is
 * retried with back-off.
 */
export class Checkpointer {
  private state: CkpState = { tables: new Map() };
  private point: RecoveryPoint | undefined;
  private chain: ChainEntry[] = [];
  private metaSeq = 0;
  private nextSeq = 1;
  private sinceGlobal = 0;
  /** Newest first: the meta files kept (at most two). */
  private retained: Retained[] = [];
  /** Checkpoint files the engine knows exist (the registry for ckp/). */
  private readonly ckpFiles = new Set<string>();
  /** Commits and DDL counted at the newest checkpoint's cut; -1: unknown (recovered from the log). */
  private changesAtLast = 0;
  /** Flushes and merges counted at its snapshot. */
  private storageAtLast = 0;
  private lastAt = 0;
  private lastEndTs = 0;
  private readonly counters = {
    incremental: 0,
    global: 0,
    failed: 0,
    bytesWritten: 0,
    escalations: 0,
    lastDurationMs: 0,
    gcDeleted: { object: 0, checkpoint: 0, walSegment: 0 },
  };
  private readonly durations: { incremental: number[]; global: number[] } = { incremental: [], global: [] };
  private running: Promise<unknown> = Promise.resolve();
  private busy = 0;
  private timer: NodeJS.Timeout | undefined;
  private retryAt = 0;
  private retryMs = RETRY_MIN_MS;
  private writersWaiting = 0;
  private stopped = false;
  /** The error of the last failed attempt, for writers waiting on the WAL cap. */
  private lastFailure: unknown;

  /** Checkpoints no longer retained whose object files are let go at the next collection. */
  private dropped: Retained[] = [];

  constructor(
    private readonly fs: FileService,
    private readonly wal: Wal,
    /** The storage layer, through the narrow interface the checkpointer owns. */
    private readonly storage: CheckpointSource,
    private readonly commits: CommitSource,
    private readonly pool: MemoryPool,
    private readonly logger: Logger,
    readonly policy: CheckpointPolicy,
    /** Each checkpoint's outcome (the database's observers). */
    private readonly onDone: (e: CheckpointEvent) => void = () => undefined,
  ) {}

  // ---- recovery ----

  /**
   * Adopt what recovery found: the chain to extend, the files to keep; delete checkpoint files no
   * retained meta needs (temporaries, superseded files, meta files found corrupt). Call before the
   * WAL is replayed.
   */
  async adopt(loaded: LoadedChain): Promise<void> {
    const { newest, previous } = loaded;
    this.metaSeq = loaded.maxMetaSeq;
    if (newest !== undefined) {
      this.state = newest.state;
      this.point = newest.point;
      this.chain = newest.meta.chain;
      const last = this.chain[this.chain.length - 1]!;
      this.nextSeq = last.seq + 1;
      this.lastEndTs = last.end;
      this.sinceGlobal = this.chain.filter((e) => e.kind === 'incremental').length;
      this.retained = [newest, previous]
        .filter((c) => c !== undefined)
        .map((c) => ({
          metaPath: c.path,
          files: c.files,
          objects: this.storage.hold(c.objects),
          replayFromLsn: c.point.replayFromLsn,
        }));
    }
    const keep = new Set(this.retained.flatMap((r) => r.files));
    const removed: string[] = [];
    for (const name of loaded.listing) {
      const path = `${CKP_DIR}/${name}`;
      if (keep.has(path)) {
        this.ckpFiles.add(path);
        continue;
      }
      await this.fs.delete(path);
      removed.push(path);
    }
    if (removed.length > 0) {
      await this.fs.syncDir(CKP_DIR);
      this.logger.info({ files: removed }, 'recovery: removed checkpoint files no retained checkpoint needs');
    }
  }

  /** Where replay resumes, after adopt(): undefined means from the start of the log. */
  get recoveryPoint(): RecoveryPoint | undefined {
    return this.point;
  }

  /** After replay: the changes counted from here on are the ones the next checkpoint must hold. */
  start(): void {
    // Anything replayed from the WAL is not in a checkpoint yet: make the first timed one count it.
    this.changesAtLast = this.point === undefined && this.wal.recoveredLastLsn === 0 ? 0 : -1;
    this.storageAtLast = this.storage.changes;
    this.lastAt = Date.now();
    this.schedule(this.tickMs());
    if (planted('timer')) setInterval(() => undefined, 60_000).unref();
  }

  // ---- scheduling ----

  private tickMs(): number {
    return this.policy.intervalMs > 0 ? Math.min(this.policy.intervalMs, TICK_MAX_MS) : TICK_MAX_MS;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tick();
    }, ms);
    this.timer.unref();
  }

  /**
   * Changes the newest checkpoint does not hold: commits and DDL since its cut, flushes and merges
   * since its snapshot (its own flushes are in it).
   */
  private dirty(): number {
    if (this.changesAtLast < 0) return Number.MAX_SAFE_INTEGER;
    return this.commits.changes - this.changesAtLast + (this.storage.changes - this.storageAtLast);
  }

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (this.busy === 0 && now >= this.retryAt) {
      let trigger: CheckpointTrigger | undefined;
      if (this.wal.bytes > this.policy.walBytesMax && this.dirty() > 0) trigger = 'wal';
      else if (
        this.policy.intervalMs > 0 &&
        now - this.lastAt >= this.policy.intervalMs &&
        this.dirty() >= this.policy.minChanges
      )
        trigger = 'interval';
      if (trigger !== undefined) {
        if (trigger === 'wal') this.escalate();
        this.run(trigger, false).catch(() => undefined); // counted and logged in run()
      }
    }
    this.schedule(this.tickMs());
  }

  private escalate(): void {
    this.counters.escalations++;
    this.logger.warn(
      { walBytes: this.wal.bytes, walBytesMax: this.policy.walBytesMax },
      'checkpoint escalation: the WAL passed its cap; flushing every table that pins it and forcing a checkpoint',
    );
  }

  /** After a commit: a WAL past its cap starts an escalated checkpoint at once (not at the next tick). */
  afterCommit(): void {
    if (this.stopped || this.busy > 0 || Date.now() < this.retryAt) return;
    if (this.wal.bytes > this.policy.walBytesMax) {
      this.escalate();
      this.run('wal', false).catch(() => undefined);
    }
  }

  /**
   * Before a commit: past twice the WAL cap, wait for a checkpoint to shrink the log (one is forced
   * if none is running). If checkpoints fail meanwhile, the commit fails with their error: the log
   * is not allowed to grow without bound. Returns undefined (no wait) in the common case.
   */
  gate(): Promise<void> | undefined {
    if (this.stopped || this.wal.bytes <= 2 * this.policy.walBytesMax) return undefined;
    return this.waitForRoom();
  }

  private async waitForRoom(): Promise<void> {
    this.writersWaiting++;
    try {
      while (!this.stopped && this.wal.bytes > 2 * this.policy.walBytesMax) {
        const failedBefore = this.counters.failed;
        if (this.busy === 0) {
          this.escalate();
          await this.run('wal', false).catch(() => undefined);
        } else await this.running.catch(() => undefined);
        if (this.counters.failed > failedBefore && this.wal.bytes > 2 * this.policy.walBytesMax) {
          throw this.lastFailure instanceof TidemarkError
            ? this.lastFailure
            : new TidemarkError('IO', 'the WAL is past its cap and checkpoints are failing', {
                cause: this.lastFailure,
              });
        }
      }
    } finally {
      this.writersWaiting--;
    }
  }

  // ---- running ----

  /**
   * Run a checkpoint after the one running (if any): an incremental, followed by a global one when
   * asked (`global`) or when `incrementalsPerGlobal` incrementals have gathered. Resolves with what
   * the last step wrote.
   */
  run(trigger: CheckpointTrigger, global: boolean): Promise<CheckpointInfo> {
    if (this.stopped && trigger !== 'close')
      return Promise.reject(new TidemarkError('CLOSED', 'the database is closed'));
    this.busy++;
    const job = this.running.catch(() => undefined).then(() => this.runNow(trigger, global));
    this.running = job;
    return job.finally(() => this.busy--);
  }

  private async runNow(trigger: CheckpointTrigger, global: boolean): Promise<CheckpointInfo> {
    let started = performance.now();
    let step: 'incremental' | 'global' = 'incremental';
    try {
      // A failed log makes nothing durable (nor may its segments be truncated): fail at once.
      const walFailure = this.wal.failed;
      if (walFailure !== undefined) throw walFailure;
      let info = await this.incremental(trigger);
      // One event per step: the incremental now, the global (if any) when it ends.
      this.onDone({ kind: info.kind, trigger, ok: true, ms: performance.now() - started, at: Date.now() });
      // A global one replaces the chain, unless the chain is one already (or there is none yet).
      const chainIsGlobal = this.chain.length === 1 && this.chain[0]!.kind === 'global';
      if (
        (global || this.sinceGlobal >= this.policy.incrementalsPerGlobal) &&
        this.chain.length > 0 &&
        !chainIsGlobal
      ) {
        const inc = info;
        step = 'global';
        started = performance.now();
        const g = await this.globalFromNewest(trigger);
        this.onDone({ kind: 'global', trigger, ok: true, ms: performance.now() - started, at: Date.now() });
        // What both steps wrote and removed.
        info = {
          ...g,
          flushed: inc.flushed,
          files: [...inc.files, ...g.files],
          bytes: inc.bytes + g.bytes,
          durationMs: inc.durationMs + g.durationMs,
          deleted: {
            walSegments: inc.deleted.walSegments + g.deleted.walSegments,
            checkpointFiles: [...inc.deleted.checkpointFiles, ...g.deleted.checkpointFiles],
            objectFiles: [...inc.deleted.objectFiles, ...g.deleted.objectFiles],
          },
        };
      }
      this.retryMs = RETRY_MIN_MS;
      this.retryAt = 0;
      return info;
    } catch (e) {
      this.onDone({
        kind: step,
        trigger,
        ok: false,
        ms: performance.now() - started,
        at: Date.now(),
        error: e instanceof Error ? e.message : String(e),
      });
      this.counters.failed++;
      this.lastFailure = keptError(e);
      this.retryAt = Date.now() + this.retryMs;
      this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
      this.logger.error(
        { err: e, trigger },
        'checkpoint failed; the previous chain is intact; retrying later',
      );
      throw e;
    }
  }

  private async incremental(trigger: CheckpointTrigger): Promise<CheckpointInfo> {
    const started = performance.now();
    const base = {
      trigger,
      seq: this.nextSeq - 1,
      start: this.lastEndTs,
      end: this.lastEndTs,
      storageLsn: this.point?.storageLsn ?? 0,
      replayFromLsn: this.point?.replayFromLsn ?? 1,
      flushed: 0,
      files: [],
      bytes: 0,
      deleted: { walSegments: 0, checkpointFiles: [], objectFiles: [] },
    };
    if (this.dirty() === 0) {
      return { kind: 'none', ...base, durationMs: performance.now() - started };
    }
    // 1. The cut.
    const changes = this.commits.changes;
    const cut = this.storage.cut();
    // Records after the cut go into a new segment: the one before holds only what this checkpoint
    // covers, and goes whole once no retained checkpoint replays from it.
    this.wal.requestRoll();
    const end = Math.max(this.commits.clock.peek(), this.lastEndTs);
    // 2. Everything committed up to the cut into objects.
    await cut.flushed();
    // 3. A turn in which every DDL and storage record logged so far has taken effect.
    for (;;) {
      await this.storage.settled();
      await this.commits.ddlSettled();
      if (this.storage.isSettled && this.commits.isDdlSettled) break;
    }
    const { state, point } = this.snapshot();
    const storageChanges = this.storage.changes;
    // From here, files this checkpoint names must outlive a merge that retires them meanwhile: held
    // until it is no longer retained (or its attempt fails).
    const hold = this.storage.hold(namedObjects(state));
    // 4. The log durable up to the snapshot, then the data file and the meta file (commit owns the
    // hold from its call on: it keeps it, or lets it go if it fails).
    const seq = this.nextSeq;
    let data: CkpData;
    try {
      await this.wal.flush();
      if (this.wal.failed !== undefined) throw this.wal.failed;
      if (this.wal.durableLsn < point.storageLsn)
        throw new TidemarkError(
          'IO',
          `the WAL is durable only to ${this.wal.durableLsn}, not ${point.storageLsn}`,
        );
      data = { kind: 'incremental', seq, start: this.lastEndTs, end, point, ops: diffOps(this.state, state) };
    } catch (e) {
      await hold.release().catch(() => undefined);
      throw e;
    }
    const written = await this.commit(data, [...this.chain], state, hold);
    this.nextSeq = seq + 1;
    this.sinceGlobal++;
    this.changesAtLast = changes;
    this.storageAtLast = storageChanges;
    this.counters.incremental++;
    const deleted = await this.collect();
    const durationMs = performance.now() - started;
    this.finished('incremental', durationMs);
    this.logger.info(
      {
        seq,
        end,
        storageLsn: point.storageLsn,
        replayFromLsn: point.replayFromLsn,
        flushed: cut.memtables,
        ms: Math.round(durationMs),
      },
      'incremental checkpoint',
    );
    return {
      kind: 'incremental',
      ...base,
      seq,
      end,
      storageLsn: point.storageLsn,
      replayFromLsn: point.replayFromLsn,
      flushed: cut.memtables,
      ...written,
      durationMs,
      deleted,
    };
  }

  /** A global checkpoint from the newest incremental: its full state replaces the chain. */
  private async globalFromNewest(trigger: CheckpointTrigger): Promise<CheckpointInfo> {
    const started = performance.now();
    const last = this.chain[this.chain.length - 1]!;
    const point = this.point!;
    const data: CkpData = {
      kind: 'global',
      seq: last.seq,
      start: 0,
      end: last.end,
      point,
      ops: fullOps(this.state),
    };
    const written = await this.commit(data, [], this.state, this.storage.hold(namedObjects(this.state)));
    this.sinceGlobal = 0;
    this.counters.global++;
    const deleted = await this.collect();
    const durationMs = performance.now() - started;
    this.finished('global', durationMs);
    this.logger.info({ seq: last.seq, end: last.end, ms: Math.round(durationMs) }, 'global checkpoint');
    return {
      kind: 'global',
      trigger,
      seq: last.seq,
      start: 0,
      end: last.end,
      storageLsn: point.storageLsn,
      replayFromLsn: point.replayFromLsn,
      flushed: 0,
      ...written,
      durationMs,
      deleted,
    };
  }

  private finished(kind: CheckpointKind, ms: number): void {
    this.lastAt = Date.now();
    this.counters.lastDurationMs = ms;
    const d = this.durations[kind];
    d.push(ms);
    if (d.length > 256) d.shift();
  }

  /** The state and recovery point now: call in a turn where storage and DDL have settled. */
  private snapshot(): { state: CkpState; point: RecoveryPoint } {
    const storageLsn = this.wal.nextLsn - 1;
    const layers = this.storage.snapshot();
    const redo = new Map<number, number>();
    let replayFromLsn = storageLsn + 1;
    for (const [id, first] of layers.firstLsn) {
      const r = Math.min(first, storageLsn + 1);
      redo.set(id, r);
      if (r < replayFromLsn) replayFromLsn = r;
    }
    return {
      state: { tables: layers.tables },
      point: {
        storageLsn,
        replayFromLsn,
        redo,
        maxTs: this.commits.clock.peek(),
        nextTableId: layers.nextTableId,
        nextObjectId: layers.nextObjectId,
      },
    };
  }

  /**
   * Write `data` and a meta file whose chain is `chainBefore` plus it; on success adopt it, `hold`
   * (on the object files `state` names) becoming the new retained checkpoint's. On any failure,
   * delete what this attempt wrote (the previous chain stays as it was), let go of `hold`, and
   * rethrow.
   */
  private async commit(
    data: CkpData,
    chainBefore: ChainEntry[],
    state: CkpState,
    hold: FileHold,
  ): Promise<{ files: string[]; bytes: number }> {
    const written: string[] = [];
    let dataBuf: PooledBuffer | undefined;
    let metaBuf: PooledBuffer | undefined;
    try {
      const dataPath = dataName(data.kind, data.seq);
      const metaPath = metaName(this.metaSeq + 1);
      const bytes = encodeData(data, (n) => {
        dataBuf = this.pool.allocateSync(n, 'checkpoint.data');
        return dataBuf.bytes;
      });
      const entry: ChainEntry = {
        kind: data.kind,
        seq: data.seq,
        start: data.start,
        end: data.end,
        file: dataPath,
        bytes: bytes.length,
        crc: crc32(bytes),
      };
      written.push(dataPath);
      await this.fs.writeFileAtomic(dataPath, [bytes], 'checkpoint');
      // Plain JavaScript data no pool, handle or class count sees: only the heap's slope can.
      if (planted('heap-growth')) plantedKeep.push(Array.from({ length: 2048 }, (_, i) => i + 0.5));
      if (planted('checkpoint-buffer')) plantedKeep.push(dataBuf);
      else dataBuf?.release();
      dataBuf = undefined;
      if (planted('file-handle')) plantedKeep.push(await this.fs.open(dataPath, 'read', 'checkpoint'));
      const chain = [...chainBefore, entry];
      const meta = encodeMeta(
        {
          seq: this.metaSeq + 1,
          chain,
          storageLsn: data.point.storageLsn,
          replayFromLsn: data.point.replayFromLsn,
        },
        (n) => {
          metaBuf = this.pool.allocateSync(n, 'checkpoint.meta');
          return metaBuf.bytes;
        },
      );
      written.push(metaPath);
      await this.fs.writeFileAtomic(metaPath, [meta], 'checkpoint');
      const total = bytes.length + meta.length;
      metaBuf?.release();
      metaBuf = undefined;
      // Durable: this is the database's checkpoint now.
      this.metaSeq++;
      this.chain = chain;
      this.state = state;
      this.point = data.point;
      this.lastEndTs = data.end;
      for (const f of written) this.ckpFiles.add(f);
      this.dropped.push(...this.retained.slice(1));
      this.retained = [
        {
          metaPath,
          files: [metaPath, ...chain.map((e) => e.file)],
          objects: hold,
          replayFromLsn: data.point.replayFromLsn,
        },
        ...this.retained.slice(0, 1),
      ];
      this.counters.bytesWritten += total;
      return { files: written, bytes: total };
    } catch (e) {
      this.metaSeq++; // never reuse a meta name that may exist
      // ...nor an incremental data file's (in object storage, a failed attempt's stays a while).
      if (data.kind === 'incremental') this.nextSeq = Math.max(this.nextSeq, data.seq + 1);
      dataBuf?.release();
      metaBuf?.release();
      for (const f of written) await this.fs.delete(f).catch(() => undefined);
      await this.fs.syncDir(CKP_DIR).catch(() => undefined);
      await hold.release().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Garbage collection after a durable meta file: checkpoint files no retained meta needs, the WAL
   * below the oldest retained replay start, retired object files no retained checkpoint names.
   * Exact sets only; a failure here is logged (the files go at the next collection or at open).
   */
  private async collect(): Promise<CheckpointInfo['deleted']> {
    const deleted: CheckpointInfo['deleted'] = { walSegments: 0, checkpointFiles: [], objectFiles: [] };
    try {
      const keep = new Set(this.retained.flatMap((r) => r.files));
      for (const f of [...this.ckpFiles]) {
        if (keep.has(f)) continue;
        await this.fs.delete(f);
        this.ckpFiles.delete(f);
        deleted.checkpointFiles.push(f);
      }
      if (deleted.checkpointFiles.length > 0) await this.fs.syncDir(CKP_DIR);
      deleted.walSegments = await this.wal.truncate(this.walKeepFrom());
      // Object files only the checkpoints no longer retained held go with their holds.
      while (this.dropped.length > 0) {
        deleted.objectFiles.push(...(await this.dropped[0]!.objects.release()));
        this.dropped.shift();
      }
      deleted.objectFiles.push(...(await this.storage.collect()));
    } catch (e) {
      this.logger.warn(
        { err: e },
        'checkpoint garbage collection failed; it is retried after the next checkpoint',
      );
    }
    this.counters.gcDeleted.checkpoint += deleted.checkpointFiles.length;
    this.counters.gcDeleted.walSegment += deleted.walSegments;
    this.counters.gcDeleted.object += deleted.objectFiles.length;
    return deleted;
  }

  /** The oldest LSN a retained checkpoint replays from: the WAL is kept from there. */
  private walKeepFrom(): number {
    let from = Infinity;
    for (const r of this.retained) from = Math.min(from, r.replayFromLsn);
    return Number.isFinite(from) ? from : 1;
  }

  /** Resolves when no checkpoint is running or queued. */
  async idle(): Promise<void> {
    while (this.busy > 0) await this.running.catch(() => undefined);
  }

  // ---- figures and files ----

  stats(): CheckpointStats {
    return {
      incremental: this.counters.incremental,
      global: this.counters.global,
      failed: this.counters.failed,
      running: this.busy > 0,
      lastEndTs: this.lastEndTs,
      lastAt: this.point === undefined ? 0 : this.lastAt,
      // Nothing is behind while nothing changed since the newest checkpoint (an idle database).
      lagMs:
        this.lastEndTs === 0 || this.dirty() === 0
          ? 0
          : Math.max(0, Date.now() - HybridClock.toMs(this.lastEndTs)),
      lastDurationMs: this.counters.lastDurationMs,
      durations: { incremental: [...this.durations.incremental], global: [...this.durations.global] },
      bytesWritten: this.counters.bytesWritten,
      escalations: this.counters.escalations,
      writersWaiting: this.writersWaiting,
      gcDeleted: { ...this.counters.gcDeleted },
      chainLength: this.chain.length,
      storageLsn: this.point?.storageLsn ?? 0,
      replayFromLsn: this.point?.replayFromLsn ?? 0,
      walKeepFromLsn: this.point === undefined ? 1 : this.walKeepFrom(),
    };
  }

  /** The checkpoint files the engine knows exist. */
  files(): string[] {
    return [...this.ckpFiles].sort();
  }

  // ---- shutdown ----

  /** Stop scheduling; with `final`, take a last checkpoint if anything changed (errors are logged). */
  async stop(final: boolean): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running.catch(() => undefined);
    if (final && this.policy.onClose && this.wal.failed === undefined && this.dirty() > 0) {
      this.busy++;
      try {
        await this.runNow('close', false);
      } catch {
        // logged in runNow; the next open replays the WAL instead
      } finally {
        this.busy--;
      }
    }
  }
}
