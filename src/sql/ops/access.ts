/**
 * How a table scan reads its rows, chosen when it runs: a point read or a range of the primary key,
 * the whole table, or a secondary index (a range of it, or lookups of a UNIQUE one), by cost.
 *
 * The planner hands a scan the comparisons of its conditions that bound single columns against
 * constants (ColumnPreds: `=`, `<=>`, IN, `<`, `<=`, `>`, `>=`, BETWEEN, IS NULL) and the table's
 * indexes. When the scan runs, the constants are evaluated and converted to bounds in each column's
 * domain (`indexkeys.ts`); an index is usable over its leftmost columns that have values (a tuple
 * per combination of IN values) and then one range. The rows each choice would read are estimated
 * from the table's size (`tx.estimatedRows`) and, for an index, counted by a capped probe of its
 * range (`tx.indexCount`: at most as many entries as could still make it the cheapest); the
 * cheapest is read. Whatever is read, the scan's whole filter is checked on every row.
 */
import type { ColumnType, Row } from '../../schema/schema.js';
import type { Expr } from '../expr.js';
import { anyCol, decimalCol, intCol, numCol, type Batch, type Col, type Ctx } from '../vector.js';
import { Decimal, type SqlValue } from '../values.js';
import type { IndexRange } from '../host.js';
import { constValue } from './op.js';
import { indexMode } from '../variables.js';
import {
  boundOf,
  compareKeys,
  intersect,
  pointOf,
  type IndexColumn,
  type IndexKey,
  type KeyInterval,
} from './indexkeys.js';

/** The comparisons of a scan's conditions that bound one column against constants. */
export interface ColumnPreds {
  column: IndexColumn;
  /** `col = e` (and `col <=> e`: nullSafe, NULL meaning IS NULL). */
  eqs: { e: Expr; nullSafe: boolean }[];
  /** `col IN (e, ...)`. */
  ins: Expr[][];
  /** `col IS NULL`. */
  isNull: boolean;
  /** `col IS NOT NULL` (MIN and MAX read an index past its NULLs). */
  notNull: boolean;
  lowers: { e: Expr; op: '>' | '>=' }[];
  uppers: { e: Expr; op: '<' | '<=' }[];
  /** The conditions' texts (EXPLAIN). */
  texts: string[];
}

/** A secondary index a scan may read through. */
export interface IndexCandidate {
  /** Its SQL name (EXPLAIN) and the engine's. */
  name: string;
  engine: string;
  unique: boolean;
  columns: IndexColumn[];
}

/** What the planner tells a scan about reading through indexes. */
export interface AccessSpec {
  preds: ReadonlyMap<string, ColumnPreds>;
  indexes: readonly IndexCandidate[];
  /** Each condition of the scan: the column it bounds (when it is one of preds') and its guessed selectivity. */
  conds: readonly { column?: string; selectivity: number }[];
}

/** An order the scan must give its rows in (ORDER BY over its columns, MIN/MAX). */
export interface OrderSpec {
  /** Scan columns by name, all ascending or all descending. */
  keys: readonly { column: string; desc: boolean }[];
  /** The LIMIT above (count and offset), when there is one: an ordered read can stop early. */
  limit?: { count: Expr; offset?: Expr };
}

/** A column's values as the scan's conditions allow them, evaluated. */
export interface ColumnRange {
  /** The values it may take (sorted, distinct; null for IS NULL), when equalities fix them. */
  points?: IndexKey[];
  interval: KeyInterval;
}

/** How a run of the scan reads its rows. */
export type Access =
  | { kind: 'empty' }
  | { kind: 'point'; key: unknown }
  | {
      kind: 'primary';
      /** Key bounds (undefined: the whole table). */
      gte?: unknown;
      lt?: unknown;
      exact?: boolean;
      reverse: boolean;
      ordered: boolean;
      rows: number;
    }
  | {
      kind: 'index';
      index: IndexCandidate;
      /** Values of the leading columns, one tuple per lookup (empty tuple: none fixed). */
      tuples: IndexKey[][];
      /** The range over the column after them. */
      range: IndexRange;
      /** Columns the tuples and range bound (EXPLAIN). */
      bound: string[];
      /** UNIQUE and every column fixed: one getBy per tuple. */
      lookup: boolean;
      reverse: boolean;
      ordered: boolean;
      rows: number;
    };

// The cost model, in units of a row read by a columnar scan (about 0.1 µs warm; measured on the
// engine's reads: a scan's start about 10 µs, a seek into an index about 12 µs, a row read through
// an index or read backwards about 1.5 µs, a lookup by a UNIQUE index's values about 8 µs).
/** A row of a columnar scan (a table scan or a key range). */
const SCAN_ROW = 1;
/** Starting a columnar scan. */
const SCAN_START = 100;
/** A row read through an index (the entry, the row it names, the row boxed), or row by row backwards. */
const INDEX_ROW = 15;
/** A seek into an index (per tuple). */
const INDEX_START = 120;
/** A lookup of a UNIQUE index's values (getBy). */
const LOOKUP = 80;
/** Sorting a row (times log2 of the rows). */
const SORT_ROW = 2;
/** At most this many tuples of leading-column values are looked up. */
export const MAX_TUPLES = 256;
/** A range of the primary key is guessed to keep this much of the table per bound. */
const PK_BOUND_SELECTIVITY = 1 / 3;

/** The columns' ranges as this run's constants give them; 'empty' when no row can pass. */
export async function evaluateRanges(
  preds: ReadonlyMap<string, ColumnPreds>,
  ctx: Ctx,
): Promise<Map<string, ColumnRange> | 'empty'> {
  const out = new Map<string, ColumnRange>();
  for (const [name, p] of preds) {
    const r = await columnRange(p, ctx);
    if (r === 'empty') return 'empty';
    out.set(name, r);
  }
  return out;
}

async function columnRange(p: ColumnPreds, ctx: Ctx): Promise<ColumnRange | 'empty'> {
  let points: IndexKey[] | undefined;
  let interval: KeyInterval = {};
  const meet = (vals: IndexKey[]): void => {
    const sorted = dedupe(vals);
    points =
      points === undefined ? sorted : sorted.filter((v) => points!.some((w) => compareKeys(v, w) === 0));
  };
  if (p.isNull) meet([null]);
  if (p.notNull) interval = { lower: { key: null, inclusive: false } };
  for (const eq of p.eqs) {
    const v = await constValue(eq.e, ctx);
    if (v === null && eq.nullSafe) {
      meet([null]);
      continue;
    }
    const b = boundOf('=', v, p.column);
    if (b === 'empty') return 'empty';
    if (b === undefined) continue;
    const k = pointOf(v, p.column);
    if (k !== undefined && k !== 'empty') meet([k.key]);
    else {
      const next = intersect(interval, b);
      if (next === 'empty') return 'empty';
      interval = next;
    }
  }
  for (const list of p.ins) {
    const vals: IndexKey[] = [];
    let usable = true;
    for (const e of list) {
      const v = await constValue(e, ctx);
      if (v === null) continue;
      const k = pointOf(v, p.column);
      if (k === 'empty') continue;
      if (k === undefined) {
        usable = false;
        break;
      }
      vals.push(k.key);
    }
    if (usable) meet(vals);
  }
  for (const b of [...p.lowers, ...p.uppers]) {
    const v = await constValue(b.e, ctx);
    const i = boundOf(b.op, v, p.column);
    if (i === 'empty') return 'empty';
    if (i === undefined) continue;
    const next = intersect(interval, i);
    if (next === 'empty') return 'empty';
    interval = next;
  }
  if (points !== undefined) {
    const within = points.filter((k) => inInterval(k, interval));
    if (within.length === 0) return 'empty';
    return { points: within, interval };
  }
  return { interval };
}

function dedupe(vals: IndexKey[]): IndexKey[] {
  const s = [...vals].sort(compareKeys);
  return s.filter((v, i) => i === 0 || compareKeys(v, s[i - 1]!) !== 0);
}

function inInterval(k: IndexKey, i: KeyInterval): boolean {
  if (k === null) return i.lower === undefined && i.upper === undefined;
  if (i.lower !== undefined) {
    const c = compareKeys(k, i.lower.key);
    if (c < 0 || (c === 0 && !i.lower.inclusive)) return false;
  }
  if (i.upper !== undefined) {
    const c = compareKeys(k, i.upper.key);
    if (c > 0 || (c === 0 && !i.upper.inclusive)) return false;
  }
  return true;
}

/** An index's tuples and range for these column ranges (leftmost columns with values, then one range). */
export function indexBounds(
  ix: IndexCandidate,
  ranges: ReadonlyMap<string, ColumnRange>,
): { tuples: IndexKey[][]; range: IndexRange; bound: string[]; fixed: number } {
  let tuples: IndexKey[][] = [[]];
  const bound: string[] = [];
  let fixed = 0;
  let range: IndexRange = {};
  for (const c of ix.columns) {
    const r = ranges.get(c.name);
    if (r === undefined) break;
    if (r.points !== undefined && tuples.length * r.points.length <= MAX_TUPLES) {
      tuples = tuples.flatMap((t) => r.points!.map((v) => [...t, v]));
      bound.push(c.name);
      fixed++;
      continue;
    }
    const iv = r.interval;
    if (iv.lower === undefined && iv.upper === undefined) break;
    range = engineRange(iv);
    bound.push(c.name);
    break;
  }
  return { tuples, range, bound, fixed };
}

/** An interval as the engine's tuple bounds over one column (NULLs left out: no comparison is true for them). */
function engineRange(iv: KeyInterval): IndexRange {
  const out: IndexRange = {};
  if (iv.lower !== undefined) out[iv.lower.inclusive ? 'gte' : 'gt'] = [iv.lower.key];
  else out.gt = [null];
  if (iv.upper !== undefined) out[iv.upper.inclusive ? 'lte' : 'lt'] = [iv.upper.key];
  return out;
}

/** What a scan's run decides with: its table, key and the facts the planner gave it. */
export interface ChooseInput {
  table: string;
  keyColumn: string;
  /** The primary key's single column as SQL has it (undefined: a hidden key, no order by it). */
  keyName: string | undefined;
  /** The primary key's point or bounds for this run (undefined: no condition on it). */
  pk: { eq?: unknown; gte?: unknown; lt?: unknown; exact?: boolean; bounds: number } | 'empty' | undefined;
  spec: AccessSpec | undefined;
  order: OrderSpec | undefined;
}

/** The cheapest way to read the scan's rows in this run (see the file's comment). */
export async function chooseAccess(input: ChooseInput, ctx: Ctx): Promise<Access> {
  const { pk, spec, order } = input;
  if (pk === 'empty') return { kind: 'empty' };
  if (pk?.eq !== undefined) return { kind: 'point', key: pk.eq };
  const reads = ctx.tx;
  const n = Math.max(1, reads.estimatedRows(input.table));
  const ranges =
    spec !== undefined && spec.preds.size > 0
      ? await evaluateRanges(spec.preds, ctx)
      : new Map<string, ColumnRange>();
  if (ranges === 'empty') return { kind: 'empty' };
  // The order wanted: its direction, and the columns whose values are fixed (they order nothing).
  const desc = order !== undefined && order.keys.length > 0 && order.keys[0]!.desc;
  const mixed = order !== undefined && order.keys.some((k) => k.desc !== desc);
  const single = (c: string): boolean => ranges.get(c)?.points?.length === 1;
  const wanted = order === undefined ? [] : order.keys.filter((k) => !single(k.column)).map((k) => k.column);
  let limit = Infinity;
  if (order?.limit !== undefined) {
    const count = Number(await constValue(order.limit.count, ctx));
    const offset = order.limit.offset !== undefined ? Number(await constValue(order.limit.offset, ctx)) : 0;
    if (Number.isFinite(count))
      limit = Math.max(0, count) + Math.max(0, Number.isFinite(offset) ? offset : 0);
  }
  const sortCost = (rows: number): number =>
    order === undefined ? 0 : rows * SORT_ROW * Math.log2(rows + 2);
  // The rows an ordered read needs before LIMIT has its rows: those the filter keeps, guessed.
  const needed = (boundCols: readonly string[]): number => {
    if (!Number.isFinite(limit)) return Infinity;
    let sel = 1;
    for (const c of spec?.conds ?? [])
      if (c.column === undefined || !boundCols.includes(c.column)) sel *= c.selectivity;
    return Math.ceil(limit / Math.max(sel, 1e-6));
  };

  // The primary key: a range of it, or the whole table, both in key order.
  const pkOrders =
    order !== undefined &&
    !mixed &&
    input.keyName !== undefined &&
    (wanted.length === 0 || (wanted.length === 1 && wanted[0] === input.keyName));
  const pkRows = pk === undefined ? n : n * PK_BOUND_SELECTIVITY ** pk.bounds;
  let best: Access & { cost: number };
  {
    const ordered = order === undefined || pkOrders;
    const reverse = ordered && desc && order !== undefined;
    // A descending read goes row by row (the engine's reverse scan), an ascending one by batches.
    const perRow = reverse ? INDEX_ROW : SCAN_ROW;
    const read =
      ordered && order !== undefined
        ? Math.min(pkRows, needed(pk === undefined ? [] : [input.keyName ?? '']))
        : pkRows;
    const cost = SCAN_START + read * perRow + (ordered ? 0 : sortCost(pkRows));
    best = {
      kind: 'primary',
      ...(pk?.gte !== undefined ? { gte: pk.gte } : {}),
      ...(pk?.lt !== undefined ? { lt: pk.lt } : {}),
      ...(pk?.exact !== undefined ? { exact: pk.exact } : {}),
      reverse,
      ordered: ordered && order !== undefined,
      rows: pkRows,
      cost,
    };
    // Asked for no order, or not in key order: the table scan by batches is the same read.
  }
  const mode = indexMode(ctx.session);
  if (spec === undefined || spec.indexes.length === 0 || mode === 'off') return best;
  // 'prefer': an index that restricts or orders the read wins over the key and the table.
  const weight = mode === 'prefer' ? 1e-6 : 1;
  const usable = new Set(reads.indexes(input.table).map((i) => i.name));
  for (const ix of spec.indexes) {
    if (!usable.has(ix.engine)) continue;
    const { tuples, range, bound, fixed } = indexBounds(ix, ranges);
    const restricts = bound.length > 0;
    // In index order: the wanted columns are the index's next ones (then the primary key's).
    let ordered = false;
    if (order !== undefined && !mixed) {
      const after = [
        ...ix.columns.slice(fixed).map((c) => c.name),
        ...(input.keyName !== undefined ? [input.keyName] : []),
      ];
      ordered = wanted.length === 0 || (tuples.length === 1 && wanted.every((c, i) => after[i] === c));
    }
    if (!restricts && !(ordered && Number.isFinite(limit))) continue;
    // NULLs are never equal in a UNIQUE index: a tuple with one (IS NULL, <=> NULL) is a range.
    const lookup = ix.unique && fixed === ix.columns.length && tuples.every((t) => !t.includes(null));
    const starts = tuples.length * (lookup ? LOOKUP : INDEX_START) * weight;
    let rows: number;
    if (lookup) rows = tuples.length;
    else {
      // Counted up to where the index could no longer win.
      const readsCap = ordered ? Math.min(needed(bound), n) : n;
      const cap = Math.max(1, Math.ceil(Math.min(readsCap, (best.cost - starts) / (INDEX_ROW * weight))) + 1);
      if (cap <= 1 && best.cost <= starts) continue;
      rows = 0;
      if (!restricts) rows = n;
      else
        for (const t of tuples) {
          const r: IndexRange = { ...range };
          if (t.length > 0) r.eq = t;
          rows += await reads.indexCount(input.table, ix.engine, r, cap - rows);
          if (rows >= cap) break;
        }
    }
    const read = ordered ? Math.min(rows, needed(bound)) : rows;
    const cost = starts + (lookup ? 0 : read * INDEX_ROW * weight) + (ordered ? 0 : sortCost(rows) * weight);
    if (cost < best.cost) {
      best = {
        kind: 'index',
        index: ix,
        tuples,
        range,
        bound,
        lookup,
        reverse: ordered && desc,
        ordered: ordered && order !== undefined,
        rows,
        cost,
      };
    }
  }
  return best;
}

/** Rows as the engine gives them (tx.get, tx.scan) to a batch of the scan's columns. */
export function rowsBatch(
  columns: readonly { name: string; type: ColumnType; scale?: number }[],
  rows: readonly Row[],
): Batch {
  const n = rows.length;
  const cols: Col[] = columns.map((c) => {
    let nulls: Uint8Array | null = null;
    const isNull = (i: number, v: unknown): boolean => {
      if (v !== null && v !== undefined) return false;
      (nulls ??= new Uint8Array(n))[i] = 1;
      return true;
    };
    switch (c.type) {
      case 'float64':
      case 'int32':
      case 'bool':
      case 'timestamp': {
        const d = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const v = rows[i]![c.name];
          if (isNull(i, v)) continue;
          d[i] = v instanceof Date ? v.getTime() : v === true ? 1 : v === false ? 0 : (v as number);
        }
        if (c.type === 'float64') return numCol(d, nulls);
        if (c.type === 'timestamp') return numCol(d, nulls, true);
        return intCol(d, nulls);
      }
      case 'int64':
      case 'uint64': {
        const vals = rows.map((r) => r[c.name] as number | bigint | null | undefined);
        if (vals.every((v) => typeof v !== 'bigint')) {
          const d = new Float64Array(n);
          for (let i = 0; i < n; i++) if (!isNull(i, vals[i])) d[i] = vals[i] as number;
          return intCol(d, nulls);
        }
        return anyCol(vals.map((v) => (v === undefined ? null : (v as SqlValue))));
      }
      case 'decimal': {
        const scale = c.scale ?? 0;
        const vals = rows.map((r) => {
          const v = r[c.name];
          return v === null || v === undefined
            ? null
            : v instanceof Decimal
              ? v
              : (Decimal.parse(typeof v === 'number' || typeof v === 'bigint' ? String(v) : (v as string)) ??
                null);
        });
        const lim = BigInt(Number.MAX_SAFE_INTEGER);
        if (vals.every((v) => v === null || (v.s === scale && v.u <= lim && v.u >= -lim))) {
          const d = new Float64Array(n);
          for (let i = 0; i < n; i++) if (!isNull(i, vals[i])) d[i] = Number(vals[i]!.u);
          return decimalCol(d, nulls, scale);
        }
        return anyCol(vals.map((v) => (v === null ? null : v.rescale(scale))));
      }
      default:
        return anyCol(rows.map((r) => (r[c.name] ?? null) as SqlValue));
    }
  });
  return { len: n, cols };
}
