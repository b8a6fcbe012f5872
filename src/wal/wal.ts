import { invalidArgument, TidemarkError } from '../errors.js';
import type { FileService } from '../fileservice/types.js';
import type { Logger } from '../log.js';
import type { MemoryManager } from '../mem/manager.js';
import type { MemoryPool } from '../mem/pool.js';
import { SegmentScanner } from './reader.js';
import {
  encodeSegmentHeader,
  parseSegmentName,
  segmentPath,
  SEGMENT_HEADER_BYTES,
  WAL_DIR,
} from './segment.js';
import { WalWriter, type SegmentInfo, type WalSyncMode } from './writer.js';

export interface WalOptions {
  /** 'batch' (default): an append resolves after its batch is fdatasynced. 'none': after the write. */
  sync?: WalSyncMode;
  /** A segment is rolled when the next batch would take it past this size. Default 64 MiB. */
  segmentBytes?: number;
  /** Bytes of records that may wait to be written before appenders wait. Default 16 MiB. */
  queueBytesMax?: number;
  /** The most bytes written per batch (one write call, one fdatasync). Default 4 MiB. */
  batchBytesMax?: number;
  /**
   * Operators only, off by default: instead of failing with CORRUPTION, cut the log at the first bad
   * record (and drop everything after it), logging what was dropped. Loses data by design.
   */
  salvage?: boolean;
}

export interface WalOpenParams {
  fs: FileService;
  memory: MemoryManager;
  logger: Logger;
  options?: WalOptions;
  /** The first LSN the log may hand out (after a checkpoint that covers everything before it). */
  startLsn?: number;
}

export interface WalRecord {
  lsn: number;
  type: number;
  /** A view valid until the next record is read: copy what must be kept. */
  payload: Uint8Array;
  /** The segment it was read from (for error messages). */
  segment: string;
}

export interface WalStats {
  bytes: number;
  segments: number;
  /** The last LSN written and synced. */
  durableLsn: number;
  /** The next LSN to be handed out. */
  nextLsn: number;
  /** The first LSN still in the log. */
  oldestLsn: number;
  appends: number;
  batches: number;
  syncs: number;
  queuedBytes: number;
  failed: boolean;
}

export interface WalRecovery {
  /** Bytes cut off the newest segment as a torn tail, and where. */
  tornTail: { path: string; offset: number; bytes: number; reason: string } | undefined;
  /** Segment files deleted because a crash tore their creation. */
  tornSegments: string[];
  /** Salvage mode only: what was dropped. */
  salvaged: { path: string; offset: number; reason: string } | undefined;
}

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const DEFAULT_QUEUE_BYTES = 16 * 1024 * 1024;
const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;

function positiveInt(v: unknown, name: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalidArgument(`wal.${name} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

function corruption(path: string, offset: number, reason: string): TidemarkError {
  return new TidemarkError('CORRUPTION', `WAL segment ${path} is corrupt at offset ${offset}: ${reason}`, {
    details: { file: path, offset, reason },
  });
}

/**
 * The write-ahead log: segment files under `wal/`, group commit, crash-safe recovery of the tail,
 * replay in LSN order, and truncation of whole segments. See docs/formats/wal.md.
 */
export class Wal {
  readonly recovery: WalRecovery;
  private readonly segments: SegmentInfo[];
  private readonly writer: WalWriter;
  private closed = false;

  private constructor(
    private readonly fs: FileService,
    private readonly pool: MemoryPool,
    private readonly logger: Logger,
    segments: SegmentInfo[],
    writer: WalWriter,
    recovery: WalRecovery,
    /** The last LSN found at open: replay stops there. */
    readonly recoveredLastLsn: number,
  ) {
    this.segments = segments;
    this.writer = writer;
    this.recovery = recovery;
  }

  static async open(params: WalOpenParams): Promise<Wal> {
    const { fs, memory, logger } = params;
    const o = params.options ?? {};
    const sync = o.sync ?? 'batch';
    if (sync !== 'batch' && sync !== 'none')
      throw invalidArgument(`wal.sync must be 'batch' or 'none', got ${String(sync)}`);
    const limits = {
      sync,
      segmentBytes: positiveInt(o.segmentBytes ?? DEFAULT_SEGMENT_BYTES, 'segmentBytes', 4096),
      queueBytesMax: positiveInt(o.queueBytesMax ?? DEFAULT_QUEUE_BYTES, 'queueBytesMax', 4096),
      batchBytesMax: positiveInt(o.batchBytesMax ?? DEFAULT_BATCH_BYTES, 'batchBytesMax', 4096),
    };
    const startLsn = positiveInt(params.startLsn ?? 1, 'startLsn', 1);
    const pool = memory.pool('replay');
    const recovery: WalRecovery = { tornTail: undefined, tornSegments: [], salvaged: undefined };

    if ((await fs.stat(WAL_DIR)) === undefined) {
      await fs.mkdir(WAL_DIR);
      // The directory's own entry must be durable before anything acknowledged lives in it.
      await fs.syncDir('');
    }
    const segments: SegmentInfo[] = [];
    for (const name of await fs.list(WAL_DIR)) {
      const first = parseSegmentName(name);
      if (first === undefined) {
        logger.warn({ file: `${WAL_DIR}/${name}` }, 'ignoring a file in wal/ that is not a segment');
        continue;
      }
      const st = await fs.stat(`${WAL_DIR}/${name}`);
      segments.push({ firstLsn: first, path: `${WAL_DIR}/${name}`, bytes: st?.size ?? 0 });
    }
    segments.sort((a, b) => a.firstLsn - b.firstLsn);

    if (o.salvage === true) await Wal.salvage(fs, pool, logger, segments, recovery);
    const tail = await Wal.recoverTail(fs, pool, logger, segments, recovery);

    let nextLsn = tail.nextLsn;
    if (segments.length === 0 || nextLsn < startLsn) {
      if (segments.length > 0) {
        logger.warn(
          { walNextLsn: nextLsn, startLsn },
          'the WAL ends before the checkpoint: starting a new segment at the checkpoint',
        );
      }
      nextLsn = Math.max(nextLsn, startLsn);
      await Wal.createSegment(fs, nextLsn);
      segments.push({ firstLsn: nextLsn, path: segmentPath(nextLsn), bytes: SEGMENT_HEADER_BYTES });
    }
    const active = segments[segments.length - 1]!;
    const handle = await fs.open(active.path, 'readwrite', 'wal', { sync: limits.sync === 'batch' });
    try {
      if (recovery.tornTail !== undefined && recovery.tornTail.path === active.path) {
        // Cut the torn tail for good before anything is appended after it.
        await handle.truncate(active.bytes);
        await handle.datasync();
      }
    } catch (e) {
      await handle.close();
      throw e;
    }
    const writer = new WalWriter(fs, memory.pool('wal'), logger, limits, segments, handle, nextLsn);
    return new Wal(fs, pool, logger, segments, writer, recovery, nextLsn - 1);
  }

  private static async createSegment(fs: FileService, firstLsn: number): Promise<void> {
    const h = await fs.open(segmentPath(firstLsn), 'create-new', 'wal');
    try {
      await h.write(encodeSegmentHeader(firstLsn), 0);
      await h.datasync();
    } finally {
      await h.close();
    }
    await fs.syncDir(WAL_DIR);
  }

  /**
   * Find where the newest segment ends. A segment whose header never became valid was being created
   * when the process died: it holds no record and is deleted. A bad record in the newest segment is
   * a torn tail if no record of a later write batch follows it (only the last batch can be torn);
   * otherwise it is corruption.
   */
  private static async recoverTail(
    fs: FileService,
    pool: MemoryPool,
    logger: Logger,
    segments: SegmentInfo[],
    recovery: WalRecovery,
  ): Promise<{ nextLsn: number }> {
    while (segments.length > 0) {
      const seg = segments[segments.length - 1]!;
      const scanner = await SegmentScanner.open(fs, seg.path, pool);
      try {
        const hdr = await scanner.header();
        if (!hdr.ok) {
          if (scanner.fileSize > SEGMENT_HEADER_BYTES) throw corruption(seg.path, 0, hdr.reason);
          await scanner.close();
          await fs.delete(seg.path);
          await fs.syncDir(WAL_DIR);
          recovery.tornSegments.push(seg.path);
          logger.info(
            { segment: seg.path, reason: hdr.reason },
            'deleted a WAL segment whose creation a crash interrupted',
          );
          segments.pop();
          continue;
        }
        if (hdr.firstLsn !== seg.firstLsn) {
          throw corruption(
            seg.path,
            16,
            `header says first LSN ${hdr.firstLsn}, the name says ${seg.firstLsn}`,
          );
        }
        let expected = seg.firstLsn;
        for (;;) {
          const r = await scanner.next();
          if (r.kind === 'end') break;
          if (r.kind === 'record') {
            if (r.header.lsn !== expected) {
              throw corruption(seg.path, r.offset, `LSN ${r.header.lsn} where ${expected} was expected`);
            }
            expected++;
            continue;
          }
          const later = await scanner.findLaterBatch(r.offset, expected - 1);
          if (later !== undefined) {
            throw corruption(
              seg.path,
              r.offset,
              `${r.reason}, followed by a valid record (LSN ${later.lsn} at offset ${later.offset}) of a later write batch`,
            );
          }
          if (!(await scanner.looksTorn(r.offset))) {
            throw corruption(
              seg.path,
              r.offset,
              `${r.reason}: a whole record, damaged (not an interrupted write); open with wal.salvage to cut the log here`,
            );
          }
          recovery.tornTail = {
            path: seg.path,
            offset: r.offset,
            bytes: scanner.fileSize - r.offset,
            reason: r.reason,
          };
          logger.info(recovery.tornTail, 'cutting a torn tail off the newest WAL segment');
          break;
        }
        seg.bytes = scanner.position;
        return { nextLsn: expected };
      } finally {
        await scanner.close();
      }
    }
    return { nextLsn: 1 };
  }

  /** Salvage mode: verify every segment and cut the log at the first bad record. */
  private static async salvage(
    fs: FileService,
    pool: MemoryPool,
    logger: Logger,
    segments: SegmentInfo[],
    recovery: WalRecovery,
  ): Promise<void> {
    let expected: number | undefined;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const scanner = await SegmentScanner.open(fs, seg.path, pool);
      let cut: { offset: number; reason: string } | undefined;
      try {
        const hdr = await scanner.header();
        if (!hdr.ok) cut = { offset: 0, reason: hdr.reason };
        else if (expected !== undefined && hdr.firstLsn !== expected)
          cut = { offset: 0, reason: `LSN gap: starts at ${hdr.firstLsn}, expected ${expected}` };
        else {
          expected = hdr.firstLsn;
          for (;;) {
            const r = await scanner.next();
            if (r.kind === 'end') break;
            if (r.kind === 'bad' || r.header.lsn !== expected) {
              cut = {
                offset: r.offset,
                reason: r.kind === 'bad' ? r.reason : `LSN ${r.header.lsn} where ${expected} was expected`,
              };
              break;
            }
            expected++;
          }
        }
      } finally {
        await scanner.close();
      }
      if (cut === undefined) continue;
      // Keep what precedes the bad record; drop it and everything after it.
      const keep = cut.offset >= SEGMENT_HEADER_BYTES ? cut.offset : 0;
      if (keep === 0) await fs.delete(seg.path);
      else {
        const h = await fs.open(seg.path, 'readwrite', 'wal');
        try {
          await h.truncate(keep);
          await h.datasync();
        } finally {
          await h.close();
        }
        seg.bytes = keep;
      }
      const dropped = segments.splice(keep === 0 ? i : i + 1);
      for (const d of dropped) if (d !== seg) await fs.delete(d.path);
      await fs.syncDir(WAL_DIR);
      recovery.salvaged = { path: seg.path, offset: cut.offset, reason: cut.reason };
      logger.error(
        { ...recovery.salvaged, droppedSegments: dropped.length },
        'WAL salvage: cut the log at a bad record; everything after it is lost',
      );
      return;
    }
  }

  /**
   * Replay records with LSN >= fromLsn, in order, up to the end found at open. Runs before the first
   * append. Any bad record, and any LSN gap, is CORRUPTION naming the file and offset.
   */
  async *replay(fromLsn = 1): AsyncGenerator<WalRecord> {
    if (this.writer.appends > 0) throw invalidArgument('WAL replay must run before the first append');
    const last = this.recoveredLastLsn;
    if (fromLsn > last) return;
    const segs = this.segments.slice();
    let i = -1;
    for (let k = 0; k < segs.length; k++) if (segs[k]!.firstLsn <= fromLsn) i = k;
    if (i < 0) {
      const first = segs[0];
      throw new TidemarkError(
        'CORRUPTION',
        `WAL records ${fromLsn}..${(first?.firstLsn ?? last + 1) - 1} are missing: the oldest segment starts at ${first?.firstLsn}`,
        {
          details: { file: first?.path, offset: 0, fromLsn },
        },
      );
    }
    let expected = segs[i]!.firstLsn;
    for (; i < segs.length && expected <= last; i++) {
      const seg = segs[i]!;
      if (seg.firstLsn !== expected) {
        // Records are missing between two segments: the earlier one was cut short (or the later
        // one is out of place). Name both.
        const prev = segs[i - 1]!;
        throw corruption(
          prev.path,
          prev.bytes,
          `LSN gap: it ends at LSN ${expected - 1}, the next segment ${seg.path} starts at ${seg.firstLsn}`,
        );
      }
      const scanner = await SegmentScanner.open(this.fs, seg.path, this.pool);
      try {
        const hdr = await scanner.header();
        if (!hdr.ok) throw corruption(seg.path, 0, hdr.reason);
        if (hdr.firstLsn !== seg.firstLsn)
          throw corruption(seg.path, 16, `header says first LSN ${hdr.firstLsn}`);
        while (expected <= last) {
          const r = await scanner.next();
          if (r.kind === 'end') break;
          if (r.kind === 'bad') throw corruption(seg.path, r.offset, r.reason);
          if (r.header.lsn !== expected) {
            throw corruption(seg.path, r.offset, `LSN ${r.header.lsn} where ${expected} was expected`);
          }
          expected++;
          if (r.header.lsn >= fromLsn)
            yield { lsn: r.header.lsn, type: r.header.type, payload: r.payload, segment: seg.path };
        }
      } finally {
        await scanner.close();
      }
    }
    if (expected <= last) {
      throw new TidemarkError(
        'CORRUPTION',
        `WAL replay ended at LSN ${expected - 1}, but the log was found to end at ${last}`,
        {
          details: { file: segs[segs.length - 1]?.path, offset: 0 },
        },
      );
    }
  }

  /**
   * Append a record; resolves with its LSN once durable (see WalOptions.sync). `onLsn` learns the
   * LSN as soon as it is assigned, before the record is durable.
   */
  append(type: number, payload: Uint8Array, onLsn?: (lsn: number) => void): Promise<number> {
    return this.writer.append(type, payload, onLsn);
  }

  /** Start a new segment with the next append (see WalWriter.requestRoll). */
  requestRoll(): void {
    this.writer.requestRoll();
  }

  /** Bytes of all segments now in the log. */
  get bytes(): number {
    let bytes = 0;
    for (const s of this.segments) bytes += s.bytes;
    return bytes;
  }

  /**
   * Remove whole segments that lie entirely below `belowLsn`. The active segment, and any segment
   * holding a record at or above `belowLsn`, is never removed. Returns how many were removed.
   */
  async truncate(belowLsn: number): Promise<number> {
    let removed = 0;
    // Segment i holds [first_i, first_{i+1} - 1]: it is all below when first_{i+1} <= belowLsn.
    while (this.segments.length > 1 && this.segments[1]!.firstLsn <= belowLsn) {
      const seg = this.segments[0]!;
      await this.fs.delete(seg.path);
      this.segments.shift();
      removed++;
    }
    if (removed > 0) {
      await this.fs.syncDir(WAL_DIR);
      this.logger.debug({ removed, belowLsn, oldestLsn: this.segments[0]!.firstLsn }, 'WAL truncated');
    }
    return removed;
  }

  /** Wait until everything appended so far is durable (or the log failed). */
  flush(): Promise<void> {
    return this.writer.whenDurable(this.writer.nextLsn - 1);
  }

  get nextLsn(): number {
    return this.writer.nextLsn;
  }

  get durableLsn(): number {
    return this.writer.durableLsn;
  }

  get failed(): TidemarkError | undefined {
    return this.writer.failed;
  }

  /** Call `fn` when the log fails (at once if it has): whoever waits on what it would log can stop. */
  onFailure(fn: (err: TidemarkError) => void): void {
    if (this.writer.failed !== undefined) fn(this.writer.failed);
    else this.writer.failureListeners.push(fn);
  }

  /** The segments now in the log: name, first LSN, bytes. */
  segmentList(): readonly SegmentInfo[] {
    return this.segments.map((s) => ({ ...s }));
  }

  stats(): WalStats {
    return {
      bytes: this.bytes,
      segments: this.segments.length,
      durableLsn: this.writer.durableLsn,
      nextLsn: this.writer.nextLsn,
      oldestLsn: this.segments[0]?.firstLsn ?? this.writer.nextLsn,
      appends: this.writer.appends,
      batches: this.writer.batches,
      syncs: this.writer.syncs,
      queuedBytes: this.writer.queued,
      failed: this.writer.failed !== undefined,
    };
  }

  /** Write out what is queued, then close the active segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writer.close();
  }
}
