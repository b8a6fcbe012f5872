/**
 * The binder: syntax-tree expressions to executable expressions (`expr.ts`), with names resolved
 * against the columns of a query level and, for correlated subqueries, of the levels around it.
 * Also the walks over syntax trees that the planner and the statements need (conjuncts, aggregates,
 * subqueries, the columns a statement mentions).
 */
import { TidemarkError } from '../errors.js';
import type * as A from './parser/ast.js';
import {
  arithmetic,
  asText,
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
  markText,
  negate,
  not,
  outerRef,
  param,
  rowwise,
  sessionFact,
  variable,
  type Expr,
} from './expr.js';
import { bitwise64, Decimal, parseDate, toText, toUint64, type SqlValue } from './values.js';
import { canonicalInt, DECIMAL_MAX_PRECISION, INT64_MAX, INT64_MIN, UINT64_MAX } from '../util/decimal.js';

const nullOr = <T, R>(x: T | null, f: (x: T) => R): R | null => (x === null ? null : f(x));

export function unsupported(what: string): TidemarkError {
  return new TidemarkError('INVALID_ARGUMENT', `${what} is not supported`, {
    details: { unsupported: what, mysqlErrno: 1235 },
  });
}

export function unknownColumn(name: string): TidemarkError {
  return new TidemarkError('SCHEMA', `unknown column ${name}`, {
    details: { column: name, mysqlErrno: 1054 },
  });
}

function operandColumns(n: number): TidemarkError {
  return new TidemarkError('INVALID_ARGUMENT', `operand should contain ${n} column(s)`, {
    details: { mysqlErrno: 1241 },
  });
}

export interface ColInfo {
  /** The table alias it comes from (undefined for computed columns). */
  table: string | undefined;
  name: string;
  /**
   * The second of two columns a USING or NATURAL join merged: found when qualified by its table,
   * not by its name alone (which means the merged column, as MySQL has it).
   */
  merged?: boolean;
  /** String-typed (see Expr.textual). */
  textual?: boolean;
}

/** Name resolution within one layout of columns. */
export interface Resolver {
  /** Index of the column, undefined when absent; throws when ambiguous. */
  resolve(table: string | undefined, name: string): number | undefined;
  /** Whether column i is string-typed (see Expr.textual). */
  textual?(i: number): boolean;
  /** A replacement for a whole expression (aggregates and GROUP BY expressions after grouping). */
  intercept?(ast: A.Expr, level: Level): Expr | undefined;
}

export class LayoutResolver implements Resolver {
  constructor(readonly cols: readonly (ColInfo | undefined)[]) {}
  resolve(table: string | undefined, name: string): number | undefined {
    const lname = name.toLowerCase();
    const ltable = table?.toLowerCase();
    let found: number | undefined;
    for (let i = 0; i < this.cols.length; i++) {
      const c = this.cols[i];
      if (c === undefined || c.name.toLowerCase() !== lname) continue;
      if (ltable !== undefined ? c.table?.toLowerCase() !== ltable : c.merged === true) continue;
      if (found !== undefined) {
        throw new TidemarkError('SCHEMA', `column ${name} is ambiguous`, {
          details: { column: name, mysqlErrno: 1052 },
        });
      }
      found = i;
    }
    return found;
  }
  textual(i: number): boolean {
    return this.cols[i]?.textual === true;
  }
}

/** A resolver that finds nothing (constant expressions: DEFAULT values, SET, LIMIT). */
export const NO_COLUMNS: Resolver = { resolve: () => undefined };

/** One query level: how names resolve in it, and what of its parent's row it reads. */
export interface Level {
  resolver: Resolver;
  parent: Level | undefined;
  /** Columns of the parent level's current row read by this level (or levels inside it). */
  parentUses: Set<number>;
}

export function constantLevel(): Level {
  return { resolver: NO_COLUMNS, parent: undefined, parentUses: new Set() };
}

// ---- walks over syntax trees ----

/** The queries directly inside an expression node (its subqueries). */
function nodeQuery(e: A.Expr): A.Query | undefined {
  switch (e.kind) {
    case 'scalarQuery':
    case 'exists':
    case 'inQuery':
    case 'quantified':
      return e.query;
  }
  return undefined;
}

/** The child expressions of a node (not into subqueries). */
export function children(e: A.Expr): A.Expr[] {
  switch (e.kind) {
    case 'unary':
    case 'collate':
    case 'cast':
    case 'convert':
      return [e.arg];
    case 'binary':
      return [e.left, e.right];
    case 'quantified':
      return [e.left];
    case 'isNull':
    case 'isTruth':
      return [e.arg];
    case 'between':
      return [e.arg, e.low, e.high];
    case 'inList':
      return [e.arg, ...e.list];
    case 'inQuery':
      return [e.arg];
    case 'like':
      return e.escape !== undefined ? [e.arg, e.pattern, e.escape] : [e.arg, e.pattern];
    case 'regexp':
      return [e.arg, e.pattern];
    case 'row':
      return e.items;
    case 'case': {
      const out: A.Expr[] = [];
      if (e.operand !== undefined) out.push(e.operand);
      for (const w of e.whens) out.push(w.when, w.then);
      if (e.else !== undefined) out.push(e.else);
      return out;
    }
    case 'call':
      return e.args;
    case 'aggregate':
      return [...e.args, ...(e.orderBy ?? []).map((o) => o.expr)];
    case 'interval':
      return [e.value];
  }
  return [];
}

/** Visit every node of an expression, not into subqueries; `visit` returning false skips children. */
export function walk(e: A.Expr | undefined, visit: (node: A.Expr) => boolean | void): void {
  if (e === undefined) return;
  if (visit(e) === false) return;
  for (const c of children(e)) walk(c, visit);
}

export function hasAggregate(e: A.Expr | undefined): boolean {
  let found = false;
  walk(e, (n) => {
    if (n.kind === 'aggregate') found = true;
    return !found;
  });
  return found;
}

export function hasSubquery(e: A.Expr | undefined): boolean {
  let found = false;
  walk(e, (n) => {
    if (nodeQuery(n) !== undefined) found = true;
    return !found;
  });
  return found;
}

/** Split at AND. */
export function conjuncts(e: A.Expr | undefined): A.Expr[] {
  if (e === undefined) return [];
  if (e.kind === 'binary' && e.op === 'AND') return [...conjuncts(e.left), ...conjuncts(e.right)];
  return [e];
}

/** What a statement's columns may come from: every name it mentions, at any level, and its stars. */
export interface Mentions {
  names: Set<string>;
  /** `*` without a table (every column of every table), or a NATURAL join. */
  all: boolean;
  /** Tables named in `t.*`. */
  tables: Set<string>;
}

export function mentions(): Mentions {
  return { names: new Set(), all: false, tables: new Set() };
}

/** Add what an expression mentions, into its subqueries too. */
export function mentionExpr(e: A.Expr | undefined, out: Mentions): void {
  walk(e, (n) => {
    if (n.kind === 'column') out.names.add(n.name.toLowerCase());
    else if (n.kind === 'star') {
      if (n.table === undefined) out.all = true;
      else out.tables.add(n.table.toLowerCase());
    }
    const q = nodeQuery(n);
    if (q !== undefined) mentionQuery(q, out);
  });
}

export function mentionQuery(q: A.Query, out: Mentions): void {
  for (const c of q.with?.ctes ?? []) mentionQuery(c.query, out);
  mentionTerm(q.body, out);
  for (const o of q.orderBy) mentionExpr(o.expr, out);
  if (q.limit !== undefined) {
    mentionExpr(q.limit.count, out);
    mentionExpr(q.limit.offset, out);
  }
}

function mentionTerm(t: A.QueryTerm, out: Mentions): void {
  switch (t.kind) {
    case 'select':
      for (const i of t.items) {
        if (i.kind === 'star') mentionExpr(i, out);
        else mentionExpr(i.expr, out);
      }
      for (const f of t.from) mentionRef(f, out);
      mentionExpr(t.where, out);
      for (const g of t.groupBy) mentionExpr(g, out);
      mentionExpr(t.having, out);
      return;
    case 'setop':
      mentionTerm(t.left, out);
      mentionTerm(t.right, out);
      return;
    case 'nested':
      mentionQuery(t.query, out);
      return;
    case 'values':
      for (const r of t.rows) for (const e of r) mentionExpr(e, out);
  }
}

function mentionRef(r: A.TableRef, out: Mentions): void {
  if (r.kind === 'derived') mentionQuery(r.query, out);
  else if (r.kind === 'join') {
    mentionRef(r.left, out);
    mentionRef(r.right, out);
    mentionExpr(r.on, out);
    for (const u of r.using ?? []) out.names.add(u.toLowerCase());
    if (r.natural) out.all = true;
  }
}

// ---- binding ----

const COMPARE_OPS = new Set(['=', '<=>', '<>', '<', '<=', '>', '>=']);
const ARITH_OPS = new Set(['+', '-', '*', '/', 'DIV', '%']);
const BIT_OPS = new Set(['|', '&', '^', '<<', '>>']);

/** Collations whose comparisons are the binary ones this engine makes. */
const BINARY_COLLATION = /(_bin|^binary)$/i;

export type SubqueryKind =
  | { kind: 'scalar' }
  | { kind: 'exists'; negated: boolean }
  | { kind: 'in'; lhs: Expr; negated: boolean }
  | { kind: 'quantified'; lhs: Expr; op: string; all: boolean };

export abstract class ExprBinder {
  /** Plan a subquery as a level under `level`, as an expression of `kind`. */
  abstract subquery(query: A.Query, level: Level, kind: SubqueryKind): Expr;

  /** Resolve a column through this level and the enclosing ones. */
  column(ast: A.ColumnRef, level: Level): Expr {
    const table = ast.table;
    const text = table !== undefined ? `${table}.${ast.name}` : ast.name;
    let l: Level | undefined = level;
    let depth = 0;
    let child: Level | undefined;
    while (l !== undefined) {
      const i = l.resolver.resolve(table, ast.name);
      if (i !== undefined) {
        let e: Expr;
        if (depth === 0) e = columnRef(i, text);
        else {
          child!.parentUses.add(i);
          e = outerRef(depth, i, text);
        }
        return l.resolver.textual?.(i) === true ? markText(e) : e;
      }
      child = l;
      l = l.parent;
      depth++;
    }
    throw unknownColumn(text);
  }

  /** Bind an expression at a level. */
  expr(ast: A.Expr, level: Level): Expr {
    const hooked = level.resolver.intercept?.(ast, level);
    if (hooked !== undefined) return hooked;
    switch (ast.kind) {
      case 'column':
        return this.column(ast, level);
      case 'number': {
        const v = numberLiteral(ast.text, ast.form);
        const e = literal(v, ast.text, ast.form === 'float');
        return typeof v === 'bigint' && v > INT64_MAX ? { ...e, unsigned: true } : e;
      }
      case 'string':
        if (ast.charset === 'binary')
          return literal(new Uint8Array(Buffer.from(ast.value, 'utf8')), `_binary'${ast.value}'`);
        return markText(literal(ast.value, `'${ast.value}'`));
      case 'hex':
        return literal(new Uint8Array(Buffer.from(ast.hex, 'hex')), `x'${ast.hex}'`);
      case 'bits':
        return literal(ast.bits === '' ? 0 : Number(BigInt(`0b${ast.bits}`)), `b'${ast.bits}'`);
      case 'bool':
        return literal(ast.value ? 1 : 0, ast.value ? 'TRUE' : 'FALSE');
      case 'null':
        return literal(null, 'NULL');
      case 'typed': {
        const d = parseDate(ast.value);
        if (d === undefined || ast.type === 'TIME')
          throw new TidemarkError('INVALID_ARGUMENT', `invalid ${ast.type} ${ast.value}`);
        return literal(d, `${ast.type} '${ast.value}'`);
      }
      case 'param':
        return param(ast.index);
      case 'variable':
        return variable(ast.system, ast.name);
      case 'default':
        throw unsupported('DEFAULT here');
      case 'unary':
        return this.unary(ast, level);
      case 'binary':
        return this.binary(ast, level);
      case 'quantified':
        if (ast.left.kind === 'row') throw unsupported('a row compared with ALL/ANY');
        return this.subquery(ast.query, level, {
          kind: 'quantified',
          lhs: this.expr(ast.left, level),
          op: ast.op,
          all: ast.quantifier === 'ALL',
        });
      case 'isNull':
        return isNull(this.scalar(ast.arg, level), ast.not);
      case 'isTruth': {
        const e = this.scalar(ast.arg, level);
        return ast.value === null ? isNull(e, ast.not) : isTruth(e, ast.value, ast.not);
      }
      case 'between':
        return between(
          this.scalar(ast.arg, level),
          this.scalar(ast.low, level),
          this.scalar(ast.high, level),
          ast.not,
        );
      case 'inList':
        return this.inList(ast, level);
      case 'inQuery':
        if (ast.arg.kind === 'row') throw unsupported('a row IN (subquery)');
        return this.subquery(ast.query, level, {
          kind: 'in',
          lhs: this.expr(ast.arg, level),
          negated: ast.not,
        });
      case 'like': {
        let escape: string | undefined;
        if (ast.escape !== undefined) {
          const e = this.expr(ast.escape, level);
          if (typeof e.literal !== 'string' || [...e.literal].length !== 1)
            throw new TidemarkError('INVALID_ARGUMENT', 'ESCAPE takes one character', {
              details: { mysqlErrno: 1210 },
            });
          escape = e.literal;
        }
        return like(this.scalar(ast.arg, level), this.scalar(ast.pattern, level), ast.not, escape);
      }
      case 'regexp':
        return this.regexp(ast, level);
      case 'exists':
        return this.subquery(ast.query, level, { kind: 'exists', negated: false });
      case 'scalarQuery':
        return this.subquery(ast.query, level, { kind: 'scalar' });
      case 'row':
        throw operandColumns(1);
      case 'case': {
        const whens = ast.whens.map(
          (w) => [this.scalar(w.when, level), this.scalar(w.then, level)] as [Expr, Expr],
        );
        const otherwise = ast.else === undefined ? undefined : this.scalar(ast.else, level);
        const e = caseWhen(
          ast.operand === undefined ? undefined : this.scalar(ast.operand, level),
          whens,
          otherwise,
        );
        return [...whens.map((w) => w[1]), otherwise].some((r) => r?.textual === true) ? asText(e) : e;
      }
      case 'cast': {
        const t = ast.type;
        const name = t.name === 'SIGNED' && t.unsigned === true ? 'UNSIGNED' : t.name;
        const decimal = t.name === 'DECIMAL' || t.name === 'NUMERIC';
        const e = cast(
          this.scalar(ast.arg, level),
          name,
          t.scale ?? (decimal ? 0 : undefined),
          decimal ? (t.length ?? 10) : undefined,
        );
        return name === 'CHAR' ? markText(e) : e;
      }
      case 'convert':
        // Every string is utf8mb4 here: converting between character sets changes nothing.
        return this.scalar(ast.arg, level);
      case 'call':
        return this.call(ast, level);
      case 'aggregate':
        throw new TidemarkError('INVALID_ARGUMENT', `invalid use of the aggregate ${ast.name}`, {
          details: { mysqlErrno: 1111 },
        });
      case 'collate':
        if (!BINARY_COLLATION.test(ast.collation))
          throw unsupported(`COLLATE ${ast.collation} (strings compare as utf8mb4_bin)`);
        return this.scalar(ast.arg, level);
      case 'interval':
        throw unsupported('INTERVAL arithmetic');
      case 'star':
        throw new TidemarkError('INVALID_ARGUMENT', '* is allowed in a select list and COUNT(*) only');
    }
  }

  /** An expression that must be one value (not a row). */
  private scalar(ast: A.Expr, level: Level): Expr {
    if (ast.kind === 'row') throw operandColumns(1);
    return this.expr(ast, level);
  }

  private unary(ast: A.Unary, level: Level): Expr {
    const e = this.scalar(ast.arg, level);
    switch (ast.op) {
      case '-':
        // A minus before a number literal makes a negative literal, typed as MySQL types it:
        // -9223372036854775808 is a BIGINT, -9223372036854775809 a DECIMAL.
        if (ast.arg.kind === 'number' && ast.arg.form !== 'float')
          return literal(numberLiteral(`-${ast.arg.text}`, ast.arg.form), `-${e.text}`);
        if (typeof e.literal === 'number')
          return literal(-e.literal, `-${e.text}`, ast.arg.kind === 'number' && ast.arg.form === 'float');
        return negate(e);
      case '+':
        return e;
      case 'NOT':
      case '!':
        return not(e);
      case '~':
        return this.bitTree(ast, level);
      case 'BINARY':
        // Strings compare as utf8mb4_bin already: BINARY changes no comparison.
        return e;
    }
  }

  private binary(ast: A.Binary, level: Level): Expr {
    const op = ast.op;
    if (ast.left.kind === 'row' || ast.right.kind === 'row') return this.rowComparison(ast, level);
    const l = this.expr(ast.left, level);
    const r = this.expr(ast.right, level);
    if (op === 'AND' || op === 'OR' || op === 'XOR') return logical(op, l, r);
    if (ARITH_OPS.has(op)) return arithmetic(op, l, r);
    if (COMPARE_OPS.has(op)) return comparison(op, l, r);
    if (BIT_OPS.has(op)) return this.bitTree(ast, level);
    throw unsupported(`the operator ${op}`);
  }

  /**
   * A tree of bit operators (| & ^ << >> ~) as one function over unsigned 64-bit integers, each
   * operand read as MySQL's bit operators read it and only the result made a number: a step past
   * 2^53 (~4, 1 << 60 | 1) keeps its low bits for the next (7 & ~4 is 3).
   */
  private bitTree(ast: A.Unary | A.Binary, level: Level): Expr {
    const leaves: Expr[] = [];
    const build = (a: A.Expr): { text: string; f: (vals: SqlValue[]) => bigint | null } => {
      if (a.kind === 'unary' && a.op === '+') return build(a.arg);
      if (a.kind === 'unary' && a.op === '~') {
        const x = build(a.arg);
        return { text: `~${x.text}`, f: (v) => nullOr(x.f(v), (n) => bitwise64('~', n, 0n)) };
      }
      if (a.kind === 'binary' && BIT_OPS.has(a.op) && a.left.kind !== 'row' && a.right.kind !== 'row') {
        const l = build(a.left);
        const r = build(a.right);
        return {
          text: `${l.text} ${a.op} ${r.text}`,
          f: (v) => nullOr(l.f(v), (x) => nullOr(r.f(v), (y) => bitwise64(a.op, x, y))),
        };
      }
      const e = this.scalar(a, level);
      const i = leaves.length;
      leaves.push(e);
      return { text: e.text, f: (v) => (v[i] === null ? null : toUint64(v[i]!)) };
    };
    const tree = build(ast);
    return { ...rowwise(tree.text, leaves, (v) => nullOr(tree.f(v), canonicalInt), true), unsigned: true };
  }

  /** (a, b) = (c, d) and the other comparisons of rows, written out column by column. */
  private rowComparison(ast: A.Binary, level: Level): Expr {
    const op = ast.op;
    if (ast.left.kind !== 'row' || ast.right.kind !== 'row') {
      throw operandColumns(
        ast.left.kind === 'row' ? ast.left.items.length : (ast.right as A.RowExpr).items.length,
      );
    }
    const ls = ast.left.items;
    const rs = ast.right.items;
    if (ls.length !== rs.length) throw operandColumns(ls.length);
    if (!COMPARE_OPS.has(op)) throw operandColumns(1);
    const pair = (i: number, o: string): A.Expr => ({
      kind: 'binary',
      at: ast.at,
      op: o as A.BinaryOp,
      left: ls[i]!,
      right: rs[i]!,
    });
    const all = (o: string, joiner: 'AND' | 'OR'): A.Expr =>
      ls
        .slice(1)
        .reduce<A.Expr>(
          (acc, _, k) => ({ kind: 'binary', at: ast.at, op: joiner, left: acc, right: pair(k + 1, o) }),
          pair(0, o),
        );
    if (op === '=' || op === '<=>') return this.expr(all(op, 'AND'), level);
    if (op === '<>') return this.expr(all('<>', 'OR'), level);
    // (a, b) < (c, d): a < c OR (a = c AND b < d), and so on down the columns.
    const strict = op === '<' || op === '<=' ? '<' : '>';
    const build = (i: number): A.Expr => {
      if (i === ls.length - 1) return pair(i, op);
      return {
        kind: 'binary',
        at: ast.at,
        op: 'OR',
        left: pair(i, strict),
        right: { kind: 'binary', at: ast.at, op: 'AND', left: pair(i, '='), right: build(i + 1) },
      };
    };
    return this.expr(build(0), level);
  }

  private inList(ast: A.InList, level: Level): Expr {
    if (ast.arg.kind === 'row') {
      // (a, b) IN ((1, 2), (3, 4)): an OR of row equalities.
      const width = ast.arg.items.length;
      let e: A.Expr | undefined;
      for (const item of ast.list) {
        if (item.kind !== 'row' || item.items.length !== width) throw operandColumns(width);
        const eq: A.Expr = { kind: 'binary', at: ast.at, op: '=', left: ast.arg, right: item };
        e = e === undefined ? eq : { kind: 'binary', at: ast.at, op: 'OR', left: e, right: eq };
      }
      const bound = this.expr(e!, level);
      return ast.not ? not(bound) : bound;
    }
    return inList(
      this.scalar(ast.arg, level),
      ast.list.map((v) => this.scalar(v, level)),
      ast.not,
    );
  }

  private regexp(ast: A.Regexp, level: Level): Expr {
    const e = this.scalar(ast.arg, level);
    const p = this.scalar(ast.pattern, level);
    let cached: string | undefined;
    let re: RegExp | undefined;
    return rowwise(`${e.text} ${ast.not ? 'NOT ' : ''}REGEXP ${p.text}`, [e, p], ([a, b]) => {
      if (a === null || b === null) return null;
      const source = toText(b!);
      if (source !== cached) {
        try {
          re = new RegExp(source, 'u');
        } catch (err) {
          throw new TidemarkError(
            'INVALID_ARGUMENT',
            `invalid regular expression ${JSON.stringify(source)}`,
            {
              cause: err,
              details: { mysqlErrno: 3685 },
            },
          );
        }
        cached = source;
      }
      return re!.test(toText(a!)) !== ast.not ? 1 : 0;
    });
  }

  private call(ast: A.Call, level: Level): Expr {
    const name = ast.name.toUpperCase();
    if (ast.args.length === 0) {
      const fact = sessionFact(name);
      if (fact !== undefined) return fact;
    }
    const args = ast.args.map((a) => this.scalar(a, level));
    if (name === 'TRIM' && ast.mode !== undefined) return markText(trimCall(ast.mode, args));
    if (ast.mode !== undefined) throw unsupported(`${name} with a unit`);
    const e = call(name, args);
    if (STRING_FUNCTIONS.has(name)) return markText(e);
    const branches = BRANCHES[name]?.(args);
    return branches?.some((b) => b.textual === true) === true ? asText(e) : e;
  }
}

/** Functions whose result is a string whatever their arguments. */
export const STRING_FUNCTIONS = new Set([
  'UPPER',
  'UCASE',
  'LOWER',
  'LCASE',
  'CONCAT',
  'CONCAT_WS',
  'SUBSTRING',
  'SUBSTR',
  'MID',
  'LEFT',
  'RIGHT',
  'TRIM',
  'LTRIM',
  'RTRIM',
  'REPLACE',
  'REVERSE',
  'REPEAT',
  'LPAD',
  'RPAD',
  'SPACE',
  'HEX',
]);

/** Functions whose result is one of some arguments: a string type when any of those is (MySQL). */
const BRANCHES: Record<string, (args: Expr[]) => Expr[]> = {
  IF: (a) => a.slice(1, 3),
  IFNULL: (a) => a.slice(0, 2),
  COALESCE: (a) => a,
  NULLIF: (a) => a.slice(0, 1),
};

/** TRIM([BOTH|LEADING|TRAILING] [remstr] FROM s): args are [s] or [s, remstr]. */
function trimCall(mode: string, args: Expr[]): Expr {
  const [s, rem] = args;
  const text = `TRIM(${mode} ${rem !== undefined ? `${rem.text} ` : ''}FROM ${s!.text})`;
  return rowwise(
    text,
    args,
    ([v, r]) => {
      if (v === null || r === null) return null;
      let str = toText(v!);
      const cut = r === undefined ? ' ' : toText(r);
      if (cut === '') return str;
      if (mode !== 'TRAILING') while (str.startsWith(cut)) str = str.slice(cut.length);
      if (mode !== 'LEADING') while (str.endsWith(cut)) str = str.slice(0, str.length - cut.length);
      return str;
    },
    true,
  );
}

export type { SqlValue };

/**
 * A number as MySQL types its literals: an integer exactly (BIGINT, BIGINT UNSIGNED up to 2^64 - 1,
 * DECIMAL beyond), a decimal ('0.1') as DECIMAL, an exponent form ('1e3') as DOUBLE.
 */
export function numberLiteral(text: string, form: 'int' | 'decimal' | 'float'): SqlValue {
  if (form !== 'float') {
    const d = Decimal.parse(text);
    if (d !== undefined && d.precision <= DECIMAL_MAX_PRECISION) {
      if (form === 'int' && d.u <= UINT64_MAX && d.u >= INT64_MIN) return canonicalInt(d.u);
      return d;
    }
  }
  const v = Number(text);
  if (!Number.isFinite(v)) throw new TidemarkError('INVALID_ARGUMENT', `number ${text} is out of range`);
  return v;
}
