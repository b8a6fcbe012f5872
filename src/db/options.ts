import { describe } from '../schema/schema.js';
import { invalidArgument } from '../errors.js';
import type { FileService } from '../fileservice/types.js';
import type { LogOptions, Logger } from '../log.js';
import { LEAK_DETECTION_LEVELS, type LeakDetectionLevel } from '../mem/leak_detector.js';
import { DEFAULT_LIMIT_BYTES } from '../mem/manager.js';
import { DEFAULT_TRANSACTION_OPTIONS, type TransactionOptions } from '../txn/manager.js';
import type { WalOptions } from '../wal/wal.js';
import { DEFAULT_STORAGE_OPTIONS, type StorageOptions } from '../storage/storage.js';
import {
  resolveObjectStore,
  type ObjectStoreOptions,
  type ResolvedObjectStore,
} from '../fileservice/s3_options.js';

export interface CheckpointOptions {
  /** Background checkpoint interval; 0: none in the background. Default 60 s. */
  intervalMs?: number;
  /** A global checkpoint after this many incrementals. Default 10. */
  incrementalsPerGlobal?: number;
  /**
   * The WAL size past which a checkpoint is forced (an escalation, logged and counted, also when
   * `intervalMs` is 0); past twice this size, commits wait for it. Default 256 MiB.
   */
  walBytesMax?: number;
  /** Changes (commits, DDL, flushes, merges) since the last checkpoint that make a timed one run. Default 1. */
  minChanges?: number;
  /** Take a checkpoint at close when anything changed, so that the next open replays little. Default true. */
  onClose?: boolean;
}

export interface OpenOptions {
  memory?: {
    limitBytes?: number;
    leakDetection?: LeakDetectionLevel;
    samplingInterval?: number;
    /** The block cache's share of the limit. Default a quarter of it. */
    cacheBytes?: number;
    /** The memtables' share of the limit (writers wait past it while flushes free memory). Default half. */
    memtableBytes?: number;
    /**
     * What SQL queries may hold at once in hash tables, sorts and results (the `query` pool); a
     * query needing more fails with MEMORY_LIMIT. Default a quarter of the limit.
     */
    queryBytes?: number;
  };
  storage?: Partial<StorageOptions>;
  wal?: WalOptions;
  checkpoint?: CheckpointOptions;
  transaction?: Partial<TransactionOptions>;
  /** Logging: quiet ('silent') by default. A pino logger is accepted too. */
  log?: LogOptions | Logger;
  /**
   * The file service to use instead of the local directory (tests: MemoryFileService,
   * FaultFileService). The `dir` argument of `open` is then only a label.
   */
  fileService?: FileService;
  /**
   * Keep objects and checkpoint files in an S3-compatible bucket (the WAL and LOCK stay in `dir`,
   * with a local read cache of objects under `dir/cache/`): see ObjectStoreFileService.
   */
  objectStore?: ObjectStoreOptions;
  /**
   * A read replica of `objectStore`'s prefix: serves reads at the newest checkpoint its writer
   * published and moves to newer ones as they appear (every `refreshMs`); writes give READ_ONLY.
   */
  readOnly?: boolean;
  /** How often a read replica looks for a newer checkpoint. Default 5000 ms. */
  refreshMs?: number;
  /**
   * The wall clock (milliseconds) the hybrid logical clock reads; default `Date.now`. For
   * deterministic simulation: with a fake clock and an in-memory file service, a workload writes
   * the same bytes every run.
   */
  clock?: () => number;
  /**
   * Return every int64 and uint64 value as a bigint (as better-sqlite3's `safeIntegers`). Default
   * false: numbers within ±(2^53 - 1), bigints beyond.
   */
  safeIntegers?: boolean;
}

export interface ResolvedOptions {
  memory: {
    limitBytes: number;
    leakDetection: LeakDetectionLevel;
    samplingInterval: number | undefined;
    cacheBytes: number;
    memtableBytes: number;
    queryBytes: number;
  };
  storage: StorageOptions;
  wal: WalOptions;
  checkpoint: Required<CheckpointOptions>;
  transaction: TransactionOptions;
  objectStore: ResolvedObjectStore | undefined;
  readOnly: boolean;
  refreshMs: number;
}

const KNOWN = new Set([
  'memory',
  'wal',
  'checkpoint',
  'transaction',
  'storage',
  'log',
  'fileService',
  'clock',
  'objectStore',
  'readOnly',
  'refreshMs',
  'safeIntegers',
]);

function section(o: Record<string, unknown>, name: string, keys: readonly string[]): Record<string, unknown> {
  const v = o[name];
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalidArgument(`option ${name} must be an object, got ${describe(v)}`);
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw invalidArgument(`unknown option ${name}.${k}; known: ${keys.join(', ')}`);
  }
  return v as Record<string, unknown>;
}

function int(v: unknown, name: string, min: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalidArgument(`option ${name} must be an integer >= ${min}, got ${describe(v)}`);
  }
  return v;
}

/** Check every option (wrong types and ranges are INVALID_ARGUMENT) and fill in the defaults. */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidArgument(`open options must be an object, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!KNOWN.has(k)) throw invalidArgument(`unknown option ${k}; known: ${[...KNOWN].join(', ')}`);
  const m = section(o, 'memory', [
    'limitBytes',
    'leakDetection',
    'samplingInterval',
    'cacheBytes',
    'memtableBytes',
    'queryBytes',
  ]);
  const st = section(o, 'storage', Object.keys(DEFAULT_STORAGE_OPTIONS));
  const leak = m['leakDetection'] ?? 'simple';
  if (!LEAK_DETECTION_LEVELS.includes(leak as LeakDetectionLevel)) {
    throw invalidArgument(
      `option memory.leakDetection must be one of ${LEAK_DETECTION_LEVELS.join(', ')}, got ${describe(leak)}`,
    );
  }
  const w = section(o, 'wal', ['sync', 'segmentBytes', 'queueBytesMax', 'batchBytesMax', 'salvage']);
  if (w['sync'] !== undefined && w['sync'] !== 'batch' && w['sync'] !== 'none') {
    throw invalidArgument(`option wal.sync must be 'batch' or 'none', got ${describe(w['sync'])}`);
  }
  if (w['salvage'] !== undefined && typeof w['salvage'] !== 'boolean')
    throw invalidArgument('option wal.salvage must be a boolean');
  const c = section(o, 'checkpoint', [
    'intervalMs',
    'incrementalsPerGlobal',
    'walBytesMax',
    'minChanges',
    'onClose',
  ]);
  if (c['onClose'] !== undefined && typeof c['onClose'] !== 'boolean')
    throw invalidArgument(`option checkpoint.onClose must be a boolean, got ${describe(c['onClose'])}`);
  const t = section(o, 'transaction', ['timeoutMs', 'maxWriteBytes', 'memoryWaitMs']);
  const timeout =
    t['timeoutMs'] === Infinity
      ? Infinity
      : int(t['timeoutMs'], 'transaction.timeoutMs', 1, DEFAULT_TRANSACTION_OPTIONS.timeoutMs);
  const fsOpt = o['fileService'];
  if (
    fsOpt !== undefined &&
    (typeof fsOpt !== 'object' || fsOpt === null || typeof (fsOpt as FileService).open !== 'function')
  ) {
    throw invalidArgument('option fileService must be a FileService');
  }
  if (fsOpt !== undefined && o['objectStore'] !== undefined)
    throw invalidArgument('options fileService and objectStore exclude each other');
  const objectStore = o['objectStore'] === undefined ? undefined : resolveObjectStore(o['objectStore']);
  if (o['readOnly'] !== undefined && typeof o['readOnly'] !== 'boolean')
    throw invalidArgument(`option readOnly must be a boolean, got ${describe(o['readOnly'])}`);
  const readOnly = o['readOnly'] === true;
  if (o['safeIntegers'] !== undefined && typeof o['safeIntegers'] !== 'boolean')
    throw invalidArgument(`option safeIntegers must be a boolean, got ${describe(o['safeIntegers'])}`);
  if (readOnly && objectStore === undefined && fsOpt === undefined)
    throw invalidArgument(
      'option readOnly needs objectStore: a read replica follows a prefix in object storage',
    );
  if (o['refreshMs'] !== undefined && !readOnly)
    throw invalidArgument('option refreshMs is for read replicas (readOnly: true)');
  const refreshMs = int(o['refreshMs'], 'refreshMs', 100, 5000);
  if (o['clock'] !== undefined && typeof o['clock'] !== 'function')
    throw invalidArgument(
      `option clock must be a function returning milliseconds, got ${describe(o['clock'])}`,
    );
  const limitBytes = int(m['limitBytes'], 'memory.limitBytes', 1 << 20, DEFAULT_LIMIT_BYTES);
  const share = (name: string, dflt: number): number => {
    const v = int(m[name], `memory.${name}`, 64 * 1024, Math.floor(limitBytes * dflt));
    if (v > limitBytes)
      throw invalidArgument(`option memory.${name} (${v}) is larger than memory.limitBytes (${limitBytes})`);
    return v;
  };
  const d = DEFAULT_STORAGE_OPTIONS;
  return {
    objectStore,
    readOnly,
    refreshMs,
    storage: {
      memtableBytesMax: int(
        st['memtableBytesMax'],
        'storage.memtableBytesMax',
        64 * 1024,
        d.memtableBytesMax,
      ),
      memtableRowsMax: int(st['memtableRowsMax'], 'storage.memtableRowsMax', 1, d.memtableRowsMax),
      rowGroupRows: int(st['rowGroupRows'], 'storage.rowGroupRows', 16, d.rowGroupRows),
      mergeMinObjects: int(st['mergeMinObjects'], 'storage.mergeMinObjects', 0, d.mergeMinObjects),
      mergeMaxInputs: int(st['mergeMaxInputs'], 'storage.mergeMaxInputs', 2, d.mergeMaxInputs),
    },
    memory: {
      limitBytes,
      cacheBytes: share('cacheBytes', 0.25),
      memtableBytes: share('memtableBytes', 0.5),
      queryBytes: share('queryBytes', 0.25),
      leakDetection: leak as LeakDetectionLevel,
      samplingInterval:
        m['samplingInterval'] === undefined
          ? undefined
          : int(m['samplingInterval'], 'memory.samplingInterval', 1, 128),
    },
    wal: {
      sync: w['sync'] ?? 'batch',
      ...(w['segmentBytes'] !== undefined
        ? { segmentBytes: int(w['segmentBytes'], 'wal.segmentBytes', 4096, 0) }
        : {}),
      ...(w['queueBytesMax'] !== undefined
        ? { queueBytesMax: int(w['queueBytesMax'], 'wal.queueBytesMax', 4096, 0) }
        : {}),
      ...(w['batchBytesMax'] !== undefined
        ? { batchBytesMax: int(w['batchBytesMax'], 'wal.batchBytesMax', 4096, 0) }
        : {}),
      salvage: w['salvage'] ?? false,
    },
    checkpoint: {
      intervalMs: int(c['intervalMs'], 'checkpoint.intervalMs', 0, 60_000),
      incrementalsPerGlobal: int(c['incrementalsPerGlobal'], 'checkpoint.incrementalsPerGlobal', 1, 10),
      walBytesMax: int(c['walBytesMax'], 'checkpoint.walBytesMax', 1 << 20, 256 << 20),
      minChanges: int(c['minChanges'], 'checkpoint.minChanges', 1, 1),
      onClose: c['onClose'] ?? true,
    },
    transaction: {
      timeoutMs: timeout,
      maxWriteBytes: int(
        t['maxWriteBytes'],
        'transaction.maxWriteBytes',
        1024,
        DEFAULT_TRANSACTION_OPTIONS.maxWriteBytes,
      ),
      memoryWaitMs: int(
        t['memoryWaitMs'],
        'transaction.memoryWaitMs',
        0,
        DEFAULT_TRANSACTION_OPTIONS.memoryWaitMs,
      ),
      safeIntegers: o['safeIntegers'] === true,
    },
  };
}
