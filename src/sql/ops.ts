/**
 * Query operators: each pulls column batches from its inputs and yields column batches. Operators
 * that hold rows (hash tables, sorts, the build side of joins) account them in the query's memory.
 * Every operator is an async generator: a consumer that stops early closes the whole pipeline, down
 * to the table scans, which release what they pinned.
 */
import type { ColumnType } from '../catalog/schema.js';
import {
  evaluate,
  isDoubleCol,
  scaledConstant,
  truthArray,
  type CondAtom,
  type Expr,
  type Runnable,
} from './expr.js';
import {
  anyCol,
  boxed,
  constCol,
  gatherBatch,
  getv,
  numCol,
  intCol,
  decimalCol,
  valueBytes,
  type Batch,
  type Col,
  type Ctx,
  type NumCol,
  StringSet,
} from './vector.js';
import {
  compare,
  Decimal,
  decimalArith,
  hashKey,
  numKind,
  parseDate,
  valueKey,
  sortCompare,
  toNumber,
  toText,
  type SqlValue,
} from './values.js';
import { canonicalInt, divFloor, INT64_MAX, INT64_MIN, pow10, UINT64_MAX } from '../util/decimal.js';
import {
  multiSumKernel,
  repOf,
  selectKernel,
  sumKernel,
  type NumArray,
  type Rep,
  type SelectAtom,
} from './kernels.js';

export const BATCH_ROWS = 4096;
/** Rows per batch read from a table (the engine caps batches at 16,000 rows). */
const SCAN_BATCH_ROWS = 16384;

export interface Op extends Runnable {
  /** Output column names (for `columns` and `*`). */
  readonly names: readonly string[];
  /** The output as rows, for an operator that makes them anyway (a sort): no batches between. */
  rows?(ctx: Ctx): Promise<SqlValue[][]>;
}

export function indent(lines: string[]): string[] {
  return lines.map((l) => `  ${l}`);
}

/** Constant expressions (literals, parameters, outer columns) evaluated once. */
export async function constValue(e: Expr, ctx: Ctx): Promise<SqlValue> {
  const c = await evaluate(e, { len: 1, cols: [] }, ctx);
  return getv(c, 0);
}

// ---- sources ----

/** One row of no columns: the input of a SELECT without FROM. */
export class OneRow implements Op {
  readonly names: string[] = [];
  readonly width = 0;
  async *run(): AsyncGenerator<Batch> {
    yield { len: 1, cols: [] };
  }
  explain(): string[] {
    return ['one row'];
  }
}

export interface ScanColumn {
  name: string;
  type: ColumnType;
  /** DECIMAL columns: digits after the point. */
  scale?: number;
}

/** Conditions for the zone maps of a scan (see ScanBatchesOptions.zone). */
interface ZoneSpec {
  atoms: { column: string; op: string; value: number }[];
  skipped: number;
}

export interface KeyRange {
  /** Key equal to this (a point read). */
  eq?: Expr;
  lower?: { e: Expr; inclusive: boolean };
  upper?: { e: Expr; inclusive: boolean };
  /**
   * Both bounds come from one BETWEEN: if either is not of the key's kind, the BETWEEN compares
   * all three as numbers (a string key with 0 AND '%'), so neither bound follows the key's order.
   */
  between?: boolean;
}

/** A DECIMAL key column's digits (its keys are scaled integers at `scale`, below 10^precision). */
export interface KeyDigits {
  scale: number;
  precision: number;
}

/**
 * The integer domain of a key type whose keys are exact integers: int32, int64, uint64, and
 * DECIMAL as its scaled integers. Undefined for other key types.
 */
function exactDomain(
  keyType: ColumnType,
  digits: KeyDigits | undefined,
): { lo: bigint; hi: bigint; scale: number; key: (u: bigint) => unknown } | undefined {
  switch (keyType) {
    case 'int32':
      return { lo: -(2n ** 31n), hi: 2n ** 31n - 1n, scale: 0, key: (u) => Number(u) };
    case 'int64':
      return { lo: INT64_MIN, hi: INT64_MAX, scale: 0, key: canonicalInt };
    case 'uint64':
      return { lo: 0n, hi: UINT64_MAX, scale: 0, key: canonicalInt };
    case 'decimal': {
      const s = digits?.scale ?? 0;
      const max = pow10(digits?.precision ?? 10) - 1n;
      return { lo: -max, hi: max, scale: s, key: (u) => new Decimal(u, s) };
    }
    default:
      return undefined;
  }
}

/**
 * A value as an exact number at `scale`: its floor and ceiling there (equal when it is exactly one
 * of them), or undefined when it is not a number (a string or a date: compared row by row, as
 * MySQL compares across types). NaN has neither; ±Infinity is returned as null bounds.
 */
function exactAt(
  v: SqlValue,
  scale: number,
): { floor: bigint | null; ceil: bigint | null; nan?: boolean } | undefined {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { floor: null, ceil: null, nan: true };
    if (v === Infinity) return { floor: null, ceil: null };
    if (v === -Infinity) return { floor: null, ceil: null };
    // A double is an exact binary fraction: integers past 2^53 by BigInt, fractions by their digits.
    const d = Number.isInteger(v) ? new Decimal(BigInt(v), 0) : Decimal.fromNumber(v)!;
    return exactAt(d, scale);
  }
  if (typeof v === 'bigint') v = new Decimal(v, 0);
  if (!(v instanceof Decimal)) return undefined;
  return { floor: divFloor(v.u, v.s - scale), ceil: -divFloor(-v.u, v.s - scale) };
}

function keyConv(keyType: ColumnType): (v: SqlValue) => number | string | undefined {
  const numeric = keyType === 'float64' || keyType === 'timestamp';
  return (v) => {
    if (numeric) {
      if (typeof v === 'number') return v;
      if (v instanceof Date && keyType === 'timestamp') return v.getTime();
      return undefined;
    }
    if (keyType === 'string' && typeof v === 'string') return v;
    return undefined;
  };
}

/**
 * The key a `key = v` condition reads: 'empty' when no row can match (NULL, a fraction for an
 * integer key, out of range); undefined when v is not of the key's kind (the condition is then
 * checked row by row, as MySQL compares across types).
 */
export function pointKey(v: SqlValue, keyType: ColumnType, digits?: KeyDigits): unknown {
  if (v === null) return 'empty';
  const dom = exactDomain(keyType, digits);
  if (dom !== undefined) {
    const x = exactAt(v, dom.scale);
    if (x === undefined) return undefined;
    if (x.floor === null || x.ceil === null || x.floor !== x.ceil) return 'empty';
    if (x.floor < dom.lo || x.floor > dom.hi) return 'empty';
    return dom.key(x.floor);
  }
  const k = keyConv(keyType)(v);
  if (k === undefined) return undefined;
  return keyType === 'timestamp' ? new Date(k) : k;
}

/**
 * The key bounds of a range for a key column of this type, or 'empty'. `exact`: an integer key
 * between two integers, where gte and lt select exactly the keys the conditions do (a fraction, a
 * string or a NULL compares as MySQL compares, so only the conditions decide).
 */
async function keyBounds(
  range: KeyRange,
  keyType: ColumnType,
  ctx: Ctx,
  digits?: KeyDigits,
): Promise<{ eq?: unknown; gte?: unknown; lt?: unknown; exact?: boolean } | 'empty' | undefined> {
  if (range.eq !== undefined) {
    const k = pointKey(await constValue(range.eq, ctx), keyType, digits);
    if (k === 'empty') return 'empty';
    return k === undefined ? undefined : { eq: k };
  }
  const dom = exactDomain(keyType, digits);
  const conv = keyConv(keyType);
  const out: { gte?: unknown; lt?: unknown; exact?: boolean } = {};
  // Each bound's value, evaluated once.
  const lowerValue = range.lower === undefined ? undefined : await constValue(range.lower.e, ctx);
  const upperValue = range.upper === undefined ? undefined : await constValue(range.upper.e, ctx);
  const ofKind = (v: SqlValue): boolean =>
    dom !== undefined ? exactAt(v, dom.scale) !== undefined : conv(v) !== undefined;
  if (
    range.between === true &&
    lowerValue !== undefined &&
    upperValue !== undefined &&
    lowerValue !== null &&
    upperValue !== null &&
    (!ofKind(lowerValue) || !ofKind(upperValue))
  )
    return undefined;
  if (dom !== undefined) {
    // Exact: the bounds' floors and ceilings at the key's scale, cut to the key type's range.
    let exact = range.lower !== undefined && range.upper !== undefined;
    // A bound as the first key past it (gte: the lower bound's; lt: the upper bound's).
    const bound = (v: SqlValue, lower: boolean, inclusive: boolean): bigint | null | 'empty' => {
      if (v === null) return 'empty';
      const x = exactAt(v, dom.scale);
      if (x === undefined || typeof v === 'string') exact = false;
      if (x === undefined) return null;
      if (x.nan === true) return 'empty';
      if (x.floor !== x.ceil) exact = false;
      if (x.floor === null) return v === (lower ? Infinity : -Infinity) ? 'empty' : null;
      if (lower) return inclusive ? x.ceil! : x.floor + 1n;
      return inclusive ? x.floor + 1n : x.ceil!;
    };
    if (range.lower !== undefined) {
      const g = bound(lowerValue!, true, range.lower.inclusive);
      if (g === 'empty' || (g !== null && g > dom.hi)) return 'empty';
      if (g !== null) out.gte = dom.key(g < dom.lo ? dom.lo : g);
    }
    if (range.upper !== undefined) {
      const l = bound(upperValue!, false, range.upper.inclusive);
      if (l === 'empty' || (l !== null && l <= dom.lo)) return 'empty';
      if (l !== null && l <= dom.hi) out.lt = dom.key(l);
    }
    if (out.gte === undefined && out.lt === undefined) return undefined;
    out.exact = exact;
    return out;
  }
  if (range.lower !== undefined) {
    const v = lowerValue!;
    if (v === null) return 'empty';
    const k = conv(v);
    if (k !== undefined) {
      if (typeof k === 'number') {
        if (Number.isNaN(k)) return 'empty';
        if (Number.isFinite(k)) out.gte = keyType === 'timestamp' ? new Date(k) : k;
      } else out.gte = k;
    }
  }
  if (range.upper !== undefined) {
    const v = upperValue!;
    if (v === null) return 'empty';
    const k = conv(v);
    if (k !== undefined) {
      if (typeof k === 'number') {
        const l = range.upper.inclusive ? undefined : k;
        if (Number.isNaN(k)) return 'empty';
        if (l !== undefined && Number.isFinite(l)) out.lt = keyType === 'timestamp' ? new Date(l) : l;
        if (l === -Infinity) return 'empty';
      } else if (range.upper.inclusive) out.lt = `${k}\u0000`;
      else out.lt = k;
    }
  }
  if (out.gte === undefined && out.lt === undefined) return undefined;
  out.exact = false;
  return out;
}

/**
 * Engine values to a column: 64-bit integers (and decimals' scaled integers, scanned with
 * `decimals: 'scaled'`) as numbers while every one is safe, else boxed values.
 */
function tableColumn(col: ScanColumn, data: unknown, nulls: Uint8Array | undefined, n: number): Col {
  switch (col.type) {
    case 'float64':
      return numCol(data as Float64Array, nulls ?? null);
    case 'int32':
    case 'bool':
      return intCol(data as Float64Array, nulls ?? null);
    case 'int64':
    case 'uint64':
    case 'decimal': {
      if (data instanceof Float64Array)
        return col.type === 'decimal'
          ? decimalCol(data, nulls ?? null, col.scale ?? 0)
          : intCol(data, nulls ?? null);
      const d = data as (number | bigint | null)[];
      let wide = false;
      for (let i = 0; i < n; i++) if (typeof d[i] === 'bigint') wide = true;
      const scale = col.type === 'decimal' ? (col.scale ?? 0) : undefined;
      if (!wide)
        return scale !== undefined
          ? decimalCol(d as number[], nulls ?? null, scale)
          : intCol(d as number[], nulls ?? null);
      const out = new Array<SqlValue>(n);
      for (let i = 0; i < n; i++) {
        const v = nulls?.[i] === 1 ? null : d[i]!;
        out[i] = v === null || scale === undefined ? v : new Decimal(BigInt(v), scale);
      }
      return anyCol(out);
    }
    case 'timestamp':
      return numCol(data as Float64Array, nulls ?? null, true);
    default: {
      const d = data as SqlValue[];
      if (nulls === undefined) return anyCol(d);
      const out = d.slice();
      for (let i = 0; i < n; i++) if (nulls[i] === 1) out[i] = null;
      return anyCol(out);
    }
  }
}

export function rowValue(type: ColumnType, v: unknown): SqlValue {
  if (v === null || v === undefined) return null;
  if (type === 'bool') return v === true ? 1 : 0;
  if (type === 'decimal') return Decimal.parse(v as string) ?? null;
  if (type === 'timestamp') return v instanceof Date ? v : new Date(v as number);
  return v as SqlValue;
}

/**
 * The rows of a table: a point read for a key equality, a key-range scan for key bounds, else the
 * whole table; then the table's own conditions, batch at a time.
 */
export class TableScan implements Op {
  readonly width: number;
  readonly names: string[];
  constructor(
    readonly table: string,
    readonly label: string,
    readonly columns: readonly ScanColumn[],
    readonly keyColumn: string,
    readonly keyType: ColumnType,
    readonly range: KeyRange | undefined,
    readonly filter: Expr | undefined,
    /** The filter is the key equality alone: a point read needs no other check. */
    readonly pointOnly = false,
    /** The filter is the key range alone (one BETWEEN): with exact bounds, no row needs checking. */
    readonly rangeOnly = false,
    /** A DECIMAL key's digits. */
    readonly keyDigits?: KeyDigits,
  ) {
    this.yieldSelection = false;
    this.width = columns.length;
    this.names = columns.map((c) => c.name);
  }

  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const bounds =
      this.range !== undefined ? await keyBounds(this.range, this.keyType, ctx, this.keyDigits) : undefined;
    if (bounds === 'empty') return;
    const names = this.columns.length > 0 ? this.columns.map((c) => c.name) : [this.keyColumn];
    if (bounds?.eq !== undefined) {
      const row = await ctx.tx.get(this.table, bounds.eq, { columns: names });
      if (row === undefined) return;
      // A DOUBLE column's value stays a double (2.0 / 4 is 0.5, not DECIMAL 0.5000).
      const cols = this.columns.map((c) => constCol(rowValue(c.type, row[c.name]), c.type === 'float64'));
      const b: Batch = { len: 1, cols };
      const out = await this.filtered(b, ctx);
      if (out.len > 0) yield out;
      return;
    }
    // Zero-copy batches: every operator is done with a batch (or has copied what it keeps: hash
    // tables, sorts and results hold boxed values) before it asks its input for the next one.
    const options: {
      columns: string[];
      batchRows: number;
      borrow: boolean;
      decimals: 'scaled';
      gte?: unknown;
      lt?: unknown;
      zone?: ZoneSpec;
    } = {
      columns: names,
      batchRows: SCAN_BATCH_ROWS,
      borrow: true,
      decimals: 'scaled',
    };
    if (bounds?.gte !== undefined) options.gte = bounds.gte;
    if (bounds?.lt !== undefined) options.lt = bounds.lt;
    // The filter is the key range alone and the bounds select exactly its rows: none re-checked.
    const checked = !(this.rangeOnly && bounds?.exact === true);
    const zone = this.zoneFor(ctx);
    if (zone !== undefined) options.zone = zone;
    try {
      for await (const tb of ctx.tx.scanBatches(this.table, options)) {
        const pause = ctx.breathe();
        if (pause !== undefined) await pause;
        const n = tb.length;
        const cols = this.columns.map((c) => tableColumn(c, tb.columns[c.name], tb.nulls?.[c.name], n));
        const out = checked ? await this.filtered({ len: n, cols }, ctx) : { len: n, cols };
        if (liveRows(out) > 0) yield out;
      }
    } finally {
      if (zone !== undefined) ctx.counters.zoneSkippedGroups += zone.skipped;
    }
  }

  /**
   * The filter's comparisons of numeric columns with constants, for the objects' zone maps (the
   * filter still checks every row handed out: this only spares reading row groups no row of which
   * can pass).
   */
  private zoneFor(ctx: Ctx): ZoneSpec | undefined {
    const atoms: ZoneSpec['atoms'] = [];
    for (const a of this.filter?.atoms ?? []) {
      const c = this.columns[a.column];
      if (c === undefined || a.op === '<>' || a.op === '!=') continue;
      if (
        c.type !== 'int32' &&
        c.type !== 'int64' &&
        c.type !== 'uint64' &&
        c.type !== 'float64' &&
        c.type !== 'timestamp' &&
        c.type !== 'decimal'
      )
        continue;
      const v = getv(a.value.ev(ONE_ROW, ctx), 0);
      let x: number | undefined;
      if (c.type === 'timestamp') {
        if (v instanceof Date) x = v.getTime();
        else if (typeof v === 'string') x = parseDate(v)?.getTime();
      } else if (c.type === 'decimal') x = scaledConstant(v, c.scale ?? 0);
      else if (typeof v === 'number') x = v;
      else if (v instanceof Decimal && v.precision <= 15 && c.type !== 'float64') x = v.toNumber();
      if (x !== undefined && !Number.isNaN(x)) atoms.push({ column: c.name, op: a.op, value: x });
    }
    return atoms.length > 0 ? { atoms, skipped: 0 } : undefined;
  }

  private async filtered(b: Batch, ctx: Ctx): Promise<Batch> {
    return this.filter === undefined ? b : applyFilter(this.filter, b, ctx, this.yieldSelection);
  }

  /** Set by the planner when the consumer is an Aggregate that takes selections. */
  yieldSelection: boolean;

  explain(): string[] {
    const how =
      this.range?.eq !== undefined ? 'point read' : this.range !== undefined ? 'key range scan' : 'full scan';
    const lines = [`${how} ${this.label} (${this.columns.map((c) => c.name).join(', ') || this.keyColumn})`];
    if (this.range?.eq !== undefined) lines.push(`  key ${this.keyColumn} = ${this.range.eq.text}`);
    if (this.range?.lower !== undefined)
      lines.push(
        `  key ${this.keyColumn} ${this.range.lower.inclusive ? '>=' : '>'} ${this.range.lower.e.text}`,
      );
    if (this.range?.upper !== undefined)
      lines.push(
        `  key ${this.keyColumn} ${this.range.upper.inclusive ? '<=' : '<'} ${this.range.upper.e.text}`,
      );
    if (this.filter !== undefined) lines.push(`  filter ${this.filter.text}`);
    return lines;
  }
}

const ONE_ROW: Batch = { len: 1, cols: [] };

/**
 * Rows of `b` where `cond` is true: fused into one pass when it is an AND of simple comparisons.
 * `keepSel`: the consumer takes a selection (Batch.sel), so the rows need not be gathered.
 */
export async function applyFilter(cond: Expr, b: Batch, ctx: Ctx, keepSel = false): Promise<Batch> {
  if (cond.atoms !== undefined) {
    const r = fusedFilter(cond.atoms, b, ctx, keepSel);
    if (r !== undefined) return r;
  }
  return filterBatch(b, await evaluate(cond, b, ctx));
}

/** Rows in a batch (its selection's, when it has one). */
export function liveRows(b: Batch): number {
  return b.sel !== undefined ? b.sel.n : b.len;
}

/** The fused path, or undefined when a column or constant is not a number (or a time). */
function fusedFilter(atoms: readonly CondAtom[], b: Batch, ctx: Ctx, keepSel: boolean): Batch | undefined {
  const slotOf = new Map<number, number>();
  const cols: NumArray[] = [];
  const nulls: (Uint8Array | null)[] = [];
  const reps: Rep[] = [];
  const k: number[] = [];
  const shape: SelectAtom[] = [];
  for (const a of atoms) {
    const c = b.cols[a.column]!;
    if (c.k !== 'num') return undefined;
    const v = getv(a.value.ev(ONE_ROW, ctx), 0);
    if (v === null) return { len: 0, cols: b.cols };
    let x: number;
    if (c.time === true) {
      if (v instanceof Date) x = v.getTime();
      else if (typeof v === 'string') {
        const d = parseDate(v);
        if (d === undefined) return undefined;
        x = d.getTime();
      } else return undefined;
    } else if (c.scale !== undefined) {
      const s = scaledConstant(v, c.scale);
      if (s === undefined) return undefined;
      x = s;
    } else if (typeof v === 'number') x = v;
    else if (v instanceof Decimal && v.precision <= 15) x = v.toNumber();
    else return undefined;
    let slot = slotOf.get(a.column);
    if (slot === undefined) {
      slot = cols.length;
      slotOf.set(a.column, slot);
      cols.push(c.d);
      nulls.push(c.nulls);
      reps.push(repOf(c.d));
    }
    shape.push({ slot, op: a.op, k: k.length });
    k.push(x);
  }
  const sel = new Int32Array(b.len);
  const m = selectKernel(
    shape,
    reps,
    nulls.map((x) => x !== null),
  )(cols, nulls, k, b.len, sel);
  if (m === b.len) return b;
  // Most rows kept: hand over the selection (the consumer's loops over every row cost less than
  // gathering them); few kept: gather them, so the consumer works on those only.
  return keepSel && m * 2 > b.len
    ? { len: b.len, cols: b.cols, sel: { idx: sel, n: m } }
    : gatherBatch(b, sel, m);
}

/** Rows whose condition is true. */
export function filterBatch(b: Batch, cond: Col): Batch {
  const t = truthArray(cond, b.len);
  let n = 0;
  for (let i = 0; i < b.len; i++) if (t[i] === 1) n++;
  if (n === b.len) return b;
  const sel = new Int32Array(n);
  let j = 0;
  for (let i = 0; i < b.len; i++) if (t[i] === 1) sel[j++] = i;
  return gatherBatch(b, sel, n);
}

/** The rows of another query, under the names of a derived table or view. */
export class Derived implements Op {
  readonly width: number;
  constructor(
    readonly input: Op,
    readonly names: readonly string[],
    readonly label: string,
  ) {
    this.width = input.width;
  }
  run(ctx: Ctx): AsyncGenerator<Batch> {
    return this.input.run(ctx);
  }
  explain(): string[] {
    return [`derived ${this.label}`, ...indent(this.input.explain())];
  }
}

// ---- row operators ----

export class Filter implements Op {
  readonly width: number;
  readonly names: readonly string[];
  /** Set by the planner when the consumer is an Aggregate that takes selections. */
  yieldSelection = false;
  constructor(
    readonly input: Op,
    readonly cond: Expr,
  ) {
    this.width = input.width;
    this.names = input.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    for await (const b of this.input.run(ctx)) {
      const out = await applyFilter(this.cond, b, ctx, this.yieldSelection);
      if (liveRows(out) > 0) yield out;
    }
  }
  explain(): string[] {
    return [`filter ${this.cond.text}`, ...indent(this.input.explain())];
  }
}

export class Project implements Op {
  readonly width: number;
  constructor(
    readonly input: Op,
    readonly exprs: readonly Expr[],
    readonly names: readonly string[],
  ) {
    this.width = exprs.length;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    for await (const b of this.input.run(ctx)) {
      const cols: Col[] = [];
      // Without subqueries an expression is evaluated synchronously: no await per column.
      for (const e of this.exprs) cols.push(e.subs.length === 0 ? e.ev(b, ctx) : await evaluate(e, b, ctx));
      yield { len: b.len, cols };
    }
  }
  explain(): string[] {
    return [`project ${this.exprs.map((e) => e.text).join(', ')}`, ...indent(this.input.explain())];
  }
}

/** Keep the first `width` columns (drop the sort keys a projection carried). */
export class Narrow implements Op {
  constructor(
    readonly input: Op,
    readonly width: number,
    readonly names: readonly string[],
  ) {}
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    for await (const b of this.input.run(ctx)) yield { len: b.len, cols: b.cols.slice(0, this.width) };
  }
  explain(): string[] {
    return this.input.explain();
  }
}

export class Limit implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(
    readonly input: Op,
    readonly count: Expr | undefined,
    readonly offset: Expr | undefined,
  ) {
    this.width = input.width;
    this.names = input.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const count = this.count !== undefined ? toNumber((await constValue(this.count, ctx)) ?? 0) : Infinity;
    let skip = this.offset !== undefined ? toNumber((await constValue(this.offset, ctx)) ?? 0) : 0;
    let left = Math.max(0, Math.trunc(count));
    skip = Math.max(0, Math.trunc(skip));
    if (left === 0) return;
    for await (const b of this.input.run(ctx)) {
      let start = 0;
      if (skip > 0) {
        start = Math.min(skip, b.len);
        skip -= start;
      }
      const n = Math.min(left, b.len - start);
      if (n <= 0) continue;
      left -= n;
      if (start === 0 && n === b.len) yield b;
      else {
        const sel = new Int32Array(n);
        for (let i = 0; i < n; i++) sel[i] = start + i;
        yield gatherBatch(b, sel, n);
      }
      if (left === 0) return;
    }
  }
  explain(): string[] {
    return [
      `limit ${this.count?.text ?? 'all'}${this.offset !== undefined ? ` offset ${this.offset.text}` : ''}`,
      ...indent(this.input.explain()),
    ];
  }
}

/** A row's values as one key: equal for rows DISTINCT and set operations take as equal (NULLs too). */
export function rowKey(b: Batch, i: number, width: number): string {
  let k = '';
  for (let c = 0; c < width; c++) k += `${hashKey(getv(b.cols[c]!, i))}\u0001`;
  return k;
}

/** Rows not seen before (DISTINCT, UNION). */
export class Distinct implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(readonly input: Op) {
    this.width = input.width;
    this.names = input.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    // Strings (composed keys of several columns too) go in a StringSet; other values in a Set
    // (bytes by their hashKey text, which no number equals).
    const strings = new StringSet();
    const others = new Set<unknown>();
    const single = this.width === 1;
    for await (const b of this.input.run(ctx)) {
      const sel = new Int32Array(b.len);
      let n = 0;
      for (let i = 0; i < b.len; i++) {
        let fresh: boolean;
        let bytes = 32;
        const v = single ? getv(b.cols[0]!, i) : rowKey(b, i, this.width);
        if (typeof v === 'string') {
          fresh = strings.add(v);
          bytes += 2 * v.length;
        } else {
          const k = v === null ? null : valueKey(v);
          fresh = !others.has(k);
          if (fresh) others.add(k);
          if (typeof k === 'string') bytes += 2 * k.length;
        }
        if (!fresh) continue;
        ctx.mem.charge(bytes);
        sel[n++] = i;
      }
      if (n > 0) yield n === b.len ? b : gatherBatch(b, sel, n);
    }
  }
  explain(): string[] {
    return ['distinct', ...indent(this.input.explain())];
  }
}

export class UnionAll implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(readonly inputs: readonly Op[]) {
    this.width = inputs[0]!.width;
    this.names = inputs[0]!.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    for (const i of this.inputs) yield* i.run(ctx);
  }
  explain(): string[] {
    return ['union all', ...this.inputs.flatMap((i) => indent(i.explain()))];
  }
}

/** Boxed rows to batches. */
function* rowsToBatches(
  rows: readonly SqlValue[][],
  width: number,
  doubles: readonly boolean[] = [],
): Generator<Batch> {
  for (let s = 0; s < rows.length; s += BATCH_ROWS) {
    const n = Math.min(BATCH_ROWS, rows.length - s);
    const cols: Col[] = [];
    for (let c = 0; c < width; c++) {
      const d = new Array<SqlValue>(n);
      for (let i = 0; i < n; i++) d[i] = rows[s + i]![c]!;
      cols.push(outputCol(d, doubles[c] === true));
    }
    yield { len: n, cols };
  }
}

async function materialize(op: Op, ctx: Ctx, doubles?: boolean[]): Promise<SqlValue[][]> {
  const rows: SqlValue[][] = [];
  for await (const b of op.run(ctx)) {
    // Columns of DOUBLEs noted, so that whoever gives the rows back keeps them DOUBLEs.
    if (doubles !== undefined)
      b.cols.forEach((c, k) => {
        if (isDoubleCol(c)) doubles[k] = true;
      });
    const cols = b.cols.map((c) => boxed(c, b.len));
    let bytes = 0;
    for (let i = 0; i < b.len; i++) {
      const r = new Array<SqlValue>(cols.length);
      for (let c = 0; c < cols.length; c++) {
        const v = cols[c]![i]!;
        r[c] = v;
        bytes += valueBytes(v);
      }
      rows.push(r);
    }
    ctx.mem.charge(bytes + 48 * b.len);
  }
  return rows;
}

export interface SortKey {
  /** The column of the input to sort by. */
  column: number;
  desc: boolean;
}

/**
 * How ORDER BY compares two rows. One key whose values are all strings, or all numbers (the usual
 * case), is compared directly; otherwise sortCompare, key by key.
 */
function comparator(
  rows: readonly SqlValue[][],
  keys: readonly SortKey[],
): (a: SqlValue[], b: SqlValue[]) => number {
  if (keys.length === 1) {
    const col = keys[0]!.column;
    const sign = keys[0]!.desc ? -1 : 1;
    let strings = true;
    let numbers = true;
    for (const r of rows) {
      const t = typeof r[col];
      if (t !== 'string') strings = false;
      if (t !== 'number') numbers = false;
      if (!strings && !numbers) break;
    }
    if (strings || numbers) {
      return (a, b) => {
        const x = a[col] as string | number;
        const y = b[col] as string | number;
        return x < y ? -sign : x > y ? sign : 0;
      };
    }
  }
  return (a, b) => {
    for (const k of keys) {
      const c = sortCompare(a[k.column]!, b[k.column]!);
      if (c !== 0) return k.desc ? -c : c;
    }
    return 0;
  };
}

export class Sort implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(
    readonly input: Op,
    readonly keys: readonly SortKey[],
    /** The sort keys as EXPLAIN shows them. */
    readonly describeKeys: string,
  ) {
    this.width = input.width;
    this.names = input.names;
  }
  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const doubles: boolean[] = [];
    yield* rowsToBatches(await this.rows(ctx, doubles), this.width, doubles);
  }
  async rows(ctx: Ctx, doubles?: boolean[]): Promise<SqlValue[][]> {
    const rows = await materialize(this.input, ctx, doubles);
    rows.sort(comparator(rows, this.keys));
    return rows;
  }
  explain(): string[] {
    return [`sort ${this.describeKeys}`, ...indent(this.input.explain())];
  }
}

// ---- joins ----

/**
 * Inner, left and cross joins. The right input is held in memory (a hash table on the equality
 * keys when there are any); each left batch is matched against it, the remaining condition checked
 * over the candidate pairs batch at a time.
 */
export class Join implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(
    readonly left: Op,
    readonly right: Op,
    readonly kind: 'inner' | 'left',
    readonly leftKeys: readonly Expr[],
    readonly rightKeys: readonly Expr[],
    /** Over the joined row (left columns then right columns). */
    readonly condition: Expr | undefined,
  ) {
    this.width = left.width + right.width;
    this.names = [...left.names, ...right.names];
  }

  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    // The right side, materialized as columns.
    const rcols: SqlValue[][] = Array.from({ length: this.right.width }, () => []);
    // Right columns of DOUBLEs (they stay DOUBLEs in the output: 2.0 is not an integer there).
    const rdoubles: boolean[] = [];
    let rn = 0;
    const table = new Map<string, number[]>();
    // The right side's key values, and the kinds of value each key position holds: a left value
    // of another kind (a number against strings, say) compares by MySQL's conversions, not by hash.
    const rkeys: SqlValue[][] = this.rightKeys.map(() => []);
    const kinds: Set<string>[] = this.rightKeys.map(() => new Set());
    for await (const b of this.right.run(ctx)) {
      const keyCols: Col[] = [];
      for (const k of this.rightKeys) keyCols.push(await evaluate(k, b, ctx));
      keyCols.forEach((c, k) => {
        for (const v of boxed(c, b.len)) {
          rkeys[k]!.push(v);
          if (v !== null) kinds[k]!.add(kindOf(v));
        }
      });
      let bytes = 0;
      for (let c = 0; c < this.right.width; c++) {
        if (isDoubleCol(b.cols[c]!)) rdoubles[c] = true;
        const vals = boxed(b.cols[c]!, b.len);
        for (let i = 0; i < b.len; i++) {
          rcols[c]!.push(vals[i]!);
          bytes += valueBytes(vals[i]!);
        }
      }
      if (keyCols.length > 0) {
        for (let i = 0; i < b.len; i++) {
          const k = joinKey(keyCols, i);
          if (k === undefined) continue;
          const list = table.get(k);
          if (list === undefined) table.set(k, [rn + i]);
          else list.push(rn + i);
          bytes += 48;
        }
      }
      ctx.mem.charge(bytes + 16 * b.len);
      rn += b.len;
    }
    const right: Batch = { len: rn, cols: rcols.map((d, c) => outputCol(d, rdoubles[c] === true)) };
    // Without equality keys every right row is a candidate (a nested loop join).
    const all = this.leftKeys.length === 0 ? Int32Array.from({ length: rn }, (_, i) => i) : undefined;

    for await (const lb of this.left.run(ctx)) {
      const keyCols: Col[] = [];
      for (const k of this.leftKeys) keyCols.push(await evaluate(k, lb, ctx));
      const matched = new Uint8Array(lb.len);
      let li: number[] = [];
      let ri: number[] = [];
      const flush = async function* (this: Join): AsyncGenerator<Batch> {
        if (li.length === 0) return;
        const pairs = li.length;
        const out = combine(lb, right, li, ri);
        let keep: Batch = out;
        if (this.condition !== undefined) {
          const t = truthArray(await evaluate(this.condition, out, ctx), pairs);
          const sel = new Int32Array(pairs);
          let n = 0;
          for (let p = 0; p < pairs; p++) if (t[p] === 1) sel[n++] = p;
          keep = n === pairs ? out : gatherBatch(out, sel, n);
          for (let j = 0; j < n; j++) matched[li[sel[j]!]!] = 1;
        } else for (const l of li) matched[l] = 1;
        li = [];
        ri = [];
        if (keep.len > 0) yield keep;
      };
      for (let i = 0; i < lb.len; i++) {
        let candidates: ArrayLike<number> | undefined;
        if (all !== undefined) candidates = all;
        else if (keyCols.every((c, k) => sameKind(getv(c, i), kinds[k]!))) {
          const k = joinKey(keyCols, i);
          candidates = k === undefined ? undefined : table.get(k);
        } else candidates = compareMatches(keyCols, i, rkeys, rn);
        if (candidates === undefined) continue;
        for (let j = 0; j < candidates.length; j++) {
          li.push(i);
          ri.push(candidates[j]!);
        }
        if (li.length >= BATCH_ROWS) {
          const pause = ctx.breathe();
          if (pause !== undefined) await pause;
          yield* flush.call(this);
        }
      }
      yield* flush.call(this);
      if (this.kind === 'left') {
        const unmatched: number[] = [];
        for (let i = 0; i < lb.len; i++) if (matched[i] === 0) unmatched.push(i);
        if (unmatched.length > 0) {
          yield combine(
            lb,
            right,
            unmatched,
            unmatched.map(() => -1),
          );
        }
      }
    }
  }

  explain(): string[] {
    const how =
      this.leftKeys.length > 0
        ? `hash join on ${this.leftKeys.map((k, i) => `${k.text} = ${this.rightKeys[i]!.text}`).join(' AND ')}`
        : 'nested loop join';
    return [
      `${this.kind === 'left' ? 'left ' : ''}${how}${this.condition !== undefined ? ` where ${this.condition.text}` : ''}`,
      ...indent(this.left.explain()),
      ...indent(this.right.explain()),
    ];
  }
}

/** A value's kind for hash joins: numbers of every sort (doubles, bigints, DECIMALs) hash alike. */
function kindOf(v: SqlValue): string {
  return typeof v === 'number' || typeof v === 'bigint' || v instanceof Decimal
    ? 'n'
    : typeof v === 'string'
      ? 's'
      : v instanceof Date
        ? 'd'
        : 'b';
}

/** Whether v (not null) is of the one kind the right side's key position holds: the hash then decides. */
function sameKind(v: SqlValue, kinds: Set<string>): boolean {
  return v === null || (kinds.size <= 1 && (kinds.size === 0 || kinds.has(kindOf(v))));
}

/** The right rows whose keys equal row i's by MySQL's comparison (kinds differ: no hash). */
function compareMatches(
  keyCols: readonly Col[],
  i: number,
  rkeys: readonly SqlValue[][],
  rn: number,
): number[] {
  const left = keyCols.map((c) => getv(c, i));
  if (left.some((v) => v === null)) return [];
  const out: number[] = [];
  for (let r = 0; r < rn; r++) {
    let eq = true;
    for (let k = 0; k < left.length && eq; k++) {
      const rv = rkeys[k]![r]!;
      eq = rv !== null && compare(left[k]!, rv) === 0;
    }
    if (eq) out.push(r);
  }
  return out;
}

/** The hash key of row i's join keys; undefined when one is NULL (NULL matches nothing). */
function joinKey(cols: readonly Col[], i: number): string | undefined {
  let k = '';
  for (const c of cols) {
    const v = getv(c, i);
    if (v === null) return undefined;
    k += `${hashKey(v)}\u0001`;
  }
  return k;
}

function combine(l: Batch, r: Batch, li: readonly number[], ri: readonly number[]): Batch {
  const n = li.length;
  const ls = Int32Array.from(li);
  const rs = Int32Array.from(ri);
  const left = gatherBatch(l, ls, n);
  const right = gatherBatch(r, rs, n);
  return { len: n, cols: [...left.cols, ...right.cols] };
}

// ---- aggregation ----

export type AggName = 'COUNT' | 'SUM' | 'AVG' | 'MIN' | 'MAX' | 'TOTAL' | 'GROUP_CONCAT' | 'FIRST';

export interface AggSpec {
  name: AggName;
  /** undefined: COUNT(*). */
  arg: Expr | undefined;
  distinct: boolean;
  separator?: string;
  text: string;
}

/** Codes below this are packed into one number (three of them stay under 2^53). */
const CODE_LIMIT = 1 << 17;

/** Small integer codes for the distinct values of a column (values equal as GROUP BY sees them). */
class Dictionary {
  private readonly strings = new Map<string, number>();
  /** Codes of one-character strings by character code (flags and status codes are common keys). */
  private readonly chars = new Int32Array(256).fill(-1);
  private readonly others = new Map<string | number, number>();
  private next = 0;

  /** Distinct values coded so far. */
  get size(): number {
    return this.next;
  }

  /** Codes of a column's rows (of the selection's rows only, when there is one). */
  codes(c: Col, n: number, sel: { idx: Int32Array; n: number } | undefined): Int32Array {
    const out = new Int32Array(n);
    const rows = sel !== undefined ? sel.n : n;
    if (c.k === 'any') {
      const d = c.d;
      const chars = this.chars;
      for (let j = 0; j < rows; j++) {
        const i = sel !== undefined ? sel.idx[j]! : j;
        const v = d[i]!;
        if (typeof v === 'string' && v.length === 1) {
          const ch = v.charCodeAt(0);
          if (ch < 256) {
            let code = chars[ch]!;
            if (code < 0) chars[ch] = code = this.next++;
            out[i] = code;
            continue;
          }
        }
        out[i] = this.code(c, i);
      }
    } else {
      for (let j = 0; j < rows; j++) {
        const i = sel !== undefined ? sel.idx[j]! : j;
        out[i] = this.code(c, i);
      }
    }
    return out;
  }

  code(c: Col, i: number): number {
    let key: string | number;
    if (c.k === 'num') {
      if (c.nulls !== null && c.nulls[i] === 1) key = 'N';
      else if (c.scale !== undefined) key = valueKey(getv(c, i));
      else {
        const v = c.d[i]!;
        key = v === 0 ? 0 : v;
      }
    } else {
      const v = c.k === 'const' ? c.v : c.d[i]!;
      if (typeof v === 'string') {
        if (v.length === 1) {
          const ch = v.charCodeAt(0);
          if (ch < 256) {
            let code = this.chars[ch]!;
            if (code < 0) this.chars[ch] = code = this.next++;
            return code;
          }
        }
        let code = this.strings.get(v);
        if (code === undefined) this.strings.set(v, (code = this.next++));
        return code;
      }
      key = v === null ? hashKey(v) : valueKey(v);
    }
    let code = this.others.get(key);
    if (code === undefined) this.others.set(key, (code = this.next++));
    return code;
  }
}

interface AggState {
  /** Per group (grown with the groups). */
  count: Float64Array;
  /**
   * Sums: doubles, or for exact arguments (integers, DECIMALs) scaled integers at `scale`, exact
   * while within ±2^53: larger parts move to `big` (see carry).
   */
  sum: Float64Array;
  /** Undefined before the first value; -1: doubles; else the exact sums' scale. */
  scale: number | undefined;
  /** Exact sums' parts beyond what `sum` holds exactly, per group. */
  big: bigint[] | undefined;
  /** The argument is a DOUBLE: its values sum as doubles, whole numbers too. */
  dbl: boolean;
  vals: SqlValue[];
  seen: Set<string>[] | undefined;
  parts: string[][] | undefined;
}

/**
 * Hash aggregation: groups by the values of `groups`, computing `aggs` in each. Output: the group
 * values, then the aggregates. Without groups, one row even over no input.
 */
const NUMERIC_AGGS = new Set<AggName>(['SUM', 'AVG', 'TOTAL', 'COUNT']);

/** SUM, AVG, TOTAL and COUNT of one argument (without DISTINCT) share one sum and count. */
function sharedKey(a: AggSpec): string | undefined {
  if (a.arg === undefined || a.distinct) return undefined;
  if (a.name === 'SUM' || a.name === 'AVG' || a.name === 'TOTAL' || a.name === 'COUNT') return a.arg.text;
  return undefined;
}

/** Group codes below this pack into a direct table (two columns of codes under 256 each). */
const DIRECT_CODES = 256;

export class Aggregate implements Op {
  readonly width: number;
  /** The accumulator each aggregate reads (several share one: see sharedKey). */
  private readonly stateOf: number[] = [];
  /** One aggregate per accumulator, the one that fills it. */
  private readonly filling: AggSpec[] = [];

  constructor(
    readonly input: Op,
    readonly groups: readonly Expr[],
    readonly aggs: readonly AggSpec[],
    readonly names: readonly string[],
  ) {
    this.width = groups.length + aggs.length;
    const shared = new Map<string, number>();
    for (const a of aggs) {
      const key = sharedKey(a);
      const have = key !== undefined ? shared.get(key) : undefined;
      if (have !== undefined) {
        this.stateOf.push(have);
        continue;
      }
      if (key !== undefined) shared.set(key, this.filling.length);
      this.stateOf.push(this.filling.length);
      this.filling.push(a);
    }
  }

  /** Whether its input may hand it batches with a selection (every expression pure). */
  get takesSelection(): boolean {
    return (
      this.groups.every((g) => g.pure === true) &&
      this.aggs.every((a) => a.arg === undefined || a.arg.pure === true)
    );
  }

  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const groupIds = new Map<string | number, number>();
    const direct =
      this.groups.length > 0 && this.groups.length <= 2
        ? new Int32Array(DIRECT_CODES ** this.groups.length).fill(-1)
        : undefined;
    const dicts = this.groups.map(() => new Dictionary());
    const groupVals: SqlValue[][] = this.groups.map(() => []);
    // Group columns whose values are DOUBLEs (their output keeps that type).
    const groupDoubles: boolean[] = [];
    const states: AggState[] = this.filling.map((a) => ({
      count: new Float64Array(16),
      sum: new Float64Array(16),
      scale: undefined,
      big: undefined,
      dbl: false,
      vals: [],
      seen: a.distinct ? [] : undefined,
      parts: a.name === 'GROUP_CONCAT' ? [] : undefined,
    }));
    let ngroups = 0;
    const newGroup = (): number => {
      const g = ngroups++;
      for (const s of states) {
        if (g >= s.count.length) {
          const count = new Float64Array(s.count.length * 2);
          count.set(s.count);
          s.count = count;
          const sum = new Float64Array(s.sum.length * 2);
          sum.set(s.sum);
          s.sum = sum;
        }
        s.vals.push(null);
        s.seen?.push(new Set());
        s.parts?.push([]);
      }
      return g;
    };
    if (this.groups.length === 0) newGroup();
    for await (const b of this.input.run(ctx)) {
      const pause = ctx.breathe();
      if (pause !== undefined) await pause;
      const n = b.len;
      const sel = b.sel;
      // The group of each row; -1 for rows a selection leaves out; null: one group, every row.
      let gid: Int32Array | null = null;
      if (this.groups.length > 0) {
        gid = new Int32Array(n);
        if (sel !== undefined) gid.fill(-1);
        const keyCols: Col[] = [];
        for (const g of this.groups)
          keyCols.push(g.subs.length === 0 ? g.ev(b, ctx) : await evaluate(g, b, ctx));
        keyCols.forEach((c, k) => {
          if (isDoubleCol(c)) groupDoubles[k] = true;
        });
        let bytes = 0;
        // Each key column's values get small codes (one dictionary per column for the whole
        // aggregation, coded a column at a time); a row's group is found by its codes: through a
        // direct table while they are small, else through one number, else a string.
        const nk = keyCols.length;
        const rows = sel !== undefined ? sel.n : n;
        const codeCols = keyCols.map((c, k) => dicts[k]!.codes(c, n, sel));
        const addGroup = (i: number): number => {
          const g = newGroup();
          for (let c = 0; c < nk; c++) {
            const v = getv(keyCols[c]!, i);
            groupVals[c]!.push(v);
            bytes += valueBytes(v);
          }
          bytes += 64 + 48 * this.filling.length;
          return g;
        };
        if (direct !== undefined && dicts.every((d) => d.size <= DIRECT_CODES)) {
          const c0 = codeCols[0]!;
          const c1 = nk === 2 ? codeCols[1]! : undefined;
          for (let j = 0; j < rows; j++) {
            const i = sel !== undefined ? sel.idx[j]! : j;
            const slot = c1 === undefined ? c0[i]! : c0[i]! + c1[i]! * DIRECT_CODES;
            let g = direct[slot]!;
            if (g < 0) direct[slot] = g = addGroup(i);
            gid[i] = g;
          }
        } else {
          const codes = new Int32Array(nk);
          for (let j = 0; j < rows; j++) {
            const i = sel !== undefined ? sel.idx[j]! : j;
            let small = true;
            let tiny = true;
            for (let c = 0; c < nk; c++) {
              const code = codeCols[c]![i]!;
              codes[c] = code;
              if (code >= CODE_LIMIT) small = false;
              if (code >= DIRECT_CODES) tiny = false;
            }
            let g: number | undefined;
            if (direct !== undefined && tiny) {
              const slot = nk === 1 ? codes[0]! : codes[0]! + codes[1]! * DIRECT_CODES;
              g = direct[slot]!;
              if (g < 0) direct[slot] = g = addGroup(i);
            } else {
              let key: string | number;
              if (small && nk <= 3) {
                key = codes[0]!;
                if (nk > 1) key += codes[1]! * CODE_LIMIT;
                if (nk > 2) key += codes[2]! * CODE_LIMIT * CODE_LIMIT;
              } else key = codes.join(',');
              g = groupIds.get(key);
              if (g === undefined) groupIds.set(key, (g = addGroup(i)));
            }
            gid[i] = g;
          }
        }
        if (bytes > 0) ctx.mem.charge(bytes);
      } else if (sel !== undefined) {
        gid = new Int32Array(n).fill(-1);
        for (let j = 0; j < sel.n; j++) gid[sel.idx[j]!] = 0;
      }
      // Rows per group in this batch, counted once for every accumulator (few groups only).
      let rowsPer: Float64Array | undefined;
      if (gid === null) rowsPer = Float64Array.of(n);
      else if (ngroups <= 4096) {
        rowsPer = new Float64Array(ngroups);
        for (let i = 0; i < n; i++) if (gid[i]! >= 0) rowsPer[gid[i]!]!++;
      }
      // Sums and counts over numbers go through one fused pass; the rest one accumulator at a time.
      const fast: { arg: NumCol; st: AggState; counting: boolean }[] = [];
      for (let a = 0; a < this.filling.length; a++) {
        const spec = this.filling[a]!;
        const arg =
          spec.arg === undefined
            ? undefined
            : spec.arg.subs.length === 0
              ? spec.arg.ev(b, ctx)
              : await evaluate(spec.arg, b, ctx);
        const st = states[a]!;
        if (arg !== undefined && isDoubleCol(arg)) st.dbl = true;
        if (
          arg !== undefined &&
          arg.k === 'num' &&
          arg.time !== true &&
          st.seen === undefined &&
          NUMERIC_AGGS.has(spec.name) &&
          sumChunk(st, arg) >= n
        ) {
          fast.push({ arg, st, counting: arg.nulls !== null || rowsPer === undefined });
        } else accumulate(spec, st, gid, n, rowsPer, arg, ctx);
      }
      if (fast.length > 0) {
        multiSumKernel(
          fast.map((f) => ({ rep: repOf(f.arg.d), nullable: f.arg.nulls !== null, counting: f.counting })),
          gid !== null,
        )(
          fast.map((f) => f.arg.d),
          fast.map((f) => f.arg.nulls),
          gid,
          n,
          fast.map((f) => f.st.sum),
          fast.map((f) => f.st.count),
        );
        for (const f of fast) {
          if (!f.counting) for (let g = 0; g < rowsPer!.length; g++) f.st.count[g]! += rowsPer![g]!;
          carry(f.st, ngroups);
        }
      }
    }
    // Output
    for (let s = 0; s < ngroups; s += BATCH_ROWS) {
      const n = Math.min(BATCH_ROWS, ngroups - s);
      const cols: Col[] = [];
      groupVals.forEach((gv, k) => cols.push(outputCol(gv.slice(s, s + n), groupDoubles[k] === true)));
      for (let a = 0; a < this.aggs.length; a++) {
        const spec = this.aggs[a]!;
        const st = states[this.stateOf[a]!]!;
        const d = new Array<SqlValue>(n);
        for (let i = 0; i < n; i++) d[i] = finish(spec, st, s + i);
        // DOUBLE results stay doubles downstream: sums and averages of doubles, MIN/MAX of a
        // DOUBLE argument.
        const summed = spec.name === 'SUM' || spec.name === 'AVG' || spec.name === 'TOTAL';
        const dbl = summed ? st.scale === -1 : spec.name !== 'COUNT' && st.dbl === true;
        cols.push(outputCol(d, dbl));
      }
      yield { len: n, cols };
    }
  }

  explain(): string[] {
    const g = this.groups.length > 0 ? ` group by ${this.groups.map((e) => e.text).join(', ')}` : '';
    return [`hash aggregate ${this.aggs.map((a) => a.text).join(', ')}${g}`, ...indent(this.input.explain())];
  }
}

/**
 * Add a batch to an accumulator. gid: each row's group, -1 for rows left out; null: every row in
 * group 0. rowsPer: the batch's rows per group, when counted.
 */
function accumulate(
  spec: AggSpec,
  st: AggState,
  gid: Int32Array | null,
  n: number,
  rowsPer: Float64Array | undefined,
  arg: Col | undefined,
  ctx: Ctx,
): void {
  if (arg === undefined) {
    if (rowsPer !== undefined) for (let g = 0; g < rowsPer.length; g++) st.count[g]! += rowsPer[g]!;
    else for (let i = 0; i < n; i++) if (gid![i]! >= 0) st.count[gid![i]!]!++;
    return;
  }
  const name = spec.name;
  const numeric = name === 'SUM' || name === 'AVG' || name === 'TOTAL' || name === 'COUNT';
  // The fast path: numbers in a typed array, no DISTINCT. Without nulls, the counts are the
  // batch's rows per group.
  const chunk =
    arg.k === 'num' && arg.time !== true && st.seen === undefined && numeric ? sumChunk(st, arg) : 0;
  if (arg.k === 'num' && chunk > 0) {
    const counting = arg.nulls !== null || rowsPer === undefined;
    const kernel = sumKernel(repOf(arg.d), arg.nulls !== null, counting, gid !== null);
    const part = <T extends NumArray | Uint8Array | Int32Array | null>(a: T, s: number, e: number): T =>
      (a === null ? null : ArrayBuffer.isView(a) ? a.subarray(s, e) : a.slice(s, e)) as T;
    for (let s = 0; s < n; s += chunk) {
      const e = Math.min(n, s + chunk);
      if (s === 0 && e === n) kernel(arg.d, arg.nulls, gid, n, st.sum, st.count);
      else kernel(part(arg.d, s, e), part(arg.nulls, s, e), part(gid, s, e), e - s, st.sum, st.count);
      carry(st, st.count.length);
    }
    if (!counting) for (let g = 0; g < rowsPer.length; g++) st.count[g]! += rowsPer[g]!;
    return;
  }
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const g = gid === null ? 0 : gid[i]!;
    if (g < 0) continue;
    const v = getv(arg, i);
    if (v === null) continue;
    if (st.seen !== undefined) {
      // SUM and AVG of DISTINCT values deduplicate their numbers ('x' and 'y' are one 0), as
      // MySQL's numeric aggregates do; COUNT, MIN and MAX tell the values apart as they are.
      const summed = name === 'SUM' || name === 'AVG' || name === 'TOTAL';
      const k = hashKey(summed && numKind(v) === 'dbl' ? toNumber(v) : v);
      const seen = st.seen[g]!;
      if (seen.has(k)) continue;
      seen.add(k);
      bytes += 32 + 2 * k.length;
    }
    switch (name) {
      case 'COUNT':
      case 'SUM':
      case 'AVG':
      case 'TOTAL':
        // One accumulator serves all four (see sharedKey): the sum and the count, always.
        addValue(st, g, v);
        st.count[g]!++;
        break;
      case 'MIN':
      case 'MAX': {
        const cur = st.vals[g]!;
        if (cur === null || (name === 'MIN' ? compare(v, cur) < 0 : compare(v, cur) > 0)) st.vals[g] = v;
        break;
      }
      case 'FIRST':
        if (st.count[g] === 0) {
          st.vals[g] = v;
          st.count[g] = 1;
        }
        break;
      case 'GROUP_CONCAT': {
        const t = toText(v);
        st.parts![g]!.push(t);
        bytes += 16 + 2 * t.length;
        break;
      }
    }
  }
  if (bytes > 0) ctx.mem.charge(bytes);
}

/**
 * How many rows of a batch of numbers can go through the sum kernels at a time into this state,
 * 0 when none can: the state's kind (doubles, or exact at one scale) must be the batch's, or the
 * state new; for exact sums, as many rows as no group's partial sum can leave ±2^53 with (the
 * kernels add doubles; `carry` moves sums past 2^50 out between chunks).
 */
function sumChunk(st: AggState, arg: NumCol): number {
  const scale = arg.scale ?? (arg.int === true ? 0 : -1);
  if (st.scale === undefined) st.scale = scale;
  if (st.scale !== scale) return 0;
  if (scale < 0) return Infinity;
  const d = arg.d;
  let max = arg.max;
  if (max === undefined) {
    max = 0;
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      const a = v < 0 ? -v : v;
      if (a > max) max = a;
    }
  }
  return max === 0 ? Infinity : Math.floor(2 ** 51 / max);
}

/** Exact sums past 2^50 move their value into `big`, so that the next batch adds exactly. */
function carry(st: AggState, groups: number): void {
  if (st.scale === undefined || st.scale < 0) return;
  for (let g = 0; g < groups && g < st.sum.length; g++) {
    const s = st.sum[g]!;
    if (s > 2 ** 50 || s < -(2 ** 50)) {
      st.big ??= [];
      st.big[g] = (st.big[g] ?? 0n) + BigInt(s);
      st.sum[g] = 0;
    }
  }
}

/** An exact sum as a scaled bigint. */
function exactSum(st: AggState, g: number): bigint {
  return (st.big?.[g] ?? 0n) + BigInt(st.sum[g]!);
}

/** Add one value to a sum, converting the state when the value is of another kind. */
function addValue(st: AggState, g: number, v: SqlValue): void {
  const kind = st.dbl ? 'dbl' : numKind(v);
  const vs = kind === 'dbl' ? -1 : kind === 'int' ? 0 : (v as Decimal).s;
  if (st.scale === undefined) st.scale = vs;
  if (st.scale >= 0 && vs < 0) {
    // A double among exact values: the sums become doubles (MySQL's type would be DOUBLE).
    const p = 10 ** st.scale;
    for (let i = 0; i < st.sum.length; i++) st.sum[i] = Number(exactSum(st, i)) / p;
    st.big = undefined;
    st.scale = -1;
  } else if (st.scale >= 0 && vs > st.scale) {
    const f = 10n ** BigInt(vs - st.scale);
    st.big ??= [];
    for (let i = 0; i < st.sum.length; i++) {
      st.big[i] = exactSum(st, i) * f;
      st.sum[i] = 0;
    }
    st.scale = vs;
  }
  if (st.scale < 0) {
    st.sum[g]! += toNumber(v);
    return;
  }
  const d = kind === 'dec' ? (v as Decimal) : new Decimal(BigInt(v as number | bigint), 0);
  const u = d.rescale(st.scale).u;
  st.big ??= [];
  st.big[g] = (st.big[g] ?? 0n) + u;
}

/** An output column: numbers of a DOUBLE as such (see NumCol), anything else boxed. */
function outputCol(d: SqlValue[], dbl: boolean): Col {
  if (!dbl || !d.every((v) => v === null || typeof v === 'number')) return anyCol(d);
  const n = d.length;
  const out = new Float64Array(n);
  let nulls: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    const v = d[i];
    if (v === null) (nulls ??= new Uint8Array(n))[i] = 1;
    else out[i] = v as number;
  }
  return numCol(out, nulls);
}

function finish(spec: AggSpec, st: AggState, g: number): SqlValue {
  const exact = st.scale !== undefined && st.scale >= 0;
  switch (spec.name) {
    case 'COUNT':
      return st.count[g]!;
    case 'SUM':
      if (st.count[g] === 0) return null;
      if (!exact) return st.sum[g]!;
      // MySQL's SUM of integers is a DECIMAL: past BIGINT's range it stays one.
      if (st.scale === 0) {
        const u = exactSum(st, g);
        return u >= INT64_MIN && u <= INT64_MAX ? canonicalInt(u) : new Decimal(u, 0);
      }
      return new Decimal(exactSum(st, g), st.scale!);
    case 'TOTAL':
      return exact ? Number(exactSum(st, g)) / 10 ** st.scale! : st.sum[g]!;
    case 'AVG':
      if (st.count[g] === 0) return null;
      if (!exact) return st.sum[g]! / st.count[g]!;
      // MySQL: the argument's scale plus div_precision_increment (4), rounded.
      return decimalArith(
        '/',
        new Decimal(exactSum(st, g), st.scale!),
        new Decimal(BigInt(st.count[g]!), 0),
        () => spec.text,
      );
    case 'GROUP_CONCAT': {
      const p = st.parts![g]!;
      return p.length === 0 ? null : p.join(spec.separator ?? ',');
    }
    default:
      return st.vals[g]!;
  }
}

export { materialize };
