import type { FileKind, OpenMode } from './kinds.js';
import type { HandleRegistry } from './registry.js';

export interface OpenOptions {
  /**
   * Every write is durable when it returns (O_DSYNC): one system call instead of a write and an
   * fdatasync. A write interrupted by a crash may still be torn.
   */
  sync?: boolean;
}

export interface FileStat {
  size: number;
  isDirectory: boolean;
}

export interface FileHandle extends AsyncDisposable {
  readonly path: string;
  readonly kind: FileKind;
  /** Read up to `dst.length` bytes at `position`; resolves with the number read (0 at end). */
  read(dst: Uint8Array, position: number): Promise<number>;
  /** Write all of `src` at `position`. */
  write(src: Uint8Array, position: number): Promise<void>;
  /** Make the file's data durable (fdatasync). */
  datasync(): Promise<void>;
  size(): Promise<number>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/** The directory lock of a database (`DIR/LOCK`), held while it is open. */
export interface DirectoryLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * All file I/O of the engine goes through a FileService rooted at the database directory. Paths are
 * relative, '/'-separated, and can never name anything outside the root (INVALID_ARGUMENT).
 * Failures of the underlying storage are TidemarkErrors of code `IO` with `details.errno`.
 */
export interface FileService {
  /** Where the files live, for messages: a directory path, or `memory:` for the in-memory service. */
  readonly root: string;
  /** The registry of open handles: counts per kind, and leak checks naming where each was opened. */
  readonly handles: HandleRegistry;
  /**
   * The tag of the next temporary file name (`<path>.<tag>.tmp`). Optional: by default the process
   * id and a process-wide counter. The in-memory service numbers its own, so that a simulation
   * names its files the same way every run.
   */
  tempTag?(): string | undefined;
  open(path: string, mode: OpenMode, kind: FileKind, options?: OpenOptions): Promise<FileHandle>;
  /**
   * Replace `path` atomically: write a temporary file, fsync it, rename it over `path`, fsync the
   * directory. After a crash, `path` holds either the old content or the new, never a mix.
   */
  writeFileAtomic(path: string, chunks: readonly Uint8Array[], kind: FileKind): Promise<void>;
  /** Names in a directory, sorted; [] if the directory does not exist. */
  list(dir: string): Promise<string[]>;
  /** undefined if nothing exists at `path`. */
  stat(path: string): Promise<FileStat | undefined>;
  rename(from: string, to: string): Promise<void>;
  /** Delete a file; resolves false if it did not exist. */
  delete(path: string): Promise<boolean>;
  /** Create a directory and its parents; no error if it exists. */
  mkdir(dir: string): Promise<void>;
  /** Make the directory's entries (creates, renames, deletes) durable. */
  syncDir(dir: string): Promise<void>;
  /** Take the database's LOCK; a second taker, in this process or another, gets LOCKED. */
  lock(): Promise<DirectoryLock>;
  /** Close the service: throws a LeakError naming each handle still open. */
  close(): Promise<void>;
}

/** A FileService that can simulate a machine crash (the in-memory one). */
export interface CrashableFileService extends FileService {
  /**
   * Simulate a crash, deterministically from `seed`: data not fsynced is lost (a prefix of the
   * unsynced writes may survive, the last of them torn), directory entries not fsynced are lost
   * (likewise a prefix may survive). Every handle opened before the crash becomes unusable and the
   * lock is released, as if the process had died.
   */
  crash(seed: number): CrashReport;
}

export interface CrashReport {
  seed: number;
  /** Per file: what happened to its unsynced writes. */
  files: { path: string; unsyncedWrites: number; kept: number; tornBytes: number | null }[];
  /** Per directory: what happened to its unsynced entry changes. */
  dirs: { path: string; unsyncedOps: number; kept: number }[];
}
