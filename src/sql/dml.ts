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
import { defaultValue, encodeTuple, ROWID, TUPLE_KEY, type SqlTable, type TableIndex } from './catalog.js';
import {
  constantLevel,
  LayoutResolver,
  mentionExpr,
  mentions,
  unsupported,
  type ColInfo,
  type Level,
} from './bind.js';
import type { Row } from '../schema/schema.js';
import { evaluate } from './expr.js';
import { constCol, getv, type Batch } from './vector.js';
import { rowValue } from './ops/scan.js';
import { uniqueRow } from './host.js';
import type { QueryResult } from '../txn/query.js';
import type { SqlMeta } from './meta.js';
import { coerce, engineOf, keyValue, sqlOf } from './coerce.js';
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
    const t = this.meta.targetTable(ast.table.name);
    await this.meta.ready(t.name);
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
    const done = (affectedRows: number): QueryResult => ({ columns: [], rows: [], affectedRows });
    // Row by row where a row's fate depends on the rows before it: each finds the rows it collides
    // with (by primary key, then by each UNIQUE index: one lookup each) among the committed rows and
    // those this statement wrote already.
    if (ast.replace) {
      // REPLACE: the rows it collides with deleted, then it is inserted (affected: one for the
      // insert, one per row deleted).
      let affected = 0;
      for (const r of rows) {
        const old = await this.collisions(t, r, tx, false);
        for (const o of old) await tx.delete(t.name, o[t.keyColumn]);
        await this.write(t, () => tx.insert(t.name, r));
        affected += 1 + old.length;
      }
      return done(affected);
    }
    if (ast.onDuplicate !== undefined) {
      const update = this.duplicateUpdate(t, ast.onDuplicate);
      let affected = 0;
      for (const r of rows) {
        const old = (await this.collisions(t, r, tx, true))[0];
        if (old === undefined) {
          await this.write(t, () => tx.insert(t.name, r));
          affected += 1;
        } else if (await update(old, r, tx, ctx)) affected += 2;
      }
      return done(affected);
    }
    if (ast.ignore) {
      // INSERT IGNORE: a row that collides is left out (other errors still fail the statement).
      let affected = 0;
      for (const r of rows) {
        if ((await this.collisions(t, r, tx, true)).length > 0) continue;
        await this.write(t, () => tx.insert(t.name, r));
        affected++;
      }
      return done(affected);
    }
    await this.write(t, () => tx.insert(t.name, rows));
    return done(rows.length);
  }

  /** A write, its DUPLICATE_KEY in MySQL's words (the index by its SQL name, errno 1062). */
  private async write<T>(t: SqlTable, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw duplicateKeyError(e, t, this.meta.indexes(t.name));
    }
  }

  /**
   * The rows a row to be inserted collides with: the one of its primary key, then for each UNIQUE
   * index (NULLs collide with nothing) the one holding its values; each row once, in that order.
   * `first`: only the first one is wanted.
   */
  private async collisions(
    t: SqlTable,
    row: Record<string, unknown>,
    tx: Transaction,
    first: boolean,
  ): Promise<Row[]> {
    const out: Row[] = [];
    const seen = new Set<string>();
    const add = (r: Row | undefined): boolean => {
      if (r === undefined) return false;
      const k = rowKeyText(r[t.keyColumn]);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(r);
      }
      return first;
    };
    if (t.keyColumn !== ROWID && add(await tx.get(t.name, row[t.keyColumn]))) return out;
    const usable = new Set(tx.indexes(t.name).map((i) => i.name));
    for (const ix of this.meta.indexes(t.name)) {
      if (!ix.unique) continue;
      const values = ix.columns.map((c) => row[c]);
      if (values.some((v) => v === null || v === undefined)) continue;
      if (usable.has(ix.engine)) {
        const hasDecimal = ix.columns.some((c) => t.columns.find((x) => x.name === c)?.type === 'decimal');
        if (add(await uniqueRow(tx, t.name, ix.engine, values, hasDecimal))) return out;
        continue;
      }
      // An index still being built (made after this transaction began): its rows by a scan.
      const cols = ix.columns.map((c) => t.columns.find((x) => x.name === c)!);
      const wanted = cols.map((c, i) => sqlOf(c, values[i]));
      for await (const r of tx.scan(t.name)) {
        if (cols.every((c, i) => sameKey(rowValue(c.type, r[c.name]), wanted[i]!)) && add(r)) return out;
      }
    }
    return out;
  }

  /**
   * ON DUPLICATE KEY UPDATE: its assignments over the row found (its columns) and the row that
   * collided (`VALUES(col)`), applied left to right as UPDATE's are; the row is updated (moved, if
   * its key changes) when a value changes. Gives whether one did.
   */
  private duplicateUpdate(
    t: SqlTable,
    assignments: readonly A.Assignment[],
  ): (old: Row, incoming: Record<string, unknown>, tx: Transaction, ctx: Ctx) => Promise<boolean> {
    const alias = t.name;
    const sets = assignments.map((s) => {
      const n = s.column.name.toLowerCase();
      const pos = t.columns.findIndex((c) => c.name.toLowerCase() === n);
      if (pos < 0 || (s.column.table !== undefined && s.column.table.toLowerCase() !== alias.toLowerCase())) {
        throw new TidemarkError('SCHEMA', `unknown column ${s.column.name} in ${t.name}`, {
          details: { table: t.name, column: s.column.name, mysqlErrno: 1054 },
        });
      }
      if (s.value.kind === 'default') throw unsupported('SET column = DEFAULT');
      return { pos, ast: valuesAsColumns(s.value) };
    });
    const assigned = new Map<string, A.Expr>();
    for (const set of sets) {
      set.ast = substituteColumns(set.ast, assigned, alias);
      assigned.set(t.columns[set.pos]!.name.toLowerCase(), set.ast);
    }
    // The row found, then the incoming row (reachable only as VALUES(col), qualified by NEW_ROW).
    const layout: ColInfo[] = [
      ...t.columns.map((c) => ({ table: alias, name: c.name, textual: c.type === 'string' })),
      ...t.columns.map((c) => ({ table: NEW_ROW, name: c.name, textual: c.type === 'string', merged: true })),
    ];
    const m = mentions();
    for (const s of sets) mentionExpr(s.ast, m);
    const planner = new Planner(this.meta, m);
    const level: Level = { resolver: new LayoutResolver(layout), parent: undefined, parentUses: new Set() };
    const exprs = sets.map((s) => planner.expr(s.ast, level));
    return async (old, incoming, tx, ctx) => {
      const cols = [
        ...t.columns.map((c) => constCol(rowValue(c.type, old[c.name]), c.type === 'float64')),
        ...t.columns.map((c) => constCol(sqlOf(c, incoming[c.name]), c.type === 'float64')),
      ];
      const b: Batch = { len: 1, cols };
      const row: Record<string, unknown> = {};
      for (const c of t.columns) row[c.name] = engineOf(c, rowValue(c.type, old[c.name]));
      let differs = false;
      let keyChanged = false;
      const patch: Record<string, unknown> = {};
      for (let k = 0; k < sets.length; k++) {
        const col = t.columns[sets[k]!.pos]!;
        const v = coerce(t, col, getv(await evaluate(exprs[k]!, b, ctx), 0));
        if (!sameKey(sqlOf(col, v), rowValue(col.type, old[col.name]))) {
          differs = true;
          if (t.primaryKey.includes(col.name)) keyChanged = true;
        }
        row[col.name] = v;
        patch[col.name] = v;
      }
      if (!differs) return false;
      const oldKey = old[t.keyColumn];
      if (keyChanged) {
        if (t.keyColumn === TUPLE_KEY) row[TUPLE_KEY] = tupleKeyOf(t, row);
        await tx.delete(t.name, oldKey);
        await this.write(t, () => tx.insert(t.name, row));
      } else await this.write(t, () => tx.update(t.name, oldKey, patch));
      return true;
    };
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
    if (t.keyColumn === TUPLE_KEY) row[TUPLE_KEY] = tupleKeyOf(t, row);
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
      indexes: (n) => this.meta.indexes(n),
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
    await this.meta.ready(t.name);
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
      else if (t.keyColumn === TUPLE_KEY) row[TUPLE_KEY] = tupleKeyOf(t, row);
      newRows.push({ oldKey, row, patch, keyChanged });
    }
    // Keys that change: delete every old row first, then insert (a key may move onto another's old key).
    for (const n of newRows) if (n.keyChanged) await tx.delete(t.name, keyValue(t, n.oldKey));
    const moved = newRows.filter((n) => n.keyChanged).map((n) => n.row);
    if (moved.length > 0) await this.write(t, () => tx.insert(t.name, moved));
    for (const n of newRows) {
      if (n.keyChanged) continue;
      await this.write(t, () => tx.update(t.name, keyValue(t, n.oldKey), n.patch));
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

/** The alias under which ON DUPLICATE KEY UPDATE reads the incoming row (VALUES(col)). */
const NEW_ROW = '\u0000new';

/** VALUES(col) of ON DUPLICATE KEY UPDATE as a reference to the incoming row's column. */
function valuesAsColumns(e: A.Expr): A.Expr {
  if (e.kind === 'call' && e.name.toUpperCase() === 'VALUES') {
    const arg = e.args[0];
    if (e.args.length !== 1 || arg?.kind !== 'column')
      throw new TidemarkError('SYNTAX', 'VALUES() takes one column of the table');
    return { kind: 'column', at: e.at, table: NEW_ROW, name: arg.name };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) out[k] = valuesIn(v);
  return out as unknown as A.Expr;
}

function valuesIn(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(valuesIn);
  if (v === null || typeof v !== 'object') return v;
  const kind = (v as { kind?: string }).kind;
  if (kind === 'query') return v;
  if (kind !== undefined) return valuesAsColumns(v as A.Expr);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = valuesIn(x);
  return out;
}

/** The hidden key of a row of a table keyed by several columns. */
function tupleKeyOf(t: SqlTable, row: Record<string, unknown>): Uint8Array {
  return encodeTuple(
    t.primaryKey.map((k) =>
      sqlOf(
        t.columns.find((c) => c.name === k)!,
        row[k],
      ),
    ),
  );
}

/** A key value as text, to tell rows apart. */
function rowKeyText(v: unknown): string {
  if (v instanceof Uint8Array) return `b${Buffer.from(v).toString('base64')}`;
  return `${typeof v}:${String(v)}`;
}

/**
 * A DUPLICATE_KEY from the engine in MySQL's words: "Duplicate entry 'v' for key 'name'", the
 * index by its SQL name (PRIMARY for the primary key), errno 1062.
 */
export function duplicateKeyError(e: unknown, t: SqlTable, indexes: readonly TableIndex[]): unknown {
  if (!(e instanceof TidemarkError) || e.code !== 'DUPLICATE_KEY') return e;
  const details = e.details ?? {};
  const engineName = details['index'];
  const ix = typeof engineName === 'string' ? indexes.find((i) => i.engine === engineName) : undefined;
  const key = ix?.name ?? (typeof engineName === 'string' ? engineName : 'PRIMARY');
  return new TidemarkError('DUPLICATE_KEY', `Duplicate entry for key '${key}' of ${t.name}: ${e.message}`, {
    cause: e,
    details: { ...details, table: t.name, key, mysqlErrno: 1062 },
  });
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
