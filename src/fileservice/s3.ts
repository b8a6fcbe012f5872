import { constants as C, promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { invalidArgument, ioError, TidemarkError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FileKind, OpenMode } from './kinds.js';
import type { LocalFileService } from './local.js';
import { checkPath } from './paths.js';
import type { HandleRegistry } from './registry.js';
import { ObjectCache } from './s3_cache.js';
import { META_RE, WriterClaim } from './s3_claim.js';
import { GraceDeletes } from './s3_gc.js';
import { FencedHandle, UploadHandle, type UploadTarget } from './s3_handles.js';
import { resolveObjectStore, type ObjectStoreOptions, type ResolvedObjectStore } from './s3_options.js';
import { BucketClient, statusOf, type ObjectStoreCounters } from './s3_requests.js';
import { uploadFile } from './s3_upload.js';
import type { DirectoryLock, FileHandle, FileService, FileStat, OpenOptions } from './types.js';

/** The request counters (ObjectStoreCounters), and the state of the bucket's writer and cache. */
export interface ObjectStoreStats extends ObjectStoreCounters {
  bucket: string;
  prefix: string;
  /** Files waiting for their grace period before they are deleted from the bucket. */
  pendingDeletes: number;
  /** The newest published checkpoint meta file; whether this writer lost its claim. */
  publishedSeq: number;
  fenced: boolean;
  cache: { entries: number; bytes: number; limitBytes: number };
}

/** The paths that live in the bucket: objects and checkpoint files. The rest stays local. */
function isRemote(path: string): boolean {
  return path === 'obj' || path === 'ckp' || path.startsWith('obj/') || path.startsWith('ckp/');
}

/**
 * A FileService that keeps objects (`obj/`) and checkpoint files (`ckp/`) in an S3-compatible bucket
 * under a prefix, and everything else (the WAL, LOCK) in the local directory, as MatrixOne keeps its
 * objects in S3.
 *
 * - Objects are staged in a local file while written and uploaded when made durable (`datasync`):
 *   in one PUT, or in parts past `partBytes` (a failed multipart upload is aborted: nothing is
 *   half-published). Every upload is conditional on the key being new (`If-None-Match: *`).
 * - Reads go through a local cache of whole objects under `DIR/cache/` (objects never change), at
 *   most `cacheBytes`, least recently used first out (files open for reading stay).
 * - Every request is retried on timeouts, 5xx and throttling with exponential backoff and jitter,
 *   `attempts` times at most; then it fails with IO.
 * - One writer per prefix: `lock()` takes the claim object `CLAIM` with a conditional write (a
 *   second writer is LOCKED while the claim's lease runs), renews it every third of the lease, and
 *   publishes each checkpoint by compare-and-swap on it (`If-Match` its ETag): a writer that lost
 *   its claim (another took the prefix over after its lease lapsed) cannot publish a meta file.
 *   Meta files newer than the published one (left by a writer that lost its claim) are invisible.
 *   The lease assumes the writers' clocks agree to well within `leaseMs`.
 */
export class ObjectStoreFileService implements FileService, UploadTarget {
  readonly root: string;
  readonly handles: HandleRegistry;
  private readonly client: BucketClient;
  private readonly o: ResolvedObjectStore;
  private readonly cache: ObjectCache;
  /** Deletions waiting for their grace period. */
  private readonly gc: GraceDeletes;
  /** The writer's claim on the prefix (a replica only reads it). */
  private readonly claim: WriterClaim;
  private closed = false;
  /** Requests retried, and requests that failed for good (for tests and stats). */
  readonly counters: ObjectStoreCounters = {
    requests: 0,
    retries: 0,
    failures: 0,
    uploads: 0,
    multipartUploads: 0,
    downloads: 0,
    /** Files deleted from the bucket after their grace period. */
    collected: 0,
  };

  constructor(
    readonly local: LocalFileService,
    options: ObjectStoreOptions | ResolvedObjectStore,
    private readonly logger?: Logger,
    /** For tests: runs before each attempt of each request; may throw to simulate a failure. */
    readonly beforeRequest?: (op: string, key: string) => void,
    /**
     * 'replica': a reader of what the prefix's writer publishes. It takes no claim, writes nothing to
     * the bucket (READ_ONLY), and reads the published checkpoint pointer (see refreshPublished).
     */
    readonly mode: 'writer' | 'replica' = 'writer',
  ) {
    this.o = resolveObjectStore(options);
    this.root = `${local.root} (objects in s3://${this.o.bucket}/${this.o.prefix})`;
    this.handles = local.handles;
    this.client = new BucketClient(this.o, this.counters, logger, beforeRequest);
    this.gc = new GraceDeletes(this.client, this.counters);
    this.claim = new WriterClaim(this.client, local, this.gc, this.o, logger);
    this.cache = new ObjectCache(local, this.o.cacheBytes, (path, file) => this.client.download(path, file));
  }

  /** The bucket key of a path. */
  key(path: string): string {
    return this.client.key(path);
  }

  // ---- FileService ----

  async open(path: string, mode: OpenMode, kind: FileKind, options: OpenOptions = {}): Promise<FileHandle> {
    checkPath(path);
    if (!isRemote(path)) {
      const h = await this.local.open(path, mode, kind, options);
      // A writer that lost its claim must not acknowledge commits it can never publish: its WAL
      // refuses writes (the WAL fails, and every commit with it, naming the lost claim).
      return kind === 'wal' && mode !== 'read' ? new FencedHandle(h, () => this.claim.fencedError) : h;
    }
    this.check();
    if (mode === 'read') return this.cache.openRead(path, kind, this.handles);
    this.checkWritable(path);
    if (mode === 'create-new') {
      const file = this.cache.stagingFile(path);
      await fsp.mkdir(nodePath.dirname(file), { recursive: true });
      let fh: fsp.FileHandle;
      try {
        fh = await fsp.open(file, C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o644);
      } catch (e) {
        throw ioError('open', path, e);
      }
      return new UploadHandle(this, fh, file, path, kind, this.handles.add(path, kind, mode));
    }
    throw invalidArgument(`${path}: files in object storage are written once ('create-new') or read`);
  }

  async writeFileAtomic(path: string, chunks: readonly Uint8Array[], kind: FileKind): Promise<void> {
    checkPath(path);
    if (!isRemote(path)) return this.local.writeFileAtomic(path, chunks, kind);
    this.check();
    this.checkWritable(path);
    const body = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
    const meta = META_RE.exec(nodePath.posix.basename(path));
    if (meta !== null && path.startsWith('ckp/')) {
      await this.claim.publish(path, Number.parseInt(meta[1]!, 16), body);
      return;
    }
    const fenced = this.claim.fencedError;
    if (fenced !== undefined) throw fenced;
    try {
      await this.client.putNew(path, body);
    } catch (e) {
      // A file of that name that this writer deleted itself (a failed attempt's, waiting for its
      // grace period) is replaced. Any other is left alone, whoever wrote it (a writer that lost its
      // claim may still have requests on the way): the write fails, and the next attempt takes
      // another name.
      if (statusOf(e) !== 412 || !this.gc.has(path)) throw e;
      await this.gc.purge(path);
      await this.client.putNew(path, body);
    }
  }

  async list(dir: string): Promise<string[]> {
    checkPath(dir);
    if (!isRemote(dir) || dir.includes('/')) return this.local.list(dir);
    this.check();
    const names: string[] = [];
    for (const name of await this.client.listKeys(dir)) {
      if (name.includes('/') || this.gc.has(`${dir}/${name}`)) continue;
      // Meta files past the published one were never published (their writer lost its claim).
      const m = META_RE.exec(name);
      if (dir === 'ckp' && m !== null && Number.parseInt(m[1]!, 16) > this.publishedSeq()) continue;
      names.push(name);
    }
    return names;
  }

  async stat(path: string): Promise<FileStat | undefined> {
    checkPath(path);
    if (!isRemote(path)) return this.local.stat(path);
    if (path === 'obj' || path === 'ckp') return { size: 0, isDirectory: true };
    this.check();
    if (this.gc.has(path)) return undefined;
    const size = await this.client.head(path);
    return size === undefined ? undefined : { size, isDirectory: false };
  }

  async rename(from: string, to: string): Promise<void> {
    if (isRemote(from) || isRemote(to))
      throw invalidArgument(`rename ${from} -> ${to}: files in object storage are not renamed`);
    return this.local.rename(from, to);
  }

  async delete(path: string): Promise<boolean> {
    checkPath(path);
    if (!isRemote(path)) return this.local.delete(path);
    this.check();
    this.checkWritable(path);
    if (this.gc.has(path)) return false;
    const existed = (await this.client.head(path)) !== undefined;
    if (existed) {
      if (this.o.gcGraceMs === 0) await this.client.deleteRaw(path);
      else {
        // Gone for this writer now; in the bucket until the grace period ends (replicas may read it).
        await this.gc.hide(path, this.o.gcGraceMs);
      }
    }
    await this.cache.forget(path);
    return existed;
  }

  async mkdir(dir: string): Promise<void> {
    if (!isRemote(dir)) return this.local.mkdir(dir);
  }

  async syncDir(dir: string): Promise<void> {
    // A completed upload is durable: the bucket has no directory entries to sync.
    if (!isRemote(dir)) return this.local.syncDir(dir);
  }

  /** The local LOCK, then the writer's claim on the prefix (LOCKED if another writer holds it). */
  async lock(): Promise<DirectoryLock> {
    const localLock = await this.local.lock();
    if (this.mode === 'replica') {
      try {
        await this.cache.reset();
        await this.refreshPublished();
      } catch (e) {
        await localLock.release().catch(() => undefined);
        throw e;
      }
      return localLock;
    }
    try {
      await this.cache.reset();
      await this.claim.take();
    } catch (e) {
      await localLock.release().catch(() => undefined);
      throw e;
    }
    this.claim.startRenewing();
    return {
      path: localLock.path,
      release: async () => {
        this.claim.stopRenewing();
        await this.claim
          .release()
          .catch((e: unknown) =>
            this.logger?.warn({ err: e }, 'could not release the writer claim; it lapses with its lease'),
          );
        await localLock.release();
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.claim.stopRenewing();
    await this.gc.settled();
    try {
      await this.cache.close();
    } finally {
      this.client.destroy();
      await this.local.close();
    }
  }

  // ---- the claim ----

  /**
   * A replica: read the writer's claim again; resolves with the newest published meta file's
   * sequence number (0 if nothing was ever published).
   */
  async refreshPublished(): Promise<number> {
    return this.claim.refreshPublished();
  }

  private checkWritable(path: string): void {
    if (this.mode === 'replica')
      throw new TidemarkError('READ_ONLY', `${path}: a read replica writes nothing to object storage`);
  }

  /** The newest published meta file's sequence number. */
  publishedSeq(): number {
    return this.claim.publishedSeq();
  }

  /** Whether this writer lost its claim (then it publishes nothing). */
  get fencedError(): TidemarkError | undefined {
    return this.claim.fencedError;
  }

  /** Delete what passed its grace period (the object, then its marker). One sweep at a time. */
  sweep(): Promise<void> {
    return this.gc.sweep();
  }

  // ---- requests ----

  private check(): void {
    if (this.closed) throw new TidemarkError('CLOSED', `the file service of ${this.root} is closed`);
  }

  /** One request to the bucket, retried on what may pass, then IO (see BucketClient.send). */
  async send<T>(op: string, path: string, attempt: () => Promise<T>): Promise<T> {
    return this.client.send(op, path, attempt);
  }

  /** Upload a staged local file under `path` (a new key): one PUT, or parts past partBytes. */
  async upload(path: string, file: string, size: number): Promise<void> {
    const fenced = this.claim.fencedError;
    if (fenced !== undefined) throw fenced;
    await uploadFile(this.client, this.counters, this.logger, this.o.partBytes, path, file, size);
  }

  /** @internal A staged object, uploaded and closed: its local file becomes its cached copy. */
  async cacheAdopt(path: string, file: string, size: number): Promise<void> {
    await this.cache.adopt(path, file, size);
  }

  stats(): ObjectStoreStats {
    return {
      bucket: this.o.bucket,
      prefix: this.o.prefix,
      ...this.counters,
      pendingDeletes: this.gc.size,
      publishedSeq: this.publishedSeq(),
      fenced: this.claim.fencedError !== undefined,
      cache: this.cache.stats(),
    };
  }
}
