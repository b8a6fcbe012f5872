/**
 * The planner: a query's syntax tree to a tree of operators. Names are resolved by the binder
 * (`bind.ts`); here the FROM clause is planned (the inner joins of a level ordered by cost,
 * `joins.ts`; LEFT and RIGHT JOINs kept as groups; USING and NATURAL joins merged), WHERE and ON
 * conditions split at AND and placed as low as they can go (conditions on a table's key become a
 * point read or a key range), aggregates and GROUP BY become a hash aggregation, and set operations,
 * ORDER BY and LIMIT go on top.
 */
import { TidemarkError } from '../errors.js';
import {
  conjuncts,
  constantLevel,
  ExprBinder,
  hasAggregate,
  hasSubquery,
  LayoutResolver,
  mentionQuery,
  unknownColumn,
  unsupported,
  walk,
  type ColInfo,
  type Level,
  type Mentions,
  type Resolver,
  type SubqueryKind,
} from './bind.js';
import { ROWID, TUPLE_KEY, type SqlTable } from './catalog.js';
import { asText, columnRef, logical, markText, rowwise, SubqueryExpr, type Expr } from './expr.js';
import { orderJoins, type JoinCond, type JoinTree } from './joins.js';
import type { Op } from './ops/op.js';
import type { KeyRange } from './ops/keys.js';
import { OneRow, TableScan } from './ops/scan.js';
import { Filter } from './ops/filter.js';
import { Derived, Distinct, Limit, Narrow, Project, UnionAll } from './ops/rows.js';
import { Sort, type SortKey } from './ops/sort.js';
import { Join } from './ops/join.js';
import { Aggregate, type AggName, type AggSpec } from './ops/aggregate.js';
import type * as A from './parser/ast.js';
import { SetOperation } from './ops/setops.js';
import { hashKey, toText } from './values.js';

/** What the planner needs from the engine: tables and views by name, and their sizes. */
export interface PlanCatalog {
  table(name: string): SqlTable | undefined;
  /** A view's query, or undefined. */
  view(name: string): { query: A.Query; columns?: string[] } | undefined;
  /** About how many rows a table holds (join ordering); unknown: a guess is made. */
  estimatedRows?(name: string): number;
}

export interface Planned {
  op: Op;
  names: string[];
  /** Which columns are string-typed (see Expr.textual). */
  textual: boolean[];
  /** About how many rows it gives (join ordering). */
  rows: number;
}

export { unsupported };

/** The rows a derived table or view is guessed to give when nothing better is known. */
const UNKNOWN_ROWS = 1000;

function tooManyColumns(): TidemarkError {
  return new TidemarkError(
    'INVALID_ARGUMENT',
    'the SELECTs of a set operation have different numbers of columns',
    {
      details: { mysqlErrno: 1222 },
    },
  );
}

/**
 * A planned piece of FROM: its operator, where each column of it sits (`layout`), the order
 * `SELECT *` shows them in (`display`, indexes into layout) and the aliases it holds.
 */
interface Rel {
  op: Op;
  layout: ColInfo[];
  display: number[];
  aliases: string[];
  rows: number;
}

/** A column of a FROM clause by its table alias and name (both case-insensitive). */
const colKey = (table: string, name: string): string => `${table.toLowerCase()}\u0000${name.toLowerCase()}`;

/** A unit of an inner-join set, before it is planned. */
interface Unit {
  ref: A.TableRef;
  /** Its columns, as the conditions see them (aliases and names). */
  cols: ColInfo[];
  aliases: string[];
}

/** The fraction of rows a condition on one table is guessed to keep. */
function selectivity(c: A.Expr): number {
  switch (c.kind) {
    case 'binary':
      if (c.op === '=' || c.op === '<=>') return 0.1;
      if (c.op === 'OR') return Math.min(1, selectivity(c.left) + selectivity(c.right));
      if (c.op === 'AND') return selectivity(c.left) * selectivity(c.right);
      if (c.op === '<>') return 0.9;
      return 1 / 3;
    case 'between':
      return c.not ? 0.75 : 0.25;
    case 'inList':
      return c.not ? 0.9 : Math.min(0.5, 0.1 * c.list.length);
    case 'isNull':
      return c.not ? 0.9 : 0.1;
    case 'like':
      return 0.25;
    case 'unary':
      return c.op === 'NOT' || c.op === '!' ? 1 - selectivity(c.arg) : 0.5;
  }
  return 0.5;
}

export class Planner extends ExprBinder {
  /** Views being expanded (a view reaching itself is an error, not endless recursion). */
  private readonly expanding = new Set<string>();
  /** The WITH clauses in scope, innermost last. */
  private readonly ctes: Map<string, A.Cte>[] = [];

  constructor(
    private readonly catalog: PlanCatalog,
    /** Every name the statement mentions: the columns a table scan reads (a superset is fine). */
    private readonly mentioned: Mentions,
  ) {
    super();
  }

  /** A query at the top level or inside an enclosing level. */
  select(q: A.Query, parent?: Level, uses: Set<number> = new Set()): Planned {
    if (q.with !== undefined) {
      if (q.with.recursive) throw unsupported('WITH RECURSIVE');
      this.ctes.push(new Map(q.with.ctes.map((c) => [c.name.toLowerCase(), c])));
    }
    try {
      if (q.body.kind === 'select') return this.simpleSelect(q.body, q.orderBy, q.limit, parent, uses);
      const planned = this.term(q.body, parent, uses);
      return this.orderOutput(planned, q, parent, uses);
    } finally {
      if (q.with !== undefined) this.ctes.pop();
    }
  }

  /** One term of a set operation (or the whole body of a query that is not a plain SELECT). */
  private term(t: A.QueryTerm, parent: Level | undefined, uses: Set<number>): Planned {
    switch (t.kind) {
      case 'select':
        return this.simpleSelect(t, [], undefined, parent, uses);
      case 'nested':
        return this.select(t.query, parent, uses);
      case 'values': {
        const width = t.rows[0]!.length;
        const level: Level = { resolver: new LayoutResolver([]), parent, parentUses: uses };
        const names = Array.from({ length: width }, (_, i) => `column_${i}`);
        const rows = t.rows.map((r) => {
          if (r.length !== width) throw tooManyColumns();
          return r.map((e) => this.expr(e, level));
        });
        // A column is string-typed when any row's value is, and then all its values are text.
        const textual = names.map((_, i) => rows.some((r) => r[i]!.textual === true));
        const ops = rows.map(
          (r) =>
            new Project(
              new OneRow(),
              r.map((e, i) => (textual[i] ? asText(e) : e)),
              names,
            ),
        );
        return { op: ops.length === 1 ? ops[0]! : new UnionAll(ops), names, textual, rows: ops.length };
      }
      case 'setop': {
        const l0 = this.term(t.left, parent, uses);
        const r0 = this.term(t.right, parent, uses);
        if (l0.op.width !== r0.op.width) throw tooManyColumns();
        // MySQL gives each column the type of all its branches: text when any branch is a string,
        // so 12 and '12' are one row, and the column sorts as text.
        const textual = l0.textual.map((x, i) => x || r0.textual[i] === true);
        const l = textBranch(l0, textual);
        const r = textBranch(r0, textual);
        let op: Op;
        let rows: number;
        if (t.op === 'UNION') {
          op = new UnionAll([l.op, r.op]);
          if (!t.all) op = new Distinct(op);
          rows = l.rows + r.rows;
        } else {
          op = new SetOperation(l.op, r.op, t.op, t.all);
          rows = t.op === 'INTERSECT' ? Math.min(l.rows, r.rows) : l.rows;
        }
        return { op, names: l.names, textual, rows };
      }
    }
  }

  /** ORDER BY (output columns by position or name) and LIMIT over a set operation's result. */
  private orderOutput(p: Planned, q: A.Query, parent: Level | undefined, uses: Set<number>): Planned {
    let op = p.op;
    const names = p.names;
    if (q.orderBy.length > 0) {
      const keys: SortKey[] = q.orderBy.map((o) => {
        const e = o.expr;
        let col: number | undefined;
        if (e.kind === 'number' && e.form === 'int') col = Number(e.text) - 1;
        else if (e.kind === 'column' && e.table === undefined) {
          const n = e.name.toLowerCase();
          col = names.findIndex((x) => x.toLowerCase() === n);
        }
        if (col === undefined || col < 0 || col >= op.width)
          throw unsupported('this ORDER BY of a set operation');
        return { column: col, desc: o.desc };
      });
      op = new Sort(op, keys, keys.map((k) => `${names[k.column]}${k.desc ? ' DESC' : ''}`).join(', '));
    }
    op = this.limit(op, q.limit, { resolver: new LayoutResolver([]), parent, parentUses: uses });
    return { op, names, textual: p.textual, rows: p.rows };
  }

  private limit(op: Op, limit: A.Limit | undefined, level: Level): Op {
    if (limit === undefined) return op;
    const c = this.expr(limit.count, level);
    const o = limit.offset !== undefined ? this.expr(limit.offset, level) : undefined;
    if (!c.constant || (o !== undefined && !o.constant)) throw unsupported('a LIMIT that is not a constant');
    return new Limit(op, c, o);
  }

  private simpleSelect(
    core: A.SelectCore,
    orderBy: A.OrderItem[],
    limitClause: A.Limit | undefined,
    parent: Level | undefined,
    uses: Set<number>,
  ): Planned {
    if (core.withRollup) throw unsupported('WITH ROLLUP');
    const rel = this.from(core.from, conjuncts(core.where), parent, uses);
    let op = rel.op;
    const level: Level = { resolver: new LayoutResolver(rel.layout), parent, parentUses: uses };

    const aggregated =
      core.groupBy.length > 0 ||
      core.items.some((c) => c.kind !== 'star' && hasAggregate(c.expr)) ||
      hasAggregate(core.having) ||
      orderBy.some((o) => hasAggregate(o.expr));

    // Expand * and t.*, and name the outputs (an unaliased expression by its text, as MySQL).
    const items: { ast: A.Expr; name: string }[] = [];
    for (const c of core.items) {
      if (c.kind === 'star') {
        const t = c.table?.toLowerCase();
        if (t !== undefined && !rel.aliases.some((a) => a.toLowerCase() === t)) {
          throw new TidemarkError('NOT_FOUND', `unknown table ${c.table} in ${c.table}.*`, {
            details: { mysqlErrno: 1051 },
          });
        }
        if (rel.aliases.length === 0)
          throw new TidemarkError('INVALID_ARGUMENT', 'SELECT * needs a FROM clause', {
            details: { mysqlErrno: 1096 },
          });
        // t.*: the table's columns in its own order, a merged USING column's own copy among them.
        const shown =
          t === undefined
            ? rel.display
            : rel.layout
                .map((_, i) => i)
                .filter(
                  (i) =>
                    rel.layout[i]!.table?.toLowerCase() === t &&
                    (rel.layout[i]!.merged === true || rel.display.includes(i)),
                );
        for (const i of shown) {
          const col = rel.layout[i]!;
          items.push({ ast: { kind: 'column', at: c.at, table: col.table, name: col.name }, name: col.name });
        }
      } else {
        // Unaliased: a column by its name, a string literal by its value (MySQL's `SELECT 'x'` is
        // column x), anything else by its text as written.
        const name =
          c.expr.kind === 'column' ? c.expr.name : c.expr.kind === 'string' ? c.expr.value : c.text;
        items.push({ ast: c.expr, name: c.alias ?? name });
      }
    }

    let selectLevel = level;
    let aggregate: AggregateBuilder | undefined;
    if (aggregated) {
      const groupAsts = core.groupBy.map((g): A.Expr => {
        if (g.kind === 'number' && g.form === 'int') {
          const item = items[Number(g.text) - 1];
          if (item === undefined) throw unknownColumn(g.text);
          return item.ast;
        }
        if (
          g.kind === 'column' &&
          g.table === undefined &&
          level.resolver.resolve(undefined, g.name) === undefined
        ) {
          const item = items.find((i) => i.name.toLowerCase() === g.name.toLowerCase());
          if (item !== undefined) return item.ast;
        }
        return g;
      });
      aggregate = new AggregateBuilder(this, level, groupAsts, items);
      selectLevel = { resolver: aggregate, parent, parentUses: level.parentUses };
    }

    const exprs = items.map((i) => this.expr(i.ast, selectLevel));
    const names = items.map((i) => i.name);

    // HAVING (also without grouping, as MySQL allows: then a filter on the rows).
    const having = core.having !== undefined ? this.expr(core.having, selectLevel) : undefined;

    // ORDER BY: output positions and aliases, else expressions carried as hidden columns.
    const sortKeys: SortKey[] = [];
    const hidden: Expr[] = [];
    for (const o of orderBy) {
      const e = o.expr;
      if (e.kind === 'number' && e.form === 'int') {
        const k = Number(e.text) - 1;
        if (k < 0 || k >= items.length) throw unknownColumn(e.text);
        sortKeys.push({ column: k, desc: o.desc });
        continue;
      }
      if (e.kind === 'column' && e.table === undefined) {
        const n = e.name.toLowerCase();
        const k = names.findIndex((x) => x.toLowerCase() === n);
        if (k >= 0) {
          sortKeys.push({ column: k, desc: o.desc });
          continue;
        }
      }
      hidden.push(this.expr(e, selectLevel));
      sortKeys.push({ column: items.length + hidden.length - 1, desc: o.desc });
    }

    if (aggregate !== undefined) op = aggregate.build(op);
    if (having !== undefined) op = new Filter(op, having);
    const allExprs = [...exprs, ...hidden];
    op = new Project(op, allExprs, [...names, ...hidden.map((h) => h.text)]);
    if (core.distinct) {
      if (hidden.length > 0) {
        throw new TidemarkError(
          'INVALID_ARGUMENT',
          `ORDER BY ${hidden[0]!.text} is not in the SELECT list of a SELECT DISTINCT: sort by a selected column`,
          { details: { mysqlErrno: 3065 } },
        );
      }
      op = new Distinct(op);
    }
    if (sortKeys.length > 0) {
      op = new Sort(
        op,
        sortKeys,
        sortKeys.map((k) => `${allExprs[k.column]!.text}${k.desc ? ' DESC' : ''}`).join(', '),
      );
    }
    op = this.limit(op, limitClause, selectLevel);
    if (hidden.length > 0) op = new Narrow(op, items.length, names);
    let rows = aggregated ? (core.groupBy.length === 0 ? 1 : Math.max(1, rel.rows / 10)) : rel.rows;
    if (limitClause?.count.kind === 'number') rows = Math.min(rows, Number(limitClause.count.text));
    return { op, names, textual: exprs.map((e) => e.textual === true), rows };
  }

  // ---- FROM ----

  /**
   * The FROM clause with the conditions that may be placed in it (WHERE's conjuncts): a Rel whose
   * operator applies all of them (those it could not place below, in a filter on top).
   */
  private from(
    refs: readonly A.TableRef[],
    conds: A.Expr[],
    parent: Level | undefined,
    uses: Set<number>,
  ): Rel {
    if (refs.length === 0) {
      let op: Op = new OneRow();
      if (conds.length > 0)
        op = new Filter(
          op,
          this.andAll(conds, { resolver: new LayoutResolver([]), parent, parentUses: uses }),
        );
      return { op, layout: [], display: [], aliases: [], rows: 1 };
    }
    const units: A.TableRef[] = [];
    const pool = [...conds];
    const merges: { keep: string; drop: string; name: string }[] = [];
    const straight = { on: false };
    this.flatten(refs, units, pool, merges, straight);
    const rel = this.innerJoin(units, pool, parent, uses, straight.on);
    this.applyMerges(rel, merges);
    // SELECT * in MySQL's order (whatever the join order and the nesting of USING joins).
    const order = new Map(this.displayOrder(refs).map((c, i) => [colKey(c.table, c.name), i]));
    const rank = (i: number) => order.get(colKey(rel.layout[i]!.table ?? '', rel.layout[i]!.name)) ?? -1;
    rel.display = [...rel.display].sort((x, y) => rank(x) - rank(y));
    const seen = new Set<string>();
    for (const a of rel.aliases) {
      const l = a.toLowerCase();
      if (seen.has(l)) {
        throw new TidemarkError('INVALID_ARGUMENT', `not unique table/alias: ${a}`, {
          details: { mysqlErrno: 1066 },
        });
      }
      seen.add(l);
    }
    return rel;
  }

  /**
   * The inner-join units of table references: tables, derived tables and outer-join groups, with
   * the ON conditions and USING equalities of the inner joins added to `pool`.
   */
  private flatten(
    refs: readonly A.TableRef[],
    units: A.TableRef[],
    pool: A.Expr[],
    merges: { keep: string; drop: string; name: string }[],
    straight: { on: boolean },
  ): void {
    for (const r of refs) {
      if (r.kind !== 'join' || r.type === 'left' || r.type === 'right') {
        units.push(r);
        continue;
      }
      if (r.type === 'straight') straight.on = true;
      const before = units.length;
      this.flatten([r.left], units, pool, merges, straight);
      const leftUnits = units.slice(before);
      this.flatten([r.right], units, pool, merges, straight);
      const rightUnits = units.slice(before + leftUnits.length);
      pool.push(...conjuncts(r.on));
      const using = this.usingColumns(r, leftUnits, rightUnits);
      for (const u of using) {
        const l = this.ownerOf(u, [r.left]);
        const rr = this.ownerOf(u, [r.right]);
        pool.push(usingEquality(r.at, l, rr, u));
        merges.push({ keep: l, drop: rr, name: u });
      }
    }
  }

  /** The USING columns of a join (a NATURAL join's: the names both sides have). */
  private usingColumns(r: A.Join, left: readonly A.TableRef[], right: readonly A.TableRef[]): string[] {
    if (r.using !== undefined) return r.using;
    if (!r.natural) return [];
    const names = (us: readonly A.TableRef[]) =>
      new Set(us.flatMap((u) => this.unitColumns(u).cols.map((c) => c.name.toLowerCase())));
    const rightNames = names(right);
    const out: string[] = [];
    for (const u of left)
      for (const c of this.unitColumns(u).cols)
        if (rightNames.has(c.name.toLowerCase()) && !out.includes(c.name)) out.push(c.name);
    return out;
  }

  /**
   * The one alias among `units` that has column `name` (USING needs exactly one per side), the
   * copies that USING or NATURAL joins inside a unit merged away left out.
   */
  private ownerOf(name: string, units: readonly A.TableRef[]): string {
    const owners: string[] = [];
    for (const u of units) {
      const info = this.unitColumns(u);
      const away = this.mergedAway(u);
      for (const c of info.cols)
        if (
          c.name.toLowerCase() === name.toLowerCase() &&
          c.merged !== true &&
          !away.has(colKey(c.table!, c.name))
        )
          owners.push(c.table!);
    }
    if (owners.length === 0) throw unknownColumn(name);
    if (owners.length > 1) {
      throw new TidemarkError('SCHEMA', `column ${name} in USING is ambiguous`, {
        details: { mysqlErrno: 1052 },
      });
    }
    return owners[0]!;
  }

  /** The columns (colKey) that USING or NATURAL joins in `ref` merged away: the other side's copies. */
  private mergedAway(ref: A.TableRef): Set<string> {
    if (ref.kind !== 'join') return new Set();
    const out = new Set([...this.mergedAway(ref.left), ...this.mergedAway(ref.right)]);
    const dropSide = ref.type === 'right' ? ref.left : ref.right;
    for (const u of this.usingColumns(ref, [ref.left], [ref.right]))
      out.add(colKey(this.ownerOf(u, [dropSide]), u));
    return out;
  }

  /**
   * The columns SELECT * shows, in MySQL's order: a USING or NATURAL join shows its merged columns
   * first, in the order of its first table (the left one; a RIGHT JOIN's right one), then that
   * table's other columns, then the other table's; any other join shows left, then right.
   */
  private displayOrder(refs: readonly A.TableRef[]): { table: string; name: string }[] {
    return refs.flatMap((r) => {
      if (r.kind !== 'join') return this.unitColumns(r).cols.map((c) => ({ table: c.table!, name: c.name }));
      const l = this.displayOrder([r.left]);
      const rr = this.displayOrder([r.right]);
      const using = new Set(this.usingColumns(r, [r.left], [r.right]).map((u) => u.toLowerCase()));
      if (using.size === 0) return [...l, ...rr];
      const [first, second] = r.type === 'right' ? [rr, l] : [l, rr];
      const merged = (c: { name: string }) => using.has(c.name.toLowerCase());
      return [
        ...first.filter(merged),
        ...first.filter((c) => !merged(c)),
        ...second.filter((c) => !merged(c)),
      ];
    });
  }

  /** A USING column is shown once: the kept side's copy; the other is found only qualified. */
  private applyMerges(rel: Rel, merges: readonly { keep: string; drop: string; name: string }[]): void {
    if (merges.length === 0) return;
    const dropped = new Set<number>();
    for (const m of merges) {
      const drop = rel.layout.findIndex((c) => colKey(c.table ?? '', c.name) === colKey(m.drop, m.name));
      if (drop >= 0) {
        rel.layout[drop] = { ...rel.layout[drop]!, merged: true };
        dropped.add(drop);
      }
    }
    // The order SELECT * shows the rest in is decided once for the whole FROM (displayOrder).
    rel.display = rel.display.filter((i) => !dropped.has(i));
  }

  /** A unit's columns and aliases, without planning it (for condition placement and USING). */
  private unitColumns(ref: A.TableRef): Unit {
    if (ref.kind === 'table') {
      const alias = ref.alias ?? ref.name;
      const t = this.tableOf(ref);
      if (t !== undefined)
        return { ref, cols: t.columns.map((c) => ({ table: alias, name: c.name })), aliases: [alias] };
      const names = this.expandView(ref, (v) => v.columns ?? this.outputNames(v.query));
      return { ref, cols: names.map((n) => ({ table: alias, name: n })), aliases: [alias] };
    }
    if (ref.kind === 'derived') {
      const alias = ref.alias ?? '';
      const names = ref.columns ?? this.outputNames(ref.query);
      return { ref, cols: names.map((n) => ({ table: alias, name: n })), aliases: [alias] };
    }
    const l = this.unitColumns(ref.left);
    const r = this.unitColumns(ref.right);
    return { ref, cols: [...l.cols, ...r.cols], aliases: [...l.aliases, ...r.aliases] };
  }

  /** The output names of a query (planned once to know them; the plan is thrown away). */
  private outputNames(q: A.Query): string[] {
    const saved = this.ctes.length;
    try {
      return this.select(q, undefined).names;
    } finally {
      this.ctes.length = saved;
    }
  }

  private cte(name: string): A.Cte | undefined {
    const n = name.toLowerCase();
    for (let i = this.ctes.length - 1; i >= 0; i--) {
      const c = this.ctes[i]!.get(n);
      if (c !== undefined) return c;
    }
    return undefined;
  }

  private tableOf(ref: A.TableName): SqlTable | undefined {
    if (ref.schema === undefined && this.cte(ref.name) !== undefined) return undefined;
    return this.catalog.table(ref.name);
  }

  /** A view or CTE named by `ref` (NOT_FOUND when there is none). */
  private viewOf(ref: A.TableName): { query: A.Query; columns?: string[] } {
    const c = ref.schema === undefined ? this.cte(ref.name) : undefined;
    if (c !== undefined) return c;
    const v = this.catalog.view(ref.name);
    if (v === undefined) {
      throw new TidemarkError('NOT_FOUND', `unknown table ${ref.name}`, {
        details: { table: ref.name, mysqlErrno: 1146 },
      });
    }
    return v;
  }

  /**
   * `fn` over the view or CTE `ref` names, with the names its query mentions read by the scans in
   * it. A view that reaches itself (directly or through others) is refused, not expanded forever.
   */
  private expandView<T>(ref: A.TableName, fn: (v: { query: A.Query; columns?: string[] }) => T): T {
    const name = ref.name;
    const key = `${ref.schema === undefined && this.cte(name) !== undefined ? 'cte' : 'view'}:${name.toLowerCase()}`;
    const v = this.viewOf(ref);
    if (this.expanding.has(key)) {
      throw new TidemarkError('INVALID_ARGUMENT', `view ${name} references itself`, {
        details: { view: name, mysqlErrno: 1462 },
      });
    }
    this.expanding.add(key);
    mentionQuery(v.query, this.mentioned);
    try {
      return fn(v);
    } finally {
      this.expanding.delete(key);
    }
  }

  /**
   * Join a set of units: each planned with the conditions on it alone, then joined in the order
   * `orderJoins` finds cheapest, each condition at the first join that has all it reads; what
   * reads no unit, or has a subquery, is checked on top.
   */
  private innerJoin(
    refs: A.TableRef[],
    pool: A.Expr[],
    parent: Level | undefined,
    uses: Set<number>,
    fixed: boolean,
  ): Rel {
    const units = refs.map((r) => this.unitColumns(r));
    const allCols = units.flatMap((u) => u.cols);
    const unitOfCol: number[] = units.flatMap((u, i) => u.cols.map(() => i));
    const resolver = new LayoutResolver(allCols);
    const local: A.Expr[][] = units.map(() => []);
    const spanning: { ast: A.Expr; mask: number }[] = [];
    const top: A.Expr[] = [];
    for (const c of pool) {
      const mask = this.unitsOf(c, resolver, unitOfCol);
      if (mask === undefined || mask === 0) top.push(c);
      else if ((mask & (mask - 1)) === 0) local[Math.log2(mask)]!.push(c);
      else spanning.push({ ast: c, mask });
    }
    const rels = units.map((u, i) => this.planUnit(u.ref, local[i]!, parent, uses));
    const rows = rels.map((r) => Math.max(r.rows, 1));
    const conds: JoinCond[] = spanning.map(({ ast, mask }) => {
      let equi: JoinCond['equi'];
      let sel = 1 / 3;
      if (ast.kind === 'binary' && ast.op === '=') {
        const l = this.unitsOf(ast.left, resolver, unitOfCol);
        const r = this.unitsOf(ast.right, resolver, unitOfCol);
        if (l !== undefined && r !== undefined && l !== 0 && r !== 0 && (l & r) === 0) {
          equi = { left: l, right: r };
          let most = 1;
          for (let i = 0; i < rows.length; i++) if ((mask >> i) & 1) most = Math.max(most, rows[i]!);
          sel = 1 / most;
        }
      }
      return { mask, selectivity: sel, ...(equi !== undefined ? { equi } : {}) };
    });
    const tree = orderJoins(rows, conds, fixed);
    const placed = new Set<number>();
    const built = this.buildTree(tree, rels, spanning, placed, parent, uses);
    // Layout in the units' order for display: SELECT * follows FROM, whatever the join order.
    const display: number[] = [];
    for (let i = 0; i < rels.length; i++) {
      const at = built.offsets.get(i)!;
      for (const d of rels[i]!.display) display.push(at + d);
    }
    let op = built.op;
    const rest = [...top, ...spanning.filter((_, k) => !placed.has(k)).map((s) => s.ast)];
    if (rest.length > 0)
      op = new Filter(
        op,
        this.andAll(rest, { resolver: new LayoutResolver(built.layout), parent, parentUses: uses }),
      );
    return { op, layout: built.layout, display, aliases: rels.flatMap((r) => r.aliases), rows: tree.rows };
  }

  /** The join tree's operators: each join with the spanning conditions it is the first to have. */
  private buildTree(
    tree: JoinTree,
    rels: readonly Rel[],
    spanning: readonly { ast: A.Expr; mask: number }[],
    placed: Set<number>,
    parent: Level | undefined,
    uses: Set<number>,
  ): { op: Op; layout: ColInfo[]; offsets: Map<number, number> } {
    if (tree.kind === 'unit') {
      const r = rels[tree.unit]!;
      return { op: r.op, layout: r.layout, offsets: new Map([[tree.unit, 0]]) };
    }
    const l = this.buildTree(tree.left, rels, spanning, placed, parent, uses);
    const r = this.buildTree(tree.right, rels, spanning, placed, parent, uses);
    const layout = [...l.layout, ...r.layout];
    const offsets = new Map(l.offsets);
    for (const [u, at] of r.offsets) offsets.set(u, at + l.layout.length);
    const lvl = (cols: ColInfo[]): Level => ({
      resolver: new LayoutResolver(cols),
      parent,
      parentUses: uses,
    });
    const leftKeys: Expr[] = [];
    const rightKeys: Expr[] = [];
    const rest: A.Expr[] = [];
    spanning.forEach((s, k) => {
      if (placed.has(k) || (s.mask & ~tree.mask) !== 0) return;
      placed.add(k);
      const c = s.ast;
      const keys = this.equiKeys(c, l.layout, r.layout, lvl);
      if (keys !== undefined) {
        leftKeys.push(keys[0]);
        rightKeys.push(keys[1]);
        return;
      }
      rest.push(c);
    });
    const cond = rest.length > 0 ? this.andAll(rest, lvl(layout)) : undefined;
    return { op: new Join(l.op, r.op, 'inner', leftKeys, rightKeys, cond), layout, offsets };
  }

  /**
   * A hash join's key pair for `c` when it is an equality of an expression of the left side with
   * one of the right side; undefined when it is not, or when the two would compare otherwise than
   * by their hash keys (a string with a number compares as numbers: '1e2' = 100).
   */
  private equiKeys(
    c: A.Expr,
    left: ColInfo[],
    right: ColInfo[],
    lvl: (cols: ColInfo[]) => Level,
  ): [Expr, Expr] | undefined {
    if (c.kind !== 'binary' || c.op !== '=' || hasSubquery(c)) return undefined;
    const lr = new LayoutResolver(left);
    const rr = new LayoutResolver(right);
    for (const [a, b] of [
      [c.left, c.right],
      [c.right, c.left],
    ] as const) {
      if (!this.readsOnly(a, lr) || !this.readsOnly(b, rr)) continue;
      const ka = this.expr(a, lvl(left));
      const kb = this.expr(b, lvl(right));
      return (ka.textual === true) === (kb.textual === true) ? [ka, kb] : undefined;
    }
    return undefined;
  }

  /** Whether every column an expression reads (at this level) is in `res`, and it reads one. */
  private readsOnly(e: A.Expr, res: LayoutResolver): boolean {
    let ok = true;
    let any = false;
    walk(e, (n) => {
      if (n.kind !== 'column') return;
      try {
        if (res.resolve(n.table, n.name) === undefined) ok = false;
        else any = true;
      } catch (e) {
        // Ambiguous here: not this side's alone (the error comes when the condition is bound).
        if (!(e instanceof TidemarkError)) throw e;
        ok = false;
      }
    });
    return ok && any;
  }

  /**
   * The units (bits) an expression reads; undefined when it has a subquery or an ambiguous name
   * (it is then checked on top, where binding reports the ambiguity).
   */
  private unitsOf(e: A.Expr, res: LayoutResolver, unitOfCol: readonly number[]): number | undefined {
    if (hasSubquery(e)) return undefined;
    let mask = 0;
    let ok = true;
    walk(e, (n) => {
      if (n.kind !== 'column') return;
      try {
        const i = res.resolve(n.table, n.name);
        if (i !== undefined) mask |= 1 << unitOfCol[i]!;
      } catch (e) {
        if (!(e instanceof TidemarkError)) throw e;
        ok = false;
      }
    });
    return ok ? mask : undefined;
  }

  /** A unit with the conditions on it alone. */
  private planUnit(ref: A.TableRef, conds: A.Expr[], parent: Level | undefined, uses: Set<number>): Rel {
    if (ref.kind === 'join') return this.outerJoin(ref, conds, parent, uses);
    if (ref.kind === 'table') {
      const alias = ref.alias ?? ref.name;
      const t = this.tableOf(ref);
      if (t !== undefined) return this.scan(t, alias, conds, parent, uses);
      return this.expandView(ref, (v) =>
        this.derivedRel(this.select(v.query, undefined), v.columns, alias, conds, parent, uses),
      );
    }
    if (ref.alias === undefined) {
      throw new TidemarkError('INVALID_ARGUMENT', 'every derived table must have its own alias', {
        details: { mysqlErrno: 1248 },
      });
    }
    if (ref.lateral) throw unsupported('LATERAL');
    // A derived table sees the enclosing levels, not its siblings.
    const planned = this.select(ref.query, parent, uses);
    return this.derivedRel(planned, ref.columns, ref.alias, conds, parent, uses);
  }

  private derivedRel(
    planned: Planned,
    columns: string[] | undefined,
    alias: string,
    conds: A.Expr[],
    parent: Level | undefined,
    uses: Set<number>,
  ): Rel {
    if (columns !== undefined && columns.length !== planned.names.length) {
      throw new TidemarkError('INVALID_ARGUMENT', 'the column list and the SELECT differ in length', {
        details: { mysqlErrno: 1353 },
      });
    }
    const names = columns ?? planned.names;
    const layout = names.map((n, i) => ({ table: alias, name: n, textual: planned.textual[i] === true }));
    let op: Op = new Derived(planned.op, names, alias);
    if (conds.length > 0)
      op = new Filter(
        op,
        this.andAll(conds, { resolver: new LayoutResolver(layout), parent, parentUses: uses }),
      );
    return {
      op,
      layout,
      display: layout.map((_, i) => i),
      aliases: [alias],
      rows: planned.rows * conds.reduce((s, c) => s * selectivity(c), 1),
    };
  }

  /**
   * `left LEFT JOIN right ON c` (a RIGHT JOIN is the mirror of one). The ON conditions on the
   * right side alone go into it; the rest are the join's. Conditions from outside (WHERE) on the
   * preserved side alone go into it; the others are checked above the join.
   */
  private outerJoin(j: A.Join, conds: A.Expr[], parent: Level | undefined, uses: Set<number>): Rel {
    const mirrored = j.type === 'right';
    const keptRef = mirrored ? j.right : j.left;
    const nullRef = mirrored ? j.left : j.right;
    const keptInfo = this.unitColumns(keptRef);
    const nullInfo = this.unitColumns(nullRef);
    const keptRes = new LayoutResolver(keptInfo.cols);
    const nullRes = new LayoutResolver(nullInfo.cols);
    const using = this.usingColumns(j, [j.left], [j.right]);
    const on = conjuncts(j.on);
    const merges: { keep: string; drop: string; name: string }[] = [];
    for (const u of using) {
      const k = this.ownerOf(u, [keptRef]);
      const n = this.ownerOf(u, [nullRef]);
      on.push(usingEquality(j.at, k, n, u));
      merges.push({ keep: k, drop: n, name: u });
    }
    const intoKept: A.Expr[] = [];
    const above: A.Expr[] = [];
    for (const c of conds) (!hasSubquery(c) && this.readsOnly(c, keptRes) ? intoKept : above).push(c);
    const intoNull: A.Expr[] = [];
    const atJoin: A.Expr[] = [];
    for (const c of on) (!hasSubquery(c) && this.readsOnly(c, nullRes) ? intoNull : atJoin).push(c);
    const kept = this.refRel(keptRef, intoKept, parent, uses);
    const nul = this.refRel(nullRef, intoNull, parent, uses);
    const layout = [...kept.layout, ...nul.layout];
    const lvl = (cols: ColInfo[]): Level => ({
      resolver: new LayoutResolver(cols),
      parent,
      parentUses: uses,
    });
    const leftKeys: Expr[] = [];
    const rightKeys: Expr[] = [];
    const rest: A.Expr[] = [];
    for (const c of atJoin) {
      const keys = this.equiKeys(c, kept.layout, nul.layout, lvl);
      if (keys !== undefined) {
        leftKeys.push(keys[0]);
        rightKeys.push(keys[1]);
        continue;
      }
      rest.push(c);
    }
    const cond = rest.length > 0 ? this.andAll(rest, lvl(layout)) : undefined;
    let op: Op = new Join(kept.op, nul.op, 'left', leftKeys, rightKeys, cond);
    if (above.length > 0) op = new Filter(op, this.andAll(above, lvl(layout)));
    // SELECT * shows the tables as the FROM clause has them (a RIGHT JOIN's left table first).
    const keptDisplay = kept.display;
    const nullDisplay = nul.display.map((i) => i + kept.layout.length);
    const rel: Rel = {
      op,
      layout,
      display: mirrored ? [...nullDisplay, ...keptDisplay] : [...keptDisplay, ...nullDisplay],
      aliases: mirrored ? [...nul.aliases, ...kept.aliases] : [...kept.aliases, ...nul.aliases],
      rows: Math.max(kept.rows, 1) * above.reduce((s, c) => s * selectivity(c), 1),
    };
    this.applyMerges(rel, merges);
    return rel;
  }

  /** A table reference (a unit or a tree of inner joins) with conditions on it. */
  private refRel(ref: A.TableRef, conds: A.Expr[], parent: Level | undefined, uses: Set<number>): Rel {
    const units: A.TableRef[] = [];
    const pool = [...conds];
    const merges: { keep: string; drop: string; name: string }[] = [];
    const straight = { on: false };
    this.flatten([ref], units, pool, merges, straight);
    const rel = this.innerJoin(units, pool, parent, uses, straight.on);
    this.applyMerges(rel, merges);
    return rel;
  }

  private andAll(asts: readonly A.Expr[], level: Level): Expr {
    let e = this.expr(asts[0]!, level);
    for (let i = 1; i < asts.length; i++) e = logical('AND', e, this.expr(asts[i]!, level));
    return e;
  }

  /** A table scan with its conditions; those on the primary key give a point read or a range. */
  private scan(
    t: SqlTable,
    alias: string,
    conds: A.Expr[],
    parent: Level | undefined,
    uses: Set<number>,
  ): Rel {
    const m = this.mentioned;
    const all = m.all || m.tables.has(alias.toLowerCase());
    const cols = t.columns.filter((c) => all || m.names.has(c.name.toLowerCase()));
    const layout: ColInfo[] = cols.map((c) => ({ table: alias, name: c.name, textual: c.type === 'string' }));
    const level: Level = { resolver: new LayoutResolver(layout), parent, parentUses: uses };
    let range: KeyRange | undefined;
    const keyName = t.keyColumn;
    const byName = new Map(t.columns.map((c) => [c.name, c]));
    const keyType = keyName === ROWID ? 'int64' : keyName === TUPLE_KEY ? 'bytes' : byName.get(keyName)!.type;
    let point = false;
    if (keyName !== ROWID && keyName !== TUPLE_KEY) {
      const isKey = (a: A.Expr): boolean =>
        a.kind === 'column' &&
        a.name.toLowerCase() === keyName.toLowerCase() &&
        (a.table === undefined || a.table.toLowerCase() === alias.toLowerCase());
      const constant = (a: A.Expr): Expr | undefined => {
        if (hasSubquery(a)) return undefined;
        const e = this.expr(a, level);
        return e.constant ? e : undefined;
      };
      const flip: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '=': '=' };
      for (const c of conds) {
        if (c.kind === 'between' && !c.not && isKey(c.arg)) {
          const lo = constant(c.low);
          const hi = constant(c.high);
          if (lo !== undefined && hi !== undefined && range?.eq === undefined) {
            range = {
              ...range,
              lower: { e: lo, inclusive: true },
              upper: { e: hi, inclusive: true },
              between: true,
            };
          }
          continue;
        }
        if (c.kind !== 'binary') continue;
        let op = flip[c.op];
        if (op === undefined) continue;
        let other: A.Expr;
        if (isKey(c.left)) {
          op = c.op;
          other = c.right;
        } else if (isKey(c.right)) other = c.left;
        else continue;
        const v = constant(other);
        if (v === undefined) continue;
        if (op === '=') {
          range = { eq: v };
          point = true;
        } else if (range?.eq === undefined) {
          if (op === '>' || op === '>=') range = { ...range, lower: { e: v, inclusive: op === '>=' } };
          else range = { ...range, upper: { e: v, inclusive: op === '<=' } };
        }
      }
    }
    const filter = conds.length > 0 ? this.andAll(conds, level) : undefined;
    const pointOnly = range?.eq !== undefined && conds.length === 1;
    // The filter is one BETWEEN on the key: for integer bounds the range alone decides.
    const rangeOnly =
      range?.lower !== undefined &&
      range.upper !== undefined &&
      conds.length === 1 &&
      conds[0]!.kind === 'between';
    const op = new TableScan(
      t.name,
      alias === t.name ? t.name : `${t.name} AS ${alias}`,
      cols.map((c) =>
        c.type === 'decimal'
          ? { name: c.name, type: c.type, scale: c.scale ?? 0 }
          : { name: c.name, type: c.type },
      ),
      keyName,
      keyType,
      range,
      filter,
      pointOnly,
      rangeOnly,
      keyType === 'decimal'
        ? { scale: byName.get(keyName)!.scale ?? 0, precision: byName.get(keyName)!.precision ?? 10 }
        : undefined,
    );
    const base = this.catalog.estimatedRows?.(t.name) ?? UNKNOWN_ROWS;
    const rows = point ? 1 : base * conds.reduce((s, c) => s * selectivity(c), 1);
    return { op, layout, display: layout.map((_, i) => i), aliases: [alias], rows };
  }

  // ---- subqueries ----

  subquery(query: A.Query, level: Level, kind: SubqueryKind): Expr {
    // The subquery is a level under `level`; `uses` collects the columns of level's row it reads.
    const uses = new Set<number>();
    const planned = this.select(query, level, uses);
    if (kind.kind !== 'exists' && planned.op.width !== 1) {
      throw new TidemarkError('INVALID_ARGUMENT', `the subquery returns ${planned.op.width} columns, not 1`, {
        details: { mysqlErrno: 1241 },
      });
    }
    const refs = [...uses].sort((a, b) => a - b);
    switch (kind.kind) {
      case 'scalar': {
        const e = new SubqueryExpr('scalar', planned.op, refs, undefined, false);
        e.textual = planned.textual[0] === true;
        return e;
      }
      case 'exists':
        return new SubqueryExpr('exists', planned.op, refs, undefined, kind.negated);
      case 'in':
        return new SubqueryExpr('in', planned.op, refs, kind.lhs, kind.negated);
      case 'quantified':
        return new SubqueryExpr(kind.all ? 'all' : 'any', planned.op, refs, kind.lhs, false, kind.op);
    }
  }
}

const AGG_NAMES = new Set(['COUNT', 'SUM', 'AVG', 'MIN', 'MAX', 'GROUP_CONCAT', 'TOTAL']);

/**
 * Name resolution after grouping: GROUP BY expressions and aggregates become columns of the
 * aggregation's output; a column that is neither takes its value from any row of the group (as
 * MySQL does without ONLY_FULL_GROUP_BY).
 */
class AggregateBuilder implements Resolver {
  readonly groups: Expr[];
  private readonly groupKeys: string[];
  readonly aggs: AggSpec[] = [];
  private readonly aggKeys = new Map<string, number>();
  private readonly resolvingAliases = new Set<string>();

  constructor(
    private readonly planner: Planner,
    private readonly input: Level,
    groupAsts: A.Expr[],
    private readonly items: { ast: A.Expr; name: string }[],
  ) {
    this.groups = groupAsts.map((g) => planner.expr(g, input));
    this.groupKeys = this.groups.map((g) => g.text);
  }

  textual(i: number): boolean {
    if (i < this.groups.length) return this.groups[i]!.textual === true;
    const a = this.aggs[i - this.groups.length];
    if (a === undefined) return false;
    if (a.name === 'GROUP_CONCAT') return true;
    return (a.name === 'MIN' || a.name === 'MAX' || a.name === 'FIRST') && a.arg?.textual === true;
  }

  resolve(table: string | undefined, name: string): number | undefined {
    const i = this.input.resolver.resolve(table, name);
    if (i === undefined) return undefined;
    const g = this.groups.findIndex((e) => e.column === i);
    if (g >= 0) return g;
    const c = columnRef(i, `${table !== undefined ? `${table}.` : ''}${name}`);
    return this.addAgg(
      'FIRST',
      this.input.resolver.textual?.(i) === true ? markText(c) : c,
      false,
      undefined,
    );
  }

  intercept(ast: A.Expr, level: Level): Expr | undefined {
    if (ast.kind === 'column' && ast.table === undefined) {
      // HAVING and ORDER BY may name a select item by its alias (when no input column has the name).
      const name = ast.name;
      if (this.input.resolver.resolve(undefined, name) === undefined) {
        const key = name.toLowerCase();
        const item = this.items.find((it) => it.name.toLowerCase() === key);
        if (
          item !== undefined &&
          !this.resolvingAliases.has(key) &&
          !(item.ast.kind === 'column' && item.ast.name.toLowerCase() === key)
        ) {
          // Aliases naming each other (x AS y, y AS x) end here: unknown, not endless.
          this.resolvingAliases.add(key);
          try {
            return this.planner.expr(item.ast, level);
          } finally {
            this.resolvingAliases.delete(key);
          }
        }
      }
      return undefined;
    }
    if (ast.kind === 'aggregate') {
      const name = ast.name.toUpperCase();
      if (!AGG_NAMES.has(name)) throw unsupported(`the aggregate ${name}`);
      if (ast.orderBy !== undefined) throw unsupported('GROUP_CONCAT(... ORDER BY ...)');
      for (const a of ast.args) {
        if (hasAggregate(a)) {
          throw new TidemarkError('INVALID_ARGUMENT', 'aggregates cannot be nested', {
            details: { mysqlErrno: 1111 },
          });
        }
      }
      const args = ast.args.map((a) => this.planner.expr(a, this.input));
      let arg: Expr | undefined;
      if (args.length === 1) arg = args[0];
      else if (args.length > 1) {
        if (name !== 'COUNT' && name !== 'GROUP_CONCAT') throw unsupported(`${name} of several arguments`);
        if (name === 'COUNT' && !ast.distinct)
          throw unsupported('COUNT of several arguments without DISTINCT');
        arg = tuple(args, name === 'GROUP_CONCAT');
      }
      const text = `${name}(${ast.distinct ? 'DISTINCT ' : ''}${arg === undefined ? '*' : arg.text})`;
      const i = this.addAgg(name as AggName, arg, ast.distinct, ast.separator, text);
      return this.textual(i) ? markText(columnRef(i, text)) : columnRef(i, text);
    }
    if (this.groups.length > 0 && ast.kind !== 'column' && ast.kind !== 'number') {
      // A GROUP BY expression (matched by its text once bound at the input level).
      let text: string | undefined;
      try {
        if (!hasAggregate(ast) && !hasSubquery(ast)) text = this.planner.expr(ast, this.input).text;
      } catch (e) {
        // Not an expression of the input's columns: not a GROUP BY expression either.
        if (!(e instanceof TidemarkError)) throw e;
        text = undefined;
      }
      if (text !== undefined) {
        const g = this.groupKeys.indexOf(text);
        if (g >= 0) return this.textual(g) ? markText(columnRef(g, text)) : columnRef(g, text);
      }
    }
    return undefined;
  }

  private addAgg(
    name: AggName,
    arg: Expr | undefined,
    distinct: boolean,
    separator: string | undefined,
    text?: string,
  ): number {
    const t = text ?? `${name}(${arg!.text})`;
    const key = `${name}|${distinct}|${separator ?? ''}|${t}`;
    const have = this.aggKeys.get(key);
    if (have !== undefined) return have;
    this.aggs.push({ name, arg, distinct, ...(separator !== undefined ? { separator } : {}), text: t });
    const i = this.groups.length + this.aggs.length - 1;
    this.aggKeys.set(key, i);
    return i;
  }

  build(input: Op): Op {
    const agg = new Aggregate(input, this.groups, this.aggs, [
      ...this.groups.map((g) => g.text),
      ...this.aggs.map((a) => a.text),
    ]);
    // A filter right below may hand over its rows as a selection instead of gathering them.
    if ((input instanceof TableScan || input instanceof Filter) && agg.takesSelection)
      input.yieldSelection = true;
    return agg;
  }
}

/**
 * Several aggregate arguments as one value: NULL when any is NULL (COUNT(DISTINCT a, b) and
 * GROUP_CONCAT(a, b) skip such rows); otherwise a key telling the tuples apart (COUNT) or the
 * values concatenated (GROUP_CONCAT).
 */
function tuple(args: Expr[], concat: boolean): Expr {
  return rowwise(
    args.map((a) => a.text).join(', '),
    args,
    (vals) => {
      if (vals.some((v) => v === null)) return null;
      return concat ? vals.map((v) => toText(v)).join('') : vals.map((v) => hashKey(v)).join('\u0001');
    },
    true,
  );
}

export function constantPlanner(catalog: PlanCatalog): { planner: Planner; level: Level } {
  return {
    planner: new Planner(catalog, { names: new Set(), all: false, tables: new Set() }),
    level: constantLevel(),
  };
}

export type { Level };

/** `a.name = b.name`: the join condition a USING or NATURAL column stands for. */
function usingEquality(at: number, a: string, b: string, name: string): A.Expr {
  return {
    kind: 'binary',
    at,
    op: '=',
    left: { kind: 'column', at, table: a, name },
    right: { kind: 'column', at, table: b, name },
  };
}

/** A set operation's branch with the columns `textual` asks for converted to text. */
function textBranch(p: Planned, textual: readonly boolean[]): Planned {
  if (textual.every((t, i) => !t || p.textual[i] === true)) return p;
  const exprs = p.names.map((n, i) => {
    const c = columnRef(i, n);
    return textual[i] && p.textual[i] !== true ? asText(c) : c;
  });
  return { ...p, op: new Project(p.op, exprs, p.names), textual: [...textual] };
}
