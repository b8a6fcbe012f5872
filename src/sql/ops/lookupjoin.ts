/**
 * Index nested-loop joins: for each row of the left input, the inner table's rows are looked up by
 * the values of its join keys, through the primary key or a secondary index, instead of reading the
 * whole inner table into a hash table. The inner scan's own conditions and the join's conditions
 * (the key equalities among them) are checked on every pair. When the left input turns out to hold
 * more rows than lookups pay for (a fraction of the inner table's), the join goes on as a hash join
 * over the left rows not yet joined.
 */
import { evaluate, truthArray, type Expr } from '../expr.js';
import { gatherBatch, getv, type Batch, type Col, type Ctx } from '../vector.js';
import type { Row } from '../../schema/schema.js';
import { BATCH_ROWS, indent, type ExplainChoices, type Op } from './op.js';
import { Join, combine } from './join.js';
import type { TableScan } from './scan.js';
import { rowsBatch, type IndexCandidate } from './access.js';
import { pointOf, type IndexColumn, type IndexKey } from './indexkeys.js';
import { indexMode } from '../variables.js';
import { uniqueRow } from '../host.js';

/** How the inner rows are found: by the primary key, or by an index's leading columns. */
export interface LookupPath {
  /** The index (undefined: the primary key). */
  index?: IndexCandidate;
  /** The key columns looked up (the index's leading ones), and the left expressions giving their values. */
  columns: IndexColumn[];
  keys: Expr[];
}

/**
 * Lookups are worth it up to this share of the inner table's rows, by how they read (a point
 * read of the key, a UNIQUE index's row, an index seek): past it a hash join goes on.
 */
const LOOKUP_SHARE = { primary: 0.4, unique: 0.12, index: 0.08 } as const;
/** Below this many left rows, lookups always. */
const MIN_LOOKUPS = 64;

export class IndexJoin implements Op {
  readonly width: number;
  readonly names: readonly string[];
  constructor(
    readonly left: Op,
    readonly inner: TableScan,
    readonly kind: 'inner' | 'left',
    readonly path: LookupPath,
    /** Over the joined row (left columns then inner columns): every condition placed at the join. */
    readonly condition: Expr | undefined,
    /** The hash join this one becomes past the lookups' share: its key pairs and remaining condition. */
    readonly hash: { leftKeys: Expr[]; rightKeys: Expr[]; condition: Expr | undefined },
  ) {
    this.width = left.width + inner.width;
    this.names = [...left.names, ...inner.names];
  }

  async *run(ctx: Ctx): AsyncGenerator<Batch> {
    const ix = this.path.index;
    const share =
      LOOKUP_SHARE[
        ix === undefined
          ? 'primary'
          : ix.unique && this.path.columns.length === ix.columns.length
            ? 'unique'
            : 'index'
      ];
    const usable = ix === undefined || ctx.tx.indexes(this.inner.table).some((i) => i.name === ix.engine);
    // Indexes off for the session, or this one not usable at the snapshot: the hash join.
    const limit =
      usable && indexMode(ctx.session) !== 'off'
        ? Math.max(MIN_LOOKUPS, ctx.tx.estimatedRows(this.inner.table) * share)
        : -1;
    if (limit >= 0) ctx.counters.indexJoins = (ctx.counters.indexJoins ?? 0) + 1;
    const input = this.left.run(ctx);
    let seen = 0;
    try {
      for (;;) {
        const next = await input.next();
        if (next.done === true) return;
        const lb = next.value;
        if (seen + lb.len > limit) {
          // Too many left rows for lookups: a hash join over this batch and the rest.
          const rest: Op = {
            width: this.left.width,
            names: this.left.names,
            run: () => resume(lb, input),
            explain: () => [],
          };
          const j = new Join(
            rest,
            this.inner,
            this.kind,
            this.hash.leftKeys,
            this.hash.rightKeys,
            this.hash.condition,
          );
          yield* j.run(ctx);
          return;
        }
        seen += lb.len;
        yield* this.joinBatch(lb, ctx);
      }
    } finally {
      await input.return(undefined);
    }
  }

  /** One left batch joined by lookups, in output batches of up to BATCH_ROWS pairs. */
  private async *joinBatch(lb: Batch, ctx: Ctx): AsyncGenerator<Batch> {
    const keyCols: Col[] = [];
    for (const k of this.path.keys) keyCols.push(await evaluate(k, lb, ctx));
    const matched = new Uint8Array(lb.len);
    let owners: number[] = [];
    let rows: Row[] = [];
    const flush = async function* (this: IndexJoin): AsyncGenerator<Batch> {
      if (rows.length === 0) return;
      let ib = rowsBatch(this.inner.columns, rows);
      let li = owners;
      owners = [];
      rows = [];
      // The inner scan's own conditions, then the join's over the pairs.
      if (this.inner.filter !== undefined) {
        const t = truthArray(await evaluate(this.inner.filter, ib, ctx), ib.len);
        const sel = new Int32Array(ib.len);
        let n = 0;
        for (let i = 0; i < ib.len; i++) if (t[i] === 1) sel[n++] = i;
        if (n < ib.len) {
          ib = gatherBatch(ib, sel, n);
          li = Array.from(sel.subarray(0, n), (i) => li[i]!);
        }
      }
      if (li.length === 0) return;
      const ri = li.map((_, j) => j);
      let out = combine(lb, ib, li, ri);
      if (this.condition !== undefined) {
        const t = truthArray(await evaluate(this.condition, out, ctx), out.len);
        const sel = new Int32Array(out.len);
        let n = 0;
        for (let p = 0; p < out.len; p++) if (t[p] === 1) sel[n++] = p;
        for (let j = 0; j < n; j++) matched[li[sel[j]!]!] = 1;
        if (n < out.len) out = gatherBatch(out, sel, n);
      } else for (const l of li) matched[l] = 1;
      if (out.len > 0) yield out;
    };
    for (let i = 0; i < lb.len; i++) {
      for (const r of await this.lookup(keyCols, i, ctx)) {
        owners.push(i);
        rows.push(r);
      }
      if (rows.length >= BATCH_ROWS) {
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
        const none = rowsBatch(this.inner.columns, []);
        yield combine(
          lb,
          none,
          unmatched,
          unmatched.map(() => -1),
        );
      }
    }
  }

  /** The inner rows whose key columns can equal left row i's values. */
  private async lookup(keyCols: readonly Col[], i: number, ctx: Ctx): Promise<Row[]> {
    const columns = this.inner.columns.length > 0 ? this.inner.names : [this.inner.keyColumn];
    const tuple: IndexKey[] = [];
    for (let k = 0; k < this.path.columns.length; k++) {
      const p = pointOf(getv(keyCols[k]!, i), this.path.columns[k]!);
      if (p === 'empty') return [];
      if (p === undefined) break;
      tuple.push(p.key);
    }
    const table = this.inner.table;
    const out: Row[] = [];
    if (tuple.length === 0) {
      // A value of another kind than the column's (compared by MySQL's conversions): every row.
      for await (const r of ctx.tx.scan(table, { columns })) out.push(r);
      return out;
    }
    const ix = this.path.index;
    if (ix === undefined) {
      const r = await ctx.tx.get(table, tuple[0], { columns });
      return r === undefined ? [] : [r];
    }
    if (ix.unique && tuple.length === ix.columns.length && !tuple.includes(null)) {
      const hasDecimal = ix.columns.some((c) => c.type === 'decimal');
      const r = await uniqueRow(ctx.tx, table, ix.engine, tuple, hasDecimal, columns);
      return r === undefined ? [] : [r];
    }
    for await (const r of ctx.tx.scan(table, { index: ix.engine, eq: tuple, columns })) out.push(r);
    return out;
  }

  explain(x?: ExplainChoices): string[] {
    const label = this.inner.label;
    const alias = label.includes(' AS ') ? label.slice(label.lastIndexOf(' AS ') + 4) : label;
    const on = this.path.columns
      .map((c, k) => `${alias}.${c.name} = ${this.path.keys[k]!.text}`)
      .join(' AND ');
    const how = this.path.index === undefined ? 'point read' : `index lookup`;
    const via =
      this.path.index === undefined ? `key ${this.inner.keyColumn}` : `using ${this.path.index.name}`;
    const inner = [
      `${how} ${this.inner.label} ${via} (${this.inner.names.join(', ') || this.inner.keyColumn})`,
    ];
    if (this.inner.filter !== undefined) inner.push(`  filter ${this.inner.filter.text}`);
    return [
      `${this.kind === 'left' ? 'left ' : ''}index nested loop join on ${on}${this.condition !== undefined ? ` where ${this.condition.text}` : ''}`,
      ...indent(this.left.explain(x)),
      ...indent(inner),
    ];
  }
}

/** A batch, then the rest of a generator's batches. */
async function* resume(first: Batch, rest: AsyncGenerator<Batch>): AsyncGenerator<Batch> {
  yield first;
  for (;;) {
    const n = await rest.next();
    if (n.done === true) return;
    yield n.value;
  }
}
