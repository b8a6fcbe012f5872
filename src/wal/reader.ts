import type { FileHandle, FileService } from '../fileservice/types.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import {
  decodeHeader,
  MAX_RECORD_PAYLOAD_BYTES,
  RECORD_HEADER_BYTES,
  recordChecksumOk,
  type RecordHeader,
} from './record.js';
import { decodeSegmentHeader, SEGMENT_HEADER_BYTES, type SegmentHeaderCheck } from './segment.js';

const DEFAULT_CHUNK_BYTES = 1024 * 1024;

export type ScanResult =
  | { kind: 'record'; offset: number; header: RecordHeader; payload: Uint8Array }
  | { kind: 'end'; offset: number }
  | { kind: 'bad'; offset: number; reason: string };

/**
 * Reads one segment file front to back through a window buffer from a pool (`replay` at recovery).
 * Each record's header and checksum are verified; a record's payload is a view valid only until the
 * next call. Owns its handle and buffer: `close()` releases both, on every path.
 */
export class SegmentScanner {
  private handle: FileHandle | undefined;
  private buf: PooledBuffer | undefined;
  /** File offset of buf[0] and how many bytes of the file the window holds. */
  private winStart = 0;
  private winLen = 0;
  /** Where the next record starts. */
  position = SEGMENT_HEADER_BYTES;
  fileSize = 0;

  private constructor(
    readonly path: string,
    private readonly pool: MemoryPool,
    private readonly chunkBytes: number,
  ) {}

  static async open(
    fs: FileService,
    path: string,
    pool: MemoryPool,
    chunkBytes = DEFAULT_CHUNK_BYTES,
  ): Promise<SegmentScanner> {
    const s = new SegmentScanner(path, pool, chunkBytes);
    try {
      s.handle = await fs.open(path, 'read', 'wal');
      s.fileSize = await s.handle.size();
      s.buf = await pool.allocate(
        Math.min(chunkBytes, Math.max(s.fileSize, SEGMENT_HEADER_BYTES)),
        'wal.replay.window',
      );
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  /** Read and check the segment header. */
  async header(): Promise<SegmentHeaderCheck> {
    if (!(await this.ensure(0, SEGMENT_HEADER_BYTES))) {
      return { ok: false, reason: `short header (${this.fileSize} bytes)` };
    }
    return decodeSegmentHeader(this.view(0, SEGMENT_HEADER_BYTES));
  }

  /** The next record at `position`, the clean end of the file, or a bad record. */
  async next(): Promise<ScanResult> {
    const at = this.position;
    const r = await this.readAt(at);
    if (r.kind === 'record') this.position = at + RECORD_HEADER_BYTES + r.header.length;
    return r;
  }

  /** Try to read a valid record at `at` without moving `position`. */
  async readAt(at: number): Promise<ScanResult> {
    if (at === this.fileSize) return { kind: 'end', offset: at };
    if (!(await this.ensure(at, RECORD_HEADER_BYTES))) {
      return {
        kind: 'bad',
        offset: at,
        reason: `incomplete record header (${this.fileSize - at} bytes left)`,
      };
    }
    const header = decodeHeader(this.view(at, RECORD_HEADER_BYTES), 0);
    if (header.length > MAX_RECORD_PAYLOAD_BYTES) {
      return { kind: 'bad', offset: at, reason: `implausible record length ${header.length}` };
    }
    const total = RECORD_HEADER_BYTES + header.length;
    if (at + total > this.fileSize) {
      return { kind: 'bad', offset: at, reason: `record of ${total} bytes runs past the end of the file` };
    }
    await this.ensure(at, total);
    const bytes = this.view(at, total);
    if (!recordChecksumOk(bytes, 0, header)) return { kind: 'bad', offset: at, reason: 'checksum mismatch' };
    return { kind: 'record', offset: at, header, payload: bytes.subarray(RECORD_HEADER_BYTES) };
  }

  /**
   * Whether the bad record at `at` looks like an interrupted write rather than damage: its header
   * is incomplete; or it runs past the end of the file (and is not a whole record whose length field
   * alone was damaged: with the length the file leaves, the checksum would hold); or it spans a
   * 512-byte sector that is all zeros (a page the disk never wrote). A whole record with a bad
   * checksum and no such hole is damage, however close to the end it sits.
   */
  async looksTorn(at: number): Promise<boolean> {
    const left = this.fileSize - at;
    if (left < RECORD_HEADER_BYTES) return true;
    const span = Math.min(left, RECORD_HEADER_BYTES + MAX_RECORD_PAYLOAD_BYTES);
    if (!(await this.ensure(at, Math.min(span, this.chunkBytes)))) return true;
    const header = decodeHeader(this.view(at, RECORD_HEADER_BYTES), 0);
    if (RECORD_HEADER_BYTES + header.length > left && left <= this.chunkBytes) {
      // Would the record hold with the length the file leaves? Then its length field was damaged.
      const bytes = this.view(at, left).slice();
      new DataView(bytes.buffer).setUint32(4, left - RECORD_HEADER_BYTES, true);
      const h = decodeHeader(bytes, 0);
      return !recordChecksumOk(bytes, 0, h);
    }
    if (RECORD_HEADER_BYTES + header.length > left) return true;
    // A whole record: torn only if one of its sectors was never written.
    const end = at + RECORD_HEADER_BYTES + header.length;
    for (let sector = Math.ceil(at / 512) * 512; sector + 512 <= end; sector += 512) {
      if (!(await this.ensure(sector, 512))) break;
      const v = this.view(sector, 512);
      if (v.every((b) => b === 0)) return true;
    }
    return false;
  }

  /**
   * After a bad record at `badOffset` following LSN `lastGoodLsn`, look for valid records further
   * on. Returns the first one that belongs to a write batch begun after the bad record's batch:
   * proof that the bad record was not in the last (only possibly torn) batch. Records of the same
   * batch after a tear are expected (pages reach disk out of order) and are skipped.
   */
  async findLaterBatch(
    badOffset: number,
    lastGoodLsn: number,
  ): Promise<{ offset: number; lsn: number } | undefined> {
    let at = badOffset + 1;
    while (at + RECORD_HEADER_BYTES <= this.fileSize) {
      await this.ensure(at, RECORD_HEADER_BYTES);
      const h = decodeHeader(this.view(at, RECORD_HEADER_BYTES), 0);
      // Cheap filters first: most offsets are not record starts.
      if (h.lsn > lastGoodLsn && h.lsn - lastGoodLsn < 2 ** 31 && h.batchOffset <= h.lsn) {
        const r = await this.readAt(at);
        if (r.kind === 'record') {
          const batchStart = r.header.lsn - r.header.batchOffset;
          if (batchStart > lastGoodLsn + 1) return { offset: at, lsn: r.header.lsn };
          at += RECORD_HEADER_BYTES + r.header.length;
          continue;
        }
      }
      at++;
    }
    return undefined;
  }

  async close(): Promise<void> {
    const buf = this.buf;
    this.buf = undefined;
    buf?.release();
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }

  private view(at: number, length: number): Uint8Array {
    const off = at - this.winStart;
    return this.buf!.bytes.subarray(off, off + length);
  }

  /** Make [at, at + length) available in the window; false if the file ends before. */
  private async ensure(at: number, length: number): Promise<boolean> {
    if (at + length > this.fileSize) return false;
    if (at >= this.winStart && at + length <= this.winStart + this.winLen) return true;
    let buf = this.buf!;
    if (length > buf.length) {
      // A record larger than the window: grow it for this record (bounded by the record limit).
      const bigger = await this.pool.allocate(Math.max(length, this.chunkBytes), 'wal.replay.window');
      buf.release();
      this.buf = buf = bigger;
      this.winLen = 0;
    }
    const bytes = buf.bytes;
    // Keep what the window already has of the range, then fill from the file.
    let keep = 0;
    if (at >= this.winStart && at < this.winStart + this.winLen) {
      keep = this.winStart + this.winLen - at;
      bytes.copyWithin(0, at - this.winStart, at - this.winStart + keep);
    }
    const want = Math.min(bytes.length, this.fileSize - at) - keep;
    const n = await this.handle!.read(bytes.subarray(keep, keep + want), at + keep);
    this.winStart = at;
    this.winLen = keep + n;
    return this.winLen >= length;
  }
}
