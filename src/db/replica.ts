import type { Catalog } from '../catalog/catalog.js';
import { loadChain } from '../checkpoint/recovery.js';
import type { ObjectStoreFileService } from '../fileservice/s3.js';
import type { Logger } from '../log.js';
import type { MemoryPool } from '../mem/pool.js';
import type { TxnManager } from '../txn/manager.js';
import type { Storage } from '../storage/storage.js';

export interface ReplicaStats {
  /** The sequence number of the checkpoint meta file the replica serves. */
  metaSeq: number;
  /** Its commit timestamp (the newest commit the replica's reads see). */
  ts: number;
  /** Moves to a newer checkpoint so far. */
  refreshes: number;
  /** Newer checkpoints seen but not taken yet because a transaction or snapshot was open. */
  postponed: number;
  /** When it last looked (ms since the epoch), and the last failure to, if any. */
  lastCheckMs: number;
  lastError: string | undefined;
}

/**
 * What makes a database a read replica of an object-storage prefix: every `refreshMs` it reads the
 * writer's published checkpoint pointer, and when a newer checkpoint is there, loads it and moves
 * every table to its object lists. It moves only while no transaction, snapshot or scan is open on
 * the replica (their snapshot must keep seeing one state); a newer checkpoint waits meanwhile.
 *
 * How far behind: a replica shows the writer's state as of the writer's newest published
 * checkpoint (commits after it are in the writer's WAL only), at most `refreshMs` (plus the time to
 * load it) after it was published, unless a snapshot held on the replica keeps it where it is.
 */
export class ReplicaRefresher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<boolean> | undefined;
  private stopped = false;
  readonly stats: ReplicaStats;

  constructor(
    private readonly fs: ObjectStoreFileService,
    private readonly storage: Storage,
    private readonly catalog: Catalog,
    private readonly txns: TxnManager,
    private readonly pool: MemoryPool,
    private readonly logger: Logger,
    private readonly refreshMs: number,
    metaSeq: number,
    ts: number,
  ) {
    this.stats = { metaSeq, ts, refreshes: 0, postponed: 0, lastCheckMs: Date.now(), lastError: undefined };
  }

  start(): void {
    this.timer = setInterval(() => {
      this.refresh().catch(() => undefined);
    }, this.refreshMs);
    this.timer.unref();
  }

  /** Look for a newer checkpoint now; resolves true if the replica moved to one. */
  refresh(): Promise<boolean> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async run(): Promise<boolean> {
    if (this.stopped) return false;
    this.stats.lastCheckMs = Date.now();
    try {
      const seq = await this.fs.refreshPublished();
      if (seq <= this.stats.metaSeq) return false;
      if (this.txns.activeCount > 0) {
        this.stats.postponed++;
        return false;
      }
      const loaded = await loadChain(this.fs, this.pool, this.logger);
      const newest = loaded.newest;
      if (newest === undefined || newest.meta.seq <= this.stats.metaSeq || this.stopped) return false;
      const moved = await this.storage.adoptState(
        newest.state,
        () => this.txns.activeCount === 0 && !this.stopped,
      );
      if (!moved) {
        this.stats.postponed++;
        return false;
      }
      const point = newest.point;
      const endTs = newest.meta.chain[newest.meta.chain.length - 1]!.end;
      this.catalog.nextTableId = Math.max(this.catalog.nextTableId, point.nextTableId);
      this.txns.clock.observe(point.maxTs);
      this.txns.lastCommittedTs = Math.max(this.txns.lastCommittedTs, endTs);
      this.stats.metaSeq = newest.meta.seq;
      this.stats.ts = this.txns.lastCommittedTs;
      this.stats.refreshes++;
      this.stats.lastError = undefined;
      this.logger.info({ metaSeq: newest.meta.seq, ts: endTs }, 'read replica moved to a newer checkpoint');
      return true;
    } catch (e) {
      this.stats.lastError = e instanceof Error ? e.message : String(e);
      this.logger.warn({ err: e }, 'read replica could not move to a newer checkpoint');
      throw e;
    }
  }
}
