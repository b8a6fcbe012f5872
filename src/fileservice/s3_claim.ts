import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { TidemarkError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LocalFileService } from './local.js';
import type { GraceDeletes } from './s3_gc.js';
import type { ResolvedObjectStore } from './s3_options.js';
import { statusOf, type BucketClient } from './s3_requests.js';

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
/** A checkpoint meta file's name, with its sequence number in hex. */
export const META_RE = /^meta-([0-9a-f]+)\.ckp$/;

/**
 * One writer per prefix: the writer takes the claim object `CLAIM` with a conditional write (a
 * second writer is LOCKED while the claim's lease runs), renews it every third of the lease, and
 * publishes each checkpoint by compare-and-swap on it (`If-Match` its ETag): a writer that lost its
 * claim (another took the prefix over after its lease lapsed) is fenced and cannot publish a meta
 * file. A replica only reads the claim, for the newest published meta file. The lease assumes the
 * writers' clocks agree to well within `leaseMs`.
 */
export class WriterClaim {
  /** Who this writer is: kept in DIR/WRITER-ID, so that a restart on the same directory is known. */
  private writerId: string = randomUUID();
  private current: { etag: string; body: Claim } | undefined;
  /** Set once the claim is lost: no more publishing. */
  private fenced: TidemarkError | undefined;
  /** Claim updates (renewals, publications) one at a time: each needs the previous one's ETag. */
  private claimChain: Promise<unknown> = Promise.resolve();
  private renewTimer: NodeJS.Timeout | undefined;
  private lastRenewed = 0;

  constructor(
    private readonly client: BucketClient,
    private readonly local: LocalFileService,
    private readonly gc: GraceDeletes,
    private readonly o: ResolvedObjectStore,
    private readonly logger: Logger | undefined,
  ) {}

  /**
   * A replica: read the writer's claim again; resolves with the newest published meta file's
   * sequence number (0 if nothing was ever published).
   */
  async refreshPublished(): Promise<number> {
    const cur = await this.readClaim();
    if (cur !== undefined) this.current = cur;
    return this.publishedSeq();
  }

  /** The newest published meta file's sequence number. */
  publishedSeq(): number {
    return this.current?.body.metaSeq ?? 0;
  }

  /** Whether this writer lost its claim (then it publishes nothing). */
  get fencedError(): TidemarkError | undefined {
    return this.fenced;
  }

  private async readClaim(): Promise<{ etag: string; body: Claim } | undefined> {
    try {
      const res = await this.client.send('read claim', CLAIM_KEY, () =>
        this.client.s3.send(
          new GetObjectCommand({ Bucket: this.o.bucket, Key: this.client.key(CLAIM_KEY) }),
          this.client.timeLimit(),
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
    const res = await this.client.send('write claim', CLAIM_KEY, () =>
      this.client.s3.send(
        new PutObjectCommand({
          Bucket: this.o.bucket,
          Key: this.client.key(CLAIM_KEY),
          Body: JSON.stringify(body),
          ContentType: 'application/json',
          ...(etag === undefined ? { IfNoneMatch: '*' } : { IfMatch: etag }),
        }),
        this.client.timeLimit(),
      ),
    );
    return res.ETag!;
  }

  /** Take the prefix: LOCKED while another writer's lease runs; a lapsed one is taken over. */
  async take(): Promise<void> {
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
    this.current = { etag, body };
    this.lastRenewed = now;
    if (cur !== undefined && !cur.body.released && !mine)
      this.logger?.warn(
        { previous: cur.body, epoch: body.epoch },
        'took over an object-storage prefix whose writer let its lease lapse',
      );
    // Meta files past the published one were written by a writer that lost its claim: never published.
    for (const name of await this.client.listKeys('ckp')) {
      const m = META_RE.exec(name);
      if (m !== null && Number.parseInt(m[1]!, 16) > body.metaSeq) await this.client.deleteRaw(`ckp/${name}`);
    }
    // Deletions still in their grace period stay deleted for this writer.
    await this.gc.load();
    await this.gc.sweep();
  }

  /** Run a claim update after the ones before it; a 412 means the claim is lost. */
  private updateClaim(change: (c: Claim) => Claim): Promise<void> {
    const run = this.claimChain.then(async () => {
      if (this.fenced !== undefined) throw this.fenced;
      const cur = this.current!;
      const next = change(cur.body);
      try {
        this.current = { etag: await this.writeClaim(next, cur.etag), body: next };
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

  startRenewing(): void {
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
      if (this.gc.size > 0 && this.fenced === undefined)
        this.gc
          .sweep()
          .catch((e: unknown) => this.logger?.warn({ err: e }, 'object storage GC sweep failed'));
    }, every);
    this.renewTimer.unref();
  }

  stopRenewing(): void {
    if (this.renewTimer !== undefined) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  /** Mark the claim released (a clean close): the next writer need not wait for the lease. */
  async release(): Promise<void> {
    if (this.current === undefined || this.fenced !== undefined) return;
    await this.updateClaim((c) => ({ ...c, released: true, renewedAt: Date.now() }));
  }

  /** Publish a checkpoint: its meta file (a new key), then the claim pointed at it (If-Match). */
  async publish(path: string, seq: number, body: Buffer): Promise<void> {
    if (this.fenced !== undefined) throw this.fenced;
    // A meta file of that number may exist (left by a writer that lost its claim, whose requests
    // may still be on the way): then the publication fails, and the next takes the next number.
    // Nothing is deleted here: whether the claim's update took effect may be unknown (a timeout),
    // and an unpublished meta file is invisible anyway (and removed by the next writer to claim).
    await this.client.putNew(path, body);
    await this.updateClaim((c) => ({ ...c, metaSeq: Math.max(c.metaSeq, seq), renewedAt: Date.now() }));
  }
}
