/**
 * SELECT: a plan's rows as a result, and the shortcut for a SELECT that is one key equality over
 * plain columns (a lookup at the newest commit, or in the caller's transaction, without operators).
 */
import type { Row } from '../schema/schema.js';
import type { Transaction } from '../txn/transaction.js';
import type { Op } from './ops/op.js';
import { pointKey } from './ops/keys.js';
import { rowValue, TableScan } from './ops/scan.js';
import { Project } from './ops/rows.js';
import { getv, type Batch, type Ctx } from './vector.js';
import type { SqlValue } from './values.js';
import type { QueryResult } from '../txn/query.js';
import type { SqlHost } from './host.js';
import type { SqlMeta } from './meta.js';
import { planSelect, type PointPlan, type Prepared } from './prepared.js';

const NO_ROWS: Batch = { len: 1, cols: [] };

/** The statement as a point read, if it is one. */
export function pointPlanOf(meta: SqlMeta, p: Prepared, i: number): PointPlan | undefined {
  let pp = p.points.get(i);
  if (pp === undefined) {
    // Planned against the current catalog only (the next statement's run loads it).
    if (!meta.current) return undefined;
    pp = null;
    const ast = p.statements[i]!;
    if (ast.kind === 'select') {
      let plan: { op: Op; names: string[] };
      try {
        plan = planSelect(meta, p, i, ast.query);
      } catch {
        // The statement's full run reports the error (and counts it).
        return undefined;
      }
      const op = plan.op;
      if (op instanceof Project && op.input instanceof TableScan) {
        const scan = op.input;
        const eq = scan.range?.eq;
        if (
          scan.pointOnly &&
          eq !== undefined &&
          eq.subs.length === 0 &&
          op.exprs.every((e) => e.column !== undefined && e.subs.length === 0)
        ) {
          pp = {
            table: scan.table,
            keyType: scan.keyType,
            keyDigits: scan.keyDigits,
            key: eq,
            fetch: scan.columns.map((c) => c.name),
            types: scan.columns.map((c) => c.type),
            out: op.exprs.map((e) => e.column!),
            names: plan.names,
          };
        }
      }
    }
    p.points.set(i, pp);
  }
  return pp ?? undefined;
}

/** Run a point read; undefined when the key is not of the key's kind (the plan then runs). */
export function pointRead(
  host: SqlHost,
  pp: PointPlan,
  params: readonly SqlValue[],
  tx: Transaction | undefined,
): QueryResult | undefined | Promise<QueryResult | undefined> {
  const v = getv(pp.key.ev(NO_ROWS, { params } as Ctx), 0);
  const key = pointKey(v, pp.keyType, pp.keyDigits);
  if (key === undefined) return undefined;
  const result: QueryResult = { columns: [...pp.names], rows: [], affectedRows: 0 };
  if (key === 'empty') return result;
  const found = (row: Row | undefined): QueryResult => {
    if (row !== undefined) result.rows.push(pp.out.map((j) => rowValue(pp.types[j]!, row[pp.fetch[j]!])));
    return result;
  };
  // In a transaction, synchronously when its writes or the memtables hold the answer.
  const row =
    tx !== undefined ? tx._get(pp.table, key, pp.fetch) : host.get(pp.table, key, { columns: pp.fetch });
  return row instanceof Promise ? row.then(found) : found(row);
}

/** A SELECT's rows, the plan run in `ctx`. */
export async function selectRows(plan: { op: Op; names: string[] }, ctx: Ctx): Promise<QueryResult> {
  // A sort on top hands over its rows as they are (their memory already charged).
  if (plan.op.rows !== undefined && plan.op.width === plan.names.length)
    return { columns: [...plan.names], rows: await plan.op.rows(ctx), affectedRows: 0 };
  const rows: unknown[][] = [];
  for await (const b of plan.op.run(ctx)) {
    for (let r = 0; r < b.len; r++) {
      const row = new Array<unknown>(plan.names.length);
      for (let c = 0; c < plan.names.length; c++) row[c] = getv(b.cols[c]!, r);
      rows.push(row);
    }
    ctx.mem.charge(64 + 16 * plan.names.length * b.len);
  }
  return { columns: [...plan.names], rows, affectedRows: 0 };
}
