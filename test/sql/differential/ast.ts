import type { Feature } from './features.js';

/**
 * The generator's own syntax tree of queries, rendered to MySQL text. Generating a tree rather than
 * text is what makes a failing query reducible: the reducer (reduce.ts) replaces subtrees and
 * re-renders.
 *
 * Rendering follows MySQL's grammar (sql_yacc.yy: expr > bool_pri > predicate > bit_expr >
 * simple_expr), not operator precedence: an operand is parenthesized only where the grammar does
 * not allow it bare (NOT x as a comparison's operand, a comparison as BETWEEN's), never to make the
 * text group as the tree does. So `a OR b AND c`, `x = y = z`, `- - 3` and `a + b * c ^ d` come out
 * as chains without parentheses, and each engine groups them by its own precedence table: exactly
 * what a precedence bug gets wrong. The tree is then only a recipe for the text; both engines (and
 * every query of one oracle check) see the same text. Explicit `paren` nodes add the parentheses
 * people write by choice.
 */

/** A value type, as far as the generator needs to know it (to pick operands that make sense). */
export type ValueType = 'int' | 'double' | 'string' | 'null';

export type LogicalOp = 'AND' | 'OR' | 'XOR' | '&&' | '||';
export type CompareOp = '=' | '<>' | '!=' | '<' | '<=' | '>' | '>=' | '<=>';
export type ArithOp = '+' | '-' | '*' | '/' | '%' | 'MOD' | 'DIV' | '|' | '&' | '^' | '<<' | '>>';
export type UnaryOp = '-' | '+' | '~' | '!';
export type FnName =
  'COALESCE' | 'IFNULL' | 'NULLIF' | 'IF' | 'ABS' | 'LENGTH' | 'CONCAT' | 'UPPER' | 'LOWER';
export type AggName = 'COUNT' | 'SUM' | 'MIN' | 'MAX' | 'AVG';
export type Quantifier = 'ALL' | 'DISTINCT' | undefined;

export type Expr =
  /** A literal, kept as its text: `-3`, `'abc'`, `2.5e0`, `NULL`. */
  | { k: 'lit'; t: ValueType | 'decimal'; text: string }
  /** A column of a table in scope; `qualified: false` renders the bare name. */
  | { k: 'col'; alias: string; name: string; t: ValueType; qualified: boolean }
  | { k: 'unary'; op: UnaryOp; e: Expr }
  | { k: 'not'; e: Expr }
  | { k: 'logic'; op: LogicalOp; l: Expr; r: Expr }
  | { k: 'cmp'; op: CompareOp; l: Expr; r: Expr }
  | { k: 'arith'; op: ArithOp; l: Expr; r: Expr }
  | { k: 'is'; e: Expr; not: boolean; what: 'NULL' | 'TRUE' | 'FALSE' | 'UNKNOWN' }
  | { k: 'between'; e: Expr; not: boolean; lo: Expr; hi: Expr }
  | { k: 'inList'; e: Expr; not: boolean; list: Expr[] }
  | { k: 'inSub'; e: Expr; not: boolean; q: Query }
  | { k: 'exists'; not: boolean; q: Query }
  | { k: 'scalar'; q: Query }
  | { k: 'like'; e: Expr; not: boolean; pattern: Expr }
  | { k: 'case'; operand: Expr | undefined; whens: { when: Expr; then: Expr }[]; else: Expr | undefined }
  | { k: 'fn'; name: FnName; args: Expr[] }
  /** arg undefined: COUNT(*). */
  | { k: 'agg'; name: AggName; quant: Quantifier; arg: Expr | undefined }
  | { k: 'paren'; e: Expr };

export interface SelectItem {
  e: Expr;
  alias: string | undefined;
}

/** ORDER BY one output column (by index into the select list), written as its position, alias or expression. */
export interface OrderKey {
  index: number;
  desc: boolean;
  form: 'position' | 'alias' | 'expr';
}

export interface Limit {
  count: number;
  offset: number | undefined;
  /** `LIMIT n OFFSET m` or `LIMIT m, n`. */
  comma: boolean;
}

export type TableRef =
  { k: 'table'; name: string; alias: string; as: boolean } | { k: 'derived'; q: Query; alias: string };

export interface Join {
  k: 'join';
  /** JOIN is INNER JOIN written without INNER. */
  type: 'INNER' | 'JOIN' | 'LEFT' | 'CROSS';
  l: FromItem;
  r: TableRef;
  on: Expr | undefined;
}

export type FromItem = TableRef | Join;

export interface Select {
  k: 'select';
  quant: Quantifier;
  items: SelectItem[];
  /** Comma-separated; empty: no FROM. */
  from: FromItem[];
  where: Expr | undefined;
  groupBy: Expr[];
  having: Expr | undefined;
  orderBy: OrderKey[];
  limit: Limit | undefined;
}

export interface SetOp {
  k: 'setop';
  op: 'UNION' | 'INTERSECT' | 'EXCEPT';
  quant: Quantifier;
  l: Query;
  r: Query;
  /** Parenthesize the operands even where the grammar would take them bare. */
  lParens: boolean;
  rParens: boolean;
  orderBy: OrderKey[];
  limit: Limit | undefined;
}

export type Query = Select | SetOp;

// ---------------------------------------------------------------------------------------------
// Rendering

/** Grammar levels, loosest first: what may stand where without parentheses. */
const EXPR = 0;
const BOOL_PRI = 1;
const PREDICATE = 2;
const BIT_EXPR = 3;
const SIMPLE = 4;

interface Rendered {
  text: string;
  level: number;
}

function at(e: Expr, min: number): string {
  const r = renderAt(e);
  return r.level < min ? `(${r.text})` : r.text;
}

function renderAt(e: Expr): Rendered {
  switch (e.k) {
    case 'lit':
      return { text: e.text, level: SIMPLE };
    case 'col':
      return { text: e.qualified ? `${e.alias}.${e.name}` : e.name, level: SIMPLE };
    case 'unary': {
      const inner = at(e.e, SIMPLE);
      // A space keeps `- -3` from reading as a `--` comment opener in some dialects and tools.
      const sep = /^[-+~!]/.test(inner) ? ' ' : '';
      return { text: `${e.op}${sep}${inner}`, level: SIMPLE };
    }
    case 'not':
      return { text: `NOT ${at(e.e, EXPR)}`, level: EXPR };
    case 'logic':
      return { text: `${at(e.l, EXPR)} ${e.op} ${at(e.r, EXPR)}`, level: EXPR };
    case 'cmp':
      return { text: `${at(e.l, BOOL_PRI)} ${e.op} ${at(e.r, PREDICATE)}`, level: BOOL_PRI };
    case 'arith':
      return { text: `${at(e.l, BIT_EXPR)} ${e.op} ${at(e.r, BIT_EXPR)}`, level: BIT_EXPR };
    case 'is': {
      const text = `${at(e.e, BOOL_PRI)} IS ${e.not ? 'NOT ' : ''}${e.what}`;
      return { text, level: e.what === 'NULL' ? BOOL_PRI : EXPR };
    }
    case 'between':
      return {
        text: `${at(e.e, BIT_EXPR)} ${e.not ? 'NOT ' : ''}BETWEEN ${at(e.lo, BIT_EXPR)} AND ${at(e.hi, PREDICATE)}`,
        level: PREDICATE,
      };
    case 'inList':
      return {
        text: `${at(e.e, BIT_EXPR)} ${e.not ? 'NOT ' : ''}IN (${e.list.map((x) => at(x, EXPR)).join(', ')})`,
        level: PREDICATE,
      };
    case 'inSub':
      return {
        text: `${at(e.e, BIT_EXPR)} ${e.not ? 'NOT ' : ''}IN (${renderQuery(e.q)})`,
        level: PREDICATE,
      };
    case 'exists':
      return { text: `${e.not ? 'NOT ' : ''}EXISTS (${renderQuery(e.q)})`, level: e.not ? EXPR : SIMPLE };
    case 'scalar':
      return { text: `(${renderQuery(e.q)})`, level: SIMPLE };
    case 'like':
      return {
        text: `${at(e.e, BIT_EXPR)} ${e.not ? 'NOT ' : ''}LIKE ${at(e.pattern, SIMPLE)}`,
        level: PREDICATE,
      };
    case 'case': {
      const parts = ['CASE'];
      if (e.operand !== undefined) parts.push(at(e.operand, EXPR));
      for (const w of e.whens) parts.push(`WHEN ${at(w.when, EXPR)} THEN ${at(w.then, EXPR)}`);
      if (e.else !== undefined) parts.push(`ELSE ${at(e.else, EXPR)}`);
      parts.push('END');
      return { text: parts.join(' '), level: SIMPLE };
    }
    case 'fn':
      return { text: `${e.name}(${e.args.map((a) => at(a, EXPR)).join(', ')})`, level: SIMPLE };
    case 'agg': {
      const q = e.quant === undefined ? '' : `${e.quant} `;
      return { text: `${e.name}(${e.arg === undefined ? '*' : q + at(e.arg, EXPR)})`, level: SIMPLE };
    }
    case 'paren':
      return { text: `(${at(e.e, EXPR)})`, level: SIMPLE };
  }
}

export function renderExpr(e: Expr): string {
  return renderAt(e).text;
}

function renderTableRef(t: TableRef): string {
  if (t.k === 'table') return t.alias === t.name ? t.name : `${t.name}${t.as ? ' AS' : ''} ${t.alias}`;
  return `(${renderQuery(t.q)}) AS ${t.alias}`;
}

function renderFrom(f: FromItem): string {
  if (f.k !== 'join') return renderTableRef(f);
  const kw = { INNER: 'INNER JOIN', JOIN: 'JOIN', LEFT: 'LEFT JOIN', CROSS: 'CROSS JOIN' }[f.type];
  const on = f.on === undefined ? '' : ` ON ${renderExpr(f.on)}`;
  return `${renderFrom(f.l)} ${kw} ${renderTableRef(f.r)}${on}`;
}

function renderOrder(keys: readonly OrderKey[], items: readonly SelectItem[] | undefined): string {
  if (keys.length === 0) return '';
  const parts = keys.map((key) => {
    const item = items?.[key.index];
    let text = String(key.index + 1);
    if (key.form === 'alias' && item?.alias !== undefined) text = item.alias;
    // An expression without columns stays a position: `ORDER BY 2` is a position, `ORDER BY -1`
    // an error in MariaDB, and sorting by a constant sorts nothing.
    else if (key.form === 'expr' && item !== undefined && hasColumn(item.e)) text = renderExpr(item.e);
    return key.desc ? `${text} DESC` : text;
  });
  return ` ORDER BY ${parts.join(', ')}`;
}

function hasColumn(e: Expr): boolean {
  return e.k === 'col' || exprChildren(e).some(hasColumn);
}

function renderLimit(l: Limit | undefined): string {
  if (l === undefined) return '';
  if (l.offset === undefined) return ` LIMIT ${l.count}`;
  return l.comma ? ` LIMIT ${l.offset}, ${l.count}` : ` LIMIT ${l.count} OFFSET ${l.offset}`;
}

function renderSelect(s: Select): string {
  let text = 'SELECT ';
  if (s.quant !== undefined) text += `${s.quant} `;
  text += s.items.map((i) => renderExpr(i.e) + (i.alias === undefined ? '' : ` AS ${i.alias}`)).join(', ');
  if (s.from.length > 0) text += ` FROM ${s.from.map(renderFrom).join(', ')}`;
  if (s.where !== undefined) text += ` WHERE ${renderExpr(s.where)}`;
  if (s.groupBy.length > 0) text += ` GROUP BY ${s.groupBy.map(renderExpr).join(', ')}`;
  if (s.having !== undefined) text += ` HAVING ${renderExpr(s.having)}`;
  return text + renderOrder(s.orderBy, s.items) + renderLimit(s.limit);
}

/** Whether a set operation's operand must be parenthesized: it has its own ORDER BY or LIMIT. */
function needsParens(q: Query): boolean {
  return q.orderBy.length > 0 || q.limit !== undefined;
}

export function renderQuery(q: Query): string {
  if (q.k === 'select') return renderSelect(q);
  const side = (x: Query, parens: boolean): string =>
    parens || needsParens(x) ? `(${renderQuery(x)})` : renderQuery(x);
  const op = q.quant === undefined ? q.op : `${q.op} ${q.quant}`;
  // Positions only: a set operation's output has the first branch's names, which the reducer may drop.
  return `${side(q.l, q.lParens)} ${op} ${side(q.r, q.rParens)}${renderOrder(q.orderBy, undefined)}${renderLimit(q.limit)}`;
}

// ---------------------------------------------------------------------------------------------
// Walking

/** The expressions directly inside e (not inside its subqueries). */
export function exprChildren(e: Expr): Expr[] {
  switch (e.k) {
    case 'lit':
    case 'col':
    case 'exists':
    case 'scalar':
      return [];
    case 'unary':
    case 'not':
    case 'paren':
    case 'is':
      return [e.e];
    case 'logic':
    case 'cmp':
    case 'arith':
      return [e.l, e.r];
    case 'between':
      return [e.e, e.lo, e.hi];
    case 'inList':
      return [e.e, ...e.list];
    case 'inSub':
      return [e.e];
    case 'like':
      return [e.e, e.pattern];
    case 'case': {
      const out: Expr[] = [];
      if (e.operand !== undefined) out.push(e.operand);
      for (const w of e.whens) out.push(w.when, w.then);
      if (e.else !== undefined) out.push(e.else);
      return out;
    }
    case 'fn':
      return e.args;
    case 'agg':
      return e.arg === undefined ? [] : [e.arg];
  }
}

/** The subqueries directly inside e. */
export function exprQueries(e: Expr): Query[] {
  return e.k === 'inSub' || e.k === 'exists' || e.k === 'scalar' ? [e.q] : [];
}

export function fromTables(f: FromItem): TableRef[] {
  return f.k === 'join' ? [...fromTables(f.l), f.r] : [f];
}

/** The expressions of a SELECT, in every clause (ON conditions included). */
export function selectExprs(s: Select): Expr[] {
  const out: Expr[] = s.items.map((i) => i.e);
  const onOf = (f: FromItem): void => {
    if (f.k !== 'join') return;
    onOf(f.l);
    if (f.on !== undefined) out.push(f.on);
  };
  s.from.forEach(onOf);
  if (s.where !== undefined) out.push(s.where);
  out.push(...s.groupBy);
  if (s.having !== undefined) out.push(s.having);
  return out;
}

/**
 * A copy of q with `f` applied to every expression, innermost first, in every clause and every
 * subquery (derived tables and ON conditions included). `f` returns its argument to keep it.
 * `replace`, when given, is asked first for every query (q itself, set operations' branches,
 * subqueries, derived tables): a query it returns stands in for that one, as it is.
 */
export function mapQuery(q: Query, f: (e: Expr) => Expr, replace?: (q: Query) => Query | undefined): Query {
  const stand = replace?.(q);
  if (stand !== undefined) return stand;
  const sub = (x: Query): Query => mapQuery(x, f, replace);
  const expr = (e: Expr): Expr => {
    let x: Expr = e;
    switch (e.k) {
      case 'lit':
      case 'col':
        break;
      case 'exists':
      case 'scalar':
        x = { ...e, q: sub(e.q) };
        break;
      case 'inSub':
        x = { ...e, e: expr(e.e), q: sub(e.q) };
        break;
      case 'unary':
      case 'not':
      case 'paren':
      case 'is':
        x = { ...e, e: expr(e.e) };
        break;
      case 'logic':
      case 'cmp':
      case 'arith':
        x = { ...e, l: expr(e.l), r: expr(e.r) };
        break;
      case 'between':
        x = { ...e, e: expr(e.e), lo: expr(e.lo), hi: expr(e.hi) };
        break;
      case 'inList':
        x = { ...e, e: expr(e.e), list: e.list.map(expr) };
        break;
      case 'like':
        x = { ...e, e: expr(e.e), pattern: expr(e.pattern) };
        break;
      case 'case':
        x = {
          ...e,
          operand: e.operand === undefined ? undefined : expr(e.operand),
          whens: e.whens.map((w) => ({ when: expr(w.when), then: expr(w.then) })),
          else: e.else === undefined ? undefined : expr(e.else),
        };
        break;
      case 'fn':
        x = { ...e, args: e.args.map(expr) };
        break;
      case 'agg':
        x = { ...e, arg: e.arg === undefined ? undefined : expr(e.arg) };
        break;
    }
    return f(x);
  };
  const ref = (t: TableRef): TableRef => (t.k === 'derived' ? { ...t, q: sub(t.q) } : t);
  const from = (x: FromItem): FromItem =>
    x.k === 'join'
      ? { ...x, l: from(x.l), r: ref(x.r), on: x.on === undefined ? undefined : expr(x.on) }
      : ref(x);
  if (q.k === 'setop') return { ...q, l: sub(q.l), r: sub(q.r) };
  return {
    ...q,
    items: q.items.map((i) => ({ ...i, e: expr(i.e) })),
    from: q.from.map(from),
    where: q.where === undefined ? undefined : expr(q.where),
    groupBy: q.groupBy.map(expr),
    having: q.having === undefined ? undefined : expr(q.having),
  };
}

/** The number of output columns of a query. */
export function width(q: Query): number {
  return q.k === 'select' ? q.items.length : width(q.l);
}

/** Rough static type of an expression (for feature detection: numbers compared with strings). */
export function typeOf(e: Expr): ValueType | 'unknown' {
  switch (e.k) {
    case 'lit':
      return e.t === 'decimal' ? 'double' : e.t;
    case 'col':
      return e.t;
    case 'paren':
      return typeOf(e.e);
    case 'unary':
    case 'not':
    case 'logic':
    case 'cmp':
    case 'is':
    case 'between':
    case 'inList':
    case 'inSub':
    case 'exists':
    case 'like':
      return 'int';
    case 'arith':
      return typeOf(e.l) === 'double' || typeOf(e.r) === 'double' ? 'double' : 'int';
    case 'fn':
      return e.name === 'CONCAT' || e.name === 'UPPER' || e.name === 'LOWER'
        ? 'string'
        : e.name === 'LENGTH'
          ? 'int'
          : 'unknown';
    case 'agg':
      return e.name === 'COUNT'
        ? 'int'
        : e.name === 'MIN' || e.name === 'MAX'
          ? e.arg
            ? typeOf(e.arg)
            : 'int'
          : 'double';
    case 'case':
    case 'scalar':
      return 'unknown';
  }
}

function mixed(a: Expr, b: Expr): boolean {
  const x = typeOf(a);
  const y = typeOf(b);
  const num = (t: string): boolean => t === 'int' || t === 'double';
  return (num(x) && y === 'string') || (x === 'string' && num(y));
}

/** The features a query uses, read from its tree (so a reduced query names what it still needs). */
export function featuresOf(q: Query): Set<Feature> {
  const out = new Set<Feature>();
  // Aliases of each enclosing SELECT's FROM, innermost last: a column of an outer one is a correlation.
  const scopes: Set<string>[] = [];
  const walkQuery = (x: Query): void => {
    if (x.k === 'setop') {
      const kind = `${x.op}:${x.quant === 'ALL' ? 'ALL' : ''}`;
      const f: Record<string, Feature> = {
        'UNION:': 'union',
        'UNION:ALL': 'unionAll',
        'INTERSECT:': 'intersect',
        'INTERSECT:ALL': 'intersectAll',
        'EXCEPT:': 'except',
        'EXCEPT:ALL': 'exceptAll',
      };
      out.add(f[kind]!);
      if (x.lParens || x.rParens || needsParens(x.l) || needsParens(x.r)) out.add('setOpParens');
      if (x.orderBy.length > 0 || x.limit !== undefined) out.add('orderLimit');
      walkQuery(x.l);
      walkQuery(x.r);
      return;
    }
    const aliases = new Set<string>();
    for (const f of x.from) for (const t of fromTables(f)) aliases.add(t.alias);
    if (x.from.length > 1) out.add('commaJoin');
    const joins = (f: FromItem): void => {
      if (f.k === 'derived') {
        out.add('derivedTables');
        // A derived table cannot see the query around it (no LATERAL): a scope of its own.
        const saved = scopes.splice(0);
        walkQuery(f.q);
        scopes.push(...saved);
      }
      if (f.k !== 'join') return;
      joins(f.l);
      joins(f.r);
      out.add(f.type === 'LEFT' ? 'leftJoin' : f.type === 'CROSS' ? 'crossJoin' : 'innerJoin');
    };
    x.from.forEach(joins);
    if (x.quant === 'DISTINCT') out.add('distinct');
    if (x.quant === 'ALL') out.add('selectAll');
    if (x.groupBy.length > 0) out.add('groupBy');
    if (x.having !== undefined) out.add('having');
    if (x.orderBy.length > 0 || x.limit !== undefined) out.add('orderLimit');
    scopes.push(aliases);
    for (const e of selectExprs(x)) walkExpr(e);
    scopes.pop();
  };
  const walkExpr = (e: Expr): void => {
    switch (e.k) {
      case 'lit':
        if (e.t === 'double') out.add('doubleLiterals');
        if (e.t === 'decimal') out.add('decimalLiterals');
        if (e.t === 'string' && / '$/.test(e.text)) out.add('trailingSpaces');
        break;
      case 'col': {
        const inner = scopes[scopes.length - 1];
        if (inner !== undefined && !inner.has(e.alias) && scopes.some((s) => s.has(e.alias)))
          out.add('correlated');
        break;
      }
      case 'unary':
        out.add(e.op === '!' ? 'logicalSymbols' : e.op === '~' ? 'bitOps' : 'unaryChains');
        break;
      case 'logic':
        if (e.op === 'XOR') out.add('xor');
        if (e.op === '&&' || e.op === '||') out.add('logicalSymbols');
        break;
      case 'cmp':
        if (e.op === '<=>') out.add('nullSafeEqual');
        if (mixed(e.l, e.r)) out.add('mixedTypes');
        break;
      case 'arith': {
        const f: Record<ArithOp, Feature> = {
          '+': 'arithmetic',
          '-': 'arithmetic',
          '*': 'arithmetic',
          '/': 'division',
          '%': 'modulo',
          MOD: 'modulo',
          DIV: 'intDiv',
          '|': 'bitOps',
          '&': 'bitOps',
          '^': 'bitOps',
          '<<': 'bitOps',
          '>>': 'bitOps',
        };
        out.add(f[e.op]);
        break;
      }
      case 'is':
        if (e.what !== 'NULL') out.add('isBoolean');
        break;
      case 'between':
        out.add('between');
        if (mixed(e.e, e.lo) || mixed(e.e, e.hi)) out.add('mixedTypes');
        break;
      case 'inList':
        out.add('inList');
        if (e.list.some((x) => mixed(e.e, x))) out.add('mixedTypes');
        break;
      case 'inSub':
        out.add('inSubquery');
        break;
      case 'exists':
        out.add('exists');
        break;
      case 'scalar':
        out.add('scalarSubquery');
        break;
      case 'like':
        out.add('like');
        break;
      case 'case':
        out.add('caseExpr');
        break;
      case 'fn':
        out.add('functions');
        break;
      case 'agg':
        out.add('aggregates');
        if (e.quant === 'DISTINCT') out.add('aggregateDistinct');
        if (e.quant === 'ALL') out.add('aggregateAll');
        break;
      case 'not':
      case 'paren':
        break;
    }
    for (const c of exprChildren(e)) walkExpr(c);
    for (const sub of exprQueries(e)) walkQuery(sub);
  };
  walkQuery(q);
  return out;
}
