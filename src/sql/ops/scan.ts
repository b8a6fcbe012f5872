/** Sources: the rows of a table (a point read, a key range or the whole table), and one row. */
import type { ColumnType } from '../../schema/schema.js';
import { scaledConstant, type Expr } from '../expr.js';
import {
  anyCol,
  constCol,
  decimalCol,
  getv,
  intCol,
  numCol,
  type Batch,
  type Col,
  type Ctx,
} from '../vector.js';
import { Decimal, parseDate, type SqlValue } from '../values.js';
import { ONE_ROW, type Op } from './op.js';
import { keyBounds, type KeyDigits, type KeyRange } from './keys.js';
import { applyFilter, liveRows } from './filter.js';

/** Rows per batch read from a table (the engine caps batches at 16,000 rows). */
const SCAN_BATCH_ROWS = 16384;

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
