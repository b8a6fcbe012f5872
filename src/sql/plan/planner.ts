/**
 * The planner: a query's syntax tree to a tree of operators. Names are resolved by the binder
 * (`bind.ts`); the FROM clause is planned in `from.ts` (the inner joins of a level ordered by cost,
 * `joinorder.ts`; LEFT and RIGHT JOINs kept as groups; USING and NATURAL joins merged), WHERE and ON
 * conditions split at AND and placed as low as they can go (conditions on a table's key become a
 * point read or a key range, `scan.ts`), aggregates and GROUP BY become a hash aggregation
 * (`aggregate.ts`), and here set operations, ORDER BY and LIMIT go on top.
 */
import type * as A from '../parser/ast.js';
import { TidemarkError } from '../../errors.js';
import {
  conjuncts,
  hasAggregate,
  hasSubquery,
  LayoutResolver,
  walk,
  unknownColumn,
  unsupported,
  type Level,
  type SubqueryKind,
} from '../bind.js';
import { asText, columnRef, literal, SubqueryExpr, type Expr } from '../expr.js';
import type { Op } from '../ops/op.js';
import { OneRow, TableScan } from '../ops/scan.js';
import { Filter } from '../ops/filter.js';
import { Distinct, Limit, Narrow, Project, UnionAll } from '../ops/rows.js';
import { Sort, type SortKey } from '../ops/sort.js';
import { SetOperation } from '../ops/setops.js';
import type { Planned } from './rel.js';
import { FromPlanner } from './from.js';
import { AggregateBuilder } from './aggregate.js';

function tooManyColumns(): TidemarkError {
  return new TidemarkError(
    'INVALID_ARGUMENT',
    'the SELECTs of a set operation have different numbers of columns',
    {
      details: { mysqlErrno: 1222 },
    },
  );
}

export class Planner extends FromPlanner {
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
    // MIN or MAX of one column alone: the first of its non-NULL values in an order that has it.
    const extreme = this.extremeOf(core, orderBy);
    const conds = conjuncts(core.where);
    if (extreme !== undefined) conds.push(extreme.notNull);
    const rel = this.from(core.from, conds, parent, uses);
    let op = rel.op;
    if (extreme !== undefined) {
      const scan = scanBelow(op);
      if (scan !== undefined && scan.order === undefined) {
        const one = literal(1, '1');
        scan.order = { keys: [{ column: extreme.column, desc: extreme.max }], limit: { count: one } };
        op = new Limit(op, one, undefined);
      }
    }
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
      // Plain columns of one table's scan: the scan gives its rows in that order (read in an
      // index's or the key's order when that costs less, else sorted there).
      const scan = aggregate === undefined && !core.distinct ? scanBelow(rel.op) : undefined;
      const keys = sortKeys.map((k) => {
        const e = allExprs[k.column]!;
        return e.column !== undefined && e.subs.length === 0 && scan !== undefined
          ? { column: scan.names[e.column]!, desc: k.desc }
          : undefined;
      });
      if (
        scan !== undefined &&
        scan.order === undefined &&
        keys.every((k) => k !== undefined) &&
        this.orderable(scan, keys)
      ) {
        const count = limitClause !== undefined ? this.expr(limitClause.count, selectLevel) : undefined;
        const offset =
          limitClause?.offset !== undefined ? this.expr(limitClause.offset, selectLevel) : undefined;
        scan.order = {
          keys,
          ...(count !== undefined && count.constant
            ? { limit: { count, ...(offset !== undefined && offset.constant ? { offset } : {}) } }
            : {}),
        };
      } else {
        op = new Sort(
          op,
          sortKeys,
          sortKeys.map((k) => `${allExprs[k.column]!.text}${k.desc ? ' DESC' : ''}`).join(', '),
        );
      }
    }
    op = this.limit(op, limitClause, selectLevel);
    if (hidden.length > 0) op = new Narrow(op, items.length, names);
    let rows = aggregated ? (core.groupBy.length === 0 ? 1 : Math.max(1, rel.rows / 10)) : rel.rows;
    if (limitClause?.count.kind === 'number') rows = Math.min(rows, Number(limitClause.count.text));
    return { op, names, textual: exprs.map((e) => e.textual === true), rows };
  }

  /** Whether some index or the primary key could give a scan's rows in the order of these columns. */
  private orderable(scan: TableScan, keys: readonly { column: string }[]): boolean {
    const first = keys[0]!.column;
    if (scan.keyName === first) return true;
    return (scan.spec?.indexes ?? []).some((ix) => ix.columns.some((c) => c.name === first));
  }

  /**
   * A SELECT whose aggregates are one MIN or MAX of a column of its one table, with no other
   * column read outside it and no GROUP BY, where an index or the key has that column: its
   * column, direction, and the condition `column IS NOT NULL` that leaves out what MIN and MAX skip.
   */
  private extremeOf(
    core: A.SelectCore,
    orderBy: readonly A.OrderItem[],
  ): { column: string; max: boolean; notNull: A.Expr } | undefined {
    if (core.groupBy.length > 0 || core.from.length !== 1) return undefined;
    const ref = core.from[0]!;
    if (ref.kind !== 'table') return undefined;
    const t = this.baseTable(ref);
    if (t === undefined) return undefined;
    const alias = (ref.alias ?? ref.name).toLowerCase();
    const exprs: A.Expr[] = [];
    for (const c of core.items) {
      if (c.kind === 'star') return undefined;
      exprs.push(c.expr);
    }
    if (core.having !== undefined) exprs.push(core.having);
    for (const o of orderBy) exprs.push(o.expr);
    let found: A.Aggregate | undefined;
    let other = false;
    for (const e of exprs) {
      if (hasSubquery(e)) return undefined;
      walk(e, (n) => {
        if (n.kind === 'aggregate') {
          if (found === undefined) found = n;
          else if (!sameExtreme(found, n)) other = true;
          return false;
        }
        if (n.kind === 'column') other = true;
        return true;
      });
    }
    const agg = found;
    if (agg === undefined || other || (agg.name !== 'MIN' && agg.name !== 'MAX') || agg.args.length !== 1)
      return undefined;
    const arg = agg.args[0]!;
    if (arg.kind !== 'column' || (arg.table !== undefined && arg.table.toLowerCase() !== alias))
      return undefined;
    const col = t.columns.find((c) => c.name.toLowerCase() === arg.name.toLowerCase());
    if (col === undefined) return undefined;
    const indexed =
      t.keyColumn === col.name ||
      (this.catalog.indexes?.(t.name) ?? []).some((ix) => ix.columns.includes(col.name));
    if (!indexed) return undefined;
    return {
      column: col.name,
      max: agg.name === 'MAX',
      notNull: { kind: 'isNull', at: arg.at, arg, not: true },
    };
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

/** The table scan an operator reads straight from (through filters, which keep its order). */
function scanBelow(op: Op): TableScan | undefined {
  if (op instanceof TableScan) return op;
  if (op instanceof Filter) return scanBelow(op.input);
  return undefined;
}

/** Two aggregates that are the same MIN or MAX of the same column. */
function sameExtreme(a: A.Aggregate, b: A.Aggregate): boolean {
  const x = a.args[0];
  const y = b.args[0];
  return (
    a.name === b.name &&
    a.args.length === 1 &&
    b.args.length === 1 &&
    x?.kind === 'column' &&
    y?.kind === 'column' &&
    x.name.toLowerCase() === y.name.toLowerCase() &&
    (x.table ?? '').toLowerCase() === (y.table ?? '').toLowerCase()
  );
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
