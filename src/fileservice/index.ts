export type {
  FileService,
  CrashableFileService,
  CrashReport,
  FileHandle,
  FileStat,
  OpenOptions,
  DirectoryLock,
} from './types.js';
export type { FileKind, OpenMode } from './kinds.js';
export { FILE_KINDS } from './kinds.js';
export { LocalFileService } from './local.js';
export type { LocalFileServiceOptions } from './local.js';
export type { LockMethod } from './lock.js';
export { MemoryFileService } from './memory.js';
export { FaultFileService, MUTATING_OPS } from './fault.js';
export type { FaultOp, FaultRule, FaultOptions, StepRecord } from './fault.js';
export { HandleRegistry } from './registry.js';
export { ObjectStoreFileService } from './s3.js';
export type { ObjectStoreStats } from './s3.js';
export type { ObjectStoreOptions } from './s3_options.js';
export type { OpenFileInfo } from './registry.js';
export { readFileInto, writeFileAtomicVia } from './util.js';
export { checkPath, isTempName } from './paths.js';
