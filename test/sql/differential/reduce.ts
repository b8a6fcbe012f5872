import type { Expr, FromItem, OrderKey, Query, Select, SetOp, TableRef } from './ast.js';
import { exprChildren, exprQueries, fromTables, selectExprs, width } from './ast.js';
import type { Schema, TableDef } from './generator.js';

/**
 * Automatic reduction of a failing case: greedy, one simplification at a time, kept when the
 * failure (the same kind of it) persists, until no single simplification keeps it or the budget
 * is spent. Simplifications, largest first: drop a select item, a WHERE, a join, GROUP BY, HAVING,
 * ORDER BY/LIMIT, DISTINCT, a set operation's branch; replace an expression by one of its children
 * or by a literal; reduce inside subqueries; then drop the data's unused tables and rows.
 *
 * A simplification may make the query invalid (a column of a dropped join); then both engines fail,
 * which is not the failure being reduced, and it is rejected like any other that loses the failure.
 */

const LITERALS: Expr[] = [
  { k: 'lit', t: 'null', text: 'NULL' },
  { k: 'lit', t: 'int', text: '1' },
  { k: 'lit', t: 'int', text: '0' },
  { k: 'lit', t: 'string', text: "'a'" },
];

/** e with its i-th child (in exprChildren order) replaced. */
function withChild(e: Expr, i: number, c: Expr): Expr {
  switch (e.k) {
    case 'lit':
    case 'col':
    case 'exists':
    case 'scalar':
      return e;
    case 'unary':
    case 'not':
    case 'paren':
    case 'is':
    case 'inSub':
      return { ...e, e: c };
    case 'logic':
    case 'cmp':
    case 'arith':
      return i === 0 ? { ...e, l: c } : { ...e, r: c };
    case 'between':
      return i === 0 ? { ...e, e: c } : i === 1 ? { ...e, lo: c } : { ...e, hi: c };
    case 'inList':
      return i === 0 ? { ...e, e: c } : { ...e, list: e.list.map((x, j) => (j === i - 1 ? c : x)) };
    case 'like':
      return i === 0 ? { ...e, e: c } : { ...e, pattern: c };
    case 'case': {
      let j = 0;
      const next = (x: Expr): Expr => (j++ === i ? c : x);
      const operand = e.operand === undefined ? undefined : next(e.operand);
      const whens = e.whens.map((w) => ({ when: next(w.when), then: next(w.then) }));
      const other = e.else === undefined ? undefined : next(e.else);
      return { ...e, operand, whens, else: other };
    }
    case 'fn':
      return { ...e, args: e.args.map((x, j) => (j === i ? c : x)) };
    case 'agg':
      return { ...e, arg: c };
  }
}

const isLiteral = (e: Expr): boolean => e.k === 'lit';

/** Simpler versions of an expression, each differing in one place. */
export function* exprVariants(e: Expr): Generator<Expr> {
  // The whole expression by a part of it, or by a literal.
  for (const c of exprChildren(e)) yield c;
  if (!isLiteral(e)) for (const l of LITERALS) yield l;
  // Smaller versions of the same kind.
  switch (e.k) {
    case 'is':
    case 'between':
    case 'like':
    case 'inSub':
    case 'exists':
      if (e.not) yield { ...e, not: false };
      break;
    case 'inList':
      if (e.not) yield { ...e, not: false };
      if (e.list.length > 1)
        for (let i = 0; i < e.list.length; i++) yield { ...e, list: e.list.filter((_, j) => j !== i) };
      break;
    case 'case':
      if (e.whens.length > 1)
        for (let i = 0; i < e.whens.length; i++) yield { ...e, whens: e.whens.filter((_, j) => j !== i) };
      if (e.else !== undefined) yield { ...e, else: undefined };
      break;
    case 'fn':
      if ((e.name === 'COALESCE' || e.name === 'CONCAT') && e.args.length > 1)
        for (let i = 0; i < e.args.length; i++) yield { ...e, args: e.args.filter((_, j) => j !== i) };
      break;
    case 'agg':
      if (e.quant !== undefined) yield { ...e, quant: undefined };
      if (e.name === 'COUNT' && e.arg !== undefined) yield { ...e, quant: undefined, arg: undefined };
      break;
    case 'logic':
      if (e.op !== 'AND' && e.op !== 'OR') yield { ...e, op: e.op === '&&' || e.op === 'XOR' ? 'AND' : 'OR' };
      break;
    default:
      break;
  }
  // Inside subqueries (one output column stays one, except for EXISTS).
  for (const q of exprQueries(e)) {
    for (const v of queryVariants(q, e.k !== 'exists')) {
      if (e.k === 'inSub' || e.k === 'exists' || e.k === 'scalar') yield { ...e, q: v };
    }
  }
  // One child simplified.
  const children = exprChildren(e);
  for (let i = 0; i < children.length; i++)
    for (const v of exprVariants(children[i]!)) yield withChild(e, i, v);
}

function dropOrderKey(keys: readonly OrderKey[], i: number): OrderKey[] {
  return keys.filter((k) => k.index !== i).map((k) => (k.index > i ? { ...k, index: k.index - 1 } : k));
}

/** The query without output column i (in every branch of a set operation). */
function dropColumn(q: Query, i: number): Query {
  if (q.k === 'setop')
    return { ...q, l: dropColumn(q.l, i), r: dropColumn(q.r, i), orderBy: dropOrderKey(q.orderBy, i) };
  return { ...q, items: q.items.filter((_, j) => j !== i), orderBy: dropOrderKey(q.orderBy, i) };
}

function* tableRefVariants(t: TableRef): Generator<TableRef> {
  if (t.k === 'derived') for (const v of queryVariants(t.q, true)) yield { ...t, q: v };
}

function* fromVariants(f: FromItem): Generator<FromItem> {
  if (f.k !== 'join') {
    yield* tableRefVariants(f);
    return;
  }
  yield f.l;
  yield f.r;
  if (f.type === 'LEFT') yield { ...f, type: 'INNER' };
  if (f.on !== undefined) for (const v of exprVariants(f.on)) yield { ...f, on: v };
  for (const v of fromVariants(f.l)) yield { ...f, l: v };
  for (const v of tableRefVariants(f.r)) yield { ...f, r: v };
}

function* selectVariants(s: Select, fixedWidth: boolean): Generator<Select> {
  if (!fixedWidth && s.items.length > 1)
    for (let i = 0; i < s.items.length; i++) yield dropColumn(s, i) as Select;
  if (s.where !== undefined) yield { ...s, where: undefined };
  if (s.from.length > 1)
    for (let i = 0; i < s.from.length; i++) yield { ...s, from: s.from.filter((_, j) => j !== i) };
  for (let i = 0; i < s.from.length; i++)
    for (const v of fromVariants(s.from[i]!)) yield { ...s, from: s.from.map((x, j) => (j === i ? v : x)) };
  if (s.groupBy.length > 0) yield { ...s, groupBy: [], having: undefined };
  if (s.having !== undefined) yield { ...s, having: undefined };
  if (s.groupBy.length > 1)
    for (let i = 0; i < s.groupBy.length; i++) yield { ...s, groupBy: s.groupBy.filter((_, j) => j !== i) };
  // ORDER BY goes with its LIMIT: a LIMIT without a total order is not deterministic.
  if (s.orderBy.length > 0) yield { ...s, orderBy: [], limit: undefined };
  if (s.limit !== undefined) yield { ...s, limit: undefined };
  if (s.limit?.offset !== undefined) yield { ...s, limit: { ...s.limit, offset: undefined } };
  if (s.quant !== undefined) yield { ...s, quant: undefined };
  if (s.where !== undefined) for (const v of exprVariants(s.where)) yield { ...s, where: v };
  if (s.having !== undefined) for (const v of exprVariants(s.having)) yield { ...s, having: v };
  for (let i = 0; i < s.items.length; i++) {
    const item = s.items[i]!;
    for (const v of exprVariants(item.e))
      yield { ...s, items: s.items.map((x, j) => (j === i ? { ...item, e: v } : x)) };
  }
}

function* setOpVariants(q: SetOp, fixedWidth: boolean): Generator<Query> {
  yield q.l;
  yield q.r;
  if (!fixedWidth && width(q) > 1) for (let i = 0; i < width(q); i++) yield dropColumn(q, i);
  if (q.orderBy.length > 0) yield { ...q, orderBy: [], limit: undefined };
  if (q.limit !== undefined) yield { ...q, limit: undefined };
  if (q.lParens || q.rParens) yield { ...q, lParens: false, rParens: false };
  if (q.quant !== undefined) yield { ...q, quant: undefined };
  for (const v of queryVariants(q.l, true)) yield { ...q, l: v };
  for (const v of queryVariants(q.r, true)) yield { ...q, r: v };
}

/** Simpler versions of a query. `fixedWidth`: its number of output columns must stay. */
export function* queryVariants(q: Query, fixedWidth: boolean): Generator<Query> {
  if (q.k === 'setop') yield* setOpVariants(q, fixedWidth);
  else yield* selectVariants(q, fixedWidth);
}

/** The names of the tables a query reads (at any depth). */
export function tablesOf(q: Query): Set<string> {
  const out = new Set<string>();
  const walkExpr = (e: Expr): void => {
    for (const c of exprChildren(e)) walkExpr(c);
    for (const sub of exprQueries(e)) walk(sub);
  };
  const walk = (x: Query): void => {
    if (x.k === 'setop') {
      walk(x.l);
      walk(x.r);
      return;
    }
    for (const f of x.from)
      for (const t of fromTables(f)) {
        if (t.k === 'table') out.add(t.name);
        else walk(t.q);
      }
    for (const e of selectExprs(x)) walkExpr(e);
  };
  walk(q);
  return out;
}

/** Smaller data: tables no query reads, then halves, quarters, ... and single rows of each table. */
export function* schemaVariants(schema: Schema, used: ReadonlySet<string>): Generator<Schema> {
  const unused = schema.tables.filter((t) => !used.has(t.name));
  if (unused.length > 0) yield { tables: schema.tables.filter((t) => used.has(t.name)) };
  for (let ti = 0; ti < schema.tables.length; ti++) {
    const t = schema.tables[ti]!;
    const with_ = (rows: string[][]): Schema => ({
      tables: schema.tables.map((x, j): TableDef => (j === ti ? { ...t, rows } : x)),
    });
    for (let size = Math.ceil(t.rows.length / 2); size >= 1; size = size === 1 ? 0 : Math.ceil(size / 2)) {
      for (let start = 0; start < t.rows.length; start += size) {
        yield with_([...t.rows.slice(0, start), ...t.rows.slice(start + size)]);
      }
    }
  }
}

export interface ReduceBudget {
  /** Most candidate checks. */
  checks: number;
  /** Most time, in milliseconds. */
  ms: number;
}

/**
 * Greedy reduction: take the first variant that still fails, start over from it; stop when none
 * does or the budget is spent. Returns the smallest failing case found and how many checks it took.
 */
export async function reduce<C>(
  start: C,
  variants: (c: C) => Iterable<C>,
  fails: (c: C) => Promise<boolean>,
  budget: ReduceBudget,
): Promise<{ result: C; checks: number; complete: boolean }> {
  const deadline = Date.now() + budget.ms;
  let current = start;
  let checks = 0;
  for (;;) {
    let progressed = false;
    for (const v of variants(current)) {
      if (checks >= budget.checks || Date.now() > deadline)
        return { result: current, checks, complete: false };
      checks++;
      if (await fails(v)) {
        current = v;
        progressed = true;
        break;
      }
    }
    if (!progressed) return { result: current, checks, complete: true };
  }
}
