import { crc32 } from '../util/crc.js';

/**
 * A segment file `wal/<firstLsn, 20 digits>.wal` starts with a 32-byte header:
 *
 *   offset size field
 *        0    8 magic "TDMKWAL\0"
 *        8    2 format version (1)
 *       10    2 header size (32)
 *       12    4 reserved (0)
 *       16    8 first LSN of the segment (little-endian u64)
 *       24    4 reserved (0)
 *       28    4 crc32 of bytes 0..28
 */
export const SEGMENT_HEADER_BYTES = 32;
export const WAL_FORMAT_VERSION = 1;
const MAGIC = new TextEncoder().encode('TDMKWAL\0');
export const WAL_DIR = 'wal';

export function segmentName(firstLsn: number): string {
  return `${String(firstLsn).padStart(20, '0')}.wal`;
}

export function segmentPath(firstLsn: number): string {
  return `${WAL_DIR}/${segmentName(firstLsn)}`;
}

/** The first LSN a segment file name declares, or undefined if the name is not a segment's. */
export function parseSegmentName(name: string): number | undefined {
  const m = /^(\d{20})\.wal$/.exec(name);
  if (m === null) return undefined;
  const lsn = Number(m[1]);
  return Number.isSafeInteger(lsn) && lsn > 0 ? lsn : undefined;
}

export function encodeSegmentHeader(firstLsn: number): Uint8Array {
  const out = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint16(8, WAL_FORMAT_VERSION, true);
  view.setUint16(10, SEGMENT_HEADER_BYTES, true);
  view.setBigUint64(16, BigInt(firstLsn), true);
  view.setUint32(28, crc32(out.subarray(0, 28)), true);
  return out;
}

export type SegmentHeaderCheck = { ok: true; firstLsn: number } | { ok: false; reason: string };

export function decodeSegmentHeader(src: Uint8Array): SegmentHeaderCheck {
  if (src.length < SEGMENT_HEADER_BYTES) return { ok: false, reason: `short header (${src.length} bytes)` };
  for (let i = 0; i < MAGIC.length; i++) {
    if (src[i] !== MAGIC[i]) return { ok: false, reason: 'bad magic' };
  }
  const view = new DataView(src.buffer, src.byteOffset, SEGMENT_HEADER_BYTES);
  if (view.getUint32(28, true) !== crc32(src.subarray(0, 28)))
    return { ok: false, reason: 'header checksum mismatch' };
  const version = view.getUint16(8, true);
  if (version !== WAL_FORMAT_VERSION) return { ok: false, reason: `unsupported format version ${version}` };
  return { ok: true, firstLsn: Number(view.getBigUint64(16, true)) };
}
