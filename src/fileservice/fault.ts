import { ioError, TidemarkError } from '../errors.js';
import { checkPath } from './paths.js';
import type {
  CrashReport,
  CrashableFileService,
  DirectoryLock,
  FileHandle,
  FileService,
  FileStat,
  OpenOptions,
} from './types.js';
import type { FileKind, OpenMode } from './kinds.js';
import { fmix } from '../util/hash.js';
import { writeFileAtomicVia } from './util.js';

/** A fault to report after its operation took effect (see FaultRule.landed). */
type Landing = () => never;

/** Every operation a fault can be injected into. */
export const FAULT_OPS = [
  'open',
  'read',
  'write',
  'datasync',
  'truncate',
  'size',
  'close',
  'rename',
  'delete',
  'mkdir',
  'syncDir',
  'list',
  'stat',
] as const;
export type FaultOp = (typeof FAULT_OPS)[number];

/** A 32-bit hash of three integers. */
function mix(a: number, b: number, c: number): number {
  return fmix(
    Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35) ^ Math.imul(c, 0x27d4eb2f),
  );
}

/** The operations that change what is on disk: the steps a simulated crash can land on. */
export const MUTATING_OPS: readonly FaultOp[] = [
  'open',
  'write',
  'datasync',
  'truncate',
  'rename',
  'delete',
  'mkdir',
  'syncDir',
];

export interface FaultRule {
  op: FaultOp;
  /** Fail the nth operation of this kind (1-based) that matches `path`. */
  nth: number;
  errno: 'EIO' | 'ENOSPC';
  /** Only operations on paths matching this (a prefix string or a RegExp). */
  path?: string | RegExp;
  /** Keep failing every matching operation from the nth on (a disk that stays full). */
  sticky?: boolean;
  /**
   * The operation takes effect, then reports the error (a write that reached the disk and still
   * returned EIO): for write, datasync, truncate, rename and delete.
   */
  landed?: boolean;
}

/**
 * Random faults, reproducible by seed: each operation of a kind in `ops` fails with probability
 * `rate`, decided by a hash of (seed, kind, how many operations of that kind came before since the
 * faults were set). The same seed fails the same Nth operations of each kind.
 */
export interface RandomFaults {
  seed: number;
  /** Probability in [0, 1] that one operation fails. */
  rate: number;
  ops: readonly FaultOp[];
}

export interface FaultOptions {
  rules?: FaultRule[];
  /** Random faults from the start (see setRandomFaults). */
  random?: RandomFaults;
  /** Called with each fault injected (by a rule or at random), before the operation fails. */
  onFault?: (fault: StepRecord) => void;
  /** Crash just before the Nth mutating step (1-based): the step does not happen. */
  crashAtStep?: number;
  /** The seed of the crash's data loss (see CrashableFileService.crash). */
  seed?: number;
  /** Keep a log of the last steps for failure reports. Default 64. */
  logSteps?: number;
}

export interface StepRecord {
  step: number;
  op: FaultOp;
  path: string;
  detail?: string;
}

/**
 * A fault-injecting wrapper around any FileService, deterministic from its options and seed:
 * - fail the Nth operation of a kind (optionally on matching paths) with EIO or ENOSPC;
 * - crash at the Nth mutating step: the inner service (which must be crashable) loses what was not
 *   fsynced, and every later operation, through this wrapper or a handle it opened, fails as if
 *   the process had died.
 */
export class FaultFileService implements FileService {
  readonly root: string;
  /** Mutating steps performed so far. */
  steps = 0;
  readonly counts = new Map<FaultOp, number>();
  private readonly matchCounts = new Map<FaultRule, number>();
  private readonly rules: FaultRule[];
  private crashAtStep: number | undefined;
  private readonly seed: number;
  private readonly logLimit: number;
  private readonly recent: StepRecord[] = [];
  /** Faults injected so far, for test assertions. */
  readonly injected: StepRecord[] = [];
  private crashReport: CrashReport | undefined;
  private random: RandomFaults | undefined;
  private readonly randomCounts = new Map<FaultOp, number>();
  private readonly onFault: ((fault: StepRecord) => void) | undefined;

  constructor(
    readonly inner: FileService,
    options: FaultOptions = {},
  ) {
    this.root = inner.root;
    this.rules = [...(options.rules ?? [])];
    this.crashAtStep = options.crashAtStep;
    this.seed = options.seed ?? 1;
    this.logLimit = options.logSteps ?? 64;
    this.onFault = options.onFault;
    this.setRandomFaults(options.random);
  }

  /**
   * Start failing operations at random (or stop, with undefined). Counting for the draws starts
   * again from zero, so a seed set at the same point of a workload fails the same operations.
   */
  setRandomFaults(random: RandomFaults | undefined): void {
    if (random !== undefined && !(random.rate >= 0 && random.rate <= 1))
      throw new TidemarkError('INVALID_ARGUMENT', `fault rate ${random.rate} is not in [0, 1]`);
    this.random = random;
    this.randomCounts.clear();
  }

  get handles() {
    return this.inner.handles;
  }

  tempTag(): string | undefined {
    return this.inner.tempTag?.();
  }

  /** Whether the simulated crash has happened. */
  get crashed(): boolean {
    return this.crashReport !== undefined;
  }

  get report(): CrashReport | undefined {
    return this.crashReport;
  }

  /** The last steps, oldest first: what to print with a failing seed. */
  get log(): readonly StepRecord[] {
    return this.recent;
  }

  addRule(rule: FaultRule): void {
    this.rules.push(rule);
  }

  clearRules(): void {
    this.rules.length = 0;
  }

  /** Schedule (or cancel, with undefined) a crash at an absolute step number. */
  setCrashAtStep(step: number | undefined): void {
    this.crashAtStep = step;
  }

  /** Crash now (the inner service must be crashable). */
  crashNow(): CrashReport {
    if (this.crashReport !== undefined) return this.crashReport;
    const inner = this.inner as Partial<CrashableFileService>;
    if (typeof inner.crash !== 'function') {
      throw new TidemarkError(
        'INVALID_ARGUMENT',
        `cannot simulate a crash on ${this.root}: not a crashable file service`,
      );
    }
    this.crashReport = inner.crash.call(this.inner, this.seed);
    return this.crashReport;
  }

  /**
   * @internal Every operation passes here first: it may crash, fail, or count a step. With
   * `canLand`, a `landed` fault comes back as a function for the caller to call once the operation
   * took effect (other operations fail at once even under a `landed` rule).
   */
  before(op: FaultOp, path: string, detail?: string, canLand = false): Landing | undefined {
    if (this.crashReport !== undefined) throw crashedError(op, path);
    const mutating = MUTATING_OPS.includes(op);
    if (mutating) {
      if (this.crashAtStep !== undefined && this.steps + 1 >= this.crashAtStep) {
        this.crashNow();
        throw crashedError(op, path);
      }
      this.steps++;
    }
    const n = (this.counts.get(op) ?? 0) + 1;
    this.counts.set(op, n);
    const rec: StepRecord = { step: this.steps, op, path, ...(detail !== undefined ? { detail } : {}) };
    if (mutating) {
      this.recent.push(rec);
      if (this.recent.length > this.logLimit) this.recent.shift();
    }
    return this.applyRules(op, path, rec, canLand);
  }

  async open(path: string, mode: OpenMode, kind: FileKind, options: OpenOptions = {}): Promise<FileHandle> {
    checkPath(path);
    // Opening for read changes nothing on disk: it is not a step a crash can land on.
    if (mode === 'read' || mode === 'readwrite') this.beforeRead('open', path);
    else this.before('open', path, mode);
    const h = await this.inner.open(path, mode, kind, options);
    return new FaultHandle(this, h);
  }

  /**
   * If the next mutating step is where the crash lands and it is a write, how many bytes of it
   * reach the file first (a torn write, drawn from the seed); otherwise 0.
   */
  tornBytesIfCrashing(length: number): number {
    if (this.crashReport !== undefined || this.crashAtStep === undefined || this.steps + 1 < this.crashAtStep)
      return 0;
    if (length < 2) return 0;
    // Deterministic from seed and step: half the time nothing lands, else a random prefix.
    const x = Math.imul(this.seed ^ (this.steps * 0x9e3779b1), 0x85ebca6b) >>> 0;
    return x % 2 === 0 ? 0 : 1 + (x % (length - 1));
  }

  async writeFileAtomic(path: string, chunks: readonly Uint8Array[], kind: FileKind): Promise<void> {
    checkPath(path);
    await writeFileAtomicVia(this, path, chunks, kind);
  }

  async list(dir: string): Promise<string[]> {
    this.beforeRead('list', dir);
    return this.inner.list(dir);
  }

  async stat(path: string): Promise<FileStat | undefined> {
    this.beforeRead('stat', path);
    return this.inner.stat(path);
  }

  async rename(from: string, to: string): Promise<void> {
    const land = this.before('rename', from, to, true);
    await this.inner.rename(from, to);
    land?.();
  }

  async delete(path: string): Promise<boolean> {
    const land = this.before('delete', path, undefined, true);
    const existed = await this.inner.delete(path);
    land?.();
    return existed;
  }

  async mkdir(dir: string): Promise<void> {
    this.before('mkdir', dir);
    await this.inner.mkdir(dir);
  }

  async syncDir(dir: string): Promise<void> {
    this.before('syncDir', dir);
    await this.inner.syncDir(dir);
  }

  async lock(): Promise<DirectoryLock> {
    if (this.crashReport !== undefined) throw crashedError('open', 'LOCK');
    return this.inner.lock();
  }

  async close(): Promise<void> {
    if (this.crashReport !== undefined) return; // the process died: nothing is open any more
    await this.inner.close();
  }

  /** @internal Reads are counted and can fail, but are not crash steps. */
  beforeRead(op: FaultOp, path: string): void {
    if (this.crashReport !== undefined) throw crashedError(op, path);
    const n = (this.counts.get(op) ?? 0) + 1;
    this.counts.set(op, n);
    this.applyRules(op, path, { step: this.steps, op, path });
  }

  private applyRules(op: FaultOp, path: string, rec: StepRecord, canLand = false): Landing | undefined {
    let landing: Landing | undefined;
    for (const rule of this.rules) {
      if (rule.op !== op || !matches(rule.path, path)) continue;
      const m = (this.matchCounts.get(rule) ?? 0) + 1;
      this.matchCounts.set(rule, m);
      if (m === rule.nth || (rule.sticky === true && m > rule.nth)) {
        if (rule.landed === true && canLand) landing ??= () => this.inject(op, path, rec, rule.errno);
        else this.inject(op, path, rec, rule.errno);
      }
    }
    const r = this.random;
    if (r !== undefined && r.ops.includes(op)) {
      const n = (this.randomCounts.get(op) ?? 0) + 1;
      this.randomCounts.set(op, n);
      const x = mix(r.seed, FAULT_OPS.indexOf(op), n);
      if (x / 2 ** 32 < r.rate)
        this.inject(op, path, rec, op === 'write' && (x & 1) === 1 ? 'ENOSPC' : 'EIO');
    }
    return landing;
  }

  private inject(op: FaultOp, path: string, rec: StepRecord, errno: 'EIO' | 'ENOSPC'): never {
    // Bounded: a long soak injects thousands (the count is in onFault's hands).
    if (this.injected.length < 10_000) this.injected.push(rec);
    this.onFault?.(rec);
    const e = Object.assign(new Error(`${errno} (injected): ${op} ${path}`), { code: errno });
    throw ioError(op, path, e);
  }
}

class FaultHandle implements FileHandle {
  constructor(
    private readonly fs: FaultFileService,
    private readonly h: FileHandle,
  ) {}

  get path(): string {
    return this.h.path;
  }

  get kind(): FileKind {
    return this.h.kind;
  }

  async read(dst: Uint8Array, position: number): Promise<number> {
    this.fs.beforeRead('read', this.h.path);
    return this.h.read(dst, position);
  }

  async write(src: Uint8Array, position: number): Promise<void> {
    // A crash in the middle of this write: part of it reaches the file, then the process dies.
    const torn = this.fs.tornBytesIfCrashing(src.length);
    if (torn > 0) await this.h.write(src.subarray(0, torn), position);
    const land = this.fs.before('write', this.h.path, `${src.length}@${position}`, true);
    await this.h.write(src, position);
    land?.();
  }

  async datasync(): Promise<void> {
    const land = this.fs.before('datasync', this.h.path, undefined, true);
    await this.h.datasync();
    land?.();
  }

  async size(): Promise<number> {
    this.fs.beforeRead('size', this.h.path);
    return this.h.size();
  }

  async truncate(length: number): Promise<void> {
    const land = this.fs.before('truncate', this.h.path, String(length), true);
    await this.h.truncate(length);
    land?.();
  }

  async close(): Promise<void> {
    if (this.fs.crashed) return; // its process died: the handle is gone with it
    try {
      this.fs.beforeRead('close', this.h.path);
    } finally {
      // Even a failed close releases the descriptor, as close(2) does.
      await this.h.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function matches(rule: string | RegExp | undefined, path: string): boolean {
  if (rule === undefined) return true;
  return typeof rule === 'string' ? path.startsWith(rule) : rule.test(path);
}

function crashedError(op: string, path: string): TidemarkError {
  return new TidemarkError('IO', `simulated crash: ${op} ${path} after the process died`, {
    details: { op, path, errno: 'EIO', simulatedCrash: true },
  });
}
