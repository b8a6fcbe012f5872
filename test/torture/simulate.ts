import { checkWith } from '../../src/db/check.js';
import { FaultFileService, type FaultRule, type StepRecord } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { open, TidemarkError, type Database } from '../../src/index.js';
import { createLogger } from '../../src/log.js';
import { MemoryManager } from '../../src/mem/manager.js';
import { ensureSchema, fakeClock, Rng, TortureModel, Worker } from './workload.js';

/**
 * Simulated crashes and I/O errors, deterministic by seed. A seed fixes the workload (the workers' choices and the
 * maintenance between rounds: flushes, merges, incremental and global checkpoints with their GC),
 * the kind of step the crash lands on, which step of that kind, and what the crash loses (unsynced
 * writes, a torn last write, directory entries not fsynced). Everything runs in one process on an
 * in-memory file service with a fake wall clock, and up to the crash no timer decides anything, so a
 * seed replays the same steps exactly. (After an injected I/O error, retries run on real timers:
 * such a seed replays the same fault, and what follows may differ in its timing.)
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

const OPTIONS = {
  checkpoint: { intervalMs: 0, incrementalsPerGlobal: 2, onClose: false },
  storage: { memtableRowsMax: 24, mergeMinObjects: 2, rowGroupRows: 16 },
  wal: { segmentBytes: 8 * 1024 },
} as const;

const HANG_MS = Number(process.env['TIDEMARK_HANG_MS'] ?? 20_000);

export interface Outcome {
  seed: number;
  kind: CrashKind | undefined;
  /** The step the crash or the error landed on. */
  crashAt: number | undefined;
  /** For an I/O error: which, on what operation and path. */
  fault?: string;
  /** For an I/O error: how many operations failed with IO, and whether the log failed (fail-stop). */
  ioErrors?: number;
  walFailed?: boolean;
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

type Injection = { crashAt: number } | { rule: FaultRule } | undefined;

const isIo = (e: unknown) => e instanceof TidemarkError && e.code === 'IO';
const text = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : JSON.stringify(e));

/**
 * Run the seed's workload. With `crashAt`, crash just before that step (the run ends there). With a
 * rule, fail those operations with EIO or ENOSPC: every failure must be an `IO` error (a worker
 * that meets one stops), and afterwards, with the disk healthy again, the database must either take
 * a commit or refuse it with `IO` because its log failed, then close without a leak.
 */
async function run(seed: number, inject: Injection, fullLog: boolean) {
  const mem = new MemoryFileService();
  const fault = new FaultFileService(mem, { seed, logSteps: fullLog ? Infinity : 24 });
  const model = new TortureModel();
  const rng = new Rng(seed);
  const problems: string[] = [];
  let acks = 0;
  let ioErrors = 0;
  let walFailed = false;
  let base = 0;
  let roundsEnd = 0;
  let db: Database | undefined;
  let error: unknown;
  let hung = false;
  const io = inject !== undefined && 'rule' in inject;
  /** In I/O mode, an IO error ends the operation (and the worker); anything else is a problem. */
  const pending = new Set<string>();
  const tolerate = async (what: string, fn: () => Promise<unknown>): Promise<boolean> => {
    pending.add(what);
    try {
      await fn();
      return true;
    } catch (e) {
      if (!io) throw e;
      if (isIo(e)) ioErrors++;
      else problems.push(`${what} failed with ${String(e)} where IO was expected`);
      return false;
    } finally {
      pending.delete(what);
    }
  };
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
    if (inject !== undefined && 'crashAt' in inject) fault.setCrashAtStep(inject.crashAt);
    if (inject !== undefined && 'rule' in inject) fault.addRule(inject.rule);
    const stopped = new Set<Worker>();
    for (let round = 0; round < 6; round++) {
      const steps = workers.map(async (wk) => {
        for (let i = 0, n = 4 + rng.int(6); i < n && !stopped.has(wk); i++)
          if (!(await tolerate(`worker ${wk.w}: ${wk.next}`, () => wk.step()))) stopped.add(wk);
      });
      const x = rng.next();
      const what = x < 0.3 ? 'checkpoint' : x < 0.5 ? 'global checkpoint' : x < 0.75 ? 'flush' : 'compact';
      const upkeep = tolerate(`${what} (round ${round})`, () =>
        x < 0.3
          ? d.checkpoint()
          : x < 0.5
            ? d.checkpoint({ global: true })
            : x < 0.75
              ? d.flush()
              : d.compact(),
      );
      await Promise.all([upkeep, ...steps]);
    }
    roundsEnd = fault.steps;
    if (io) {
      // The disk works again: the database takes a commit, or refuses it because its log failed.
      fault.clearRules();
      walFailed = d.stats().wal.failed;
      const probe = await d.update('bank', 0, { balance: (await d.get('bank', 0))!['balance'] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (walFailed && !isIo(probe))
        problems.push(
          `the log failed, yet a commit was answered with ${probe === undefined ? 'success' : text(probe)}`,
        );
      if (!walFailed && probe !== undefined) problems.push(`the database is not usable: ${text(probe)}`);
      if (!walFailed) await d.checkpoint({ global: rng.bool() });
      const closed = await d.close().then(
        () => undefined,
        (e: unknown) => e,
      );
      if (closed !== undefined && !isIo(closed)) problems.push(`close failed: ${text(closed)}`);
    } else {
      await d.checkpoint({ global: rng.bool() });
      await d.close();
    }
    db = undefined;
  };
  // Every wait must end after the crash or the error (in failure): a wait that never does is a bug.
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
  if (hung)
    problems.push(
      `the workload hung: ${[...pending].join(', ') || 'open or close'} never settled in ${HANG_MS} ms`,
    );
  // Only a crash may end the run early.
  if ((inject === undefined || io) && error !== undefined && !hung) {
    if (inject === undefined)
      throw error instanceof Error ? error : new Error(`the dry run failed: ${JSON.stringify(error)}`);
    problems.push(`the workload failed: ${text(error)}`);
  }
  const dead = db;
  if (dead !== undefined && !hung) await dead.close().catch(() => undefined); // a dead process's handles
  if (io && !hung) {
    // Every handle closed, after a close that succeeded or failed.
    await mem.close().catch((e: unknown) => problems.push(`file handles left open: ${String(e)}`));
  }
  const steps = fault.steps;
  const report = io ? undefined : fault.crashed ? fault.report! : fault.crashNow();
  return { mem, fault, model, acks, steps, base, roundsEnd, report, hung, problems, ioErrors, walFailed };
}

/**
 * The seed's dry run: every step it takes (`steps`: those after the schema is in place; `rounds`:
 * those of the rounds, before the last checkpoint and the close).
 */
export async function dryRun(seed: number): Promise<{ steps: StepRecord[]; rounds: StepRecord[] }> {
  const r = await run(seed, undefined, true);
  const steps = r.fault.log.filter((s) => s.step > r.base);
  return { steps, rounds: steps.filter((s) => s.step <= r.roundsEnd) };
}

/** The step of the seed's kind it aims at. */
function aim(seed: number, steps: StepRecord[]): { kind: CrashKind; at: StepRecord } {
  const kind = CRASH_KINDS[seed % CRASH_KINDS.length]!;
  const pick = new Rng(seed ^ 0x5eed);
  const ofKind = steps.filter((s) => kindOf(s) === kind);
  const from = ofKind.length > 0 ? ofKind : steps;
  return { kind, at: from[pick.int(from.length)]! };
}

/** Crash the seed's workload at the step it chooses, recover, and check everything. */
export async function simulate(seed: number): Promise<Outcome> {
  const { steps } = await dryRun(seed);
  const { kind, at } = aim(seed, steps);
  const r = await run(seed, { crashAt: at.step }, false);
  return finish(seed, kind, at.step, steps.length, r);
}

/**
 * Fail one step of the seed's workload (or, for half the seeds, that step and every later one of
 * its kind on that path: a disk that stays full) with EIO or ENOSPC, then check what the database
 * did about it, and recover and check everything.
 */
export async function ioFault(seed: number): Promise<Outcome> {
  // Aimed at the rounds: the disk is healthy again for the last checkpoint and the close.
  const { steps, rounds } = await dryRun(seed);
  const { kind, at } = aim(seed, rounds);
  // The nth operation of its kind on its path since the rule is in place (after the schema): the
  // same step in a run that goes the same way.
  const nth = steps.filter((s) => s.step <= at.step && s.op === at.op && s.path === at.path).length;
  const errno = seed % 2 === 0 ? 'ENOSPC' : 'EIO';
  const sticky = seed % 4 >= 2;
  const escaped = at.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const r = await run(
    seed,
    { rule: { op: at.op, nth, errno, path: new RegExp(`^${escaped}$`), sticky } },
    false,
  );
  const o = await finish(seed, kind, at.step, steps.length, r);
  const first = r.fault.injected[0];
  if (first === undefined) o.problems.push('the fault never fired: the run went another way');
  else if (first.step !== at.step)
    o.problems.push(`the fault fired at step ${first.step}, not ${at.step}: the run went another way`);
  return {
    ...o,
    fault: `${errno}${sticky ? ' (sticky)' : ''} on ${at.op} #${nth} of ${at.path}`,
    ioErrors: r.ioErrors,
    walFailed: r.walFailed,
  };
}

/** Reopen what a run left, check it against the model, and put the outcome together. */
async function finish(
  seed: number,
  kind: CrashKind,
  crashAt: number,
  steps: number,
  r: Awaited<ReturnType<typeof run>>,
): Promise<Outcome> {
  const problems = [...r.problems];
  const logger = createLogger(undefined);
  let db: Database | undefined;
  if (!r.hung) {
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
  const crash = (r.report?.files ?? [])
    .map(
      (f) =>
        `${f.path}: kept ${f.kept}/${f.unsyncedWrites}${f.tornBytes !== null ? `, torn at ${f.tornBytes}` : ''}`,
    )
    .concat((r.report?.dirs ?? []).map((d) => `${d.path}/: kept ${d.kept}/${d.unsyncedOps} entry changes`))
    .join('; ');
  return { seed, kind, crashAt, steps, acks: r.acks, problems, log: r.fault.log, crash };
}

/** A failing outcome as a report: the seed to replay, the crash, the last steps. */
export function describeOutcome(o: Outcome): string {
  const head =
    o.fault !== undefined
      ? `seed ${o.seed}: ${o.fault}, step ${o.crashAt} of ${o.steps} (aimed at ${o.kind}); ${o.ioErrors} operations failed with IO, the log ${o.walFailed === true ? 'failed' : 'stayed up'}`
      : `seed ${o.seed}: crash at step ${o.crashAt} of ${o.steps} (aimed at ${o.kind})`;
  return [
    `${head}, ${o.acks} commits acknowledged`,
    ...o.problems.map((p) => `  problem: ${p}`),
    ...(o.fault === undefined ? [`  the crash kept: ${o.crash || 'everything (nothing was unsynced)'}`] : []),
    `  last steps:`,
    ...o.log.map((s) => `    ${s.step} ${s.op} ${s.path}${s.detail !== undefined ? ` ${s.detail}` : ''}`),
    `  replay: TIDEMARK_SEED=${o.seed} npx vitest run test/torture/${o.fault !== undefined ? 'io_errors' : 'simulate'}.test.ts`,
  ].join('\n');
}
