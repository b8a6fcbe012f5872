/**
 * The binder and planner: a SELECT's syntax tree to a tree of operators. Names are resolved here
 * (columns case-insensitively, through enclosing queries for correlated subqueries); WHERE and ON
 * conditions are split at AND and pushed to the table they read (where conditions on the primary
 * key become a point read or a key range) or to the join they connect (equalities become hash-join
 * keys); aggregates and GROUP BY become a hash aggregation.
 */
import { TidemarkError } from '../errors.js';
import type { Ast } from './parse.js';
import { DISTINCT_PREFIX, PARAM_PREFIX } from './parse.js';
import { ROWID, TUPLE_KEY, type SqlTable } from './catalog.js';
import {
  arithmetic,
  between,
  call,
  caseWhen,
  cast,
  columnRef,
  comparison,
  inList,
  isNull,
  isTruth,
  like,
  literal,
  logical,
  negate,
  not,
  outerRef,
  param,
  rowwise,
  SubqueryExpr,
  sessionFact,
  variable,
  type Expr,
} from './expr.js';
import {
  Aggregate,
  Derived,
  Distinct,
  Filter,
  Join,
  Limit,
  Narrow,
  OneRow,
  Project,
  Sort,
  TableScan,
  UnionAll,
  type AggName,
  type AggSpec,
  type KeyRange,
  type Op,
  type SortKey,
} from './ops.js';
import { parseDate, toNumber } from './values.js';

/** What the planner needs from the engine: tables and views by name. */
export interface PlanCatalog {
  table(name: string): SqlTable | undefined;
  /** A view's parsed SELECT, or undefined. */
  view(name: string): { ast: Ast; columns?: string[] } | undefined;
}

export function unsupported(what: string): TidemarkError {
  return new TidemarkError('INVALID_ARGUMENT', `${what} is not supported`, {
    details: { unsupported: what },
  });
}

function unknownColumn(name: string): TidemarkError {
  return new TidemarkError('SCHEMA', `unknown column ${name}`, {
    details: { column: name, mysqlErrno: 1054 },
  });
}

interface ColInfo {
  /** The table alias it comes from (undefined for computed columns). */
  table: string | undefined;
  name: string;
}

/** Name resolution within one layout of columns. */
interface Resolver {
  /** Index of the column, undefined when absent; throws when ambiguous. */
  resolve(table: string | undefined, name: string): number | undefined;
  /** A replacement for a whole expression (aggregates and GROUP BY expressions after grouping). */
  intercept?(ast: Ast, level: Level): Expr | undefined;
}

class LayoutResolver implements Resolver {
  constructor(readonly cols: readonly ColInfo[]) {}
  resolve(table: string | undefined, name: string): number | undefined {
    const lname = name.toLowerCase();
    let found: number | undefined;
    for (let i = 0; i < this.cols.length; i++) {
      const c = this.cols[i]!;
      if (c.name.toLowerCase() !== lname) continue;
      if (table !== undefined && c.table?.toLowerCase() !== table.toLowerCase()) continue;
      if (found !== undefined) {
        throw new TidemarkError('SCHEMA', `column ${name} is ambiguous`, {
          details: { column: name, mysqlErrno: 1052 },
        });
      }
      found = i;
    }
    return found;
  }
}

/** One query level: how names resolve in it, and what of its parent's row it reads. */
interface Level {
  resolver: Resolver;
  parent: Level | undefined;
  /** Columns of the parent level's current row read by this level (or levels inside it). */
  parentUses: Set<number>;
}

function isSubquery(ast: Ast): boolean {
  return ast !== null && typeof ast === 'object' && ast.ast !== undefined && ast.type === undefined;
}

/** Undo MySQL string escapes as the parser leaves them. */
export function unescapeString(raw: string): string {
  return raw.replace(/''|\\(.)/gs, (m: string, c: string | undefined) => {
    if (m === "''") return "'";
    switch (c) {
      case '0':
        return '\0';
      case 'b':
        return '\b';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case 'Z':
        return '\x1a';
      case '%':
      case '_':
        return `\\${c}`;
      default:
        return c ?? '';
    }
  });
}

function columnName(ast: Ast): string {
  const c = ast.column;
  if (typeof c === 'string') return c;
  if (c?.expr?.value !== undefined) return String(c.expr.value);
  throw unsupported('this column reference');
}

const AGG_NAMES = new Set(['COUNT', 'SUM', 'AVG', 'MIN', 'MAX', 'GROUP_CONCAT', 'TOTAL']);

function functionName(ast: Ast): string {
  const parts = ast.name?.name;
  if (Array.isArray(parts)) return parts.map((p: { value: string }) => p.value).join('.');
  return String(ast.name);
}

function isAggregate(ast: Ast): boolean {
  if (ast?.type === 'aggr_func') return true;
  if (ast?.type === 'function') {
    const n = functionName(ast).toUpperCase();
    return n === 'TOTAL' || n.startsWith(DISTINCT_PREFIX.toUpperCase());
  }
  return false;
}

/** Walk an expression tree, not into subqueries. */
function walk(ast: Ast, visit: (node: Ast) => boolean | void): void {
  if (ast === null || typeof ast !== 'object') return;
  if (Array.isArray(ast)) {
    for (const a of ast) walk(a, visit);
    return;
  }
  if (isSubquery(ast)) {
    visit(ast);
    return;
  }
  if (visit(ast) === false) return;
  for (const k of Object.keys(ast)) {
    const v = ast[k];
    if (v !== null && typeof v === 'object') walk(v, visit);
  }
}

function hasAggregate(ast: Ast): boolean {
  let found = false;
  walk(ast, (n) => {
    if (isAggregate(n)) {
      found = true;
      return false;
    }
    return undefined;
  });
  return found;
}

function hasSubquery(ast: Ast): boolean {
  let found = false;
  walk(ast, (n) => {
    if (isSubquery(n)) found = true;
  });
  return found;
}

/** Split at AND. */
function conjuncts(ast: Ast): Ast[] {
  if (ast === null || ast === undefined) return [];
  if (ast.type === 'binary_expr' && (ast.operator === 'AND' || ast.operator === '&&'))
    return [...conjuncts(ast.left), ...conjuncts(ast.right)];
  return [ast];
}

/** Every column name an expression tree mentions, subqueries included (for column pruning). */
function mentionedNames(ast: Ast, out: Set<string>, star: { all: boolean; tables: Set<string> }): void {
  if (ast === null || typeof ast !== 'object') return;
  if (Array.isArray(ast)) {
    for (const a of ast) mentionedNames(a, out, star);
    return;
  }
  if (ast.type === 'column_ref') {
    const name = typeof ast.column === 'string' ? ast.column : ast.column?.expr?.value;
    if (name === '*') {
      if (ast.table === null || ast.table === undefined) star.all = true;
      else star.tables.add(String(ast.table).toLowerCase());
    } else if (name !== undefined) out.add(String(name).toLowerCase());
  }
  // USING lists and similar come as { type: 'default', value } nodes.
  if (ast.type === 'default' && typeof ast.value === 'string') out.add(ast.value.toLowerCase());
  for (const k of Object.keys(ast)) {
    const v = ast[k];
    if (v !== null && typeof v === 'object') mentionedNames(v, out, star);
  }
}

interface Source {
  op: Op;
  cols: ColInfo[];
  alias: string;
  /** For a base table: what a scan needs, so conditions can be pushed into it. */
  table?: SqlTable;
  join: 'inner' | 'left' | 'cross';
  on: Ast | undefined;
  using: string[] | undefined;
}

export interface Planned {
  op: Op;
  names: string[];
}

/** Plans SELECT statements (and the SELECTs inside other statements). */
export class Planner {
  /** Views being expanded (a view reaching itself is an error, not endless recursion). */
  private readonly expanding = new Set<string>();

  constructor(
    private readonly catalog: PlanCatalog,
    private readonly statementAst: Ast,
  ) {}

  /** A SELECT (or UNION) at the top level or inside an enclosing level. */
  select(ast: Ast, parent?: Level, uses: Set<number> = new Set()): Planned {
    if (ast.with !== null && ast.with !== undefined) throw unsupported('WITH');
    if (ast._next !== undefined && ast._next !== null) return this.setOperation(ast, parent, uses);
    return this.simpleSelect(ast, parent, true, uses);
  }

  private setOperation(ast: Ast, parent: Level | undefined, uses: Set<number>): Planned {
    // A parenthesized part keeps its own ORDER BY / LIMIT; the union's come after it (node-sql-parser
    // puts them in _orderby/_limit), or hang on an unparenthesized last part, applying to all.
    const parts: Ast[] = [];
    const ops: string[] = [];
    for (let s: Ast = ast; s !== null && s !== undefined; s = s._next) {
      parts.push(s);
      if (s._next) ops.push(String(s.set_op ?? 'union').toLowerCase());
    }
    const last = parts[parts.length - 1]!;
    const lastOwn = last.parentheses_symbol === true;
    const orderby = ast._orderby ?? (lastOwn ? null : last.orderby);
    const limit = ast._limit ?? (lastOwn ? null : last.limit);
    const planned = parts.map((p, i) => {
      const own = p.parentheses_symbol === true;
      return this.simpleSelect(
        i === parts.length - 1 && !own ? { ...p, orderby: null, limit: null } : p,
        parent,
        own,
        uses,
      );
    });
    const width = planned[0]!.op.width;
    for (const p of planned) {
      if (p.op.width !== width) {
        throw new TidemarkError(
          'INVALID_ARGUMENT',
          'the SELECTs of a UNION have different numbers of columns',
          {
            details: { mysqlErrno: 1222 },
          },
        );
      }
    }
    let op: Op = planned[0]!.op;
    for (let i = 1; i < planned.length; i++) {
      const kind = ops[i - 1]!;
      if (kind !== 'union' && kind !== 'union all' && kind !== 'union distinct')
        throw unsupported(kind.toUpperCase());
      op = new UnionAll([op, planned[i]!.op]);
      if (kind !== 'union all') op = new Distinct(op);
    }
    const names = planned[0]!.names;
    if (Array.isArray(orderby) && orderby.length > 0) {
      const keys: SortKey[] = orderby.map((o: Ast) => {
        const e = o.expr;
        let col: number | undefined;
        if (e.type === 'number') col = Number(e.value) - 1;
        else if (e.type === 'column_ref') {
          const n = columnName(e).toLowerCase();
          col = names.findIndex((x) => x.toLowerCase() === n);
        }
        if (col === undefined || col < 0 || col >= width) throw unsupported('this ORDER BY of a UNION');
        return { column: col, desc: String(o.type).toUpperCase() === 'DESC' };
      });
      op = new Sort(op, keys, keys.map((k) => `${names[k.column]}${k.desc ? ' DESC' : ''}`).join(', '));
    }
    op = this.limit(op, limit, { resolver: new LayoutResolver([]), parent, parentUses: uses });
    return { op, names };
  }

  private limit(op: Op, limit: Ast, level: Level): Op {
    const v = limit?.value;
    if (!Array.isArray(v) || v.length === 0) return op;
    let count: Ast;
    let offset: Ast | undefined;
    if (v.length === 1) count = v[0];
    else if (limit.seperator === 'offset') {
      count = v[0];
      offset = v[1];
    } else {
      offset = v[0];
      count = v[1];
    }
    const c = this.expr(count, level);
    const o = offset !== undefined ? this.expr(offset, level) : undefined;
    if (!c.constant || (o !== undefined && !o.constant)) throw unsupported('a LIMIT that is not a constant');
    return new Limit(op, c, o);
  }

  private simpleSelect(ast: Ast, parent: Level | undefined, withOrder: boolean, uses: Set<number>): Planned {
    if (ast.type !== 'select') throw unsupported(`${String(ast.type).toUpperCase()} here`);
    if (ast.into?.position !== null && ast.into?.position !== undefined) throw unsupported('SELECT INTO');
    if (ast.window) throw unsupported('WINDOW');
    const columns: Ast[] =
      ast.columns === '*' ? [{ expr: { type: 'column_ref', table: null, column: '*' } }] : ast.columns;

    // Names each base table must provide: everything the statement mentions (a superset is fine).
    const mentioned = new Set<string>();
    const star = { all: false, tables: new Set<string>() };
    mentionedNames(this.statementAst, mentioned, star);

    const sources = this.fromSources(ast.from ?? [], parent, uses, mentioned, star);
    const layout: ColInfo[] = sources.flatMap((s) => s.cols);
    const level: Level = { resolver: new LayoutResolver(layout), parent, parentUses: uses };

    let op = this.joinSources(sources, ast.where, level);

    const aggregated =
      (ast.groupby?.columns?.length ?? 0) > 0 ||
      columns.some((c: Ast) => hasAggregate(c.expr)) ||
      hasAggregate(ast.having) ||
      (withOrder && Array.isArray(ast.orderby) && ast.orderby.some((o: Ast) => hasAggregate(o.expr)));

    // Expand * and t.*, and name the outputs.
    const items: { ast: Ast; name: string | undefined }[] = [];
    for (const c of columns) {
      const e = c.expr;
      if (e.type === 'column_ref' && columnName(e) === '*') {
        const t = e.table === null || e.table === undefined ? undefined : String(e.table).toLowerCase();
        let any = false;
        for (const s of sources) {
          if (t !== undefined && s.alias.toLowerCase() !== t) continue;
          any = true;
          // SELECT * shows a USING column once (the left side's), as MySQL does.
          const merged = new Set(t === undefined ? (s.using ?? []).map((u) => u.toLowerCase()) : []);
          for (const col of s.cols) {
            if (merged.has(col.name.toLowerCase())) continue;
            items.push({ ast: { type: 'column_ref', table: s.alias, column: col.name }, name: col.name });
          }
        }
        if (!any) {
          if (t !== undefined)
            throw new TidemarkError('NOT_FOUND', `unknown table ${e.table} in ${e.table}.*`);
          throw new TidemarkError('INVALID_ARGUMENT', 'SELECT * needs a FROM clause');
        }
      } else {
        items.push({ ast: e, name: c.as ?? (e.type === 'column_ref' ? columnName(e) : undefined) });
      }
    }

    let selectLevel = level;
    let aggregate: AggregateBuilder | undefined;
    if (aggregated) {
      const groupAsts: Ast[] = (ast.groupby?.columns ?? []).map((g: Ast) => {
        if (g.type === 'number') {
          const item = items[Number(g.value) - 1];
          if (item === undefined) throw unknownColumn(String(g.value));
          return item.ast;
        }
        if (g.type === 'column_ref' && (g.table === null || g.table === undefined)) {
          const n = columnName(g);
          if (level.resolver.resolve(undefined, n) === undefined) {
            const item = items.find((i) => i.name?.toLowerCase() === n.toLowerCase());
            if (item !== undefined) return item.ast;
          }
        }
        return g;
      });
      aggregate = new AggregateBuilder(this, level, groupAsts, items);
      selectLevel = { resolver: aggregate, parent, parentUses: level.parentUses };
    }

    const exprs = items.map((i) => this.expr(i.ast, selectLevel));
    // An unnamed item is named by its text, placeholders shown as MySQL shows them: `?`.
    const names = items.map((i, k) => i.name ?? exprs[k]!.text.replace(/\?\d+/g, '?'));

    // HAVING (also without grouping, as MySQL allows: then a filter on the rows).
    const having =
      ast.having !== null && ast.having !== undefined ? this.expr(ast.having, selectLevel) : undefined;

    // ORDER BY: output positions and aliases, else expressions carried as hidden columns.
    const sortKeys: SortKey[] = [];
    const hidden: Expr[] = [];
    if (withOrder && Array.isArray(ast.orderby)) {
      for (const o of ast.orderby) {
        const e = o.expr;
        const desc = String(o.type).toUpperCase() === 'DESC';
        if (e.type === 'number' && Number.isInteger(Number(e.value))) {
          const k = Number(e.value) - 1;
          if (k < 0 || k >= items.length) throw unknownColumn(String(e.value));
          sortKeys.push({ column: k, desc });
          continue;
        }
        if (e.type === 'column_ref' && (e.table === null || e.table === undefined)) {
          const n = columnName(e).toLowerCase();
          const k = names.findIndex((x) => x.toLowerCase() === n);
          if (k >= 0) {
            sortKeys.push({ column: k, desc });
            continue;
          }
        }
        hidden.push(this.expr(e, selectLevel));
        sortKeys.push({ column: items.length + hidden.length - 1, desc });
      }
    }

    if (aggregate !== undefined) op = aggregate.build(op);
    if (having !== undefined) op = new Filter(op, having);
    const allExprs = [...exprs, ...hidden];
    op = new Project(op, allExprs, [...names, ...hidden.map((h) => h.text)]);
    if (ast.distinct === 'DISTINCT') {
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
    if (withOrder) op = this.limit(op, ast.limit, selectLevel);
    if (hidden.length > 0) op = new Narrow(op, items.length, names);
    return { op, names };
  }

  // ---- FROM ----

  private fromSources(
    from: Ast[],
    parent: Level | undefined,
    uses: Set<number>,
    mentioned: Set<string>,
    star: { all: boolean; tables: Set<string> },
  ): Source[] {
    const sources: Source[] = [];
    for (const f of from) {
      const joinText = f.join === undefined || f.join === null ? 'cross' : String(f.join).toUpperCase();
      let join: Source['join'];
      if (joinText === 'cross' || joinText === 'CROSS JOIN') join = 'cross';
      else if (joinText === 'INNER JOIN' || joinText === 'JOIN') join = 'inner';
      else if (joinText === 'LEFT JOIN' || joinText === 'LEFT OUTER JOIN') join = 'left';
      else throw unsupported(joinText);
      const using: string[] | undefined = Array.isArray(f.using)
        ? f.using.map((u: Ast) => String(u.value ?? u.column ?? u))
        : undefined;
      if (f.expr !== undefined && f.expr?.ast !== undefined) {
        const alias = f.as;
        if (alias === null || alias === undefined) {
          throw new TidemarkError('INVALID_ARGUMENT', 'every derived table must have its own alias', {
            details: { mysqlErrno: 1248 },
          });
        }
        // A derived table sees the enclosing levels, not its siblings.
        const planned = this.select(f.expr.ast, parent, uses);
        const op = new Derived(planned.op, planned.names, alias);
        sources.push({
          op,
          cols: planned.names.map((n) => ({ table: alias, name: n })),
          alias,
          join,
          on: f.on ?? undefined,
          using,
        });
        continue;
      }
      if (f.table === undefined || f.table === null) throw unsupported('this FROM item');
      const name = String(f.table);
      const alias = f.as ?? name;
      const table = this.catalog.table(name);
      if (table === undefined) {
        const view = this.catalog.view(name);
        if (view === undefined) {
          throw new TidemarkError('NOT_FOUND', `unknown table ${name}`, {
            details: { table: name, mysqlErrno: 1146 },
          });
        }
        // A view that reaches itself (directly or through others) would expand forever.
        if (this.expanding.has(name)) {
          throw new TidemarkError('INVALID_ARGUMENT', `view ${name} references itself`, {
            details: { view: name, mysqlErrno: 1462 },
          });
        }
        this.expanding.add(name);
        let planned: Planned;
        try {
          planned = this.select(view.ast, undefined);
        } finally {
          this.expanding.delete(name);
        }
        const names = view.columns ?? planned.names;
        const op = new Derived(planned.op, names, alias);
        sources.push({
          op,
          cols: names.map((n) => ({ table: alias, name: n })),
          alias,
          join,
          on: f.on ?? undefined,
          using,
        });
        continue;
      }
      const all = star.all || star.tables.has(String(alias).toLowerCase());
      const cols = table.columns.filter((c) => all || mentioned.has(c.name.toLowerCase()));
      // The scan is built when conditions are assigned (joinSources); a placeholder until then.
      sources.push({
        op: new OneRow(),
        cols: cols.map((c) => ({ table: alias, name: c.name })),
        alias,
        table,
        join,
        on: f.on ?? undefined,
        using,
      });
    }
    const seen = new Set<string>();
    for (const s of sources) {
      const a = s.alias.toLowerCase();
      if (seen.has(a)) {
        throw new TidemarkError('INVALID_ARGUMENT', `not unique table/alias: ${s.alias}`, {
          details: { mysqlErrno: 1066 },
        });
      }
      seen.add(a);
    }
    return sources;
  }

  /** Which sources an expression reads (undefined: it has a subquery, so it stays where it is). */
  private sourcesOf(ast: Ast, sources: readonly Source[]): Set<number> | undefined {
    if (hasSubquery(ast)) return undefined;
    const used = new Set<number>();
    let ok = true;
    walk(ast, (n) => {
      if (n.type !== 'column_ref') return undefined;
      const name = columnName(n).toLowerCase();
      const t = n.table === null || n.table === undefined ? undefined : String(n.table).toLowerCase();
      const hits: number[] = [];
      sources.forEach((s, i) => {
        if (t !== undefined && s.alias.toLowerCase() !== t) return;
        if (s.cols.some((c) => c.name.toLowerCase() === name)) hits.push(i);
      });
      if (hits.length > 1) ok = false;
      if (hits.length === 1) used.add(hits[0]!);
      return undefined;
    });
    return ok ? used : undefined;
  }

  private joinSources(sources: Source[], where: Ast, level: Level): Op {
    if (sources.length === 0) {
      const op: Op = new OneRow();
      return where !== null && where !== undefined ? new Filter(op, this.expr(where, level)) : op;
    }
    // Conditions of WHERE and of inner joins' ON, split at AND, each placed as low as it can go.
    const pool: Ast[] = conjuncts(where);
    sources.forEach((s, i) => {
      if (s.using !== undefined) {
        if (i === 0) throw unsupported('USING on the first table');
        for (const u of s.using) {
          const prev = sources
            .slice(0, i)
            .findIndex((p) => p.cols.some((c) => c.name.toLowerCase() === u.toLowerCase()));
          if (prev < 0) throw unknownColumn(u);
          const eq = {
            type: 'binary_expr',
            operator: '=',
            left: { type: 'column_ref', table: sources[prev]!.alias, column: u },
            right: { type: 'column_ref', table: s.alias, column: u },
          };
          if (s.join === 'left')
            s.on = s.on === undefined ? eq : { type: 'binary_expr', operator: 'AND', left: s.on, right: eq };
          else pool.push(eq);
        }
      }
      if (s.join !== 'left' && s.on !== undefined) {
        pool.push(...conjuncts(s.on));
        s.on = undefined;
      }
    });
    // Sources on the inner side of a LEFT JOIN cannot take WHERE conditions below the join.
    const perSource: Ast[][] = sources.map(() => []);
    const joinConds: Ast[][] = sources.map(() => []);
    const top: Ast[] = [];
    for (const c of pool) {
      const used = this.sourcesOf(c, sources);
      if (used === undefined) {
        top.push(c);
        continue;
      }
      const max = used.size === 0 ? 0 : Math.max(...used);
      if (used.size === 1 && sources[max]!.join !== 'left') perSource[max]!.push(c);
      else if (used.size === 0) top.push(c);
      else if (sources[max]!.join !== 'left' || max === 0) joinConds[max]!.push(c);
      else top.push(c);
    }
    // LEFT JOIN ON conditions: on the right side alone pushed into it, the rest at the join.
    const leftOn: Ast[][] = sources.map(() => []);
    sources.forEach((s, i) => {
      if (s.join !== 'left' || s.on === undefined) return;
      if (i === 0) throw unsupported('LEFT JOIN without a left side');
      for (const c of conjuncts(s.on)) {
        const used = this.sourcesOf(c, sources);
        if (used !== undefined && used.size === 1 && used.has(i)) perSource[i]!.push(c);
        else leftOn[i]!.push(c);
      }
    });

    // Build the scans with their conditions.
    sources.forEach((s, i) => {
      const own: Level = {
        resolver: new LayoutResolver(s.cols),
        parent: level.parent,
        parentUses: level.parentUses,
      };
      if (s.table !== undefined) s.op = this.scan(s, perSource[i]!, own);
      else if (perSource[i]!.length > 0) s.op = new Filter(s.op, this.andAll(perSource[i]!, own));
    });

    let op = sources[0]!.op;
    let leftCols: ColInfo[] = [...sources[0]!.cols];
    for (let i = 1; i < sources.length; i++) {
      const s = sources[i]!;
      const combined = [...leftCols, ...s.cols];
      const leftLevel: Level = {
        resolver: new LayoutResolver(leftCols),
        parent: level.parent,
        parentUses: level.parentUses,
      };
      const rightLevel: Level = {
        resolver: new LayoutResolver(s.cols),
        parent: level.parent,
        parentUses: level.parentUses,
      };
      const bothLevel: Level = {
        resolver: new LayoutResolver(combined),
        parent: level.parent,
        parentUses: level.parentUses,
      };
      const conds = s.join === 'left' ? leftOn[i]! : joinConds[i]!;
      const leftKeys: Expr[] = [];
      const rightKeys: Expr[] = [];
      const rest: Ast[] = [];
      for (const c of conds) {
        if (c.type === 'binary_expr' && c.operator === '=') {
          const l = this.sourcesOf(c.left, sources);
          const r = this.sourcesOf(c.right, sources);
          const onlyLeft = (u: Set<number> | undefined) =>
            u !== undefined && u.size > 0 && [...u].every((x) => x < i);
          const onlyRight = (u: Set<number> | undefined) => u !== undefined && u.size === 1 && u.has(i);
          if (onlyLeft(l) && onlyRight(r)) {
            leftKeys.push(this.expr(c.left, leftLevel));
            rightKeys.push(this.expr(c.right, rightLevel));
            continue;
          }
          if (onlyRight(l) && onlyLeft(r)) {
            leftKeys.push(this.expr(c.right, leftLevel));
            rightKeys.push(this.expr(c.left, rightLevel));
            continue;
          }
        }
        rest.push(c);
      }
      const cond = rest.length > 0 ? this.andAll(rest, bothLevel) : undefined;
      op = new Join(op, s.op, s.join === 'left' ? 'left' : 'inner', leftKeys, rightKeys, cond);
      leftCols = combined;
    }
    if (top.length > 0) op = new Filter(op, this.andAll(top, level));
    return op;
  }

  private andAll(asts: readonly Ast[], level: Level): Expr {
    let e = this.expr(asts[0], level);
    for (let i = 1; i < asts.length; i++) e = logical('AND', e, this.expr(asts[i], level));
    return e;
  }

  /** A table scan with its conditions; those on the primary key give a point read or a range. */
  private scan(s: Source, conds: Ast[], level: Level): Op {
    const t = s.table!;
    const byName = new Map(t.columns.map((c) => [c.name, c]));
    const cols = s.cols.map((c) => ({ name: c.name, type: byName.get(c.name)!.type }));
    let range: KeyRange | undefined;
    const keyName = t.keyColumn;
    const keyType = keyName === ROWID ? 'int64' : keyName === TUPLE_KEY ? 'bytes' : byName.get(keyName)!.type;
    if (keyName !== ROWID && keyName !== TUPLE_KEY) {
      const isKey = (a: Ast): boolean =>
        a?.type === 'column_ref' &&
        columnName(a).toLowerCase() === keyName.toLowerCase() &&
        (a.table === null ||
          a.table === undefined ||
          String(a.table).toLowerCase() === s.alias.toLowerCase());
      const constant = (a: Ast): Expr | undefined => {
        if (hasSubquery(a)) return undefined;
        const e = this.expr(a, level);
        return e.constant ? e : undefined;
      };
      const flip: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '=': '=' };
      for (const c of conds) {
        if (c.type !== 'binary_expr') continue;
        if (c.operator === 'BETWEEN' && isKey(c.left)) {
          const lo = constant(c.right.value[0]);
          const hi = constant(c.right.value[1]);
          if (lo !== undefined && hi !== undefined && range?.eq === undefined) {
            range = { ...range, lower: { e: lo, inclusive: true }, upper: { e: hi, inclusive: true } };
          }
          continue;
        }
        let op = flip[c.operator];
        if (op === undefined) continue;
        let other: Ast;
        if (isKey(c.left)) {
          op = c.operator;
          other = c.right;
        } else if (isKey(c.right)) other = c.left;
        else continue;
        const v = constant(other);
        if (v === undefined) continue;
        if (op === '=') range = { eq: v };
        else if (range?.eq === undefined) {
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
      conds[0].operator === 'BETWEEN';
    return new TableScan(
      t.name,
      s.alias === t.name ? t.name : `${t.name} AS ${s.alias}`,
      cols,
      keyName,
      keyType,
      range,
      filter,
      pointOnly,
      rangeOnly,
    );
  }

  // ---- expressions ----

  /** Resolve a column through this level and the enclosing ones. */
  private column(ast: Ast, level: Level): Expr {
    const name = columnName(ast);
    const table = ast.table === null || ast.table === undefined ? undefined : String(ast.table);
    const text = table !== undefined ? `${table}.${name}` : name;
    let l: Level | undefined = level;
    let depth = 0;
    let child: Level | undefined;
    while (l !== undefined) {
      const i = l.resolver.resolve(table, name);
      if (i !== undefined) {
        if (depth === 0) return columnRef(i, text);
        child!.parentUses.add(i);
        return outerRef(depth, i, text);
      }
      child = l;
      l = l.parent;
      depth++;
    }
    throw unknownColumn(text);
  }

  /** Bind an expression at a level. */
  expr(ast: Ast, level: Level): Expr {
    const hooked = level.resolver.intercept?.(ast, level);
    if (hooked !== undefined) return hooked;
    if (isSubquery(ast)) return this.subquery('scalar', ast, level, undefined, false);
    switch (ast.type) {
      case 'column_ref':
        return this.column(ast, level);
      case 'number': {
        const v = Number(ast.value);
        return literal(v, String(ast.value));
      }
      case 'bigint': {
        const v = Number(ast.value);
        if (!Number.isFinite(v))
          throw new TidemarkError('INVALID_ARGUMENT', `number ${ast.value} is out of range`);
        return literal(v, String(ast.value));
      }
      case 'single_quote_string':
      case 'double_quote_string':
      case 'string':
      case 'natural_string':
      case 'var_string': {
        const s = unescapeString(String(ast.value));
        return literal(s, `'${s}'`);
      }
      case 'hex_string':
        return literal(new Uint8Array(Buffer.from(String(ast.value), 'hex')), `x'${ast.value}'`);
      case 'full_hex_string':
        return literal(
          new Uint8Array(Buffer.from(String(ast.value).replace(/^0x/i, ''), 'hex')),
          String(ast.value),
        );
      case 'bool':
        return literal(ast.value ? 1 : 0, ast.value ? 'TRUE' : 'FALSE');
      case 'null':
        return literal(null, 'NULL');
      case 'date':
      case 'datetime':
      case 'timestamp': {
        const d = parseDate(String(ast.value));
        if (d === undefined) throw new TidemarkError('INVALID_ARGUMENT', `invalid date ${ast.value}`);
        return literal(d, `${String(ast.type).toUpperCase()} '${ast.value}'`);
      }
      case 'param': {
        const name = String(ast.value);
        if (!name.startsWith(PARAM_PREFIX)) throw unsupported(`named parameter :${name} (use ?)`);
        return param(Number(name.slice(PARAM_PREFIX.length)) - 1);
      }
      case 'var': {
        const name =
          [ast.name, ...(ast.members ?? [])]
            .map(String)
            .filter((n) => n !== 'session' && n !== 'global')
            .join('.') || String(ast.name);
        return variable(ast.prefix === '@@', name);
      }
      case 'origin':
        if (ast.value === '?') throw unsupported('this placeholder');
        throw unsupported(`${ast.value}`);
      case 'unary_expr':
        return this.unary(ast, level);
      case 'binary_expr':
        return this.binary(ast, level);
      case 'expr_list':
        if (Array.isArray(ast.value) && ast.value.length === 1) return this.expr(ast.value[0], level);
        throw unsupported('a row value here');
      case 'case': {
        const args: Ast[] = ast.args ?? [];
        const whens: [Expr, Expr][] = args
          .filter((a) => a.type === 'when')
          .map((a) => [this.expr(a.cond, level), this.expr(a.result, level)]);
        const other = args.find((a) => a.type === 'else');
        return caseWhen(
          ast.expr === null || ast.expr === undefined ? undefined : this.expr(ast.expr, level),
          whens,
          other === undefined ? undefined : this.expr(other.result, level),
        );
      }
      case 'cast': {
        const target = ast.target?.[0] ?? ast.target;
        const type = String(target?.dataType ?? '').toUpperCase();
        return cast(
          this.expr(ast.expr, level),
          type,
          target?.scale === undefined ? undefined : Number(target.scale),
        );
      }
      case 'aggr_func':
        throw new TidemarkError('INVALID_ARGUMENT', `invalid use of the aggregate ${ast.name}`, {
          details: { mysqlErrno: 1111 },
        });
      case 'function':
        return this.func(ast, level);
      case 'interval':
        throw unsupported('INTERVAL');
    }
    throw unsupported(`the expression ${String(ast.type)}`);
  }

  private unary(ast: Ast, level: Level): Expr {
    const op = String(ast.operator).toUpperCase();
    if (op === 'NOT EXISTS') return this.subquery('exists', ast.expr, level, undefined, true);
    if (op === 'EXISTS') return this.subquery('exists', ast.expr, level, undefined, false);
    const e = this.expr(ast.expr, level);
    if (op === '-') {
      if (e.literal !== undefined && typeof e.literal === 'number') return literal(-e.literal, `-${e.text}`);
      return negate(e);
    }
    if (op === '+') return e;
    if (op === 'NOT' || op === '!') return not(e);
    if (op === '~')
      return rowwise(`~${e.text}`, [e], ([v]) => {
        if (v === null) return null;
        const n = toNumber(v!);
        return Number(BigInt.asUintN(64, ~BigInt(Number.isFinite(n) ? Math.trunc(n) : 0)));
      });
    throw unsupported(`the operator ${op}`);
  }

  private binary(ast: Ast, level: Level): Expr {
    const op = String(ast.operator).toUpperCase();
    switch (op) {
      case 'AND':
      case '&&':
        return logical('AND', this.expr(ast.left, level), this.expr(ast.right, level));
      case 'OR':
      case '||':
        return logical('OR', this.expr(ast.left, level), this.expr(ast.right, level));
      case 'XOR':
        return logical('XOR', this.expr(ast.left, level), this.expr(ast.right, level));
      case '+':
      case '-':
      case '*':
      case '/':
      case 'DIV':
      case '%':
      case 'MOD':
        return arithmetic(op === 'MOD' ? '%' : op, this.expr(ast.left, level), this.expr(ast.right, level));
      case '=':
      case '!=':
      case '<>':
      case '<':
      case '<=':
      case '>':
      case '>=':
      case '<=>':
        return comparison(op, this.expr(ast.left, level), this.expr(ast.right, level));
      case 'IN':
      case 'NOT IN': {
        const list: Ast[] = ast.right?.type === 'expr_list' ? ast.right.value : [ast.right];
        if (list.length === 1 && isSubquery(list[0])) {
          return this.subquery('in', list[0], level, this.expr(ast.left, level), op === 'NOT IN');
        }
        return inList(
          this.expr(ast.left, level),
          list.map((v) => this.expr(v, level)),
          op === 'NOT IN',
        );
      }
      case 'BETWEEN':
      case 'NOT BETWEEN':
        return between(
          this.expr(ast.left, level),
          this.expr(ast.right.value[0], level),
          this.expr(ast.right.value[1], level),
          op === 'NOT BETWEEN',
        );
      case 'LIKE':
      case 'NOT LIKE':
        return like(this.expr(ast.left, level), this.expr(ast.right, level), op === 'NOT LIKE');
      case 'IS':
      case 'IS NOT': {
        const r = ast.right;
        const left = this.expr(ast.left, level);
        if (r?.type === 'null') return isNull(left, op === 'IS NOT');
        if (r?.type === 'bool') return isTruth(left, r.value === true, op === 'IS NOT');
        throw unsupported(`IS ${r?.type}`);
      }
    }
    throw unsupported(`the operator ${op}`);
  }

  private func(ast: Ast, level: Level): Expr {
    const name = functionName(ast).toUpperCase();
    const argAsts: Ast[] =
      ast.args?.type === 'expr_list' ? (ast.args.value ?? []) : ast.args ? [ast.args] : [];
    if (name === 'EXISTS') return this.subquery('exists', argAsts[0], level, undefined, false);
    // NOT (cond) comes from the parser as a function call.
    if (name === 'NOT' && argAsts.length === 1) return not(this.expr(argAsts[0], level));
    if (argAsts.length === 0) {
      const fact = sessionFact(name);
      if (fact !== undefined) return fact;
    }
    if (name.startsWith(DISTINCT_PREFIX.toUpperCase()) || name === 'TOTAL') {
      throw new TidemarkError('INVALID_ARGUMENT', `invalid use of an aggregate`, {
        details: { mysqlErrno: 1111 },
      });
    }
    return call(
      name,
      argAsts.map((a) => this.expr(a, level)),
    );
  }

  private subquery(
    kind: 'scalar' | 'exists' | 'in',
    ast: Ast,
    level: Level,
    lhs: Expr | undefined,
    negated: boolean,
  ): Expr {
    const inner = ast.ast ?? ast;
    // The subquery is a level under `level`; `uses` collects the columns of level's row it reads.
    const uses = new Set<number>();
    const planned = this.select(inner, level, uses);
    if (kind !== 'exists' && planned.op.width !== 1) {
      throw new TidemarkError('INVALID_ARGUMENT', `the subquery returns ${planned.op.width} columns, not 1`, {
        details: { mysqlErrno: 1241 },
      });
    }
    return new SubqueryExpr(
      kind,
      planned.op,
      [...uses].sort((a, b) => a - b),
      lhs,
      negated,
    );
  }
}

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
    groupAsts: Ast[],
    private readonly items: { ast: Ast; name: string | undefined }[],
  ) {
    this.groups = groupAsts.map((g) => planner.expr(g, input));
    this.groupKeys = this.groups.map((g) => g.text);
  }

  resolve(table: string | undefined, name: string): number | undefined {
    const i = this.input.resolver.resolve(table, name);
    if (i === undefined) return undefined;
    const g = this.groups.findIndex((e) => e.column === i);
    if (g >= 0) return g;
    return this.addAgg(
      'FIRST',
      { type: 'column_ref', table: table ?? null, column: name },
      false,
      undefined,
      `${table !== undefined ? `${table}.` : ''}${name}`,
    );
  }

  intercept(ast: Ast, level: Level): Expr | undefined {
    if (ast === null || typeof ast !== 'object' || isSubquery(ast)) return undefined;
    if (ast.type === 'column_ref' && (ast.table === null || ast.table === undefined)) {
      // HAVING and ORDER BY may name a select item by its alias (when no input column has the name).
      const name = columnName(ast);
      if (this.input.resolver.resolve(undefined, name) === undefined) {
        const item = this.items.find((it) => it.name?.toLowerCase() === name.toLowerCase());
        const key = name.toLowerCase();
        if (
          item !== undefined &&
          !this.resolvingAliases.has(key) &&
          !(item.ast.type === 'column_ref' && columnName(item.ast).toLowerCase() === key)
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
    if (ast.type === 'aggr_func' || (ast.type === 'function' && isAggregate(ast))) {
      let name: string;
      let distinct = false;
      let arg: Ast | undefined;
      let separator: string | undefined;
      if (ast.type === 'aggr_func') {
        name = String(ast.name).toUpperCase();
        distinct = ast.args?.distinct === 'DISTINCT';
        arg = ast.args?.expr;
        if (arg?.type === 'star') arg = undefined;
        const sep = ast.args?.separator?.value;
        if (sep !== undefined) separator = unescapeString(String(sep.value ?? sep));
      } else {
        const fname = functionName(ast).toUpperCase();
        const argAsts: Ast[] = ast.args?.value ?? [];
        arg = argAsts[0];
        if (fname === 'TOTAL') name = 'TOTAL';
        else {
          name = fname.slice(DISTINCT_PREFIX.length);
          distinct = true;
        }
      }
      if (!AGG_NAMES.has(name)) throw unsupported(`the aggregate ${name}`);
      if (arg !== undefined && hasAggregate(arg)) {
        throw new TidemarkError('INVALID_ARGUMENT', 'aggregates cannot be nested', {
          details: { mysqlErrno: 1111 },
        });
      }
      const text = `${name}(${distinct ? 'DISTINCT ' : ''}${arg === undefined ? '*' : this.planner.expr(arg, this.input).text})`;
      const i = this.addAgg(name as AggName, arg, distinct, separator, text);
      return columnRef(i, text);
    }
    if (this.groups.length > 0 && ast.type !== 'column_ref' && ast.type !== 'number') {
      // A GROUP BY expression (matched by its text once bound at the input level).
      let text: string | undefined;
      try {
        if (!hasAggregate(ast) && !hasSubquery(ast)) text = this.planner.expr(ast, this.input).text;
      } catch {
        text = undefined;
      }
      if (text !== undefined) {
        const g = this.groupKeys.indexOf(text);
        if (g >= 0) return columnRef(g, text);
      }
    }
    void level;
    return undefined;
  }

  private addAgg(
    name: AggName,
    arg: Ast | undefined,
    distinct: boolean,
    separator: string | undefined,
    text: string,
  ): number {
    const key = `${name}|${distinct}|${separator ?? ''}|${text}`;
    const have = this.aggKeys.get(key);
    if (have !== undefined) return have;
    const argExpr = arg === undefined ? undefined : this.planner.expr(arg, this.input);
    this.aggs.push({ name, arg: argExpr, distinct, separator, text });
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

export type { Level };
