/**
 * Data changes: INSERT and REPLACE (values checked and converted first, defaults and auto-increment
 * values filled), UPDATE and DELETE (the rows they change read through the planner, as a SELECT's).
 */
import type * as A from './parser/ast.js';
import { TidemarkError } from '../errors.js';
import type { Transaction } from '../txn/transaction.js';
import { constValue, materialize, type Op } from './ops/op.js';
import { Planner } from './plan/planner.js';
import type { PlanCatalog } from './plan/rel.js';
import type { Ctx } from './vector.js';
import { Decimal, exactOf, sameKey, type SqlValue } from './values.js';
import { divRound as divRoundHalfAway } from '../util/decimal.js';
import { defaultValue, encodeTuple, ROWID, TUPLE_KEY, type SqlTable } from './catalog.js';
import { constantLevel, mentionExpr, mentions, unsupported } from './bind.js';
import type { QueryResult } from '../txn/query.js';
import type { SqlMeta } from './meta.js';
import { coerce, engineOf, keyValue, sqlOf } from './coerce.js';
import { checkUnique } from './unique.js';
import type { AutoIncrement } from './autoincrement.js';
import { plannerFor, planSelect, type Prepared } from './prepared.js';

/** INSERTs of at most this many rows keep their planned VALUES with the statement. */
const KEPT_VALUES_ROWS = 64;

/** INSERT, REPLACE, UPDATE and DELETE of one database. */
export class SqlDml {
  constructor(
    private readonly meta: SqlMeta,
    private readonly ids: AutoIncrement,
  ) {}

  async insert(
    ast: A.InsertStatement,
    tx: Transaction,
    ctx: Ctx,
    p: Prepared,
    i: number,
  ): Promise<QueryResult> {
    // The first AUTO_INCREMENT value this INSERT makes: MySQL's LAST_INSERT_ID.
    const generated: { first?: number | bigint } = {};
    const r = await this.insertRows(ast, tx, ctx, p, i, generated);
    if (generated.first !== undefined) r.insertId = generated.first;
    return r;
  }

  private async insertRows(
    ast: A.InsertStatement,
    tx: Transaction,
    ctx: Ctx,
    p: Prepared,
    i: number,
    generated: { first?: number | bigint },
  ): Promise<QueryResult> {
    if (ast.onDuplicate !== undefined) throw unsupported('ON DUPLICATE KEY UPDATE');
    if (ast.ignore) throw unsupported('INSERT IGNORE');
    const t = this.meta.targetTable(ast.table.name);
    const source = ast.source;
    const columns = source.kind === 'set' ? source.set.map((a) => a.column.name) : ast.columns;
    const positions = this.columnPositions(t, columns);
    const tuples: SqlValue[][] = [];
    if (source.kind === 'values' || source.kind === 'set') {
      // Planned once for a statement run again and again (short, with placeholders).
      let planned = p.values.get(i);
      if (planned === undefined) {
        const rows = source.kind === 'values' ? source.rows : [source.set.map((a) => a.value)];
        const m = mentions();
        for (const r of rows) for (const e of r) mentionExpr(e, m);
        const planner = new Planner(this.meta, m);
        const level = constantLevel();
        planned = rows.map((row) =>
          row.map((e) =>
            e.kind === 'default' && e.column === undefined ? undefined : planner.expr(e, level),
          ),
        );
        if (p.params > 0 && planned.length <= KEPT_VALUES_ROWS) p.values.set(i, planned);
      }
      for (const row of planned) {
        const vals: SqlValue[] = [];
        for (const e of row)
          vals.push(e === undefined ? (undefined as unknown as SqlValue) : await constValue(e, ctx));
        // VALUES () gives every column its default.
        if (vals.length === 0 && columns === undefined)
          for (let c = 0; c < positions.length; c++) vals.push(undefined as unknown as SqlValue);
        tuples.push(vals);
      }
    } else {
      const plan = planSelect(this.meta, p, i, source.query);
      for (const r of await materialize(plan.op, ctx)) tuples.push(r);
    }
    const rows: Record<string, unknown>[] = [];
    for (const vals of tuples) {
      if (vals.length !== positions.length) {
        throw new TidemarkError('INVALID_ARGUMENT', `${vals.length} values for ${positions.length} columns`, {
          details: { mysqlErrno: 1136 },
        });
      }
      const given = new Array<SqlValue | undefined>(t.columns.length).fill(undefined);
      positions.forEach((pos, k) => (given[pos] = vals[k]));
      rows.push(await this.completeRow(t, given, tx, generated));
    }
    if (rows.length === 0) return { columns: [], rows: [], affectedRows: 0 };
    await checkUnique(t, rows, tx, []);
    if (ast.replace) {
      let affected = 0;
      for (const r of rows) {
        const existed = (await tx.get(t.name, r[t.keyColumn], { columns: [t.keyColumn] })) !== undefined;
        affected += existed ? 2 : 1;
        await tx.upsert(t.name, r);
      }
      return { columns: [], rows: [], affectedRows: affected };
    }
    await tx.insert(t.name, rows);
    return { columns: [], rows: [], affectedRows: rows.length };
  }

  /** A row of values (in t.columns order, undefined where not given) to a tidemark row. */
  private async completeRow(
    t: SqlTable,
    given: (SqlValue | undefined)[],
    tx: Transaction,
    generated?: { first?: number | bigint },
  ): Promise<Record<string, unknown>> {
    const row: Record<string, unknown> = {};
    for (let c = 0; c < t.columns.length; c++) {
      const col = t.columns[c]!;
      let v = given[c];
      if (col.autoIncrement === true) {
        if (v === undefined || v === null || v === 0) {
          v = await this.ids.next(t, col.name, tx);
          if (generated !== undefined) generated.first ??= v;
        } else if (typeof v === 'number' || typeof v === 'bigint' || v instanceof Decimal) {
          const d = exactOf(v);
          if (d !== undefined) await this.ids.saw(t, col.name, divRoundHalfAway(d.u, d.s), tx);
        }
      }
      if (v === undefined) {
        if (
          col.default === undefined &&
          !col.nullable &&
          !(t.primaryKey.includes(col.name) && col.autoIncrement)
        ) {
          throw new TidemarkError('SCHEMA', `column ${col.name} has no default value`, {
            details: { table: t.name, column: col.name, mysqlErrno: 1364 },
          });
        }
        v = defaultValue(col);
      }
      row[col.name] = coerce(t, col, v);
    }
    if (t.keyColumn === ROWID) row[ROWID] = await this.ids.next(t, ROWID, tx);
    if (t.keyColumn === TUPLE_KEY) {
      row[TUPLE_KEY] = encodeTuple(
        t.primaryKey.map((k) =>
          sqlOf(
            t.columns.find((c) => c.name === k)!,
            row[k],
          ),
        ),
      );
    }
    return row;
  }

  private columnPositions(t: SqlTable, columns: readonly string[] | undefined): number[] {
    if (columns === undefined) return t.columns.map((_, i) => i);
    const seen = new Set<number>();
    return columns.map((c) => {
      const n = c.toLowerCase();
      const i = t.columns.findIndex((x) => x.name.toLowerCase() === n);
      if (i < 0) {
        throw new TidemarkError('SCHEMA', `unknown column ${c} in ${t.name}`, {
          details: { table: t.name, column: c, mysqlErrno: 1054 },
        });
      }
      if (seen.has(i))
        throw new TidemarkError('INVALID_ARGUMENT', `column ${c} given twice`, {
          details: { mysqlErrno: 1110 },
        });
      seen.add(i);
      return i;
    });
  }

  /**
   * The rows a write statement's WHERE selects: a plan over the table with its hidden key visible,
   * giving the key, then (with `wholeRows`) every column, then the `extra` expressions.
   */
  private matching(
    target: A.TableName,
    where: A.Expr | undefined,
    orderBy: A.OrderItem[],
    limit: A.Limit | undefined,
    t: SqlTable,
    extra: A.Expr[],
    wholeRows = true,
  ): { op: Op; names: string[] } {
    const withKey: SqlTable =
      t.keyColumn === ROWID || t.keyColumn === TUPLE_KEY
        ? {
            ...t,
            columns: [
              ...t.columns,
              {
                name: t.keyColumn,
                sqlType: 'BIGINT',
                type: t.keyColumn === ROWID ? 'int64' : 'bytes',
                nullable: false,
              },
            ],
          }
        : t;
    const catalog: PlanCatalog = {
      table: (n) => (n === t.name ? withKey : this.meta.table(n)),
      view: (n) => this.meta.view(n),
      estimatedRows: (n) => this.meta.estimatedRows(n),
    };
    const column = (name: string): A.Expr => ({ kind: 'column', at: 0, name });
    const items: A.SelectItem[] = [
      column(t.keyColumn),
      ...(wholeRows ? t.columns : []).map((c) => column(c.name)),
      ...extra,
    ].map((expr) => ({ kind: 'item', expr, text: '' }));
    const query: A.Query = {
      kind: 'query',
      at: 0,
      body: {
        kind: 'select',
        at: 0,
        distinct: false,
        items,
        from: [target],
        ...(where !== undefined ? { where } : {}),
        groupBy: [],
        withRollup: false,
      },
      orderBy,
      ...(limit !== undefined ? { limit } : {}),
      text: '',
    };
    return plannerFor(catalog, query).select(query);
  }

  async update(
    ast: A.UpdateStatement,
    tx: Transaction,
    ctx: Ctx,
    p: Prepared,
    i: number,
  ): Promise<QueryResult> {
    const target = ast.tables[0]!;
    if (ast.tables.length !== 1 || target.kind !== 'table') throw unsupported('UPDATE of several tables');
    if (ast.ignore) throw unsupported('UPDATE IGNORE');
    const t = this.meta.targetTable(target.name);
    const alias = target.alias ?? target.name;
    const sets: { pos: number; e: A.Expr }[] = ast.set.map((s) => {
      const n = s.column.name.toLowerCase();
      const pos = t.columns.findIndex((c) => c.name.toLowerCase() === n);
      if (pos < 0 || (s.column.table !== undefined && s.column.table.toLowerCase() !== alias.toLowerCase())) {
        throw new TidemarkError('SCHEMA', `unknown column ${s.column.name} in ${t.name}`, {
          details: { table: t.name, column: s.column.name, mysqlErrno: 1054 },
        });
      }
      return { pos, e: s.value };
    });
    // The plan of the rows to change is kept with the statement, as a SELECT's is.
    let plan = p.plans.get(i);
    if (plan === undefined) {
      // Assignments apply left to right (MySQL's single-table UPDATE): a later one reads the
      // columns an earlier one assigned as assigned.
      const assigned = new Map<string, A.Expr>();
      for (const set of sets) {
        if (set.e.kind === 'default') throw unsupported('SET column = DEFAULT');
        set.e = substituteColumns(set.e, assigned, alias);
        assigned.set(t.columns[set.pos]!.name.toLowerCase(), set.e);
      }
      plan = this.matching(
        target,
        ast.where,
        ast.orderBy,
        ast.limit,
        t,
        sets.map((s) => s.e),
      );
      p.plans.set(i, plan);
    }
    const found = await materialize(plan.op, ctx);
    const ncols = t.columns.length;
    let changed = 0;
    const newRows: {
      oldKey: unknown;
      row: Record<string, unknown>;
      /** The assigned columns only: what an update in place changes. */
      patch: Record<string, unknown>;
      keyChanged: boolean;
    }[] = [];
    for (const r of found) {
      const oldKey = r[0];
      const row: Record<string, unknown> = {};
      const patch: Record<string, unknown> = {};
      let differs = false;
      let keyChanged = false;
      for (let c = 0; c < ncols; c++) row[t.columns[c]!.name] = engineOf(t.columns[c]!, r[1 + c]!);
      sets.forEach((s, k) => {
        const col = t.columns[s.pos]!;
        const v = coerce(t, col, r[1 + ncols + k]!);
        const before = r[1 + s.pos]!;
        if (!sameKey(sqlOf(col, v), before)) {
          differs = true;
          if (t.primaryKey.includes(col.name)) keyChanged = true;
        }
        row[col.name] = v;
        patch[col.name] = v;
      });
      if (!differs) continue;
      changed++;
      if (t.keyColumn === ROWID) row[ROWID] = oldKey;
      else if (t.keyColumn === TUPLE_KEY) {
        row[TUPLE_KEY] = encodeTuple(
          t.primaryKey.map((k) =>
            sqlOf(
              t.columns.find((c) => c.name === k)!,
              row[k],
            ),
          ),
        );
      }
      newRows.push({ oldKey, row, patch, keyChanged });
    }
    await checkUnique(
      t,
      newRows.map((n) => n.row),
      tx,
      newRows.map((n) => n.oldKey),
    );
    // Keys that change: delete every old row first, then insert (a key may move onto another's old key).
    for (const n of newRows) if (n.keyChanged) await tx.delete(t.name, keyValue(t, n.oldKey));
    const moved = newRows.filter((n) => n.keyChanged).map((n) => n.row);
    if (moved.length > 0) await tx.insert(t.name, moved);
    for (const n of newRows) {
      if (n.keyChanged) continue;
      await tx.update(t.name, keyValue(t, n.oldKey), n.patch);
    }
    return { columns: [], rows: [], affectedRows: changed };
  }

  async delete(
    ast: A.DeleteStatement,
    tx: Transaction,
    ctx: Ctx,
    p: Prepared,
    i: number,
  ): Promise<QueryResult> {
    const target = ast.from[0]!;
    if (ast.targets.length > 0 || ast.from.length !== 1 || target.kind !== 'table')
      throw unsupported('DELETE from several tables');
    if (ast.ignore) throw unsupported('DELETE IGNORE');
    const t = this.meta.targetTable(target.name);
    let plan = p.plans.get(i);
    if (plan === undefined) {
      // Only the keys are needed: no other column is read (or decoded). With ORDER BY, the whole
      // rows, as before: a position there counts in the key-and-columns list.
      plan = this.matching(target, ast.where, ast.orderBy, ast.limit, t, [], ast.orderBy.length > 0);
      p.plans.set(i, plan);
    }
    const found = await materialize(plan.op, ctx);
    let n = 0;
    for (const r of found) if (await tx.delete(t.name, keyValue(t, r[0]))) n++;
    return { columns: [], rows: [], affectedRows: n };
  }
}

/** An expression with references to the assigned columns replaced by what they were assigned. */
function substituteColumns(e: A.Expr, assigned: ReadonlyMap<string, A.Expr>, table: string): A.Expr {
  if (assigned.size === 0) return e;
  if (e.kind === 'column') {
    const to = assigned.get(e.name.toLowerCase());
    if (to !== undefined && (e.table === undefined || e.table.toLowerCase() === table.toLowerCase()))
      return to;
    return e;
  }
  // Subqueries see the row as it was (their columns are their own): only this level's nodes change.
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) out[k] = substituteValue(v, assigned, table);
  return out as unknown as A.Expr;
}

function substituteValue(v: unknown, assigned: ReadonlyMap<string, A.Expr>, table: string): unknown {
  if (Array.isArray(v)) return v.map((x) => substituteValue(x, assigned, table));
  if (v === null || typeof v !== 'object') return v;
  const kind = (v as { kind?: string }).kind;
  if (kind === 'query') return v;
  if (kind !== undefined) return substituteColumns(v as A.Expr, assigned, table);
  // { when, then } of CASE and { expr, desc } of GROUP_CONCAT's ORDER BY.
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = substituteValue(x, assigned, table);
  return out;
}
