import { constants as C, createReadStream, promises as fsp } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import * as nodePath from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { invalidArgument, ioError, TidemarkError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LocalFileService } from './local.js';
import { checkPath } from './paths.js';
import type { HandleRegistry } from './registry.js';
import { ObjectCache } from './s3_cache.js';
import { FencedHandle, UploadHandle, type UploadTarget } from './s3_handles.js';
import { resolveObjectStore, type ObjectStoreOptions, type ResolvedObjectStore } from './s3_options.js';
import type { DirectoryLock, FileHandle, FileService, FileStat, OpenOptions } from './types.js';
import type { FileKind, OpenMode } from './kinds.js';

export interface ObjectStoreStats {
  bucket: string;
  prefix: string;
  /** Requests made (every attempt), retried, and failed for good. */
  requests: number;
  retries: number;
  failures: number;
  uploads: number;
  multipartUploads: number;
  downloads: number;
  /** Files deleted from the bucket after their grace period, and files waiting for it. */
  collected: number;
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

/** The writer's claim on a prefix, and the pointer to the newest published checkpoint meta file. */
interface Claim {
  writer: string;
  host: string;
  pid: number;
  /** Incremented by every writer that takes the prefix over. */
  epoch: number;
  /** The sequence number of the newest published meta file (0: none). */
  metaSeq: number;
  /** When the writer last renewed its claim (its wall clock, ms). */
  renewedAt: number;
  /** Set by a writer that closed cleanly: the next one need not wait for the lease. */
  released: boolean;
}

const CLAIM_KEY = 'CLAIM';
/** Deletions waiting for their grace period: `gc/<when, 16 hex digits>-<path, '/' as '!'>`. */
const GC_DIR = 'gc';
const gcMarker = (dueMs: number, path: string) =>
  `${GC_DIR}/${dueMs.toString(16).padStart(16, '0')}-${path.replace(/\//g, '!')}`;
function parseGcMarker(name: string): { dueMs: number; path: string } | undefined {
  const m = /^([0-9a-f]{16})-(.+)$/.exec(name);
  return m === null ? undefined : { dueMs: Number.parseInt(m[1]!, 16), path: m[2]!.replace(/!/g, '/') };
}
const META_RE = /^meta-([0-9a-f]+)\.ckp$/;

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
  private readonly client: S3Client;
  private readonly o: ResolvedObjectStore;
  private readonly cache: ObjectCache;
  /** Who this writer is: kept in DIR/WRITER-ID, so that a restart on the same directory is known. */
  private writerId: string = randomUUID();
  private claim: { etag: string; body: Claim } | undefined;
  /** Set once the claim is lost: no more publishing. */
  private fenced: TidemarkError | undefined;
  /** Claim updates (renewals, publications) one at a time: each needs the previous one's ETag. */
  private claimChain: Promise<unknown> = Promise.resolve();
  private renewTimer: NodeJS.Timeout | undefined;
  /** Paths deleted and waiting for their grace period: gone for the writer, still there for replicas. */
  private readonly hidden = new Map<string, string>();
  private sweeping: Promise<void> | undefined;
  private lastRenewed = 0;
  private closed = false;
  /** Requests retried, and requests that failed for good (for tests and stats). */
  readonly counters = {
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
    this.client = new S3Client({
      region: this.o.region,
      ...(this.o.endpoint !== undefined ? { endpoint: this.o.endpoint, forcePathStyle: true } : {}),
      ...(this.o.accessKeyId !== undefined
        ? { credentials: { accessKeyId: this.o.accessKeyId, secretAccessKey: this.o.secretAccessKey! } }
        : {}),
      // Retries are ours (bounded, logged, counted).
      maxAttempts: 1,
      // The SDK's own messages go to our log, not to the console (without a logger it warns on
      // the console about each failed upload it will not retry: ours retries it).
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: (...m: unknown[]) => this.logger?.debug({ sdk: m }, 'object storage client'),
        error: (...m: unknown[]) => this.logger?.warn({ sdk: m }, 'object storage client'),
      },
    });
    this.cache = new ObjectCache(local, this.o.cacheBytes, (path, file) => this.download(path, file));
  }

  /** The bucket key of a path. */
  key(path: string): string {
    return this.o.prefix + path;
  }

  // ---- FileService ----

  async open(path: string, mode: OpenMode, kind: FileKind, options: OpenOptions = {}): Promise<FileHandle> {
    checkPath(path);
    if (!isRemote(path)) {
      const h = await this.local.open(path, mode, kind, options);
      // A writer that lost its claim must not acknowledge commits it can never publish: its WAL
      // refuses writes (the WAL fails, and every commit with it, naming the lost claim).
      return kind === 'wal' && mode !== 'read' ? new FencedHandle(h, () => this.fenced) : h;
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
      await this.publish(path, Number.parseInt(meta[1]!, 16), body);
      return;
    }
    if (this.fenced !== undefined) throw this.fenced;
    try {
      await this.putNew(path, body);
    } catch (e) {
      // A file of that name that this writer deleted itself (a failed attempt's, waiting for its
      // grace period) is replaced. Any other is left alone, whoever wrote it (a writer that lost its
      // claim may still have requests on the way): the write fails, and the next attempt takes
      // another name.
      const marker = this.hidden.get(path);
      if (statusOf(e) !== 412 || marker === undefined) throw e;
      await this.deleteRaw(path);
      await this.deleteRaw(marker);
      this.hidden.delete(path);
      await this.putNew(path, body);
    }
  }

  async list(dir: string): Promise<string[]> {
    checkPath(dir);
    if (!isRemote(dir) || dir.includes('/')) return this.local.list(dir);
    this.check();
    const names: string[] = [];
    for (const name of await this.listKeys(dir)) {
      if (name.includes('/') || this.hidden.has(`${dir}/${name}`)) continue;
      // Meta files past the published one were never published (their writer lost its claim).
      const m = META_RE.exec(name);
      if (dir === 'ckp' && m !== null && Number.parseInt(m[1]!, 16) > this.publishedSeq()) continue;
      names.push(name);
    }
    return names;
  }

  /** The names of the keys under `P/dir/`, sorted (every page of the listing). */
  private async listKeys(dir: string): Promise<string[]> {
    const names: string[] = [];
    const prefix = this.key(`${dir}/`);
    let token: string | undefined;
    do {
      const res = await this.send('list', dir, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.o.bucket,
            Prefix: prefix,
            ...(token !== undefined ? { ContinuationToken: token } : {}),
          }),
          this.timeLimit(),
        ),
      );
      for (const c of res.Contents ?? []) {
        const name = c.Key!.slice(prefix.length);
        if (name !== '') names.push(name);
      }
      token = res.IsTruncated === true ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
    return names.sort();
  }

  async stat(path: string): Promise<FileStat | undefined> {
    checkPath(path);
    if (!isRemote(path)) return this.local.stat(path);
    if (path === 'obj' || path === 'ckp') return { size: 0, isDirectory: true };
    this.check();
    if (this.hidden.has(path)) return undefined;
    const size = await this.head(path);
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
    if (this.hidden.has(path)) return false;
    const existed = (await this.head(path)) !== undefined;
    if (existed) {
      if (this.o.gcGraceMs === 0) await this.deleteRaw(path);
      else {
        // Gone for this writer now; in the bucket until the grace period ends (replicas may read it).
        const marker = gcMarker(Date.now() + this.o.gcGraceMs, path);
        await this.putNew(marker, Buffer.alloc(0));
        this.hidden.set(path, marker);
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
      await this.takeClaim();
    } catch (e) {
      await localLock.release().catch(() => undefined);
      throw e;
    }
    this.startRenewing();
    return {
      path: localLock.path,
      release: async () => {
        this.stopRenewing();
        await this.releaseClaim().catch((e: unknown) =>
          this.logger?.warn({ err: e }, 'could not release the writer claim; it lapses with its lease'),
        );
        await localLock.release();
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopRenewing();
    await this.sweeping?.catch(() => undefined);
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
    const cur = await this.readClaim();
    if (cur !== undefined) this.claim = cur;
    return this.publishedSeq();
  }

  private checkWritable(path: string): void {
    if (this.mode === 'replica')
      throw new TidemarkError('READ_ONLY', `${path}: a read replica writes nothing to object storage`);
  }

  /** The newest published meta file's sequence number. */
  publishedSeq(): number {
    return this.claim?.body.metaSeq ?? 0;
  }

  /** Whether this writer lost its claim (then it publishes nothing). */
  get fencedError(): TidemarkError | undefined {
    return this.fenced;
  }

  private async readClaim(): Promise<{ etag: string; body: Claim } | undefined> {
    try {
      const res = await this.send('read claim', CLAIM_KEY, () =>
        this.client.send(
          new GetObjectCommand({ Bucket: this.o.bucket, Key: this.key(CLAIM_KEY) }),
          this.timeLimit(),
        ),
      );
      const text = await res.Body!.transformToString();
      return { etag: res.ETag!, body: JSON.parse(text) as Claim };
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
  }

  /** Write the claim: new (If-None-Match) or replacing the one with `etag` (If-Match). */
  private async writeClaim(body: Claim, etag: string | undefined): Promise<string> {
    const res = await this.send('write claim', CLAIM_KEY, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.o.bucket,
          Key: this.key(CLAIM_KEY),
          Body: JSON.stringify(body),
          ContentType: 'application/json',
          ...(etag === undefined ? { IfNoneMatch: '*' } : { IfMatch: etag }),
        }),
        this.timeLimit(),
      ),
    );
    return res.ETag!;
  }

  private async takeClaim(): Promise<void> {
    // The same directory is the same writer: holding its LOCK proves the process that claimed the
    // prefix from here is gone (a restart after a crash need not wait for the lease).
    const idFile = this.local.resolve('WRITER-ID');
    const saved = await fsp.readFile(idFile, 'utf8').catch(() => undefined);
    if (saved !== undefined && /^[0-9a-f-]{36}$/.test(saved.trim())) this.writerId = saved.trim();
    else {
      await fsp.writeFile(idFile, this.writerId);
      await this.local.syncDir('');
    }
    const cur = await this.readClaim();
    const now = Date.now();
    const mine = cur?.body.writer === this.writerId;
    if (cur !== undefined && !cur.body.released && !mine && now - cur.body.renewedAt < this.o.leaseMs) {
      throw new TidemarkError(
        'LOCKED',
        `s3://${this.o.bucket}/${this.o.prefix} is held by another writer (${cur.body.host}, pid ${cur.body.pid}, renewed ${now - cur.body.renewedAt} ms ago; its lease is ${this.o.leaseMs} ms)`,
        { details: { bucket: this.o.bucket, prefix: this.o.prefix, holder: cur.body } },
      );
    }
    const body: Claim = {
      writer: this.writerId,
      host: hostname(),
      pid: process.pid,
      epoch: (cur?.body.epoch ?? 0) + 1,
      metaSeq: cur?.body.metaSeq ?? 0,
      renewedAt: now,
      released: false,
    };
    let etag: string;
    try {
      etag = await this.writeClaim(body, cur?.etag);
    } catch (e) {
      if (statusOf(e) === 412)
        throw new TidemarkError(
          'LOCKED',
          `another writer claimed s3://${this.o.bucket}/${this.o.prefix} first`,
          {
            cause: e,
          },
        );
      throw e;
    }
    this.claim = { etag, body };
    this.lastRenewed = now;
    if (cur !== undefined && !cur.body.released && !mine)
      this.logger?.warn(
        { previous: cur.body, epoch: body.epoch },
        'took over an object-storage prefix whose writer let its lease lapse',
      );
    // Meta files past the published one were written by a writer that lost its claim: never published.
    for (const name of await this.listKeys('ckp')) {
      const m = META_RE.exec(name);
      if (m !== null && Number.parseInt(m[1]!, 16) > body.metaSeq) await this.deleteRaw(`ckp/${name}`);
    }
    // Deletions still in their grace period stay deleted for this writer.
    for (const name of await this.listGc()) {
      const g = parseGcMarker(name);
      if (g !== undefined) this.hidden.set(g.path, `${GC_DIR}/${name}`);
    }
    await this.sweep();
  }

  private listGc(): Promise<string[]> {
    return this.listKeys(GC_DIR);
  }

  /** Delete what passed its grace period (the object, then its marker). One sweep at a time. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        const now = Date.now();
        for (const name of await this.listGc()) {
          const g = parseGcMarker(name);
          if (g === undefined) continue;
          if (g.dueMs > now) break; // sorted by due time
          await this.deleteRaw(g.path);
          await this.deleteRaw(`${GC_DIR}/${name}`);
          this.hidden.delete(g.path);
          this.counters.collected++;
        }
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  /** Run a claim update after the ones before it; a 412 means the claim is lost. */
  private updateClaim(change: (c: Claim) => Claim): Promise<void> {
    const run = this.claimChain.then(async () => {
      if (this.fenced !== undefined) throw this.fenced;
      const cur = this.claim!;
      const next = change(cur.body);
      try {
        this.claim = { etag: await this.writeClaim(next, cur.etag), body: next };
        this.lastRenewed = Date.now();
      } catch (e) {
        if (statusOf(e) === 412) this.fence('another writer took the prefix over', e);
        throw this.fenced ?? e;
      }
    });
    this.claimChain = run.catch(() => undefined);
    return run;
  }

  private fence(why: string, cause?: unknown): void {
    if (this.fenced !== undefined) return;
    this.fenced = new TidemarkError(
      'LOCKED',
      `this writer lost its claim on s3://${this.o.bucket}/${this.o.prefix} (${why}): it publishes no more checkpoints`,
      { cause },
    );
    this.stopRenewing();
    this.logger?.error({ err: this.fenced }, 'lost the object-storage writer claim');
  }

  private startRenewing(): void {
    const every = Math.max(100, Math.floor(this.o.leaseMs / 3));
    this.renewTimer = setInterval(() => {
      if (Date.now() - this.lastRenewed >= this.o.leaseMs) {
        // Not renewed for a whole lease: another writer may hold the prefix by now.
        this.fence(`not renewed for ${this.o.leaseMs} ms`);
        return;
      }
      this.updateClaim((c) => ({ ...c, renewedAt: Date.now() })).catch((e: unknown) => {
        if (this.fenced === undefined) this.logger?.warn({ err: e }, 'could not renew the writer claim');
      });
      if (this.hidden.size > 0 && this.fenced === undefined)
        this.sweep().catch((e: unknown) => this.logger?.warn({ err: e }, 'object storage GC sweep failed'));
    }, every);
    this.renewTimer.unref();
  }

  private stopRenewing(): void {
    if (this.renewTimer !== undefined) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  private async releaseClaim(): Promise<void> {
    if (this.claim === undefined || this.fenced !== undefined) return;
    await this.updateClaim((c) => ({ ...c, released: true, renewedAt: Date.now() }));
  }

  /** Publish a checkpoint: its meta file (a new key), then the claim pointed at it (If-Match). */
  private async publish(path: string, seq: number, body: Buffer): Promise<void> {
    if (this.fenced !== undefined) throw this.fenced;
    // A meta file of that number may exist (left by a writer that lost its claim, whose requests
    // may still be on the way): then the publication fails, and the next takes the next number.
    // Nothing is deleted here: whether the claim's update took effect may be unknown (a timeout),
    // and an unpublished meta file is invisible anyway (and removed by the next writer to claim).
    await this.putNew(path, body);
    await this.updateClaim((c) => ({ ...c, metaSeq: Math.max(c.metaSeq, seq), renewedAt: Date.now() }));
  }

  // ---- requests ----

  private check(): void {
    if (this.closed) throw new TidemarkError('CLOSED', `the file service of ${this.root} is closed`);
  }

  /**
   * One request, retried on what may pass (timeouts, network errors, 5xx, throttling) with
   * exponential backoff and jitter, `attempts` times at most; then IO. Other errors fail at once
   * (404 and 412 keep their status in the error's details).
   */
  async send<T>(op: string, path: string, attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      this.counters.requests++;
      try {
        this.beforeRequest?.(op, this.key(path));
        return await attempt();
      } catch (e) {
        const status = statusOf(e);
        if (status === 404 || status === 412 || !retryable(e) || n >= this.o.attempts) {
          if (status !== 404 && status !== 412) this.counters.failures++;
          throw storeError(op, `s3://${this.o.bucket}/${this.key(path)}`, e, n);
        }
        this.counters.retries++;
        const delay = Math.min(2000, 50 * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
        this.logger?.debug({ op, path, attempt: n, err: e }, 'object storage request failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Each attempt's time limit, for the client's send. */
  private timeLimit(): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout(this.o.requestTimeoutMs) };
  }

  /** Size of an object, or undefined if there is none. */
  private async head(path: string): Promise<number | undefined> {
    try {
      const res = await this.send('stat', path, () =>
        this.client.send(
          new HeadObjectCommand({ Bucket: this.o.bucket, Key: this.key(path) }),
          this.timeLimit(),
        ),
      );
      return res.ContentLength ?? 0;
    } catch (e) {
      if (e instanceof TidemarkError && e.details?.['status'] === 404) return undefined;
      throw e;
    }
  }

  private async deleteRaw(path: string): Promise<void> {
    await this.send('delete', path, () =>
      this.client.send(
        new DeleteObjectCommand({ Bucket: this.o.bucket, Key: this.key(path) }),
        this.timeLimit(),
      ),
    );
  }

  /** PUT a whole small file under a key that must be new. */
  private async putNew(path: string, body: Buffer): Promise<void> {
    await this.send('put', path, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.o.bucket, Key: this.key(path), Body: body, IfNoneMatch: '*' }),
        this.timeLimit(),
      ),
    );
    this.counters.uploads++;
  }

  /** Upload a staged local file under `path` (a new key): one PUT, or parts past partBytes. */
  async upload(path: string, file: string, size: number): Promise<void> {
    if (this.fenced !== undefined) throw this.fenced;
    const key = this.key(path);
    const part = this.o.partBytes;
    if (size <= part) {
      await this.send('upload', path, () =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.o.bucket,
            Key: key,
            Body: createReadStream(file),
            ContentLength: size,
            IfNoneMatch: '*',
          }),
          this.timeLimit(),
        ),
      );
      this.counters.uploads++;
      return;
    }
    const created = await this.send('start multipart upload', path, () =>
      this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.o.bucket, Key: key }),
        this.timeLimit(),
      ),
    );
    const uploadId = created.UploadId!;
    try {
      const parts: { ETag: string; PartNumber: number }[] = [];
      for (let at = 0, n = 1; at < size; at += part, n++) {
        const end = Math.min(size, at + part);
        const res = await this.send(`upload part ${n}`, path, () =>
          this.client.send(
            new UploadPartCommand({
              Bucket: this.o.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: n,
              Body: createReadStream(file, { start: at, end: end - 1 }),
              ContentLength: end - at,
            }),
            this.timeLimit(),
          ),
        );
        parts.push({ ETag: res.ETag!, PartNumber: n });
      }
      await this.send('complete multipart upload', path, () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.o.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
            IfNoneMatch: '*',
          }),
          this.timeLimit(),
        ),
      );
      this.counters.multipartUploads++;
    } catch (e) {
      // Nothing half-published: the parts go.
      await this.send('abort multipart upload', path, () =>
        this.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.o.bucket, Key: key, UploadId: uploadId }),
          this.timeLimit(),
        ),
      ).catch((err: unknown) =>
        this.logger?.warn({ err, path }, 'could not abort a failed multipart upload'),
      );
      throw e;
    }
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
      pendingDeletes: this.hidden.size,
      publishedSeq: this.publishedSeq(),
      fenced: this.fenced !== undefined,
      cache: this.cache.stats(),
    };
  }

  /** Download an object into a local file (written whole, then renamed into place). */
  private async download(path: string, file: string): Promise<number> {
    const tmp = `${file}.${process.pid}.part`;
    await fsp.mkdir(nodePath.dirname(file), { recursive: true });
    const size = await this.send('download', path, async () => {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.o.bucket, Key: this.key(path) }),
        this.timeLimit(),
      );
      const bytes = await res.Body!.transformToByteArray();
      await fsp.writeFile(tmp, bytes);
      return bytes.length;
    });
    await fsp.rename(tmp, file);
    this.counters.downloads++;
    return size;
  }
}

function statusOf(e: unknown): number | undefined {
  if (e instanceof TidemarkError) {
    const s = e.details?.['status'];
    return typeof s === 'number' ? s : undefined;
  }
  return (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

const RETRYABLE_NAMES = new Set([
  'TimeoutError',
  'AbortError',
  'RequestTimeout',
  'RequestTimeoutException',
  'SlowDown',
  'ThrottlingException',
  'Throttling',
  'ServiceUnavailable',
  'InternalError',
]);
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

function retryable(e: unknown): boolean {
  const status = statusOf(e);
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  const name = (e as { name?: unknown } | null)?.name;
  const code = (e as { code?: unknown } | null)?.code;
  return (
    (typeof name === 'string' && RETRYABLE_NAMES.has(name)) ||
    (typeof code === 'string' && RETRYABLE_CODES.has(code)) ||
    (e as { $retryable?: unknown } | null)?.$retryable !== undefined
  );
}

function storeError(op: string, where: string, cause: unknown, attempts: number): TidemarkError {
  if (cause instanceof TidemarkError) return cause;
  const status = statusOf(cause);
  const msg = cause instanceof Error ? cause.message || cause.name : String(cause);
  return new TidemarkError(
    'IO',
    `object storage: ${op} ${where}: ${msg}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`,
    {
      cause,
      details: { op, path: where, status, attempts },
    },
  );
}
