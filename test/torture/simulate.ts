import { checkWith } from '../../src/cli/check.js';
import { FaultFileService, type StepRecord } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { open, type Database } from '../../src/index.js';
import { createLogger } from '../../src/log.js';
import { MemoryManager } from '../../src/mem/manager.js';
import { ensureSchema, Rng, TortureModel, Worker } from './workload.js';

/**
 * Simulated crashes, deterministic by seed. A seed fixes the workload (the workers' choices and the
 * maintenance between rounds: flushes, merges, incremental and global checkpoints with their GC),
 * the kind of step the crash lands on, which step of that kind, and what the crash loses (unsynced
 * writes, a torn last write, directory entries not fsynced). Everything runs in one process on an
 * in-memory file service with no timers involved, so a seed replays the same steps exactly.
 */

/** The kinds of step a crash is aimed at, in turn (seed modulo the count). */
export const CRASH_KINDS = ['wal-write', 'wal-roll', 'object', 'checkpoint', 'global', 'gc'] as const;
export type CrashKind = (typeof CRASH_KINDS)[number];

/** What kind of work a step belongs to, from its operation and path. */
export function kindOf(rec: StepRecord): CrashKind | undefined {
  const { op, path } = rec;
  if (path.startsWith('wal/')) {
    if (op === 'write' || op === 'datasync') return 'wal-write';
    return 'wal-roll'; // a new segment created, an old one deleted behind a checkpoint
  }
  if (op === 'delete' && (path.startsWith('obj/') || path.startsWith('ckp/'))) return 'gc';
  if (path.startsWith('obj/')) return 'object'; // flush and merge writing objects
  if (path.startsWith('ckp/global-') || (op === 'rename' && rec.detail?.startsWith('ckp/global-')))
    return 'global';
  if (path.startsWith('ckp/')) return 'checkpoint';
  return undefined;
}

/** A wall clock that ticks one millisecond per reading, from the same instant every run. */
const fakeClock = () => {
  let ms = Date.UTC(2026, 0, 1);
  return () => ms++;
};

const OPTIONS = {
  checkpoint: { intervalMs: 0, incrementalsPerGlobal: 2, onClose: false },
  storage: { memtableRowsMax: 24, mergeMinObjects: 2, rowGroupRows: 16 },
  wal: { segmentBytes: 8 * 1024 },
} as const;

const HANG_MS = 20_000;

export interface Outcome {
  seed: number;
  kind: CrashKind | undefined;
  /** The step the crash landed on (undefined: the dry run). */
  crashAt: number | undefined;
  /** Mutating steps the workload took (the dry run's count). */
  steps: number;
  acks: number;
  /** What was wrong after the crash and recovery: empty when all is well. */
  problems: string[];
  /** The last steps before the crash. */
  log: readonly StepRecord[];
  /** What the crash kept and lost, per file. */
  crash: string;
}

/** Run the seed's workload; with `crashAt`, crash just before that step, then recover and check. */
async function run(seed: number, crashAt: number | undefined, fullLog: boolean) {
  const mem = new MemoryFileService();
  const fault = new FaultFileService(mem, { seed, logSteps: fullLog ? Infinity : 24 });
  const model = new TortureModel();
  const rng = new Rng(seed);
  let acks = 0;
  let base = 0;
  let db: Database | undefined;
  let error: unknown;
  let hung = false;
  const workload = async () => {
    db = await open('sim', {
      ...OPTIONS,
      memory: { leakDetection: 'disabled' },
      fileService: fault,
      clock: fakeClock(),
    });
    await ensureSchema(db);
    base = fault.steps;
    const d = db;
    const workers = Array.from(
      { length: 3 },
      (_, w) =>
        new Worker(
          d,
          w,
          new Rng(seed * 8 + w),
          0,
          (ev) => {
            model.apply(ev);
            if (ev.e === 'ack') acks++;
          },
          `s`,
        ),
    );
    if (crashAt !== undefined) fault.setCrashAtStep(crashAt);
    for (let round = 0; round < 6; round++) {
      const steps = workers.map(async (wk) => {
        for (let i = 0, n = 4 + rng.int(6); i < n; i++) await wk.step();
      });
      const x = rng.next();
      const upkeep =
        x < 0.3
          ? d.checkpoint()
          : x < 0.5
            ? d.checkpoint({ global: true })
            : x < 0.75
              ? d.flush()
              : d.compact();
      await Promise.all([upkeep, ...steps]);
    }
    await d.checkpoint({ global: rng.bool() });
    await d.close();
    db = undefined;
  };
  // Every wait must end after the crash (in failure): a wait that never does is a bug.
  let watchdog: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      workload(),
      new Promise<void>((_, reject) => {
        watchdog = setTimeout(() => {
          hung = true;
          reject(new Error('the workload hung: an operation never settled'));
        }, HANG_MS);
      }),
    ]);
  } catch (e) {
    error = e;
  } finally {
    clearTimeout(watchdog);
  }
  // The dry run must not fail.
  if (crashAt === undefined && error !== undefined)
    throw error instanceof Error ? error : new Error(`the dry run failed: ${JSON.stringify(error)}`);
  const dead = db;
  if (dead !== undefined && !hung) await dead.close().catch(() => undefined); // a dead process's handles
  const steps = fault.steps;
  const report = fault.crashed ? fault.report! : fault.crashNow();
  return { mem, fault, model, acks, steps, base, report, hung };
}

/** The seed's dry run: every step it takes once the schema is in place. */
export async function dryRun(seed: number): Promise<{ steps: StepRecord[] }> {
  const r = await run(seed, undefined, true);
  return { steps: r.fault.log.filter((s) => s.step > r.base) };
}

/** Crash the seed's workload at the step it chooses, recover, and check everything. */
export async function simulate(seed: number): Promise<Outcome> {
  const { steps } = await dryRun(seed);
  const kind = CRASH_KINDS[seed % CRASH_KINDS.length]!;
  const pick = new Rng(seed ^ 0x5eed);
  const ofKind = steps.filter((s) => kindOf(s) === kind);
  const from = ofKind.length > 0 ? ofKind : steps;
  const crashAt = from[pick.int(from.length)]!.step;
  const r = await run(seed, crashAt, false);
  const problems: string[] = r.hung ? [`the workload hung after the crash (no settle in ${HANG_MS} ms)`] : [];
  const logger = createLogger(undefined);
  let db: Database | undefined;
  try {
    db = await open('sim', {
      ...OPTIONS,
      memory: { leakDetection: 'paranoid' },
      fileService: r.mem,
      log: logger,
      clock: fakeClock(),
    });
  } catch (e) {
    problems.push(`open failed: ${(e as Error).message}`);
  }
  if (db !== undefined) {
    try {
      problems.push(...(await r.model.verify(db)));
      // The next checkpoint's GC leaves no orphan: the directory holds what the checkpoint names.
      await db.checkpoint();
      await db.close();
    } catch (e) {
      problems.push(`after recovery: ${(e as Error).message}`);
      await db.close().catch(() => undefined);
    }
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    try {
      const report = await checkWith(r.mem, memory, 'sim');
      problems.push(...report.problems.map((p) => `tidemark check: ${p}`));
    } finally {
      memory.close();
    }
  }
  const crash = r.report.files
    .map(
      (f) =>
        `${f.path}: kept ${f.kept}/${f.unsyncedWrites}${f.tornBytes !== null ? `, torn at ${f.tornBytes}` : ''}`,
    )
    .concat(r.report.dirs.map((d) => `${d.path}/: kept ${d.kept}/${d.unsyncedOps} entry changes`))
    .join('; ');
  // Temporary files are named by process id and a process-wide counter: the only part of a step
  // that differs between two runs of a seed.
  const tmp = (p: string) => p.replace(/\.\d+-\d+\.tmp$/, '.tmp');
  const log = r.fault.log.map((s) => ({
    ...s,
    path: tmp(s.path),
    ...(s.detail !== undefined ? { detail: tmp(s.detail) } : {}),
  }));
  return { seed, kind, crashAt, steps: steps.length, acks: r.acks, problems, log, crash };
}

/** A failing outcome as a report: the seed to replay, the crash, the last steps. */
export function describeOutcome(o: Outcome): string {
  return [
    `seed ${o.seed}: crash at step ${o.crashAt} of ${o.steps} (aimed at ${o.kind}), ${o.acks} commits acknowledged`,
    ...o.problems.map((p) => `  problem: ${p}`),
    `  the crash kept: ${o.crash || 'everything (nothing was unsynced)'}`,
    `  last steps:`,
    ...o.log.map((s) => `    ${s.step} ${s.op} ${s.path}${s.detail !== undefined ? ` ${s.detail}` : ''}`),
    `  replay: TIDEMARK_SEED=${o.seed} npx vitest run test/torture/simulate.test.ts`,
  ].join('\n');
}
