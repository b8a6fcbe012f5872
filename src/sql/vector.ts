/**
 * Column batches as the SQL operators pass them: each column is numbers in a typed array (with a
 * null map), boxed values, or one constant for every row.
 */
import { TidemarkError } from '../errors.js';
import type { Reservation } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import type { Transaction } from '../txn/transaction.js';
import { planted, plantedKeep } from '../util/plant.js';
import { gatherKernel, repOf, type NumArray } from './kernels.js';
import { Decimal, type SqlValue } from './values.js';

export interface NumCol {
  readonly k: 'num';
  readonly d: NumArray;
  /** 1 = null; null when the column has no nulls. */
  readonly nulls: Uint8Array | null;
  /** The numbers are times (ms since the epoch): their values are Dates. */
  readonly time?: boolean;
  /**
   * The numbers are DECIMALs with this many digits after the point, as scaled integers (value ×
   * 10^scale, every one exact: within ±2^53): their values are Decimals.
   */
  readonly scale?: number;
  /** The numbers are integers (INT, BIGINT, BOOL columns and integer arithmetic): `/` gives DECIMAL. */
  readonly int?: boolean;
  /** An upper bound of |value| when known (exact arithmetic's results): spares SUM a pass. */
  readonly max?: number;
}
export interface AnyCol {
  readonly k: 'any';
  readonly d: SqlValue[];
}
export interface ConstCol {
  readonly k: 'const';
  readonly v: SqlValue;
  /** A DOUBLE (a literal such as 1e0): computes as a double even when its value is an integer. */
  readonly dbl?: boolean;
}
export type Col = NumCol | AnyCol | ConstCol;

export interface Batch {
  len: number;
  cols: Col[];
  /**
   * Only these rows (the first `n` of `idx`) are in the batch: a filter's result left ungathered.
   * Produced only for an operator that asked for it (Aggregate, see `Selective`).
   */
  sel?: { idx: Int32Array; n: number };
}

export function constCol(v: SqlValue, dbl = false): ConstCol {
  return dbl ? { k: 'const', v, dbl } : { k: 'const', v };
}

export function numCol(d: NumArray, nulls: Uint8Array | null = null, time = false): NumCol {
  return time ? { k: 'num', d, nulls, time } : { k: 'num', d, nulls };
}

/** Scaled integers of a DECIMAL(_, scale) (see NumCol.scale). */
export function decimalCol(d: NumArray, nulls: Uint8Array | null, scale: number, max?: number): NumCol {
  return max === undefined ? { k: 'num', d, nulls, scale } : { k: 'num', d, nulls, scale, max };
}

/** Integers (see NumCol.int). */
export function intCol(d: NumArray, nulls: Uint8Array | null = null, max?: number): NumCol {
  return max === undefined ? { k: 'num', d, nulls, int: true } : { k: 'num', d, nulls, int: true, max };
}

/** A column of the same kind as `c` (times, decimals, integers) over other numbers. */
export function likeCol(c: NumCol, d: NumArray, nulls: Uint8Array | null): NumCol {
  if (c.scale !== undefined) return decimalCol(d, nulls, c.scale);
  if (c.int === true) return intCol(d, nulls);
  return numCol(d, nulls, c.time === true);
}

export function anyCol(d: SqlValue[]): AnyCol {
  return { k: 'any', d };
}

export function getv(c: Col, i: number): SqlValue {
  switch (c.k) {
    case 'num':
      if (c.nulls !== null && c.nulls[i] === 1) return null;
      if (c.scale !== undefined) return new Decimal(BigInt(c.d[i]!), c.scale);
      return c.time === true ? new Date(c.d[i]!) : c.d[i]!;
    case 'any':
      return c.d[i]!;
    default:
      return c.v;
  }
}

/** Rows `sel` of a column, as a new column. */
export function gather(c: Col, sel: ArrayLike<number>, n: number): Col {
  if (c.k === 'const') return c;
  if (c.k === 'num') {
    const d = new Float64Array(n);
    gatherKernel(repOf(c.d))(c.d, sel, n, d);
    let nulls: Uint8Array | null = null;
    if (c.nulls !== null) {
      nulls = new Uint8Array(n);
      for (let j = 0; j < n; j++) nulls[j] = c.nulls[sel[j]!]!;
    }
    return likeCol(c, d, nulls);
  }
  const d = new Array<SqlValue>(n);
  for (let j = 0; j < n; j++) d[j] = c.d[sel[j]!]!;
  return anyCol(d);
}

/** Rows `sel` of a batch (-1 in sel: a row of nulls, for outer joins). */
export function gatherBatch(b: Batch, sel: Int32Array, n: number): Batch {
  let padded = false;
  for (let j = 0; j < n; j++) if (sel[j]! < 0) padded = true;
  if (!padded) return { len: n, cols: b.cols.map((c) => gather(c, sel, n)) };
  const cols = b.cols.map((c) => {
    if (c.k === 'num') {
      // Numbers stay numbers of their kind, the padding rows null.
      const d = new Float64Array(n);
      const nulls = new Uint8Array(n);
      for (let j = 0; j < n; j++) {
        const s = sel[j]!;
        if (s < 0 || (c.nulls !== null && c.nulls[s] === 1)) nulls[j] = 1;
        else d[j] = c.d[s]!;
      }
      return likeCol(c, d, nulls);
    }
    const d = new Array<SqlValue>(n);
    for (let j = 0; j < n; j++) d[j] = sel[j]! < 0 ? null : getv(c, sel[j]!);
    return anyCol(d);
  });
  return { len: n, cols };
}

/** A column as boxed values (materialized for n rows). */
export function boxed(c: Col, n: number): SqlValue[] {
  if (c.k === 'any') return c.d;
  const out = new Array<SqlValue>(n);
  for (let i = 0; i < n; i++) out[i] = getv(c, i);
  return out;
}

/** Bytes a value is taken to need when a query holds it (hash tables, sorts). */
export function valueBytes(v: SqlValue): number {
  if (typeof v === 'string') return 16 + 2 * v.length;
  if (v instanceof Uint8Array) return 32 + v.length;
  return 16;
}

/** Memory a query holds in hash tables, sorts and materialized inputs, from the `query` pool. */
export class QueryMemory {
  private reservation: Reservation | undefined;
  private pending = 0;
  constructor(
    private readonly pool: MemoryPool,
    /** What the memory is for: the pool's owner tag is `query: ` and its first 80 characters. */
    private readonly what: string,
  ) {}

  /** Account `bytes` more; MEMORY_LIMIT when the pool (or the database's limit) cannot give them. */
  charge(bytes: number): void {
    this.pending += bytes;
    // Reserve in steps of 64 KiB: one reservation change per step, not per row.
    if (this.pending < 65536) return;
    const step = this.pending;
    this.pending = 0;
    if (this.reservation === undefined) {
      try {
        this.reservation = this.pool.reserveSync(step, `query: ${this.what.slice(0, 80)}`);
      } catch (e) {
        throw limitError(e, step);
      }
      return;
    }
    if (!this.reservation.tryGrow(step)) throw limitError(undefined, step);
  }

  /** An account of its own in the same pool (a subquery's run: see childCtx). */
  child(): QueryMemory {
    return new QueryMemory(this.pool, this.what);
  }

  get bytes(): number {
    return (this.reservation?.bytes ?? 0) + this.pending;
  }

  release(): void {
    if (this.reservation !== undefined && planted('sql-query-memory')) plantedKeep.push(this.reservation);
    else this.reservation?.release();
    this.reservation = undefined;
    this.pending = 0;
  }
}

function limitError(cause: unknown, bytes: number): TidemarkError {
  return new TidemarkError(
    'MEMORY_LIMIT',
    `the query needs more memory than the query pool can give (${bytes} bytes more): ` +
      'add a key range or a more selective condition, or raise memory.limitBytes / memory.poolMaxBytes.query',
    { cause, details: { pool: 'query' } },
  );
}

/** A connection's state that SQL reads: variables, current database, user (see SqlSession). */
export interface SessionInfo {
  /** System variables (@@name), by lower-case name. */
  system: Map<string, SqlValue>;
  /** User variables (@name), by lower-case name. */
  user: Map<string, SqlValue>;
  database: string;
  userName: string;
  connectionId: number;
}

/** What `db.stats().sql` reports. */
export interface SqlCounters {
  /** Statements run. */
  statements: number;
  /** Statements that failed. */
  failed: number;
  /** Row groups of objects left unread because their zone maps ruled out a scan's conditions. */
  zoneSkippedGroups: number;
  /** Scans that read a range of a secondary index. */
  indexScans?: number;
  /** Scans that looked rows up by a UNIQUE index's values. */
  indexLookups?: number;
  /** Joins that looked the inner side's rows up by an index, row by row. */
  indexJoins?: number;
}

/** What one execution of a statement (or of a correlated subquery for one outer row) works with. */
export interface Ctx {
  tx: Transaction;
  params: readonly SqlValue[];
  /** Rows of the enclosing queries, innermost first (correlated subqueries). */
  outer: readonly SqlValue[][];
  /** Per-node caches of subquery results (uncorrelated: one entry; correlated: by outer values). */
  cache: Map<object, Map<string, unknown>>;
  mem: QueryMemory;
  /** The engine's counters (stats().sql). */
  counters: SqlCounters;
  /** The session the statement runs in (variables, DATABASE(), USER()). */
  session: SessionInfo;
  /** Throws when the query is cancelled (the statement's transaction ended). */
  check(): void;
  /**
   * check(), and every 20 ms or so of work a promise that lets the event loop run first (other
   * connections, timers such as the transaction timeout): a long query must not starve the process.
   * Undefined when not due (nothing to await).
   */
  breathe(): Promise<void> | undefined;
}

/**
 * The context of one run of a subquery for an outer row. Its memory is its own, released by the
 * caller when the run ends: a correlated subquery's hash tables, run once per outer row, must not
 * pile up in the outer query's account until the statement ends.
 */
export function childCtx(ctx: Ctx, row: SqlValue[]): Ctx {
  return { ...ctx, outer: [row, ...ctx.outer], cache: new Map(), mem: ctx.mem.child() };
}

/** Strings per bucket of a StringSet before the bucket becomes a Set of its own. */
const BUCKET_LIST = 8;

/**
 * A set of strings keyed by a hash of a few of their characters. V8 hashes every character of a
 * string the first time it keys a Set or Map: for long values decoded afresh by every query (a
 * DISTINCT over 120-character strings) that hash is most of the cost, about 8 times this one's.
 * Strings are bucketed by their length and up to 32 characters (both ends and a sample of the
 * middle) and compared whole within a bucket; a bucket holding more than 8 strings becomes a Set,
 * so values that collide on purpose cost no more than a Set would.
 */
export class StringSet {
  private readonly buckets = new Map<number, string | string[] | Set<string>>();

  /** Adds `s`; false when it was already there. */
  add(s: string): boolean {
    const h = sampledHash(s);
    const b = this.buckets.get(h);
    if (b === undefined) {
      this.buckets.set(h, s);
      return true;
    }
    if (typeof b === 'string') {
      if (b === s) return false;
      this.buckets.set(h, [b, s]);
      return true;
    }
    if (Array.isArray(b)) {
      if (b.includes(s)) return false;
      if (b.length < BUCKET_LIST) b.push(s);
      else this.buckets.set(h, new Set([...b, s]));
      return true;
    }
    if (b.has(s)) return false;
    b.add(s);
    return true;
  }
}

/** @internal exported for tests */
export function sampledHash(s: string): number {
  const n = s.length;
  let h = n;
  if (n <= 32) {
    for (let i = 0; i < n; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x9e3779b1);
    return h | 0;
  }
  // Values that differ mostly differ near one end (numbered names, padded codes): both ends whole,
  // the middle sampled.
  for (let i = 0; i < 12; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x9e3779b1);
  for (let i = n - 12; i < n; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x85ebca6b);
  const step = (n - 24) >> 3;
  for (let i = 12 + (step >> 1); i < n - 12; i += step + 1) h = Math.imul(h ^ s.charCodeAt(i), 0xc2b2ae35);
  return h | 0;
}
