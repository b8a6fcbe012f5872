import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database, DatabaseStats } from '../api/database.js';
import type { CheckpointEvent } from '../checkpoint/events.js';
import type { CommitEvent } from '../db/events.js';
import { FILE_KINDS } from '../fileservice/kinds.js';
import type { PoolStats } from '../mem/pool.js';

export interface MetricsOptions {
  /** Register into this registry instead of a new one. */
  registry?: Registry;
  /**
   * Include prom-client's default process metrics (CPU, resident memory, heap spaces, event loop
   * lag, GC, open descriptors) in `text()`. Default true. They are process-wide: collected once per
   * process in a registry of their own (`Metrics.processRegistry()`), not in `registry`.
   */
  defaultMetrics?: boolean;
}

let processRegistry: Registry | undefined;

/** Latency buckets for commits (seconds): 50 µs to 2.5 s. */
const COMMIT_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
/** Checkpoint durations (seconds): 1 ms to 2 minutes. */
const CHECKPOINT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * How long one `db.stats()` serves the metrics of a scrape made through the registry directly
 * (`text()` always takes a fresh one).
 */
const STATS_TTL_MS = 100;

/**
 * The Prometheus metrics of one database (docs/metrics.md). Gauges and totals are read from
 * `db.stats()` when scraped (nothing is counted between scrapes); commit latencies and checkpoints
 * are observed as they end, through `db.observe()`. `close()` stops observing (the database's own
 * close does too).
 */
export class Metrics {
  readonly registry: Registry;
  private readonly defaults: Registry | undefined;
  /** The names this instance registered (close removes just these). */
  private readonly own: string[];
  private readonly unobserve: () => void;
  private cached: DatabaseStats | undefined;
  private cachedAt = 0;
  /** The last totals seen, per counter and label set: counters follow `db.stats()` by deltas. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly db: Database,
    options: MetricsOptions = {},
  ) {
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    if (options.defaultMetrics !== false) this.defaults = Metrics.processRegistry();
    const before = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const registers = [registry];
    const stats = () => this.stats();

    // ---- memory ----
    this.perPool(
      'tidemark_memory_pool_bytes',
      'Bytes held by each memory pool (exact: every pooled buffer is counted).',
      (p) => p.bytes,
    );
    this.perPool(
      'tidemark_memory_pool_high_water_bytes',
      'The most bytes each memory pool has held since the database opened.',
      (p) => p.highWaterBytes,
    );
    this.perPool(
      'tidemark_memory_pool_handles',
      'Live buffers and reservations of each memory pool.',
      (p) => p.handles,
    );
    this.gauge(
      'tidemark_memory_limit_bytes',
      'The memory limit the pools share (memory.limitBytes).',
      (s) => s.memory.limitBytes,
    );
    new Gauge({
      name: 'tidemark_memory_array_buffers_bytes',
      help: 'Bytes of all ArrayBuffers and Buffers of the process (process.memoryUsage().arrayBuffers); the pools are part of it.',
      registers,
      collect() {
        this.set(process.memoryUsage().arrayBuffers);
      },
    });
    new Gauge({
      name: 'tidemark_memory_untracked_bytes',
      help: "Resident memory not explained by the V8 heap or the pools' buffers: rss - heapTotal - the allocator's ArrayBuffer bytes (code, stacks, native allocations, buffers outside the pools, allocator slack).",
      registers,
      collect() {
        const s = stats();
        const m = process.memoryUsage();
        this.set(Math.max(0, m.rss - m.heapTotal - (s?.memory.bufferBytes ?? 0)));
      },
    });
    this.total(
      'tidemark_leaks_detected_total',
      'Pooled buffers the garbage collector found unreleased, per pool (sampled, at leak-detection levels above disabled).',
      ['pool'],
      (s) => Object.entries(s.memory.pools).map(([pool, p]) => [{ pool }, p.leaksDetected]),
    );

    // ---- files and WAL ----
    new Gauge({
      name: 'tidemark_open_files',
      help: 'File handles the database has open, by kind (wal, object, checkpoint, lock, temp, other).',
      labelNames: ['kind'],
      registers,
      collect() {
        const s = stats();
        if (s !== undefined) for (const kind of FILE_KINDS) this.set({ kind }, s.files.byKind[kind]);
      },
    });
    this.gauge('tidemark_wal_bytes', 'Bytes of WAL segments on disk.', (s) => s.wal.bytes);
    this.gauge('tidemark_wal_segments', 'WAL segment files on disk.', (s) => s.wal.segments);
    this.gauge('tidemark_indexes', 'Secondary indexes (built or being built).', (s) => s.indexes.count);
    this.gauge('tidemark_index_builds', 'Secondary indexes being built.', (s) => s.indexes.building);
    this.gauge(
      'tidemark_index_memtable_bytes',
      "Bytes the memtables of indexes' hidden tables hold (part of the memtable pool).",
      (s) => s.indexes.memtableBytes,
    );
    this.gauge(
      'tidemark_wal_pinned_bytes',
      'WAL bytes the retained checkpoints still need: truncation cannot free them yet.',
      (s) => s.wal.pinnedBytes,
    );

    // ---- checkpoints ----
    const checkpoints = new Counter({
      name: 'tidemark_checkpoint_total',
      help: 'Checkpoints that ended, by kind (incremental, global, none: nothing had changed) and result (ok, failed).',
      labelNames: ['kind', 'result'],
      registers,
    });
    const checkpointSeconds = new Histogram({
      name: 'tidemark_checkpoint_duration_seconds',
      help: 'How long successful checkpoints took, by kind (an incremental followed by a global is counted as global).',
      labelNames: ['kind'],
      buckets: CHECKPOINT_BUCKETS,
      registers,
    });
    for (const kind of ['incremental', 'global']) {
      checkpoints.inc({ kind, result: 'ok' }, 0);
      checkpoints.inc({ kind, result: 'failed' }, 0);
      checkpointSeconds.zero({ kind });
    }
    this.gauge(
      'tidemark_checkpoint_lag_seconds',
      'How far the newest checkpoint is behind: from its end timestamp to now (0 before the first).',
      (s) => s.checkpoints.lagMs / 1000,
    );
    this.total(
      'tidemark_checkpoint_escalations_total',
      'Checkpoints forced because the WAL passed checkpoint.walBytesMax.',
      [],
      (s) => [[{}, s.checkpoints.escalations]],
    );
    this.total(
      'tidemark_gc_deleted_files_total',
      'Files garbage collection deleted after checkpoints, by kind (object, checkpoint, wal_segment).',
      ['kind'],
      (s) => [
        [{ kind: 'object' }, s.checkpoints.gcDeleted.object],
        [{ kind: 'checkpoint' }, s.checkpoints.gcDeleted.checkpoint],
        [{ kind: 'wal_segment' }, s.checkpoints.gcDeleted.walSegment],
      ],
    );

    // ---- transactions and storage ----
    const commitSeconds = new Histogram({
      name: 'tidemark_commit_duration_seconds',
      help: 'Commit latency of transactions with writes, from the commit call to durable (or failed).',
      buckets: COMMIT_BUCKETS,
      registers,
    });
    this.total(
      'tidemark_transactions_total',
      'Transactions that ended, by result: committed (with writes), read_only, conflict (aborted by a write conflict or duplicate key), aborted (any other rollback or failure).',
      ['result'],
      (s) => {
        const t = s.transactions;
        return [
          [{ result: 'committed' }, t.committed - t.readOnly],
          [{ result: 'read_only' }, t.readOnly],
          [{ result: 'conflict' }, t.conflicts],
          [{ result: 'aborted' }, Math.max(0, t.aborted - t.conflicts)],
        ];
      },
    );
    this.total('tidemark_flush_total', 'Memtables flushed to objects.', [], (s) => [[{}, s.storage.flushes]]);
    this.total('tidemark_merge_total', 'Merges of object layers.', [], (s) => [[{}, s.storage.merges]]);

    // ---- SQL ----
    this.total(
      'tidemark_sql_statements_total',
      'SQL statements run (db.query, tx.query, sessions), by result: ok or failed.',
      ['result'],
      (s) => [
        [{ result: 'ok' }, s.sql.statements - s.sql.failed],
        [{ result: 'failed' }, s.sql.failed],
      ],
    );
    this.total(
      'tidemark_sql_index_reads_total',
      'Reads SQL made through secondary indexes, by kind: scan (a range), lookup (a UNIQUE key), join (index nested-loop join lookups).',
      ['kind'],
      (s) => [
        [{ kind: 'scan' }, s.sql.indexScans ?? 0],
        [{ kind: 'lookup' }, s.sql.indexLookups ?? 0],
        [{ kind: 'join' }, s.sql.indexJoins ?? 0],
      ],
    );
    this.total(
      'tidemark_sql_zone_skipped_groups_total',
      "Row groups of objects SQL scans left unread because their zone maps ruled out the scan's conditions.",
      [],
      (s) => [[{}, s.sql.zoneSkippedGroups]],
    );

    this.own = registry
      .getMetricsAsArray()
      .map((m) => m.name)
      .filter((n) => !before.has(n));
    this.unobserve = db.observe({
      commit: (e: CommitEvent) => commitSeconds.observe(e.ms / 1000),
      checkpoint: (e: CheckpointEvent) => {
        checkpoints.inc({ kind: e.kind, result: e.ok ? 'ok' : 'failed' });
        if (e.ok && e.kind !== 'none') checkpointSeconds.observe({ kind: e.kind }, e.ms / 1000);
      },
    });
  }

  /** prom-client's default process metrics, registered once per process. */
  static processRegistry(): Registry {
    if (processRegistry === undefined) {
      processRegistry = new Registry();
      collectDefaultMetrics({ register: processRegistry });
    }
    return processRegistry;
  }

  /** The metrics in the Prometheus text format (from a fresh `db.stats()`). */
  async text(): Promise<string> {
    this.cached = undefined;
    const own = await this.registry.metrics();
    return this.defaults === undefined ? own : (await this.defaults.metrics()) + own;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stop observing the database and remove this instance's metrics from the registry. */
  close(): void {
    this.unobserve();
    for (const name of this.own) this.registry.removeSingleMetric(name);
  }

  /** db.stats(), shared by the metrics of one scrape; undefined once the database is closed. */
  private stats(): DatabaseStats | undefined {
    const now = performance.now();
    if (this.cached === undefined || now - this.cachedAt > STATS_TTL_MS) {
      try {
        this.cached = this.db.stats();
        this.cachedAt = now;
      } catch {
        return this.cached; // closed: the last values stand
      }
    }
    return this.cached;
  }

  private perPool(name: string, help: string, value: (p: PoolStats) => number): void {
    const stats = () => this.stats();
    new Gauge({
      name,
      help,
      labelNames: ['pool'],
      registers: [this.registry],
      collect() {
        const s = stats();
        if (s !== undefined)
          for (const [pool, p] of Object.entries(s.memory.pools)) this.set({ pool }, value(p));
      },
    });
  }

  private gauge(name: string, help: string, value: (s: DatabaseStats) => number): void {
    const stats = () => this.stats();
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        const s = stats();
        if (s !== undefined) this.set(value(s));
      },
    });
  }

  /** A counter that follows a total from db.stats() (by its increases since the last scrape). */
  private total(
    name: string,
    help: string,
    labelNames: string[],
    values: (s: DatabaseStats) => [Record<string, string>, number][],
  ): void {
    const stats = () => this.stats();
    const seen = this.seen;
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        const s = stats();
        if (s === undefined) return;
        for (const [labels, total] of values(s)) {
          const key = `${name}${JSON.stringify(labels)}`;
          const delta = total - (seen.get(key) ?? 0);
          if (delta > 0) this.inc(labels, delta);
          else if (!seen.has(key)) this.inc(labels, 0);
          seen.set(key, Math.max(total, seen.get(key) ?? 0));
        }
      },
    });
  }
}
