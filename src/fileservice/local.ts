import { constants as C, promises as fsp, type Stats } from 'node:fs';
import * as nodePath from 'node:path';
import { errnoOf, ioError, TidemarkError } from '../errors.js';
import { acquireLocalLock, type LockMethod } from './lock.js';
import { checkPath } from './paths.js';
import { writeFileAtomicVia } from './util.js';
import { HandleRegistry } from './registry.js';
import type { DirectoryLock, FileHandle, FileService, FileStat, OpenOptions } from './types.js';
import type { FileKind, OpenMode } from './kinds.js';

const FLAGS: Record<OpenMode, number> = {
  read: C.O_RDONLY,
  readwrite: C.O_RDWR,
  create: C.O_RDWR | C.O_CREAT,
  'create-new': C.O_RDWR | C.O_CREAT | C.O_EXCL,
};

export interface LocalFileServiceOptions {
  /** How LOCK excludes other openers; default 'socket' on Linux, 'pidfile' elsewhere. */
  lockMethod?: LockMethod;
}

/** The default FileService: a directory on local disk. */
export class LocalFileService implements FileService {
  readonly root: string;
  readonly handles = new HandleRegistry();
  private readonly lockMethod: LockMethod;

  constructor(root: string, options: LocalFileServiceOptions = {}) {
    this.root = nodePath.resolve(root);
    this.lockMethod = options.lockMethod ?? (process.platform === 'linux' ? 'socket' : 'pidfile');
  }

  /** The absolute path of a checked relative path. */
  resolve(path: string): string {
    const segments = checkPath(path);
    return segments.length === 0 ? this.root : nodePath.join(this.root, ...segments);
  }

  async open(path: string, mode: OpenMode, kind: FileKind, options: OpenOptions = {}): Promise<FileHandle> {
    const abs = this.resolve(path);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(abs, FLAGS[mode] | (options.sync === true ? C.O_DSYNC : 0), 0o644);
    } catch (e) {
      throw ioError('open', path, e);
    }
    return new LocalFileHandle(fh, path, kind, this.handles, this.handles.add(path, kind, mode));
  }

  async writeFileAtomic(path: string, chunks: readonly Uint8Array[], kind: FileKind): Promise<void> {
    this.resolve(path);
    await writeFileAtomicVia(this, path, chunks, kind);
  }

  async list(dir: string): Promise<string[]> {
    const abs = this.resolve(dir);
    try {
      return (await fsp.readdir(abs)).sort();
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return [];
      throw ioError('list', dir, e);
    }
  }

  async stat(path: string): Promise<FileStat | undefined> {
    const abs = this.resolve(path);
    let st: Stats;
    try {
      st = await fsp.stat(abs);
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return undefined;
      throw ioError('stat', path, e);
    }
    return { size: st.size, isDirectory: st.isDirectory() };
  }

  async rename(from: string, to: string): Promise<void> {
    const a = this.resolve(from);
    const b = this.resolve(to);
    try {
      await fsp.rename(a, b);
    } catch (e) {
      throw ioError('rename', `${from} -> ${to}`, e);
    }
  }

  async delete(path: string): Promise<boolean> {
    const abs = this.resolve(path);
    try {
      await fsp.unlink(abs);
      return true;
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return false;
      throw ioError('delete', path, e);
    }
  }

  async mkdir(dir: string): Promise<void> {
    const abs = this.resolve(dir);
    try {
      await fsp.mkdir(abs, { recursive: true });
    } catch (e) {
      throw ioError('mkdir', dir, e);
    }
  }

  async syncDir(dir: string): Promise<void> {
    const abs = this.resolve(dir);
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(abs, C.O_RDONLY | C.O_DIRECTORY);
      await fh.sync();
    } catch (e) {
      throw ioError('fsync directory', dir === '' ? '.' : dir, e);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  async lock(): Promise<DirectoryLock> {
    await this.createRoot();
    return acquireLocalLock(this, this.lockMethod);
  }

  /** Create the database directory if missing, making its entry in the parent durable. */
  private async createRoot(): Promise<void> {
    if ((await this.stat('')) !== undefined) return;
    await this.mkdir('');
    let fh: fsp.FileHandle | undefined;
    const parent = nodePath.dirname(this.root);
    try {
      fh = await fsp.open(parent, C.O_RDONLY | C.O_DIRECTORY);
      await fh.sync();
    } catch (e) {
      throw ioError('fsync directory', parent, e);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.handles.check(`file handles open in ${this.root}`);
  }
}

/** Read up to `dst.length` bytes at `position` (looping over short reads); the number read. */
export async function readFully(
  fh: fsp.FileHandle,
  dst: Uint8Array,
  position: number,
  path: string,
): Promise<number> {
  let total = 0;
  try {
    // A single read may return short on some file systems: loop until full or end of file.
    while (total < dst.length) {
      const { bytesRead } = await fh.read(dst, total, dst.length - total, position + total);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
  } catch (e) {
    throw ioError('read', path, e);
  }
  return total;
}

/** Write all of `src` at `position` (looping over short writes). */
export async function writeFully(
  fh: fsp.FileHandle,
  src: Uint8Array,
  position: number,
  path: string,
): Promise<void> {
  let done = 0;
  try {
    while (done < src.length) {
      const { bytesWritten } = await fh.write(src, done, src.length - done, position + done);
      done += bytesWritten;
    }
  } catch (e) {
    throw ioError('write', path, e);
  }
}

class LocalFileHandle implements FileHandle {
  private closed = false;

  constructor(
    private readonly fh: fsp.FileHandle,
    readonly path: string,
    readonly kind: FileKind,
    private readonly registry: HandleRegistry,
    private readonly id: number,
  ) {}

  async read(dst: Uint8Array, position: number): Promise<number> {
    this.check();
    return readFully(this.fh, dst, position, this.path);
  }

  async write(src: Uint8Array, position: number): Promise<void> {
    this.check();
    return writeFully(this.fh, src, position, this.path);
  }

  async datasync(): Promise<void> {
    this.check();
    try {
      await this.fh.datasync();
    } catch (e) {
      throw ioError('fdatasync', this.path, e);
    }
  }

  async size(): Promise<number> {
    this.check();
    try {
      return (await this.fh.stat()).size;
    } catch (e) {
      throw ioError('stat', this.path, e);
    }
  }

  async truncate(length: number): Promise<void> {
    this.check();
    try {
      await this.fh.truncate(length);
    } catch (e) {
      throw ioError('truncate', this.path, e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Unregister first: a failed close still leaves no usable handle behind.
    this.registry.remove(this.id);
    try {
      await this.fh.close();
    } catch (e) {
      throw ioError('close', this.path, e);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private check(): void {
    if (this.closed) throw new TidemarkError('CLOSED', `file ${this.path} is closed`);
  }
}
