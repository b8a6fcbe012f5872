import { TidemarkError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Table } from '../table/table.js';

export type Job = { kind: 'flush'; table: Table } | { kind: 'merge'; table: Table; all: boolean };

interface Lane {
  queue: Job[];
  running: Promise<void> | undefined;
}

interface Waiter {
  until: () => boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
  /** Fail the wait when a job for one of these tables fails (otherwise failures are retried). */
  failFor?: ReadonlySet<Table>;
}

const RETRY_MS = 200;

/**
 * The storage layer's background work: two lanes of jobs side by side, flushes and merges, one job
 * each at a time (a long merge never holds up the flush a commit waiting for memory needs); a failed
 * job is logged, counted, and retried after a pause; callers wait for a condition (`waitFor`) that
 * jobs make true, and are failed when a job they depend on fails.
 */
export class JobRunner {
  private readonly lanes: Record<Job['kind'], Lane> = {
    flush: { queue: [], running: undefined },
    merge: { queue: [], running: undefined },
  };
  /** Jobs that failed, waiting for the retry timer. */
  private readonly deferred: Job[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly waiters: Waiter[] = [];
  private stopped = false;
  readonly failures = { flush: 0, merge: 0 };

  constructor(
    private readonly run: (job: Job) => Promise<void>,
    private readonly logger: Logger,
    /** The log's failure, if it failed: nothing can be published until reopen. */
    private readonly logFailed: () => Error | undefined,
  ) {}

  get isStopped(): boolean {
    return this.stopped;
  }

  schedule(job: Job): void {
    if (this.stopped) return;
    const lane = this.lanes[job.kind];
    if (
      !lane.queue.some(
        (j) => j.table === job.table && (j.kind !== 'merge' || j.all === (job as { all: boolean }).all),
      )
    )
      lane.queue.push(job);
    lane.running ??= this.work(lane);
  }

  /**
   * A promise for a caller (flush, compact, a checkpoint's flush), settled when `until` holds or a
   * job for one of `failFor` fails. While any such caller waits, the retry timer is ref'd: what it
   * waits for must not be left to a timer that lets the process exit under an await.
   */
  waitFor(until: () => boolean, failFor?: ReadonlySet<Table>): Promise<void> {
    if (until()) return Promise.resolve();
    // Nothing can be published without the log: fail now rather than wait until reopen.
    const failed = this.logFailed();
    if (failed !== undefined) return Promise.reject(failed);
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ until, resolve, reject, ...(failFor !== undefined ? { failFor } : {}) });
      this.retryTimer?.ref();
    });
  }

  /** The log failed: whoever waits for a flush or a merge to be published waits in vain. */
  logFailure(err: unknown): void {
    for (const w of this.waiters.splice(0)) {
      if (w.until())
        w.resolve(); // what it waited for happened before the failure
      else w.reject(err);
    }
  }

  /** Running jobs, and whether failed ones wait for their retry. */
  running(): { running: Promise<void>[]; deferred: number } {
    const running = Object.values(this.lanes)
      .map((l) => l.running)
      .filter((r) => r !== undefined);
    return { running, deferred: this.deferred.length };
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) {
      if (!w.until()) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  private async work(lane: Lane): Promise<void> {
    // Yield first: a job with nothing to do (its table dropped, its memtable flushed meanwhile)
    // awaits nothing, and a worker that finished synchronously would clear `lane.running` before
    // `schedule` recorded it, leaving the lane marked running for ever.
    await Promise.resolve();
    try {
      while (!this.stopped && lane.queue.length > 0) {
        const job = lane.queue.shift()!;
        try {
          await this.run(job);
        } catch (e) {
          if (this.stopped) break;
          this.failures[job.kind]++;
          this.logger.error(
            { err: e, table: job.table.name, job: job.kind },
            `${job.kind} failed; retrying later`,
          );
          if (this.logFailed() !== undefined) {
            // The log is gone: nothing can be published until reopen. Fail whoever waits.
            for (const w of this.waiters.splice(0)) w.reject(e);
            break;
          }
          for (const w of [...this.waiters]) {
            if (w.failFor?.has(job.table) !== true) continue;
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.reject(e);
          }
          this.retryLater(job);
        }
        this.wakeWaiters();
      }
    } finally {
      lane.running = undefined;
    }
  }

  /** Put a failed job aside and try again after a pause (never in the same run of the loop). */
  private retryLater(job: Job): void {
    if (this.stopped) return;
    if (!this.deferred.some((j) => j.kind === job.kind && j.table === job.table)) this.deferred.push(job);
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const j of this.deferred.splice(0)) this.schedule(j);
    }, RETRY_MS);
    // A retry nobody awaits must not keep the process alive; one a caller waits on must (waitFor).
    if (this.waiters.length === 0) this.retryTimer.unref();
  }

  /** Stop taking work, wait for the running jobs, and fail whoever waits with CLOSED. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.deferred.length = 0;
    for (const lane of Object.values(this.lanes)) {
      lane.queue.length = 0;
      await lane.running?.catch(() => undefined);
    }
    const closed = new TidemarkError('CLOSED', 'the database was closed');
    for (const w of this.waiters.splice(0)) w.reject(closed);
  }
}
