/**
 * Leak detection after Netty's ResourceLeakDetector, in four levels:
 *
 * - `disabled`: counting only. Presence counting (live handles and bytes per pool and owner) is
 *   always on; it is what `close()` checks, and it never depends on the GC.
 * - `simple`: about 1 in `samplingInterval` (128) handles is tracked by a FinalizationRegistry with
 *   its allocation stack. A tracked handle collected without release is reported and counted.
 * - `advanced`: sampled like `simple`, plus the last few access records (retain, release, touch).
 * - `paranoid`: every handle is tracked, with its allocation stack and access records.
 *
 * A leak found by the GC is reported and counted, and the accounting corrected, but its memory is
 * never returned to the free list: a view of it may still be alive. The FinalizationRegistry is a
 * safety net for production, not a mechanism: the spec lets its callbacks run late or never.
 */

export type LeakDetectionLevel = 'disabled' | 'simple' | 'advanced' | 'paranoid';

export const LEAK_DETECTION_LEVELS: readonly LeakDetectionLevel[] = [
  'disabled',
  'simple',
  'advanced',
  'paranoid',
];

export const DEFAULT_SAMPLING_INTERVAL = 128;
/** Netty's targetRecords: past this many access records, new ones replace the newest with back-off. */
const TARGET_RECORDS = 4;
/** A hard bound on records kept per handle, whatever the back-off draws. */
const MAX_RECORDS = 8;
const STACK_FRAMES = 24;

/** Where something happened: an Error whose stack is formatted when captured (captureSite). */
export class Site extends Error {
  constructor(label: string) {
    super(label);
    this.name = 'Site';
  }

  /** The stack without the frames inside the memory manager. */
  describe(): string {
    const stack = this.stack ?? '';
    const lines = stack.split('\n').slice(1);
    const outside = lines.filter((l) => !INTERNAL_FRAME.test(l));
    return (outside.length > 0 ? outside : lines).map((l) => l.trim()).join('\n');
  }
}

const INTERNAL_FRAME =
  /[/\\](?:mem[/\\](?:pool|buffer|leak_detector|manager|slab)|fileservice[/\\](?:local|memory|fault|registry|util))\.[jt]s/;

export function captureSite(label: string): Site {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = STACK_FRAMES;
  const site = new Site(label);
  Error.stackTraceLimit = limit;
  // Format now: until then V8 keeps the frames, each with its receiver and function, and a frame
  // of the code that allocated a handle usually has the handle's owner as receiver (a constructor,
  // a method, a field initializer): the record would keep the owner, so the handle, alive for
  // ever, and the FinalizationRegistry would never see it go.
  void site.stack;
  return site;
}

/**
 * What is known about one tracked handle. It must never reference the handle itself, otherwise the
 * handle could never be collected and the FinalizationRegistry would never fire.
 */
export class TrackRecord {
  readonly created: Site;
  records: Site[] | undefined;
  droppedRecords = 0;
  /** Set by the pool: how to correct the accounting if the handle is collected unreleased. */
  onCollected: (() => void) | undefined;

  constructor(
    readonly pool: string,
    readonly owner: string,
    /** Bytes accounted for the handle (updated when a reservation is resized). */
    public capacity: number,
    withRecords: boolean,
    created?: Site,
  ) {
    this.created = created ?? captureSite(`allocated ${capacity} bytes for ${owner} in pool ${pool}`);
    this.records = withRecords ? [] : undefined;
  }

  record(hint: string, random: () => number): void {
    const records = this.records;
    if (records === undefined) return;
    const site = captureSite(hint);
    const n = records.length;
    if (n >= TARGET_RECORDS) {
      // Exponential back-off, as Netty: the newest access is always kept, older ones thin out.
      const backOff = Math.min(n - TARGET_RECORDS, 30);
      const replace = Math.floor(random() * 2 ** (backOff + 1)) !== 0;
      if (replace || n >= MAX_RECORDS) {
        records[n - 1] = site;
        this.droppedRecords++;
        return;
      }
    }
    records.push(site);
  }

  describeRecords(): string[] {
    const out: string[] = [];
    for (const r of this.records ?? []) out.push(`${r.message}\n${indent(r.describe())}`);
    if (this.droppedRecords > 0) out.push(`(${this.droppedRecords} older access records dropped)`);
    return out;
  }
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => '  ' + l)
    .join('\n');
}

export interface LeakReport {
  pool: string;
  owner: string;
  bytes: number;
  stack: string;
  records: string[];
  /** True when a leak from the same allocation site was reported before (log it once). */
  repeated: boolean;
}

/**
 * Decides which handles to track and owns the FinalizationRegistry. One per MemoryManager.
 */
export class LeakDetector {
  readonly level: LeakDetectionLevel;
  readonly samplingInterval: number;
  private readonly registry: FinalizationRegistry<TrackRecord> | undefined;
  private seed: number;
  private readonly reported = new Set<string>();
  private readonly listeners = new Set<(report: LeakReport) => void>();
  /** Every tracked record whose handle is still live; what close() lists with stacks. */
  readonly live = new Set<TrackRecord>();

  constructor(level: LeakDetectionLevel, samplingInterval = DEFAULT_SAMPLING_INTERVAL, seed = 0x9e3779b9) {
    this.level = level;
    this.samplingInterval = Math.max(1, Math.floor(samplingInterval));
    this.seed = seed | 0 || 1;
    this.registry =
      level === 'disabled' ? undefined : new FinalizationRegistry<TrackRecord>((rec) => this.collected(rec));
  }

  /** xorshift32: cheap, deterministic per detector, good enough for sampling. */
  random(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x;
    return (x >>> 0) / 4294967296;
  }

  /** Whether the next handle should be tracked. */
  shouldTrack(): boolean {
    switch (this.level) {
      case 'disabled':
        return false;
      case 'paranoid':
        return true;
      default:
        return this.samplingInterval === 1 || this.random() * this.samplingInterval < 1;
    }
  }

  get recordsAccesses(): boolean {
    return this.level === 'advanced' || this.level === 'paranoid';
  }

  track(handle: object, rec: TrackRecord): void {
    this.live.add(rec);
    this.registry!.register(handle, rec, handle);
  }

  untrack(handle: object, rec: TrackRecord): void {
    this.live.delete(rec);
    this.registry!.unregister(handle);
  }

  onLeak(listener: (report: LeakReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private collected(rec: TrackRecord): void {
    if (!this.live.delete(rec)) return;
    rec.onCollected?.();
    const stack = rec.created.describe();
    // Each distinct allocation site is logged once: a leak in a loop would otherwise flood the log.
    const key = `${rec.pool}\n${rec.owner}\n${stack}`;
    const repeated = this.reported.has(key);
    if (!repeated && this.reported.size < 1024) this.reported.add(key);
    const report: LeakReport = {
      pool: rec.pool,
      owner: rec.owner,
      bytes: rec.capacity,
      stack,
      records: rec.describeRecords(),
      repeated,
    };
    for (const l of this.listeners) l(report);
  }
}
