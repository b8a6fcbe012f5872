import { crc32 } from '../util/crc.js';

/**
 * A WAL record (see docs/formats/wal.md):
 *
 *   offset size field
 *        0    4 crc32 of the payload, continued over bytes 4..24 of the header
 *        4    4 payload length
 *        8    8 LSN (little-endian u64; contiguous, starting after the last one)
 *       16    4 batch offset: LSN minus the LSN of the first record of its write batch
 *       20    1 type (defined by the layer above)
 *       21    1 flags (reserved, 0)
 *       22    2 reserved (0)
 *       24    n payload
 *
 * The batch offset lets recovery tell a torn tail (a bad record in the last write batch) from
 * corruption (a bad record followed by a valid record of a later batch): batches are written one at
 * a time, each after the previous one is durable, so only the last batch can be torn.
 */
export const RECORD_HEADER_BYTES = 24;
/** The largest payload a record may carry. */
export const MAX_RECORD_PAYLOAD_BYTES = 128 * 1024 * 1024;

export interface RecordHeader {
  crc: number;
  length: number;
  lsn: number;
  batchOffset: number;
  type: number;
  flags: number;
}

/**
 * Fill in the header of a record whose payload already sits at `at + RECORD_HEADER_BYTES`, with the
 * payload's own checksum computed earlier (off the flush path, by the appender).
 */
export function finishRecord(
  dst: Uint8Array,
  at: number,
  lsn: number,
  batchOffset: number,
  type: number,
  length: number,
  payloadCrc: number,
): void {
  const view = new DataView(dst.buffer, dst.byteOffset + at, RECORD_HEADER_BYTES);
  view.setUint32(4, length, true);
  view.setBigUint64(8, BigInt(lsn), true);
  view.setUint32(16, batchOffset, true);
  view.setUint8(20, type);
  view.setUint8(21, 0);
  view.setUint16(22, 0, true);
  view.setUint32(0, crc32(dst.subarray(at + 4, at + RECORD_HEADER_BYTES), payloadCrc), true);
}

/** Read a header at `at` (the caller checked that RECORD_HEADER_BYTES are available). */
export function decodeHeader(src: Uint8Array, at: number): RecordHeader {
  const view = new DataView(src.buffer, src.byteOffset + at, RECORD_HEADER_BYTES);
  return {
    crc: view.getUint32(0, true),
    length: view.getUint32(4, true),
    lsn: Number(view.getBigUint64(8, true)),
    batchOffset: view.getUint32(16, true),
    type: view.getUint8(20),
    flags: view.getUint8(21),
  };
}

/** Whether the record at `at` (header and its whole payload present in `src`) checks out. */
export function recordChecksumOk(src: Uint8Array, at: number, h: RecordHeader): boolean {
  const headerTail = src.subarray(at + 4, at + RECORD_HEADER_BYTES);
  const payload = src.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + h.length);
  return crc32(headerTail, crc32(payload)) === h.crc;
}
