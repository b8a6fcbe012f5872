import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { TidemarkError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ResolvedObjectStore } from './s3_options.js';

/** Requests made (every attempt), retried, and failed for good (for tests and stats). */
export interface ObjectStoreCounters {
  requests: number;
  retries: number;
  failures: number;
  uploads: number;
  multipartUploads: number;
  downloads: number;
  /** Files deleted from the bucket after their grace period. */
  collected: number;
}

/**
 * The requests of an ObjectStoreFileService to its bucket, under its prefix: each retried on what
 * may pass, with a time limit per attempt, and counted.
 */
export class BucketClient {
  /** The AWS SDK's client, for requests built elsewhere (sent through `send`). */
  readonly s3: S3Client;

  constructor(
    private readonly o: ResolvedObjectStore,
    private readonly counters: ObjectStoreCounters,
    private readonly logger: Logger | undefined,
    /** For tests: runs before each attempt of each request; may throw to simulate a failure. */
    private readonly beforeRequest: ((op: string, key: string) => void) | undefined,
  ) {
    this.s3 = new S3Client({
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
  }

  get bucket(): string {
    return this.o.bucket;
  }

  /** The bucket key of a path. */
  key(path: string): string {
    return this.o.prefix + path;
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
  timeLimit(): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout(this.o.requestTimeoutMs) };
  }

  /** The names of the keys under `P/dir/`, sorted (every page of the listing). */
  async listKeys(dir: string): Promise<string[]> {
    const names: string[] = [];
    const prefix = this.key(`${dir}/`);
    let token: string | undefined;
    do {
      const res = await this.send('list', dir, () =>
        this.s3.send(
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

  /** Size of an object, or undefined if there is none. */
  async head(path: string): Promise<number | undefined> {
    try {
      const res = await this.send('stat', path, () =>
        this.s3.send(new HeadObjectCommand({ Bucket: this.o.bucket, Key: this.key(path) }), this.timeLimit()),
      );
      return res.ContentLength ?? 0;
    } catch (e) {
      if (e instanceof TidemarkError && e.details?.['status'] === 404) return undefined;
      throw e;
    }
  }

  async deleteRaw(path: string): Promise<void> {
    await this.send('delete', path, () =>
      this.s3.send(new DeleteObjectCommand({ Bucket: this.o.bucket, Key: this.key(path) }), this.timeLimit()),
    );
  }

  /** PUT a whole small file under a key that must be new. */
  async putNew(path: string, body: Buffer): Promise<void> {
    await this.send('put', path, () =>
      this.s3.send(
        new PutObjectCommand({ Bucket: this.o.bucket, Key: this.key(path), Body: body, IfNoneMatch: '*' }),
        this.timeLimit(),
      ),
    );
    this.counters.uploads++;
  }

  /** Download an object into a local file (written whole, then renamed into place). */
  async download(path: string, file: string): Promise<number> {
    const tmp = `${file}.${process.pid}.part`;
    await fsp.mkdir(nodePath.dirname(file), { recursive: true });
    const size = await this.send('download', path, async () => {
      const res = await this.s3.send(
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

  destroy(): void {
    this.s3.destroy();
  }
}

export function statusOf(e: unknown): number | undefined {
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
