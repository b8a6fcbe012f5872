// The public surface of tidemark. Everything not exported here is internal.
export { open, Database } from './api/database.js';
export type { DatabaseStats } from './api/database.js';
export { Snapshot } from './db/snapshot.js';
export type { OpenOptions, CheckpointOptions } from './db/options.js';
export type { Transaction, ScanOptions, ScanBatchesOptions } from './txn/transaction.js';
export type { Batch } from './txn/batch.js';
export type { IndexInfo } from './txn/indexes.js';
export type { TransactionOptions } from './txn/manager.js';
export type { ColumnType, ColumnSpec, TableSpec, Row } from './schema/schema.js';
export type { ColumnData } from './table/source.js';
export type { WalOptions } from './wal/wal.js';
export { Decimal } from './util/decimal.js';
export { TidemarkError, LeakError, ERROR_CODES, isTidemarkError } from './errors.js';
export type { ErrorCode, LeakHolder } from './errors.js';
export {
  MemoryManager,
  MemoryPool,
  PooledBuffer,
  Reservation,
  POOL_NAMES,
  LEAK_DETECTION_LEVELS,
} from './mem/index.js';
export type {
  MemoryOptions,
  MemoryStats,
  PoolStats,
  LeakDetectionLevel,
  LeakReport,
  PoolName,
} from './mem/index.js';
export {
  LocalFileService,
  MemoryFileService,
  FaultFileService,
  HandleRegistry,
  FILE_KINDS,
  ObjectStoreFileService,
} from './fileservice/index.js';
export type { ObjectStoreOptions, ObjectStoreStats } from './fileservice/index.js';
export type {
  FileService,
  CrashableFileService,
  CrashReport,
  FileHandle,
  FileKind,
  FileStat,
  OpenMode,
  DirectoryLock,
  FaultRule,
  FaultOptions,
  FaultOp,
} from './fileservice/index.js';
export { createLogger } from './log.js';
export type { Logger, LogOptions } from './log.js';
export type { DatabaseObserver, CommitEvent } from './db/events.js';
export type { CheckpointEvent } from './checkpoint/events.js';
export { Metrics } from './metrics/metrics.js';
export type { MetricsOptions } from './metrics/metrics.js';
export { TidemarkServer } from './server/server.js';
export type { ServerOptions } from './server/server.js';
