/**
 * Every error the engine raises is a TidemarkError with a string `code`. The codes are part of the
 * public contract (see README "Errors"); callers switch on `code`, never on the message.
 */
export type ErrorCode =
  | 'DUPLICATE_KEY'
  | 'CONFLICT'
  | 'SCHEMA'
  | 'NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'CLOSED'
  | 'LOCKED'
  | 'CORRUPTION'
  | 'LEAK'
  | 'MEMORY_LIMIT'
  | 'IO'
  // A write to a read-only database (a read replica of object storage).
  | 'READ_ONLY'
  // SQL text that does not parse; details carry line, column and offset.
  | 'SYNTAX'
  // An engine-internal misuse of a reference-counted resource: released twice, or used after its
  // final release. It always means a bug in tidemark (or in code holding tidemark's buffers).
  | 'REFCOUNT';

export const ERROR_CODES: readonly ErrorCode[] = [
  'DUPLICATE_KEY',
  'CONFLICT',
  'SCHEMA',
  'NOT_FOUND',
  'INVALID_ARGUMENT',
  'CLOSED',
  'LOCKED',
  'CORRUPTION',
  'LEAK',
  'MEMORY_LIMIT',
  'IO',
  'READ_ONLY',
  'SYNTAX',
  'REFCOUNT',
];

export interface TidemarkErrorOptions {
  cause?: unknown;
  /** Extra machine-readable facts (file and offset of a corruption, the errno of an I/O error...). */
  details?: Record<string, unknown>;
}

export class TidemarkError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: TidemarkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TidemarkError';
    this.code = code;
    this.details = options.details;
  }
}

/**
 * An error about to be kept (a subsystem's last failure, a failed log's reason): its stack, and its
 * causes' stacks, formatted now. Until formatted, V8 keeps each frame's receiver and function
 * alive through the error (an object writer, its pooled buffers), for as long as the error is.
 */
export function keptError<T>(e: T, depth = 0): T {
  for (let c: unknown = e, n = 0; c instanceof Error && n < 8; n++) {
    void c.stack;
    if (c instanceof AggregateError && depth < 2)
      for (const inner of c.errors as unknown[]) keptError(inner, depth + 1);
    c = c.cause;
  }
  return e;
}

/** One holder of leaked resources: what it is, how many, how big, and where it was allocated. */
export interface LeakHolder {
  /** The subsystem pool or the file-handle kind. */
  scope: string;
  /** The owner tag given at allocation (for example `wal.record`) or the file path. */
  owner: string;
  count: number;
  bytes: number;
  /** The allocation stack, where the leak-detection level recorded one. */
  stack?: string;
  /** The last access records (retain, release, touch), at the `advanced` and `paranoid` levels. */
  records?: string[];
}

export class LeakError extends TidemarkError {
  readonly holders: readonly LeakHolder[];

  constructor(what: string, holders: readonly LeakHolder[]) {
    super('LEAK', formatLeakMessage(what, holders), { details: { holders } });
    this.name = 'LeakError';
    this.holders = holders;
  }
}

function formatLeakMessage(what: string, holders: readonly LeakHolder[]): string {
  const lines = [`${what}: ${holders.length} holder(s) still live`];
  for (const h of holders) {
    lines.push(`  - ${h.scope} ${h.owner}: ${h.count} live, ${h.bytes} bytes`);
    if (h.stack !== undefined) lines.push(indent(`allocated at:\n${h.stack}`, 6));
    if (h.records !== undefined && h.records.length > 0) {
      lines.push(indent(`recent accesses:\n${h.records.join('\n')}`, 6));
    }
  }
  return lines.join('\n');
}

function indent(text: string, n: number): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

export function isTidemarkError(e: unknown, code?: ErrorCode): e is TidemarkError {
  return e instanceof TidemarkError && (code === undefined || e.code === code);
}

/** Map a Node.js system error (EIO, ENOSPC, ...) to an `IO` TidemarkError naming the operation. */
export function ioError(op: string, path: string, cause: unknown): TidemarkError {
  if (cause instanceof TidemarkError) return cause;
  const errno = (cause as { code?: unknown } | null)?.code;
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new TidemarkError('IO', `${op} ${path}: ${msg}`, {
    cause,
    details: { op, path, errno: typeof errno === 'string' ? errno : undefined },
  });
}

/**
 * The errno of an error (`ENOENT`, `EEXIST`, ...): a Node.js system error's `code`, or the
 * `details.errno` that `ioError` kept; undefined for anything else.
 */
export function errnoOf(e: unknown): string | undefined {
  const direct = (e as { code?: unknown } | null)?.code;
  if (typeof direct === 'string' && !(e instanceof TidemarkError)) return direct;
  if (e instanceof TidemarkError) {
    const errno = e.details?.['errno'];
    return typeof errno === 'string' ? errno : undefined;
  }
  return undefined;
}

export function invalidArgument(message: string, details?: Record<string, unknown>): TidemarkError {
  return new TidemarkError('INVALID_ARGUMENT', message, details ? { details } : {});
}
