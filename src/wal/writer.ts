import { setImmediate as nextTurn } from 'node:timers/promises';
import { plantedBug } from '../util/plant.js';
import { invalidArgument, ioError, keptError, TidemarkError } from '../errors.js';
import type { FileHandle, FileService } from '../fileservice/types.js';
import type { Logger } from '../log.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { crc32 } from '../util/crc.js';
import { finishRecord, MAX_RECORD_PAYLOAD_BYTES, RECORD_HEADER_BYTES } from './record.js';
import { encodeSegmentHeader, segmentPath, SEGMENT_HEADER_BYTES, WAL_DIR } from './segment.js';

export type WalSyncMode = 'batch' | 'none';

export interface SegmentInfo {
  firstLsn: number;
  path: string;
  bytes: number;
}

export interface WriterLimits {
  sync: WalSyncMode;
  segmentBytes: number;
  queueBytesMax: number;
  batchBytesMax: number;
}

interface PendingRecord {
  lsn: number;
  type: number;
  buf: PooledBuffer;
  payloadCrc: number;
  resolve: (lsn: number) => void;
  reject: (e: unknown) => void;
}

const BATCH_BUFFER_MIN_BYTES = 64 * 1024;

/**
 * The appending side of the log: group commit. Each append copies its payload into a buffer from the
 * `wal` pool and waits. One flush at a time writes every waiting record as one batch, with one
 * durable write (the segment is open with O_DSYNC under sync 'batch'); records arriving meanwhile
 * gather for the next batch. Batches are
 * written strictly one after another, each only after the previous one is durable, so after a crash
 * only the last batch can be torn (recovery relies on this).
 *
 * The queue is bounded by `queueBytesMax`: past it, appenders wait in order (back-pressure).
 * After a failed write or fdatasync the writer is failed: every waiting append and every later one
 * gets `IO`, until the log is reopened. It never carries on as if unsynced data were safe.
 */
export class WalWriter {
  nextLsn: number;
  /** The last LSN written and (with sync 'batch') fdatasynced. */
  durableLsn: number;
  appends = 0;
  batches = 0;
  syncs = 0;
  private pending: PendingRecord[] = [];
  private queuedBytes = 0;
  private flushing: Promise<void> | undefined;
  private failure: TidemarkError | undefined;
  private durableWaiters: { lsn: number; resolve: () => void }[] = [];
  /** Called once, when the writer fails (see Wal.onFailure). */
  readonly failureListeners: ((err: TidemarkError) => void)[] = [];
  /** Start a new segment with the next batch (a checkpoint's cut: the old one can then go whole). */
  private rollRequested = false;
  private closing = false;
  private readonly spaceWaiters: (() => void)[] = [];
  /** Appends waiting for queue space or memory: while any exist, new appends queue behind them. */
  private slowAppends = 0;
  private batchBuf: PooledBuffer | undefined;
  /** Records in the last batch written: whether appends come concurrently or one at a time. */
  private lastBatchRecords = 2;

  constructor(
    private readonly fs: FileService,
    private readonly pool: MemoryPool,
    private readonly logger: Logger,
    private readonly limits: WriterLimits,
    /** Shared with the Wal: the writer appends to it when it rolls to a new segment. */
    private readonly segments: SegmentInfo[],
    private handle: FileHandle,
    nextLsn: number,
  ) {
    this.nextLsn = nextLsn;
    this.durableLsn = nextLsn - 1;
  }

  get failed(): TidemarkError | undefined {
    return this.failure;
  }

  /** Bytes of records waiting to be written. */
  get queued(): number {
    return this.queuedBytes;
  }

  /**
   * Append a record; resolves with its LSN once durable. `onLsn` is called with the LSN the moment
   * it is assigned (synchronously, unless the queue is full and the append waits for room: LSNs
   * still follow the order of the calls).
   */
  append(type: number, payload: Uint8Array, onLsn?: (lsn: number) => void): Promise<number> {
    const bad = this.check(type, payload);
    if (bad !== undefined) return Promise.reject(bad);
    const size = RECORD_HEADER_BYTES + payload.length;
    if (
      this.slowAppends === 0 &&
      (this.queuedBytes === 0 || this.queuedBytes + size <= this.limits.queueBytesMax)
    ) {
      const buf = this.pool.tryAllocate(size, 'wal.record');
      if (buf !== undefined) return this.enqueue(type, payload, buf, onLsn);
    }
    return this.appendSlow(type, payload, size, onLsn);
  }

  /** Wait until the writer is idle: nothing queued, nothing being written (close). */
  async drain(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
  }

  /**
   * Resolves once every record up to `lsn` is durable, or the writer failed (check `failed`).
   * Unlike `drain`, it does not wait for records appended later: under a steady stream of appends
   * the writer is never idle, and a checkpoint waiting for that would wait for ever.
   */
  whenDurable(lsn: number): Promise<void> {
    if (this.durableLsn >= lsn || this.failure !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.durableWaiters.push({ lsn, resolve }));
  }

  private wakeDurable(): void {
    if (this.durableWaiters.length === 0) return;
    const waiting: { lsn: number; resolve: () => void }[] = [];
    for (const w of this.durableWaiters) {
      if (this.failure !== undefined || this.durableLsn >= w.lsn) w.resolve();
      else waiting.push(w);
    }
    this.durableWaiters = waiting;
  }

  /** Flush what is queued, then close the segment. Fails waiting appends if the writer failed. */
  async close(): Promise<void> {
    this.closing = true;
    await this.drain();
    this.wakeSpace();
    try {
      if (this.failure === undefined && this.limits.sync === 'none') {
        // Clean close: make even 'none' mode's records durable.
        await this.handle
          .datasync()
          .catch((e: unknown) => this.logger.warn({ err: e }, 'final WAL fdatasync failed'));
      }
    } finally {
      this.batchBuf?.release();
      this.batchBuf = undefined;
      await this.handle.close();
    }
  }

  private check(type: number, payload: Uint8Array): TidemarkError | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.closing) return new TidemarkError('CLOSED', 'the write-ahead log is closed');
    if (!(payload instanceof Uint8Array)) return invalidArgument('WAL payload must be a Uint8Array');
    if (payload.length > MAX_RECORD_PAYLOAD_BYTES) {
      return invalidArgument(
        `WAL record of ${payload.length} bytes exceeds the limit of ${MAX_RECORD_PAYLOAD_BYTES}`,
      );
    }
    if (!Number.isInteger(type) || type < 0 || type > 255)
      return invalidArgument(`WAL record type ${type} is not a byte`);
    return undefined;
  }

  private async appendSlow(
    type: number,
    payload: Uint8Array,
    size: number,
    onLsn: ((lsn: number) => void) | undefined,
  ): Promise<number> {
    this.slowAppends++;
    let buf: PooledBuffer;
    try {
      // Queue space first, in arrival order: a record larger than the bound is admitted alone.
      while (this.queuedBytes > 0 && this.queuedBytes + size > this.limits.queueBytesMax) {
        await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
        const bad = this.check(type, payload);
        if (bad !== undefined) throw bad;
      }
      this.queuedBytes += size; // hold the space while waiting for memory
      try {
        buf = await this.pool.allocate(size, 'wal.record');
      } finally {
        this.queuedBytes -= size;
      }
      const bad = this.check(type, payload);
      if (bad !== undefined) {
        buf.release();
        throw bad;
      }
    } finally {
      this.slowAppends--;
    }
    return this.enqueue(type, payload, buf, onLsn);
  }

  private enqueue(
    type: number,
    payload: Uint8Array,
    buf: PooledBuffer,
    onLsn: ((lsn: number) => void) | undefined,
  ): Promise<number> {
    buf.bytes.set(payload, RECORD_HEADER_BYTES);
    const payloadCrc = crc32(payload);
    const lsn = this.nextLsn++;
    onLsn?.(lsn);
    this.queuedBytes += buf.length;
    this.appends++;
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ lsn, type, buf, payloadCrc, resolve, reject });
      this.flushing ??= this.flushLoop();
      if (plantedBug('early-ack')) resolve(lsn);
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      // Let appends issued in this turn join the first batch, unless appends come one at a time
      // (the last batch held one record): then waiting a turn would only add latency.
      if (this.lastBatchRecords > 1) await nextTurn();
      // (Else at least a microtask: a loop with nothing to write must not end before `append`
      // recorded it in `flushing`.)
      else await Promise.resolve();
      while (this.pending.length > 0 && this.failure === undefined) {
        const batch = this.takeBatch();
        this.lastBatchRecords = batch.length;
        await this.writeBatch(batch);
        // Let the appenders woken by this batch append again before the next one is cut.
        await nextTurn();
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private takeBatch(): PendingRecord[] {
    let bytes = 0;
    let n = 0;
    while (n < this.pending.length) {
      const size = this.pending[n]!.buf.length;
      if (n > 0 && bytes + size > this.limits.batchBytesMax) break;
      bytes += size;
      n++;
    }
    return this.pending.splice(0, n);
  }

  private async writeBatch(batch: PendingRecord[]): Promise<void> {
    const first = batch[0]!.lsn;
    let total = 0;
    for (const r of batch) {
      finishRecord(
        r.buf.bytes,
        0,
        r.lsn,
        r.lsn - first,
        r.type,
        r.buf.length - RECORD_HEADER_BYTES,
        r.payloadCrc,
      );
      total += r.buf.length;
    }
    let segment = this.segments[this.segments.length - 1]!;
    let writeOffset: number | undefined;
    try {
      if (
        segment.bytes > SEGMENT_HEADER_BYTES &&
        (this.rollRequested || segment.bytes + total > this.limits.segmentBytes)
      ) {
        segment = await this.roll(first);
        this.rollRequested = false;
      }
      writeOffset = segment.bytes;
      for (const chunk of this.gather(batch, total)) {
        await this.handle.write(chunk, segment.bytes);
        segment.bytes += chunk.length;
      }
      // With sync 'batch' the segment is open with O_DSYNC: the write returned once durable, one
      // system call where a write and an fdatasync would take two trips through the thread pool.
      if (this.limits.sync === 'batch') this.syncs++;
    } catch (e) {
      await this.fail(e, batch, writeOffset);
      return;
    }
    this.batches++;
    this.durableLsn = batch[batch.length - 1]!.lsn;
    this.wakeDurable();
    this.queuedBytes -= total;
    for (const r of batch) {
      r.buf.release();
      r.resolve(r.lsn);
    }
    this.wakeSpace();
  }

  /**
   * The batch as few contiguous chunks as possible: the record itself when alone, else one copy in
   * the reusable batch buffer, or (if memory is too tight for it) the records one by one. Several
   * writes for one batch keep the property recovery needs: only the last batch can be torn.
   */
  private gather(batch: PendingRecord[], total: number): Uint8Array[] {
    if (batch.length === 1) return [batch[0]!.buf.bytes];
    if (this.batchBuf === undefined || this.batchBuf.length < total) {
      this.batchBuf?.release();
      this.batchBuf = this.pool.tryAllocate(Math.max(total, BATCH_BUFFER_MIN_BYTES), 'wal.batch');
      if (this.batchBuf === undefined) return batch.map((r) => r.buf.bytes);
    }
    const out = this.batchBuf.bytes;
    let at = 0;
    for (const r of batch) {
      out.set(r.buf.bytes, at);
      at += r.buf.length;
    }
    return [out.subarray(0, total)];
  }

  /**
   * Have the next batch start a new segment (unless the active one holds no record yet). A
   * checkpoint asks at its cut: the records before it then end with their segment, which the
   * checkpoint after next deletes whole, so the log on disk does not grow from one checkpoint to
   * the next.
   */
  requestRoll(): void {
    this.rollRequested = true;
  }

  /** Close the active segment and start a new one whose first record is `firstLsn`. */
  private async roll(firstLsn: number): Promise<SegmentInfo> {
    await this.handle.datasync();
    await this.handle.close();
    const path = segmentPath(firstLsn);
    // The new segment's header and directory entry are durable before any record goes in.
    const h = await this.fs.open(path, 'create-new', 'wal', { sync: this.limits.sync === 'batch' });
    const info: SegmentInfo = { firstLsn, path, bytes: 0 };
    try {
      await h.write(encodeSegmentHeader(firstLsn), 0);
      await h.datasync();
      await this.fs.syncDir(WAL_DIR);
    } catch (e) {
      await h.close().catch(() => undefined);
      throw e;
    }
    this.handle = h;
    info.bytes = SEGMENT_HEADER_BYTES;
    this.segments.push(info);
    this.logger.debug({ segment: path }, 'WAL rolled to a new segment');
    return info;
  }

  /**
   * A write, fdatasync or roll failed: fail this batch and everything queued, refuse later appends,
   * and try to cut the failed batch off the file so that it cannot reappear after a restart. If even
   * that fails, those appends' outcome is unknown until reopen (as after any failed fsync).
   */
  private async fail(cause: unknown, batch: PendingRecord[], cutAt: number | undefined): Promise<void> {
    const io = ioError('WAL append', this.segments[this.segments.length - 1]!.path, cause);
    const err = new TidemarkError(
      'IO',
      `the write-ahead log failed (${io.message}); it accepts no appends until the database is reopened`,
      { cause, details: io.details },
    );
    this.failure = keptError(err);
    this.wakeDurable();
    for (const l of this.failureListeners.splice(0)) {
      try {
        l(err);
      } catch (e) {
        this.logger.error({ err: e }, 'a WAL failure listener threw');
      }
    }
    const victims = batch.concat(this.pending.splice(0));
    for (const r of victims) {
      this.queuedBytes -= r.buf.length;
      r.buf.release();
      r.reject(err);
    }
    this.wakeSpace();
    this.logger.error(
      { err: cause, records: victims.length },
      'write-ahead log failed; appends refused until reopen',
    );
    if (cutAt !== undefined) {
      try {
        await this.handle.truncate(cutAt);
        await this.handle.datasync();
        this.segments[this.segments.length - 1]!.bytes = cutAt;
      } catch (e) {
        this.logger.error(
          { err: e },
          'could not cut the failed batch off the WAL: its outcome is unknown until reopen',
        );
      }
    }
  }

  private wakeSpace(): void {
    for (const w of this.spaceWaiters.splice(0)) w();
  }
}
