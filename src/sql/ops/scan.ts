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
import { ONE_ROW, type ExplainChoices, type Op } from './op.js';
import { keyBounds, type KeyDigits, type KeyRange } from './keys.js';
import { applyFilter, liveRows } from './filter.js';
import { chooseAccess, rowsBatch, type Access, type AccessSpec, type OrderSpec } from './access.js';
import { Sort } from './sort.js';
import { uniqueRow, type IndexRange } from '../host.js';
import type { Row } from '../../schema/schema.js';

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

/** Rows per batch read row by row (an index, a descending key range): growing from the first. */
const FIRST_ROWS = 32;
const MAX_ROWS = 4096;

/**
 * The rows of a table: a point read for a key equality, a key-range scan for key bounds, a range
 * or lookups of a secondary index, or the whole table, as `access.ts` chooses for each run; then
 * the table's own conditions, batch at a time. With an `order` (set by the planner for ORDER BY
 * and MIN/MAX over this scan's columns), the rows come in that order: read in it (a key or index
 * order), or sorted here.
 */
export class TableScan implements Op {
  readonly width: number;
  readonly names: string[];
  /** The order the rows must come in (see OrderSpec), set by the planner. */
  order: OrderSpec | undefined;
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
    /** Its columns' comparisons with constants and the table's indexes (see access.ts). */
    readonly spec?: AccessSpec,
    /** The primary key's column when it is one declared column (rows in key order are in its order). */
    readonly keyName?: string,
  ) {
    this.yieldSelection = false;
    this.width = columns.length;
    this.names = columns.map((c) => c.name);
  }

  /** How this run reads (see chooseAccess). */
  async choose(ctx: Ctx): Promise<Access> {
    const bounds =
      this.range !== undefined ? await keyBounds(this.range, this.keyType, ctx, this.keyDigits) : undefined;
    const pk =
      bounds === 'empty' || bounds === undefined
        ? bounds
        : { ...bounds, bounds: (bounds.gte !== undefined ? 1 : 0) + (bounds.lt !== undefined ? 1 : 0) };
    return chooseAccess(
      {
        table: this.table,
        keyColumn: this.keyColumn,
        keyName: this.keyName,
        pk,
        spec: this.spec,
        order: this.order,
      },
      ctx,
    );
  }

  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const access = await this.choose(ctx);
    if (access.kind === 'empty') return;
    if (access.kind === 'index') {
      if (access.lookup) ctx.counters.indexLookups = (ctx.counters.indexLookups ?? 0) + 1;
      else ctx.counters.indexScans = (ctx.counters.indexScans ?? 0) + 1;
    }
    if (this.order !== undefined && access.kind !== 'point' && !access.ordered) {
      // Not read in the order wanted: sorted here, as ORDER BY would.
      const source: Op = {
        width: this.width,
        names: this.names,
        run: (c: Ctx) => this.read(access, c, false),
        explain: () => [],
      };
      const keys = this.order.keys.map((k) => ({ column: this.names.indexOf(k.column), desc: k.desc }));
      yield* new Sort(source, keys, '').run(ctx);
      return;
    }
    yield* this.read(access, ctx, this.yieldSelection);
  }

  /** The rows of one way of reading, filtered (`keepSel`: as a selection, see yieldSelection). */
  private async *read(access: Access, ctx: Ctx, keepSel: boolean): AsyncGenerator<Batch> {
    const names = this.columns.length > 0 ? this.columns.map((c) => c.name) : [this.keyColumn];
    if (access.kind === 'empty') return;
    if (access.kind === 'point') {
      const row = await ctx.tx.get(this.table, access.key, { columns: names });
      if (row === undefined) return;
      // A DOUBLE column's value stays a double (2.0 / 4 is 0.5, not DECIMAL 0.5000).
      const cols = this.columns.map((c) => constCol(rowValue(c.type, row[c.name]), c.type === 'float64'));
      const b: Batch = { len: 1, cols };
      const out = await this.filtered(b, ctx, false);
      if (out.len > 0) yield out;
      return;
    }
    if (access.kind === 'index') {
      yield* this.batches(this.indexRows(access, names, ctx), ctx, keepSel);
      return;
    }
    if (access.reverse) {
      const options: { columns: string[]; reverse: true; gte?: unknown; lt?: unknown } = {
        columns: names,
        reverse: true,
      };
      if (access.gte !== undefined) options.gte = access.gte;
      if (access.lt !== undefined) options.lt = access.lt;
      yield* this.batches(ctx.tx.scan(this.table, options), ctx, keepSel);
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
    if (access.gte !== undefined) options.gte = access.gte;
    if (access.lt !== undefined) options.lt = access.lt;
    // The filter is the key range alone and the bounds select exactly its rows: none re-checked.
    const checked = !(this.rangeOnly && access.exact === true);
    const zone = this.zoneFor(ctx);
    if (zone !== undefined) options.zone = zone;
    try {
      for await (const tb of ctx.tx.scanBatches(this.table, options)) {
        const pause = ctx.breathe();
        if (pause !== undefined) await pause;
        const n = tb.length;
        const cols = this.columns.map((c) => tableColumn(c, tb.columns[c.name], tb.nulls?.[c.name], n));
        const out = checked ? await this.filtered({ len: n, cols }, ctx, keepSel) : { len: n, cols };
        if (liveRows(out) > 0) yield out;
      }
    } finally {
      if (zone !== undefined) ctx.counters.zoneSkippedGroups += zone.skipped;
    }
  }

  /** The rows an index read gives: each tuple's range in turn (backwards when descending), or lookups. */
  private async *indexRows(
    access: Access & { kind: 'index' },
    names: string[],
    ctx: Ctx,
  ): AsyncGenerator<Row> {
    const reads = ctx.tx;
    const tuples = access.reverse ? [...access.tuples].reverse() : access.tuples;
    for (const t of tuples) {
      if (access.lookup) {
        const hasDecimal = access.index.columns.some((c) => c.type === 'decimal');
        const row = await uniqueRow(ctx.tx, this.table, access.index.engine, t, hasDecimal, names);
        if (row !== undefined) yield row;
        continue;
      }
      const options: IndexRange & { index: string; reverse?: boolean; columns: string[] } = {
        index: access.index.engine,
        columns: names,
        ...access.range,
      };
      if (t.length > 0) options.eq = t;
      if (access.reverse) options.reverse = true;
      yield* reads.scan(this.table, options);
    }
  }

  /** Rows read one by one, in batches that grow (a LIMIT above may stop after the first), filtered. */
  private async *batches(rows: AsyncIterable<Row>, ctx: Ctx, keepSel: boolean): AsyncGenerator<Batch> {
    let size = FIRST_ROWS;
    let buf: Row[] = [];
    const flush = async (): Promise<Batch | undefined> => {
      const b = rowsBatch(this.columns, buf);
      buf = [];
      if (size < MAX_ROWS) size *= 4;
      const out = await this.filtered(b, ctx, keepSel);
      return liveRows(out) > 0 ? out : undefined;
    };
    for await (const r of rows) {
      buf.push(r);
      if (buf.length >= size) {
        const pause = ctx.breathe();
        if (pause !== undefined) await pause;
        const out = await flush();
        if (out !== undefined) yield out;
      }
    }
    if (buf.length > 0) {
      const out = await flush();
      if (out !== undefined) yield out;
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

  private async filtered(b: Batch, ctx: Ctx, keepSel: boolean): Promise<Batch> {
    return this.filter === undefined ? b : applyFilter(this.filter, b, ctx, keepSel);
  }

  /** Set by the planner when the consumer is an Aggregate that takes selections. */
  yieldSelection: boolean;

  explain(x?: ExplainChoices): string[] {
    const chosen = x?.get(this) as Access | undefined;
    const cols = this.columns.map((c) => c.name).join(', ') || this.keyColumn;
    const lines: string[] = [];
    if (chosen !== undefined && chosen.kind === 'index') {
      lines.push(
        `${chosen.lookup ? 'index lookup' : 'index range scan'} ${this.label} using ${chosen.index.name} (${cols})`,
      );
      for (const c of chosen.bound)
        for (const t of this.spec?.preds.get(c)?.texts ?? []) lines.push(`  index ${t}`);
      if (this.order !== undefined && chosen.ordered)
        lines.push(`  in index order${chosen.reverse ? ', descending' : ''}`);
    } else if (chosen !== undefined && chosen.kind === 'empty') {
      lines.push(`empty scan ${this.label} (${cols}): no row can pass`);
    } else {
      const how =
        this.range?.eq !== undefined
          ? 'point read'
          : this.range !== undefined
            ? 'key range scan'
            : 'full scan';
      lines.push(`${how} ${this.label} (${cols})`);
      if (this.range?.eq !== undefined) lines.push(`  key ${this.keyColumn} = ${this.range.eq.text}`);
      if (this.range?.lower !== undefined)
        lines.push(
          `  key ${this.keyColumn} ${this.range.lower.inclusive ? '>=' : '>'} ${this.range.lower.e.text}`,
        );
      if (this.range?.upper !== undefined)
        lines.push(
          `  key ${this.keyColumn} ${this.range.upper.inclusive ? '<=' : '<'} ${this.range.upper.e.text}`,
        );
      if (chosen?.kind === 'primary' && this.order !== undefined && chosen.ordered)
        lines.push(`  in key order${chosen.reverse ? ', descending' : ''}`);
    }
    if (
      this.order !== undefined &&
      (chosen === undefined || (chosen.kind !== 'point' && chosen.kind !== 'empty' && !chosen.ordered))
    )
      lines.push(
        `  sorted by ${this.order.keys.map((k) => `${k.column}${k.desc ? ' DESC' : ''}`).join(', ')}`,
      );
    if (this.filter !== undefined) lines.push(`  filter ${this.filter.text}`);
    return lines;
  }
}
