import { mkdirSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { open, type Database } from '../api/database.js';
import type { OpenOptions } from '../db/options.js';
import { FaultFileService, type RandomFaults } from '../fileservice/fault.js';
import { LocalFileService } from '../fileservice/local.js';
import { plantLeak, type PlantKind } from '../util/plant.js';
import { Rng } from '../util/random.js';
import {
  checkClasses,
  checkFiles,
  checkHandles,
  checkPools,
  nonObjectHandles,
  poolSnapshot,
  quiesce,
  type ClassCount,
} from './census.js';
import { closeAndCheck, heapUsedWithoutCode, TimerWatch } from './process_watch.js';
import { Failure, faultCode, HEAP_SLOPE_LIMIT, isFaultError, judgeHeap, type HeapFit } from './verdict.js';
import {
  CHECKPOINT_FILES_BOUND,
  INCREMENTALS_PER_GLOBAL,
  KEYS,
  LEVEL_SUBDIR,
  levelCycle,
  row,
  SCENARIOS,
  type Scenario,
  SPEC,
  sqlCycle,
  sqlTables,
} from './workload.js';

const CYCLE_TIMEOUT_MS = 120_000;

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
  heap: HeapFit;
  classes: ClassCount[];
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
            case 'index': {
              // An index built online over flushed rows and the memtable, read through (to the
              // end, abandoned midway, reversed, by a unique value) and dropped.
              await write(d, 'b');
              await d.flush();
              await write(d, 'b');
              if (d.describeTable('b').indexes.some((i) => i.name === 'b_v')) await d.dropIndex('b', 'b_v');
              await d.createIndex('b', 'b_v', ['v', 'k'], { unique: true });
              let n = 0;
              for await (const _ of d.scan('b', { index: 'b_v', gte: [10] })) n++;
              for await (const _ of d.scan('b', { index: 'by_s', reverse: true })) if (--n < 0) break;
              for await (const _ of d.scan('a', { index: 'by_s', eq: ['value-1'], limit: 5 })) break;
              await d
                .transaction(async (tx) => {
                  for await (const _ of tx.scan('b', { index: 'b_v', reverse: true }))
                    throw new Error('abandoned');
                })
                .catch(() => undefined);
              await d.getBy('b', 'b_v', [1, 8]);
              await d.dropIndex('b', 'b_v');
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
      const ckpFiles = await checkFiles(live, dir, CHECKPOINT_FILES_BOUND, context);
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
    judgeHeap(rec.heapUsed.values().subarray(warmup), warmup, report);
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
