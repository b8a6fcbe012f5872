export { Wal, DEFAULT_SEGMENT_BYTES } from './wal.js';
export type { WalOptions, WalOpenParams, WalRecord, WalStats, WalRecovery } from './wal.js';
export type { WalSyncMode, SegmentInfo } from './writer.js';
export { RECORD_HEADER_BYTES, MAX_RECORD_PAYLOAD_BYTES } from './record.js';
export { segmentName, parseSegmentName, WAL_DIR } from './segment.js';
