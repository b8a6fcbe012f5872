import { mkdirSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as v8 from 'node:v8';
import { Checkpointer } from '../checkpoint/checkpointer.js';
import { inspect } from '../db/inspect.js';
import { Database, open } from '../api/database.js';
import { TidemarkLevel } from '../level/index.js';
import type { OpenOptions } from '../db/options.js';
import { Storage } from '../storage/storage.js';
import { LeakError, TidemarkError } from '../errors.js';
import { FaultFileService, type RandomFaults } from '../fileservice/fault.js';
import { LocalFileService } from '../fileservice/local.js';
import { PooledBuffer, Reservation } from '../mem/buffer.js';
import { ObjectReader } from '../objectio/reader.js';
import { ObjectLayer } from '../table/object_layer.js';
import { TableScan } from '../table/scan.js';
import { MemLayer, Table } from '../table/table.js';
import { MemTable } from '../table/memtable.js';
import { Transaction } from '../txn/transaction.js';
import { plantLeak, type PlantKind } from '../util/plant.js';
import { Rng } from '../util/random.js';
import { Wal } from '../wal/wal.js';
import { retainingPaths, takeSnapshot } from './retainers.js';
import { ols, theilSenFit } from './stats.js';

/** The operations the soak repeats, one per cycle, in this order. */
export const SCENARIOS = [
  'incremental',
  'global',
  'compaction',
  'gc',
  'flush',
  'merge',
  'scan-abandon',
  'checkpoint-fault',
  'recovery',
  'close-busy',
  'level',
  'sql',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** The heap may grow by less than this per cycle (the lower end of the Theil–Sen slope's 95% interval). */
export const HEAP_SLOPE_LIMIT = 1024;
/** Fewer samples after the warm-up than this: too noisy to judge the heap (the other checks hold). */
export const MIN_HEAP_SAMPLES = 100;
const INCREMENTALS_PER_GLOBAL = 3;
/** ckp/ at quiescence: two meta files, two globals, the incrementals of a chain. */
export const CHECKPOINT_FILES_BOUND = 2 + 2 + INCREMENTALS_PER_GLOBAL;
const CYCLE_TIMEOUT_MS = 120_000;
const KEYS = 2000;
/** The 'level' scenario's TidemarkLevel lives in this subdirectory of the soak's directory. */
export const LEVEL_SUBDIR = 'level';

export interface SoakOptions {
  /** The data directory (created if missing). */
  dir: string;
  /** Run this many cycles (default 300 unless `minutes` is given). */
  cycles?: number;
  /** Run for this long instead (cycles unbounded). */
  minutes?: number;
  /** Cycles before heap samples count (default 100: JIT feedback and bounded histories fill up). */
  warmup?: number;
  /** Plant a kind of leak (the suite must then fail). */
  plant?: PlantKind;
  /**
   * Inject random read, write and datasync faults into the soak's database during each cycle's
   * operation (not while the checks run), reproducible by seed: cycle N's faults are drawn from
   * (seed, N). A call may then reject, with IO or CORRUPTION only; the database is then brought
   * back (quiesced, or closed and opened again) and checked as after any cycle.
   */
  faults?: { seed: number; rate: number };
  onProgress?: (p: SoakProgress) => void;
}

export interface SoakProgress {
  cycle: number;
  /** The planned number of cycles, or undefined for a timed soak. */
  of: number | undefined;
  elapsedMs: number;
  /** For a timed soak, the planned duration. */
  plannedMs: number | undefined;
  scenario: Scenario;
  heapUsed: number;
  failed: boolean;
}

export interface SoakReport {
  verdict: 'pass' | 'fail';
  failures: string[];
  cycles: number;
  restarts: number;
  warmup: number;
  durationMs: number;
  planted: PlantKind | undefined;
  perScenario: Record<string, number>;
  /** One sample per cycle, at quiescence. */
  series: {
    heapUsed: number[];
    arrayBuffers: number[];
    pools: Record<string, number[]>;
    openFiles: number[];
    checkpointFiles: number[];
    objectFiles: number[];
    walBytes: number[];
  };
  heap: {
    samples: number;
    theilSen: number;
    /** The Theil–Sen slope's 95% confidence interval: the gate fails when its lower end reaches the limit. */
    theilSenLo95: number;
    theilSenHi95: number;
    ols: number;
    olsLo95: number;
    olsHi95: number;
    limit: number;
  };
  classes: { name: string; expected: number; live: number }[];
  checkpointFilesBound: number;
  maxCheckpointFiles: number;
  /** With `faults`: what was injected and what it did. */
  faults?: FaultTally;
}

export interface FaultTally {
  seed: number;
  rate: number;
  /** Operations failed on purpose. */
  injected: number;
  /** By operation and the file's directory ('write wal', 'read obj', ...). */
  byOp: Record<string, number>;
  /** The last faults injected, as "cycle N: op path" (what to look at when the soak fails). */
  last: string[];
  /** Cycles in which at least one fault was injected. */
  faultedCycles: number;
  /** Cycles whose operation rejected (with IO or CORRUPTION: anything else fails the soak). */
  rejectedCycles: number;
  /** By error code. */
  rejections: Record<string, number>;
  /** Faulted cycles after which the database needed a close and a fresh open to go on. */
  reopened: number;
}

/** The operations `faults` fails at random. */
export const SOAK_FAULT_OPS = ['read', 'write', 'datasync'] as const;

class Failure extends Error {}

/** Timers the process creates while a database is open, with where: for "no timer left behind". */
class TimerWatch {
  private readonly live = new Map<unknown, string>();
  private installed = false;
  /** The real timer functions: the harness's own timers (its watchdog) use these, unwatched. */
  readonly saved = {
    setTimeout: globalThis.setTimeout,
    setInterval: globalThis.setInterval,
    clearTimeout: globalThis.clearTimeout,
    clearInterval: globalThis.clearInterval,
  };

  install(): void {
    if (this.installed) return;
    this.installed = true;
    const live = this.live;
    const saved = this.saved;
    const wrap = (kind: 'setTimeout' | 'setInterval') =>
      function (this: unknown, fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) {
        const stack = new Error().stack?.split('\n').slice(2, 8).join('\n') ?? '';
        const ref: { handle?: unknown } = {};
        const cb =
          kind === 'setTimeout'
            ? (...a: unknown[]) => {
                live.delete(ref.handle);
                fn(...a);
              }
            : fn;
        const handle = (saved[kind] as (...a: unknown[]) => unknown)(cb, ms, ...args);
        ref.handle = handle;
        live.set(handle, `${kind}(${ms ?? 0} ms)\n${stack}`);
        return handle;
      };
    const clear = (kind: 'clearTimeout' | 'clearInterval') => (handle: unknown) => {
      live.delete(handle);
      (saved[kind] as (h: unknown) => void)(handle);
    };
    Object.assign(globalThis, {
      setTimeout: wrap('setTimeout'),
      setInterval: wrap('setInterval'),
      clearTimeout: clear('clearTimeout'),
      clearInterval: clear('clearInterval'),
    });
  }

  uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    Object.assign(globalThis, this.saved);
  }

  /** Timers alive now, as "kind(ms)\nstack". */
  alive(): string[] {
    return [...this.live.values()];
  }

  forget(): void {
    this.live.clear();
  }
}

/**
 * Wait for the heap and finalizers to settle: full GCs with a turn between them (finalizers run in a
 * turn after the GC that found their targets), then one more, after which the caller samples the
 * heap in the same turn. (Plain gc(): on Node 20, gc() given an options object does not run a full
 * collection.)
 */
async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new TidemarkError('INVALID_ARGUMENT', 'the leak check needs node --expose-gc');
  for (let i = 0; i < 2; i++) {
    gc();
    await nextTurn();
  }
  gc();
}

/**
 * V8 heap used, less the code spaces: compiled code grows for hundreds of cycles as functions are
 * optimized (about 1 KiB/cycle here), which is not data the engine keeps, and the engine generates
 * no code at run time.
 */
function heapUsedWithoutCode(): number {
  let used = 0;
  for (const sp of v8.getHeapSpaceStatistics())
    if (!sp.space_name.startsWith('code')) used += sp.space_used_size;
  return used;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ['', 'wal', 'obj', 'ckp']) {
    let names: string[];
    try {
      names = readdirSync(path.join(dir, sub));
    } catch {
      continue;
    }
    for (const n of names) {
      const rel = sub === '' ? n : `${sub}/${n}`;
      if (statSync(path.join(dir, rel)).isFile()) out.push(rel);
    }
  }
  return out.sort();
}

/** Open file descriptors of this process that point into `dir` (Linux: /proc/self/fd). */
function fdsUnder(dir: string): string[] | undefined {
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  const out: string[] = [];
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir + path.sep)) out.push(path.relative(dir, target));
    } catch {
      // the fd of readdir itself, closed meanwhile
    }
  }
  return out.sort();
}

/**
 * Run `fn` with process warnings silenced (v8.queryObjects warns on every call), then put back the
 * very function that was there. (Putting back a bound copy instead wrapped it once more on every
 * call: the chain of wrappers was the soak's own 12.5 B/cycle heap slope.)
 */
export function quietly<T>(fn: () => T): T {
  const saved = process.emitWarning; // eslint-disable-line @typescript-eslint/unbound-method
  process.emitWarning = () => undefined;
  try {
    return fn();
  } finally {
    process.emitWarning = saved;
  }
}

// Constructors (some private): v8.queryObjects only needs the prototype chain.
const CLASSES: [string, { prototype: object }][] = [
  ['Database', Database],
  ['Storage', Storage],
  ['Checkpointer', Checkpointer],
  ['Wal', Wal],
  ['Table', Table],
  ['MemLayer', MemLayer],
  ['MemTable', MemTable],
  ['ObjectLayer', ObjectLayer],
  ['ObjectReader', ObjectReader],
  ['Transaction', Transaction],
  ['TableScan', TableScan],
  ['PooledBuffer', PooledBuffer],
  ['Reservation', Reservation],
];

/**
 * The leak soak: one database under `dir`, the SCENARIOS repeated in turn, and after every cycle, at
 * quiescence (memtables flushed, background work finished, the block cache emptied, two GCs):
 * - every pool back to its baseline (the block cache empty, the filter pool holding exactly the open
 *   objects' filters), naming each holder and where it was allocated;
 * - the open file handles: only the WAL, the LOCK and cached handles of live objects, by the
 *   engine's registry and by /proc/self/fd;
 * - the directory equal to the engine's registry, no orphan object or checkpoint file (what the
 *   retained meta files name plus the live WAL), ckp/ within its bound;
 * - after each close: every pool at zero (close() proves it), no timer and no process listener left;
 * - every 50 cycles and at the end, v8.queryObjects counts of the engine's classes equal to what the
 *   database holds;
 * - at the end, the heap: after the warm-up, the lower end of the 95% confidence interval of the
 *   Theil–Sen slope of heap used per cycle below 1 KiB.
 * Stops at the first failure.
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const dir = path.resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const realDir = realpathSync(dir);
  const timed = options.minutes !== undefined;
  const plannedMs = timed ? options.minutes! * 60_000 : undefined;
  const cycles = timed ? Infinity : (options.cycles ?? 300);
  const warmup = options.warmup ?? 100;
  plantLeak(options.plant);
  const timers = new TimerWatch();
  // Process listeners after the first close: libraries install their own once (pino's exit hook).
  const listenerBaseline: { counts: Map<string | symbol, number> | undefined } = { counts: undefined };
  const started = performance.now();
  const report: SoakReport = {
    verdict: 'pass',
    failures: [],
    cycles: 0,
    restarts: 0,
    warmup,
    durationMs: 0,
    planted: options.plant,
    perScenario: {},
    series: {
      heapUsed: [],
      arrayBuffers: [],
      pools: {},
      openFiles: [],
      checkpointFiles: [],
      objectFiles: [],
      walBytes: [],
    },
    heap: {
      samples: 0,
      theilSen: 0,
      theilSenLo95: 0,
      theilSenHi95: 0,
      ols: 0,
      olsLo95: 0,
      olsHi95: 0,
      limit: HEAP_SLOPE_LIMIT,
    },
    classes: [],
    checkpointFilesBound: CHECKPOINT_FILES_BOUND,
    maxCheckpointFiles: 0,
    ...(options.faults !== undefined
      ? {
          faults: {
            ...options.faults,
            injected: 0,
            byOp: {},
            last: [],
            faultedCycles: 0,
            rejectedCycles: 0,
            rejections: {},
            reopened: 0,
          },
        }
      : {}),
  };
  const tally = report.faults;
  const dbOptions = (fault: FaultFileService): OpenOptions => ({
    memory: { leakDetection: 'paranoid', limitBytes: 256 << 20 },
    checkpoint: { intervalMs: 0, incrementalsPerGlobal: INCREMENTALS_PER_GLOBAL },
    storage: { memtableRowsMax: 1500, mergeMinObjects: 3, rowGroupRows: 256 },
    // Small segments: the WAL is rolled and truncated over and over.
    wal: { segmentBytes: 256 << 10 },
    fileService: fault,
  });
  // Random faults for the cycle running now (undefined while the checks run).
  let random: RandomFaults | undefined;
  let injected = 0;
  const newFault = () => {
    const f = new FaultFileService(new LocalFileService(dir), {
      onFault: (r) => {
        injected++;
        if (tally === undefined) return;
        const where = `${r.op} ${r.path.includes('/') ? r.path.slice(0, r.path.indexOf('/')) : r.path}`;
        tally.byOp[where] = (tally.byOp[where] ?? 0) + 1;
        tally.last.push(`cycle ${report.cycles + 1}: ${r.op} ${r.path}`);
        if (tally.last.length > 10) tally.last.shift();
      },
    });
    f.setRandomFaults(random);
    return f;
  };
  let fault = newFault();
  timers.install();
  let db: Database | undefined;
  let seq = 0;
  let where = 'opening';
  const rec = {
    heapUsed: new Series(),
    arrayBuffers: new Series(),
    pools: new Map<string, Series>(),
    openFiles: new Series(),
    checkpointFiles: new Series(),
    objectFiles: new Series(),
    walBytes: new Series(),
  };
  const rng = new Rng(12345);
  const current = (): Database => {
    if (db === undefined) throw new Failure(`${where}: the database is not open`);
    return db;
  };
  try {
    db = await open(dir, dbOptions(fault));
    for (const t of ['a', 'b', 'c']) if (!db.tables().includes(t)) await db.createTable(t, SPEC);
    // The 'sql' scenario's tables (and SQL's catalog table) exist from the start, as a, b and c do.
    await sqlTables(db);
    await quiesce(db);
    const baseline = poolSnapshot(db);
    const fileBaseline = nonObjectHandles(db);

    const write = async (d: Database, table = 'a') => {
      const rows = Array.from({ length: 200 }, () => row(rng.int(KEYS), seq++));
      await d.transaction(async (tx) => {
        for (const r of rows) await tx.upsert(table, r);
      });
    };
    // After a cycle's faults: the database settled again, or closed (proving nothing held) and opened.
    // Then, without faults: the soak's tables there (a fault may have cut a drop-and-create in two)
    // and two checkpoints, which must collect what the failed ones left: a global one, which
    // replaces the chain, and one more, after which the previous meta file goes too. (While
    // checkpoints fail, a chain grows past incrementalsPerGlobal, and the previous meta file, kept
    // to fall back on, names it: ckp/'s bound holds again after these two.)
    const bringBack = async (t: FaultTally): Promise<void> => {
      const back = await recover(db, (d) => closeAndCheck(d, timers, listenerBaseline, true));
      if (back === undefined) {
        t.reopened++;
        report.restarts++;
        db = undefined;
        fault = newFault();
        db = await open(dir, dbOptions(fault));
      }
      const d = db!;
      for (const name of ['a', 'b', 'c']) if (!d.tables().includes(name)) await d.createTable(name, SPEC);
      await sqlTables(d);
      await d.checkpoint({ global: true });
      // (A checkpoint with nothing new writes nothing: one write first.)
      await write(d);
      await d.checkpoint();
    };
    const reopen = async (): Promise<void> => {
      await closeAndCheck(db!, timers, listenerBaseline);
      report.restarts++;
      db = undefined;
      fault = newFault();
      db = await open(dir, dbOptions(fault));
    };

    for (let cycle = 0; cycle < cycles; cycle++) {
      if (plannedMs !== undefined && performance.now() - started >= plannedMs) break;
      const scenario = SCENARIOS[cycle % SCENARIOS.length]!;
      const context = `cycle ${cycle + 1} (${scenario})`;
      where = context;
      const injectedBefore = injected;
      if (tally !== undefined) {
        random = {
          seed: (tally.seed ^ Math.imul(cycle + 1, 0x9e3779b1)) >>> 0,
          rate: tally.rate,
          ops: SOAK_FAULT_OPS,
        };
        fault.setRandomFaults(random);
      }
      // The code only: an error kept here would keep what its stack's frames held (CallSiteInfo).
      let rejected: string | undefined;
      await withTimeout(
        (async () => {
          const d = db;
          switch (scenario) {
            case 'incremental':
              await write(d);
              await write(d, 'b');
              await d.checkpoint();
              break;
            case 'global':
              await write(d);
              await d.checkpoint({ global: true });
              break;
            case 'compaction':
              for (let i = 0; i < INCREMENTALS_PER_GLOBAL; i++) {
                await write(d, i % 2 === 0 ? 'a' : 'b');
                await d.checkpoint();
              }
              break;
            case 'gc':
              await write(d, 'c');
              await d.flush();
              await d.dropTable('c');
              await d.createTable('c', SPEC);
              await write(d, 'c');
              await d.checkpoint();
              await d.checkpoint({ global: true });
              break;
            case 'flush':
              await write(d);
              await write(d, 'b');
              await d.flush();
              break;
            case 'merge':
              for (let i = 0; i < 3; i++) {
                await write(d);
                await d.flush();
              }
              await d.compact();
              break;
            case 'scan-abandon': {
              await write(d);
              await d.flush();
              let n = 0;
              for await (const _ of d.scan('a')) if (++n > 50) break;
              for await (const b of d.scanBatches('b', { batchRows: 64 })) if (b.length > 0) break;
              for await (const b of d.scanBatches('a', { borrow: true, columns: ['v'] }))
                if (b.length > 0) break;
              await d
                .transaction(async (tx) => {
                  for await (const _ of tx.scan('a', { gte: 10 })) throw new Error('abandoned');
                })
                .catch(() => undefined);
              break;
            }
            case 'checkpoint-fault':
              await write(d);
              await d.flush();
              fault.addRule({ op: 'write', nth: 1, errno: 'EIO', path: /^ckp\// });
              await d.checkpoint().then(
                () => {
                  throw new Failure(`${context}: the checkpoint succeeded despite an injected EIO`);
                },
                (e: unknown) => {
                  if (e instanceof Failure) throw e;
                },
              );
              fault.clearRules();
              await d.checkpoint();
              break;
            case 'recovery':
              await write(d);
              await reopen();
              break;
            case 'close-busy': {
              const busy = [write(d), write(d, 'b'), d.checkpoint(), d.compact()].map((p) =>
                p.catch(() => undefined),
              );
              await reopen();
              await Promise.all(busy);
              break;
            }
            case 'level':
              await levelCycle(path.join(dir, LEVEL_SUBDIR), rng, seq++, context);
              break;
            case 'sql':
              await sqlCycle(d, rng, seq++);
              break;
          }
        })().catch((e: unknown) => {
          // Under random faults a call may reject, with IO or CORRUPTION only.
          if (tally === undefined || injected === injectedBefore || e instanceof Failure || !isFaultError(e))
            throw e;
          rejected = faultCode(e);
        }),
        CYCLE_TIMEOUT_MS,
        context,
        timers,
      );
      if (tally !== undefined) {
        random = undefined;
        fault.setRandomFaults(undefined);
        if (injected > injectedBefore) {
          tally.faultedCycles++;
          tally.injected += injected - injectedBefore;
          if (rejected !== undefined) {
            tally.rejectedCycles++;
            tally.rejections[rejected] = (tally.rejections[rejected] ?? 0) + 1;
          }
          // Background work may have failed too (a flush, the log): bring the database back, by
          // settling it if it can, else by a close (which must still prove nothing held) and an open.
          where = `${context}, after its faults`;
          // (In a function of its own: a Database left in this loop's registers would stay alive.)
          await withTimeout(bringBack(tally), CYCLE_TIMEOUT_MS, where, timers);
        }
      }
      // At quiescence: the checks.
      const live = current();
      await quiesce(live);
      // The heap first, before the checks make garbage of their own.
      const heapUsed = heapUsedWithoutCode();
      const mu = process.memoryUsage();
      checkPools(live, baseline, context);
      checkHandles(live, fileBaseline, realDir, context);
      const ckpFiles = await checkFiles(live, dir, context);
      report.maxCheckpointFiles = Math.max(report.maxCheckpointFiles, ckpFiles);
      const s = rec;
      s.heapUsed.push(heapUsed);
      s.arrayBuffers.push(mu.arrayBuffers);
      const pools = live.stats().memory.pools;
      for (const [name, p] of Object.entries(pools)) {
        let ps = s.pools.get(name);
        if (ps === undefined) s.pools.set(name, (ps = new Series()));
        ps.push(p.bytes);
      }
      s.openFiles.push(live.stats().files.open);
      s.checkpointFiles.push(ckpFiles);
      s.objectFiles.push(live.stats().files.objects);
      s.walBytes.push(live.stats().wal.bytes);
      report.cycles = cycle + 1;
      report.perScenario[scenario] = (report.perScenario[scenario] ?? 0) + 1;
      if (cycle + 1 === warmup || (cycle + 1) % 50 === 0) report.classes = await checkClasses(live, context);
      options.onProgress?.({
        cycle: cycle + 1,
        of: Number.isFinite(cycles) ? cycles : undefined,
        elapsedMs: performance.now() - started,
        plannedMs,
        scenario,
        heapUsed,
        failed: false,
      });
    }
    report.classes = await checkClasses(current(), 'at the end');
    // The heap, after the warm-up.
    const samples = rec.heapUsed.values().subarray(warmup);
    if (samples.length >= MIN_HEAP_SAMPLES) {
      const fit = ols(samples);
      const sen = theilSenFit(samples);
      report.heap = {
        samples: samples.length,
        theilSen: sen.slope,
        theilSenLo95: sen.lo95,
        theilSenHi95: sen.hi95,
        ols: fit.slope,
        olsLo95: fit.lo95,
        olsHi95: fit.hi95,
        limit: HEAP_SLOPE_LIMIT,
      };
      // A leak is a growth we are confident of: the whole confidence interval at or past the limit.
      // (One estimate decided before, and a fresh clone's V8 warm-up once put it at 1,029 B/cycle.)
      if (sen.lo95 >= HEAP_SLOPE_LIMIT) {
        throw new Failure(
          `the heap grows: Theil–Sen ${sen.slope.toFixed(0)} B/cycle (95% CI ${sen.lo95.toFixed(0)} to ${sen.hi95.toFixed(0)}), least squares ${fit.slope.toFixed(0)} B/cycle (95% CI ${fit.lo95.toFixed(0)} to ${fit.hi95.toFixed(0)}) over ${samples.length} cycles after a warm-up of ${warmup}; the limit is ${HEAP_SLOPE_LIMIT} B/cycle for the lower end of the Theil–Sen interval`,
        );
      }
    }
    await closeAndCheck(current(), timers, listenerBaseline);
    db = undefined;
  } catch (e) {
    report.verdict = 'fail';
    const message = e instanceof Error ? e.message : String(e);
    report.failures.push(e instanceof Failure ? message : `${where}: ${message}`);
    if (db !== undefined) await db.close().catch(() => undefined);
  } finally {
    timers.uninstall();
    plantLeak(undefined);
    report.durationMs = performance.now() - started;
    const arr = (x: Series) => Array.from(x.values());
    report.series = {
      heapUsed: arr(rec.heapUsed),
      arrayBuffers: arr(rec.arrayBuffers),
      pools: Object.fromEntries([...rec.pools].map(([k, v]) => [k, arr(v)])),
      openFiles: arr(rec.openFiles),
      checkpointFiles: arr(rec.checkpointFiles),
      objectFiles: arr(rec.objectFiles),
      walBytes: arr(rec.walBytes),
    };
  }
  return report;
}

/**
 * Samples in a growable Float64Array: its memory is an ArrayBuffer, outside the V8 heap the soak
 * measures, so the record of an hour-long soak does not show up as heap growth.
 */
class Series {
  private buf = new Float64Array(1024);
  private n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }
  values(): Float64Array {
    return this.buf.subarray(0, this.n);
  }
}

const SPEC = {
  columns: { k: 'int64', v: 'float64', s: 'string', f: { type: 'bool', nullable: true } },
  primaryKey: 'k',
} as const;

function row(k: number, seq: number) {
  return { k, v: seq / 8, s: `value-${seq % 977}`, f: seq % 5 === 0 ? null : seq % 2 === 0 };
}

async function withTimeout<T>(p: Promise<T>, ms: number, context: string, timers: TimerWatch): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = timers.saved.setTimeout(
          () => reject(new Failure(`${context} did not finish in ${ms / 1000} s`)),
          ms,
        );
      }),
    ]);
  } finally {
    timers.saved.clearTimeout(timer);
  }
}

/** Whether an error is what an injected fault may cause: IO or CORRUPTION, here or in its causes. */
function isFaultError(e: unknown): boolean {
  return faultCode(e) !== 'other';
}

function faultCode(e: unknown): string {
  for (let c = e, depth = 0; c !== undefined && c !== null && depth < 8; depth++) {
    if (c instanceof TidemarkError && (c.code === 'IO' || c.code === 'CORRUPTION')) return c.code;
    c = (c as { cause?: unknown }).cause;
  }
  return 'other';
}

/**
 * After a cycle with injected faults (none injected now): the database settled again if it can be,
 * returned; or, when it cannot (closed by a failed reopen, its log failed, a settle that fails),
 * closed through `close` (which checks that nothing is held) and undefined returned: open anew.
 */
async function recover(
  db: Database | undefined,
  close: (db: Database) => Promise<void>,
): Promise<Database | undefined> {
  if (db === undefined || !db.isOpen) return undefined;
  if (db.stats().wal.failed) {
    await close(db);
    return undefined;
  }
  try {
    await quiesce(db);
    return db;
  } catch (e) {
    if (!isFaultError(e)) throw e;
  }
  await close(db);
  return undefined;
}

/** Memtables flushed, background work done, the block cache emptied, the heap settled. */
/**
 * One cycle of the 'level' scenario: a TidemarkLevel of its own (in DIR/level/) opened, written
 * (puts, batches, a flush so that reads cross objects), read every way (iterators run to the end,
 * closed midway, in reverse with seeks; keys and values iterators; an explicit snapshot with
 * getMany; a clear), then its pools checked against their baseline at quiescence, then one
 * iterator and one snapshot left open and the database closed over them: close() must close them
 * and prove every pool at zero.
 */
async function levelCycle(dir: string, rng: Rng, seq: number, context: string): Promise<void> {
  const lv = new TidemarkLevel<string, string>(dir, {
    tidemark: {
      memory: { leakDetection: 'paranoid', limitBytes: 64 << 20 },
      checkpoint: { intervalMs: 0 },
      storage: { memtableRowsMax: 400, rowGroupRows: 64, mergeMinObjects: 3 },
      wal: { segmentBytes: 256 << 10 },
    },
  });
  await lv.open();
  try {
    const db = lv.tidemark;
    await quiesce(db);
    const baseline = poolSnapshot(db);
    const key = () => `k${String(rng.int(KEYS)).padStart(5, '0')}`;
    await lv.batch(
      Array.from({ length: 200 }, () => ({ type: 'put' as const, key: key(), value: `v${seq}` })),
    );
    for (let i = 0; i < 20; i++) await lv.put(key(), `p${seq}`);
    await db.flush();
    await lv.del(key());
    const chained = lv.batch();
    for (let i = 0; i < 20; i++) chained.put(key(), `c${seq}`);
    await chained.write();
    for await (const _ of lv.iterator({ gte: 'k00100', lt: 'k00400' })) void _;
    const half = lv.iterator({ reverse: true });
    await half.nextv(25);
    half.seek('k01000');
    await half.next();
    await half.close();
    await lv.keys({ limit: 30 }).all();
    await lv.values({ reverse: true, lte: 'k01500', limit: 30 }).all();
    const snap = lv.snapshot();
    await lv.put(key(), `s${seq}`);
    await lv.getMany([key(), key(), key()], { snapshot: snap });
    for await (const _ of lv.keys({ snapshot: snap, gt: 'k01900' })) void _;
    await snap.close();
    await lv.clear({ gte: `k0${rng.int(10)}`, lt: `k0${rng.int(10)}5`, limit: 50 });
    await quiesce(db);
    checkPools(db, baseline, `${context}: TidemarkLevel`);
    // Left open on purpose: close() must close them.
    const open = lv.iterator();
    await open.next();
    lv.snapshot();
  } finally {
    // Rejects with LEAK (naming the holders) if anything is still held.
    await lv.close();
  }
}

/**
 * One cycle of the 'sql' scenario: SQL DDL and writes (a table of its own, with a hidden row id
 * and a UNIQUE column), a join with a grouping large enough to reserve query memory, a correlated
 * subquery, a query that fails midway through a scan, a session's transaction left open and ended,
 * and a table dropped every few cycles. The loop's checks then prove the `query` pool back at its
 * baseline and nothing pinned.
 */
async function sqlTables(db: Database): Promise<void> {
  await db.query('CREATE TABLE IF NOT EXISTS sqlt (id INT PRIMARY KEY, k VARCHAR(20), v DOUBLE)');
  await db.query('CREATE TABLE IF NOT EXISTS sqln (tag VARCHAR(20) UNIQUE, n INT)');
}

async function sqlCycle(db: Database, rng: Rng, seq: number): Promise<void> {
  const rows = Array.from({ length: 300 }, () => rng.int(KEYS));
  const values = [...new Set(rows)].map((id) => `(${id}, 'k${id % 1500}', ${seq})`).join(', ');
  await db.query(`REPLACE INTO sqlt VALUES ${values}`);
  await db.query('INSERT INTO sqln VALUES (?, ?)', [`t${seq}`, seq]);
  await db.query('UPDATE sqlt SET v = v + 1 WHERE id BETWEEN ? AND ?', [rng.int(KEYS), rng.int(KEYS)]);
  await db.query('DELETE FROM sqlt WHERE id < ?', [rng.int(50)]);
  await db.query(
    'SELECT a.k, count(*), sum(a.v), max(b.v) FROM sqlt a JOIN sqlt b ON a.id = b.id GROUP BY a.k ORDER BY 2 DESC LIMIT 5',
  );
  await db.query('SELECT id, (SELECT count(*) FROM sqln WHERE n <= sqlt.id) FROM sqlt WHERE id < 30');
  // Fails at the row with the greatest id, after the scan has handed out batches.
  await db
    .query("SELECT REPEAT('x', CASE WHEN id = (SELECT max(id) FROM sqlt) THEN 20000000 ELSE 1 END) FROM sqlt")
    .then(
      () => {
        throw new Error('the oversized REPEAT succeeded');
      },
      (e: unknown) => {
        if (!(e instanceof TidemarkError)) throw e;
      },
    );
  const session = db.session();
  await session.query('BEGIN');
  await session.query('INSERT INTO sqln (tag, n) VALUES (?, ?)', [`open${seq}`, 0]);
  await session.query('SELECT count(*) FROM sqln');
  session.end();
  if (seq % 5 === 4) {
    await db.query('DROP TABLE sqln');
    await sqlTables(db);
  }
}

async function quiesce(db: Database): Promise<void> {
  await db.flush();
  await db._idle();
  db._dropCache();
  await settle();
}

/**
 * Buffers a subsystem keeps for its whole life once first needed (so present or not depending on
 * what ran since the last open): at most one each, left out of the comparison.
 */
const STANDING = new Set(['wal.batch']);

/** Bytes and handles per pool, standing buffers left out. */
function poolSnapshot(db: Database): Record<string, { bytes: number; handles: number }> {
  const standing = new Map<string, { bytes: number; handles: number }>();
  for (const h of db._holders().pools) {
    if (!STANDING.has(h.owner) || h.count > 1) continue;
    const e = standing.get(h.scope) ?? { bytes: 0, handles: 0 };
    e.bytes += h.bytes;
    e.handles += h.count;
    standing.set(h.scope, e);
  }
  const out: Record<string, { bytes: number; handles: number }> = {};
  for (const [name, p] of Object.entries(db.stats().memory.pools)) {
    const st = standing.get(name) ?? { bytes: 0, handles: 0 };
    out[name] = { bytes: p.bytes - st.bytes, handles: p.handles - st.handles };
  }
  return out;
}

function checkPools(
  db: Database,
  baseline: Record<string, { bytes: number; handles: number }>,
  context: string,
): void {
  const census = db._census();
  const problems: string[] = [];
  for (const [name, p] of Object.entries(poolSnapshot(db))) {
    let want = baseline[name] ?? { bytes: 0, handles: 0 };
    // The block cache was just emptied; the filter pool holds the open objects' bloom filters.
    if (name === 'cache') want = { bytes: 0, handles: 0 };
    if (name === 'meta') want = { bytes: census.bloomBytes, handles: census.readers };
    if (p.bytes === want.bytes && p.handles === want.handles) continue;
    const holders = db
      ._holders()
      .pools.filter((h) => h.scope === name)
      .map(
        (h) =>
          `    ${h.owner}: ${h.count} live, ${h.bytes} bytes${h.stack !== undefined ? `\n      allocated at:\n${indent(h.stack, 8)}` : ''}`,
      );
    if (name === 'cache') {
      const c = db.stats().storage.cache;
      holders.push(`    block cache: ${c.entries} entries, ${c.pinned} pinned, ${c.bytes} bytes`);
    }
    problems.push(
      `pool '${name}' holds ${p.bytes} bytes in ${p.handles} handle(s), expected ${want.bytes} in ${want.handles}:\n${holders.join('\n')}`,
    );
  }
  if (problems.length > 0)
    throw new Failure(`${context}: memory not back to its baseline at quiescence:\n${problems.join('\n')}`);
}

/** Open handles other than cached object files, by kind. */
function nonObjectHandles(db: Database): Map<string, number> {
  const m = new Map<string, number>();
  for (const f of db._holders().files) if (f.kind !== 'object') m.set(f.kind, (m.get(f.kind) ?? 0) + 1);
  return m;
}

function checkHandles(db: Database, baseline: Map<string, number>, realDir: string, context: string): void {
  const files = db._holders().files;
  const live = new Set(db.files().map((f) => f.path));
  const problems: string[] = [];
  const now = nonObjectHandles(db);
  for (const kind of new Set([...baseline.keys(), ...now.keys()])) {
    if ((now.get(kind) ?? 0) === (baseline.get(kind) ?? 0)) continue;
    const extra = files.filter((f) => f.kind === kind);
    problems.push(
      `${now.get(kind) ?? 0} open '${kind}' handle(s), expected ${baseline.get(kind) ?? 0}:\n${extra
        .map((f) => `    ${f.path} (${f.mode}), opened at:\n${indent(f.stack, 6)}`)
        .join('\n')}`,
    );
  }
  for (const f of files)
    if (f.kind === 'object' && !live.has(f.path))
      problems.push(
        `an open handle on ${f.path}, which is not a live object file; opened at:\n${indent(f.stack, 6)}`,
      );
  // The operating system's view: every fd into the directory is one the registry knows.
  const fds = fdsUnder(realDir);
  if (fds !== undefined) {
    const registered = files.map((f) => f.path).sort();
    if (fds.length !== registered.length || fds.some((p, i) => p !== registered[i]))
      problems.push(
        `/proc/self/fd has [${fds.join(', ')}] open in the directory; the registry [${registered.join(', ')}]`,
      );
  }
  if (problems.length > 0)
    throw new Failure(`${context}: file handles not back to their baseline:\n${problems.join('\n')}`);
}

async function checkFiles(db: Database, dir: string, context: string): Promise<number> {
  const disk = filesUnder(dir);
  const registry = db.files().map((f) => f.path);
  const problems: string[] = [];
  if (disk.join('\n') !== registry.join('\n')) {
    const a = new Set(disk);
    const b = new Set(registry);
    problems.push(
      `the directory and the registry differ: on disk only [${disk.filter((f) => !b.has(f)).join(', ')}], in the registry only [${registry.filter((f) => !a.has(f)).join(', ')}]`,
    );
  }
  // Read independently of the open database: every file is named by a retained meta file or the WAL.
  const r = await inspect(dir);
  if (r.objects.orphans.length > 0) problems.push(`orphan object files: ${r.objects.orphans.join(', ')}`);
  if (r.orphanCheckpointFiles.length > 0)
    problems.push(`checkpoint files no retained meta file names: ${r.orphanCheckpointFiles.join(', ')}`);
  const ckpFiles = disk.filter((f) => f.startsWith('ckp/'));
  const ckp = ckpFiles.length;
  if (ckp > CHECKPOINT_FILES_BOUND)
    problems.push(
      `${ckp} files in ckp/, above the bound of ${CHECKPOINT_FILES_BOUND}: ${ckpFiles.join(', ')}`,
    );
  if (problems.length > 0) throw new Failure(`${context}: files:\n  ${problems.join('\n  ')}`);
  return ckp;
}

async function checkClasses(db: Database, context: string): Promise<SoakReport['classes']> {
  const c = db._census();
  // At quiescence the live buffers are the open objects' bloom filters and the standing ones; the
  // memtable pool holds reservations only (write sets, recent-commit indexes).
  const holders = db._holders().pools;
  const standing = holders.filter((h) => STANDING.has(h.owner)).reduce((n, h) => n + h.count, 0);
  const reservations = db.stats().memory.pools['memtable']!.handles;
  const expected: Record<string, number> = {
    Database: 1,
    Storage: 1,
    Checkpointer: 1,
    Wal: 1,
    Table: c.tables,
    MemLayer: c.memLayers,
    MemTable: c.memLayers,
    ObjectLayer: c.objectLayers,
    ObjectReader: c.readers,
    Transaction: 0,
    TableScan: 0,
    PooledBuffer: c.readers + standing,
    Reservation: reservations,
  };
  const out: SoakReport['classes'] = [];
  const problems: string[] = [];
  for (const [name, ctor] of CLASSES) {
    const live = quietly(() => v8.queryObjects(ctor as never, { format: 'count' }));
    out.push({ name, expected: expected[name]!, live });
    if (live !== expected[name])
      problems.push(`${live} ${name} instance(s) live, expected ${expected[name]}`);
  }
  if (problems.length > 0) {
    problems.push(`the database holds ${JSON.stringify(c)}, ${standing} standing buffer(s)`);
    // Name the holders: the retaining paths of the classes with more instances than expected.
    const snapshot = await takeSnapshot();
    const paths = out
      .filter((c) => c.live > c.expected)
      .slice(0, 3)
      .flatMap((c) => retainingPaths(snapshot, c.name, c.expected + 2));
    throw new Failure(
      `${context}: v8.queryObjects: ${problems.join('; ')}\nretained by (shortest strong paths from the GC roots):\n${paths.map((p) => indent(p, 2)).join('\n')}`,
    );
  }
  return out;
}

function listenerCounts(): Map<string | symbol, number> {
  const m = new Map<string | symbol, number>();
  for (const e of process.eventNames()) m.set(e, process.listenerCount(e));
  return m;
}

/** Close (close() proves every pool at zero and no handle open), then no timer or listener left. */
async function closeAndCheck(
  db: Database,
  timers: TimerWatch,
  baseline: { counts: Map<string | symbol, number> | undefined },
  /** After injected faults: a close that fails with IO (its checkpoint, a failed log) is no failure. */
  faulted = false,
): Promise<void> {
  try {
    await db.close();
  } catch (e) {
    if (e instanceof LeakError) throw new Failure(`close: ${e.message}`);
    if (!faulted || !isFaultError(e)) throw e;
  }
  const problems: string[] = [];
  const alive = timers.alive();
  if (alive.length > 0)
    problems.push(`${alive.length} timer(s) left after close:\n${alive.map((t) => indent(t, 4)).join('\n')}`);
  const now = listenerCounts();
  const listeners = (baseline.counts ??= now);
  for (const e of new Set([...listeners.keys(), ...now.keys()])) {
    const before = listeners.get(e) ?? 0;
    const after = now.get(e) ?? 0;
    // Fewer is no leak (a library's exit hook goes with its collected stream).
    if (after <= before) continue;
    const added = process
      .listeners(e as NodeJS.Signals)
      .slice(before)
      .map((f) => f.toString().slice(0, 80).replace(/\s+/g, ' '));
    problems.push(
      `process '${String(e)}' has ${after} listener(s) after this close, ${before} after the first: ${added.join('; ')}`,
    );
  }
  timers.forget();
  if (problems.length > 0) throw new Failure(`after close: ${problems.join('\n')}`);
}

function indent(text: string, n: number): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((l) => pad + l.trim())
    .join('\n');
}
