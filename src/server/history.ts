import type { Database } from '../api/database.js';
import type { CheckpointEvent } from '../checkpoint/events.js';

/** One second of the database, as the dashboard charts it. */
export interface Sample {
  /** Seconds since the epoch. */
  t: number;
  pools: Record<string, number>;
  limitBytes: number;
  walBytes: number;
  walPinnedBytes: number;
  /** Commits with writes that ended in this second, and their latency percentiles (ms). */
  commits: number;
  commitP50Ms: number | null;
  commitP99Ms: number | null;
  rssBytes: number;
  heapUsedBytes: number;
}

const KEEP_SAMPLES = 600;
const KEEP_CHECKPOINTS = 200;

/**
 * A few minutes of history for the dashboard: a sample every second (pool bytes, WAL, commit
 * latency), and the last checkpoints (kind, duration, outcome). Bounded: the oldest entries go.
 */
export class History {
  private readonly samples: Sample[] = [];
  private readonly checkpoints: CheckpointEvent[] = [];
  private latencies: number[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly unobserve: () => void;

  constructor(
    private readonly db: Database,
    everyMs = 1000,
  ) {
    this.unobserve = db.observe({
      commit: (e) => this.latencies.push(e.ms),
      checkpoint: (e) => {
        this.checkpoints.push(e);
        if (this.checkpoints.length > KEEP_CHECKPOINTS) this.checkpoints.shift();
      },
    });
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
    this.sample();
  }

  snapshot(): { history: Sample[]; checkpoints: CheckpointEvent[] } {
    return { history: [...this.samples], checkpoints: [...this.checkpoints] };
  }

  close(): void {
    clearInterval(this.timer);
    this.unobserve();
  }

  private sample(): void {
    let s;
    try {
      s = this.db.stats();
    } catch {
      clearInterval(this.timer); // closed: the history stands as it was
      return;
    }
    const lat = this.latencies.sort((a, b) => a - b);
    this.latencies = [];
    const pct = (p: number) =>
      lat.length === 0 ? null : lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
    const m = process.memoryUsage();
    this.samples.push({
      t: Date.now() / 1000,
      pools: Object.fromEntries(Object.entries(s.memory.pools).map(([k, p]) => [k, p.bytes])),
      limitBytes: s.memory.limitBytes,
      walBytes: s.wal.bytes,
      walPinnedBytes: s.wal.pinnedBytes,
      commits: lat.length,
      commitP50Ms: pct(0.5),
      commitP99Ms: pct(0.99),
      rssBytes: m.rss,
      heapUsedBytes: m.heapUsed,
    });
    if (this.samples.length > KEEP_SAMPLES) this.samples.shift();
  }
}
