import { promises as fsp } from 'node:fs';
import { invalidArgument, ioError, TidemarkError } from '../errors.js';
import type { FileKind } from './kinds.js';
import { readFully, writeFully } from './local.js';
import type { HandleRegistry } from './registry.js';
import type { FileHandle } from './types.js';

// The handles of an ObjectStoreFileService's files: local WAL handles fenced by the writer's claim,
// objects being written (staged locally, uploaded when made durable), and cached objects read.

/** A local WAL handle that refuses writes once the writer lost its claim. */
export class FencedHandle implements FileHandle {
  constructor(
    private readonly h: FileHandle,
    private readonly fenced: () => TidemarkError | undefined,
  ) {}
  get path(): string {
    return this.h.path;
  }
  get kind(): FileKind {
    return this.h.kind;
  }
  read(dst: Uint8Array, position: number): Promise<number> {
    return this.h.read(dst, position);
  }
  write(src: Uint8Array, position: number): Promise<void> {
    const f = this.fenced();
    return f !== undefined ? Promise.reject(f) : this.h.write(src, position);
  }
  datasync(): Promise<void> {
    const f = this.fenced();
    return f !== undefined ? Promise.reject(f) : this.h.datasync();
  }
  size(): Promise<number> {
    return this.h.size();
  }
  truncate(length: number): Promise<void> {
    return this.h.truncate(length);
  }
  close(): Promise<void> {
    return this.h.close();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** What an upload handle needs of its file service (ObjectStoreFileService). */
export interface UploadTarget {
  readonly handles: HandleRegistry;
  /** Upload a staged local file under `path` (a new key). */
  upload(path: string, file: string, size: number): Promise<void>;
  /** A staged object, uploaded and closed: its local file becomes its cached copy. */
  cacheAdopt(path: string, file: string, size: number): Promise<void>;
}

/** A local file being written, uploaded to the bucket when made durable. */
export class UploadHandle implements FileHandle {
  private closed = false;
  private length = 0;
  private uploaded = false;

  constructor(
    private readonly store: UploadTarget,
    private readonly fh: fsp.FileHandle,
    private readonly file: string,
    readonly path: string,
    readonly kind: FileKind,
    private readonly id: number,
  ) {}

  async read(dst: Uint8Array, position: number): Promise<number> {
    this.check();
    return readFully(this.fh, dst, position, this.path);
  }

  async write(src: Uint8Array, position: number): Promise<void> {
    this.check();
    if (this.uploaded)
      throw invalidArgument(`${this.path} was uploaded: objects in object storage are written once`);
    await writeFully(this.fh, src, position, this.path);
    this.length = Math.max(this.length, position + src.length);
  }

  /** Durable: the whole file uploaded (once). */
  async datasync(): Promise<void> {
    this.check();
    if (this.uploaded) return;
    await this.store.upload(this.path, this.file, this.length);
    this.uploaded = true;
  }

  async size(): Promise<number> {
    this.check();
    return this.length;
  }

  async truncate(length: number): Promise<void> {
    this.check();
    if (this.uploaded)
      throw invalidArgument(`${this.path} was uploaded: objects in object storage are written once`);
    await this.fh.truncate(length).catch((e: unknown) => {
      throw ioError('truncate', this.path, e);
    });
    this.length = length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.store.handles.remove(this.id);
    await this.fh.close().catch((e: unknown) => {
      throw ioError('close', this.path, e);
    });
    // Uploaded: the staging file becomes the object's cached copy. Otherwise it goes.
    if (this.uploaded) await this.store.cacheAdopt(this.path, this.file, this.length);
    else await fsp.rm(this.file, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private check(): void {
    if (this.closed) throw new TidemarkError('CLOSED', `file ${this.path} is closed`);
  }
}

/** A read handle on a cached object's local copy. */
export class CachedReadHandle implements FileHandle {
  private isClosed = false;

  constructor(
    private readonly fh: fsp.FileHandle,
    readonly path: string,
    readonly kind: FileKind,
    private readonly registry: HandleRegistry,
    private readonly id: number,
    private readonly onClose: () => void,
  ) {}

  async read(dst: Uint8Array, position: number): Promise<number> {
    this.check();
    return readFully(this.fh, dst, position, this.path);
  }

  write(): Promise<void> {
    return Promise.reject(invalidArgument(`${this.path} is open for reading`));
  }

  async datasync(): Promise<void> {
    this.check();
  }

  async size(): Promise<number> {
    this.check();
    return (await this.fh.stat()).size;
  }

  truncate(): Promise<void> {
    return Promise.reject(invalidArgument(`${this.path} is open for reading`));
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.registry.remove(this.id);
    try {
      await this.fh.close();
    } finally {
      this.onClose();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private check(): void {
    if (this.isClosed) throw new TidemarkError('CLOSED', `file ${this.path} is closed`);
  }
}
