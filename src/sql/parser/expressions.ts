/**
 * Expressions, read as MySQL 8's grammar (sql_yacc.yy) reads them, from the loosest binding to the
 * tightest:
 *
 *   expr       OR, ||  <  XOR  <  AND, &&  <  NOT  <  x IS [NOT] TRUE|FALSE|UNKNOWN
 *   bool_pri   x IS [NOT] NULL,  x comparison predicate  (=  <=>  <>  !=  <  <=  >  >=, left to right),
 *              x comparison ALL|ANY|SOME (subquery)
 *   predicate  x [NOT] IN (...),  x [NOT] BETWEEN a AND predicate,  x [NOT] LIKE y [ESCAPE z],
 *              x [NOT] REGEXP y
 *   bit_expr   |  <  &  <  << >>  <  + -  <  * / DIV % MOD  <  ^      (each left-associative)
 *   simple     - + ~ ! BINARY (prefix), COLLATE (postfix), literals, names, calls, CASE, CAST,
 *              (subquery), EXISTS (subquery), (a, b) rows, INTERVAL n unit
 *
 * So `a OR b AND c` is `a OR (b AND c)`, `NOT a = b` is `NOT (a = b)`, `a = b IS NULL` is
 * `(a = b) IS NULL`, `- a ^ b` is `(-a) ^ b` and `a BETWEEN 1 AND 2 AND b` ends the BETWEEN at 2.
 */
import { TidemarkError } from '../../errors.js';
import type { Aggregate, BinaryOp, CastType, Expr, OrderItem, Query, Quantified } from './ast.js';
import { Cursor, RESERVED, unsupportedSyntax } from './cursor.js';
import { T } from './lexer.js';

const COMPARISONS = new Set(['=', '<=>', '<>', '!=', '<', '<=', '>', '>=']);

/** bit_expr operators by binding rank (higher binds tighter). */
const BIT_RANK: Record<string, number> = {
  '|': 1,
  '&': 2,
  '<<': 3,
  '>>': 3,
  '+': 4,
  '-': 4,
  '*': 5,
  '/': 5,
  '%': 5,
  DIV: 5,
  MOD: 5,
  '^': 6,
};

const AGGREGATES = new Set([
  'COUNT',
  'SUM',
  'AVG',
  'MIN',
  'MAX',
  'GROUP_CONCAT',
  'TOTAL',
  'BIT_AND',
  'BIT_OR',
  'BIT_XOR',
  'STD',
  'STDDEV',
  'STDDEV_POP',
  'STDDEV_SAMP',
  'VARIANCE',
  'VAR_POP',
  'VAR_SAMP',
  'JSON_ARRAYAGG',
  'JSON_OBJECTAGG',
]);

export const INTERVAL_UNITS = new Set([
  'MICROSECOND',
  'SECOND',
  'MINUTE',
  'HOUR',
  'DAY',
  'WEEK',
  'MONTH',
  'QUARTER',
  'YEAR',
  'SECOND_MICROSECOND',
  'MINUTE_MICROSECOND',
  'MINUTE_SECOND',
  'HOUR_MICROSECOND',
  'HOUR_SECOND',
  'HOUR_MINUTE',
  'DAY_MICROSECOND',
  'DAY_SECOND',
  'DAY_MINUTE',
  'DAY_HOUR',
  'YEAR_MONTH',
]);

/** Words that begin a query where an expression could also begin: `(SELECT ...)`. */
const QUERY_START = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE']);

/** Niladic functions MySQL lets one write without parentheses. */
export const NILADIC = new Set([
  'CURRENT_TIMESTAMP',
  'CURRENT_DATE',
  'CURRENT_TIME',
  'LOCALTIME',
  'LOCALTIMESTAMP',
  'UTC_TIMESTAMP',
  'UTC_DATE',
  'UTC_TIME',
  'CURRENT_USER',
]);

export abstract class ExprParser extends Cursor {
  /** A query (SELECT, set operations, ...), as the query grammar reads one. */
  abstract query(): Query;

  /** ORDER BY items (GROUP_CONCAT's too). */
  orderItems(): OrderItem[] {
    const items: OrderItem[] = [];
    do {
      const expr = this.expr();
      let desc = false;
      if (this.accept('DESC')) desc = true;
      else this.accept('ASC');
      items.push({ expr, desc });
    } while (this.acceptOp(','));
    return items;
  }

  /** Whether a parenthesized query starts here (after any number of opening parentheses). */
  protected queryAhead(): boolean {
    let k = 0;
    while (this.peek(k).t === T.Op && this.peek(k).v === '(') k++;
    const t = this.peek(k);
    return t.t === T.Word && QUERY_START.has(t.u);
  }

  /** `( query )`. */
  protected parenQuery(): Query {
    this.expectOp('(');
    const q = this.query();
    this.expectOp(')');
    return q;
  }

  expr(): Expr {
    let left = this.xorExpr();
    while (this.is('OR') || this.isOp('||')) {
      const at = this.next().s;
      left = { kind: 'binary', at, op: 'OR', left, right: this.xorExpr() };
    }
    return left;
  }

  private xorExpr(): Expr {
    let left = this.andExpr();
    while (this.is('XOR')) {
      const at = this.next().s;
      left = { kind: 'binary', at, op: 'XOR', left, right: this.andExpr() };
    }
    return left;
  }

  private andExpr(): Expr {
    let left = this.notExpr();
    while (this.is('AND') || this.isOp('&&')) {
      const at = this.next().s;
      left = { kind: 'binary', at, op: 'AND', left, right: this.notExpr() };
    }
    return left;
  }

  private notExpr(): Expr {
    if (this.is('NOT')) {
      const at = this.next().s;
      return { kind: 'unary', at, op: 'NOT', arg: this.notExpr() };
    }
    let e = this.boolPrimary();
    // x IS [NOT] TRUE|FALSE|UNKNOWN (IS [NOT] NULL was taken by boolPrimary).
    while (this.is('IS')) {
      const k = this.isAt(1, 'NOT') ? 2 : 1;
      const w = this.peek(k);
      if (w.t !== T.Word || (w.u !== 'TRUE' && w.u !== 'FALSE' && w.u !== 'UNKNOWN')) break;
      const at = this.next().s;
      const not = this.accept('NOT');
      this.next();
      e = { kind: 'isTruth', at, arg: e, value: w.u === 'UNKNOWN' ? null : w.u === 'TRUE', not };
    }
    return e;
  }

  private boolPrimary(): Expr {
    let left = this.predicate();
    for (;;) {
      if (this.is('IS')) {
        const k = this.isAt(1, 'NOT') ? 2 : 1;
        if (!this.isAt(k, 'NULL')) break;
        const at = this.next().s;
        const not = this.accept('NOT');
        this.next();
        left = { kind: 'isNull', at, arg: left, not };
        continue;
      }
      if (this.tok.t !== T.Op || !COMPARISONS.has(this.tok.v)) break;
      const opTok = this.next();
      const op = (opTok.v === '!=' ? '<>' : opTok.v) as Quantified['op'];
      const quantifier = this.oneOf('ALL', 'ANY', 'SOME');
      if (quantifier !== undefined) {
        const query = this.parenQuery();
        left = {
          kind: 'quantified',
          at: opTok.s,
          op,
          quantifier: quantifier === 'ALL' ? 'ALL' : 'ANY',
          left,
          query,
        };
        continue;
      }
      left = { kind: 'binary', at: opTok.s, op: op as BinaryOp, left, right: this.predicate() };
    }
    return left;
  }

  private predicate(): Expr {
    let left = this.bitExpr(0);
    for (;;) {
      const k = this.is('NOT') ? 1 : 0;
      const w = this.peek(k);
      if (w.t !== T.Word) break;
      const not = k === 1;
      const at = this.tok.s;
      if (w.u === 'IN') {
        this.pos += k + 1;
        // `IN (SELECT ...`: a query (its syntax errors are the query's); `IN ((SELECT ...`: maybe not.
        if (this.queryAhead() && (this.peek(1).t === T.Word || this.inIsQuery())) {
          left = { kind: 'inQuery', at, arg: left, query: this.parenQuery(), not };
        } else {
          this.expectOp('(');
          const list: Expr[] = [];
          // `IN ()` is SQLite's; MySQL refuses it, and so does this grammar.
          do list.push(this.expr());
          while (this.acceptOp(','));
          this.expectOp(')');
          left = { kind: 'inList', at, arg: left, list, not };
        }
      } else if (w.u === 'BETWEEN') {
        this.pos += k + 1;
        const low = this.bitExpr(0);
        this.expect('AND');
        const high = this.predicate();
        left = { kind: 'between', at, arg: left, low, high, not };
      } else if (w.u === 'LIKE') {
        this.pos += k + 1;
        const pattern = this.bitExpr(0);
        const escape = this.accept('ESCAPE') ? this.unary() : undefined;
        left = { kind: 'like', at, arg: left, pattern, not, ...(escape !== undefined ? { escape } : {}) };
      } else if (w.u === 'REGEXP' || w.u === 'RLIKE') {
        this.pos += k + 1;
        left = { kind: 'regexp', at, arg: left, pattern: this.bitExpr(0), not };
      } else if (w.u === 'SOUNDS' && k === 0 && this.isAt(1, 'LIKE')) {
        throw unsupportedSyntax('SOUNDS LIKE');
      } else if (w.u === 'MEMBER' && k === 0) {
        throw unsupportedSyntax('MEMBER OF');
      } else break;
    }
    return left;
  }

  /** After IN, at `(`: whether the parentheses hold a query (and not `((SELECT 1) + 1, 2)`). */
  private inIsQuery(): boolean {
    const save = this.pos;
    try {
      this.parenQuery();
      return true;
    } catch (e) {
      // Not a query: parsed again as a list of expressions. Anything but a syntax error is a bug.
      if (!(e instanceof TidemarkError)) throw e;
      return false;
    } finally {
      this.pos = save;
    }
  }

  /** bit_expr: binary operators binding at least as tight as `min` (precedence climbing). */
  private bitExpr(min: number): Expr {
    let left = this.unary();
    for (;;) {
      const t = this.tok;
      const op = t.t === T.Op ? t.v : t.t === T.Word && (t.u === 'DIV' || t.u === 'MOD') ? t.u : undefined;
      const rank = op === undefined ? undefined : BIT_RANK[op];
      if (rank === undefined || rank <= min) break;
      this.next();
      // d + INTERVAL 1 DAY: date arithmetic.
      const right = (op === '+' || op === '-') && this.is('INTERVAL') ? this.interval() : this.bitExpr(rank);
      left = {
        kind: 'binary',
        at: t.s,
        op: (op === 'MOD' ? '%' : op) as BinaryOp,
        left,
        right,
      };
    }
    return left;
  }

  private interval(): Expr {
    const at = this.expect('INTERVAL').s;
    const value = this.expr();
    const unit = this.tok.u;
    if (this.tok.t !== T.Word || !INTERVAL_UNITS.has(unit)) throw this.error('expected an interval unit');
    this.next();
    return { kind: 'interval', at, value, unit };
  }

  /** simple_expr with its prefix operators and COLLATE. */
  unary(): Expr {
    const t = this.tok;
    if (t.t === T.Op && (t.v === '-' || t.v === '+' || t.v === '~' || t.v === '!')) {
      this.next();
      return { kind: 'unary', at: t.s, op: t.v, arg: this.unary() };
    }
    if (this.is('BINARY')) {
      this.next();
      return { kind: 'unary', at: t.s, op: 'BINARY', arg: this.unary() };
    }
    let e = this.primary();
    while (this.is('COLLATE')) {
      const at = this.next().s;
      e = { kind: 'collate', at, arg: e, collation: this.nameOrString('a collation') };
    }
    return e;
  }

  protected isAtOp(k: number, o: string): boolean {
    const t = this.peek(k);
    return t.t === T.Op && t.v === o;
  }

  private primary(): Expr {
    const t = this.tok;
    switch (t.t) {
      case T.Num:
        this.next();
        return { kind: 'number', at: t.s, text: t.v, form: (t.x ?? 'int') as 'int' | 'decimal' | 'float' };
      case T.Str: {
        this.next();
        let value = t.v;
        // Adjacent strings are one: 'a' 'b' is 'ab'.
        while (this.tok.t === T.Str && this.tok.x === undefined) value += this.next().v;
        return { kind: 'string', at: t.s, value, ...(t.x !== undefined ? { charset: t.x } : {}) };
      }
      case T.Hex:
        this.next();
        return { kind: 'hex', at: t.s, hex: t.v };
      case T.Bits:
        this.next();
        return { kind: 'bits', at: t.s, bits: t.v };
      case T.Param:
        this.next();
        return { kind: 'param', at: t.s, index: this.params++ };
      case T.UserVar:
        this.next();
        return { kind: 'variable', at: t.s, system: false, name: t.v };
      case T.SysVar: {
        this.next();
        const m = /^(global|session|local)\.(.+)$/i.exec(t.v);
        if (m === null) return { kind: 'variable', at: t.s, system: true, name: t.v };
        const scope = m[1]!.toLowerCase() === 'global' ? 'global' : 'session';
        return { kind: 'variable', at: t.s, system: true, scope, name: m[2]! };
      }
      case T.Op:
        if (t.v === '(') return this.parenthesized();
        if (t.v === '{') throw unsupportedSyntax('ODBC escapes');
        throw this.error();
      case T.QuotedId:
        return this.columnOrCall();
      case T.Word:
        return this.word();
    }
    throw this.error();
  }

  private parenthesized(): Expr {
    const at = this.tok.s;
    if (this.queryAhead()) {
      // A query in parentheses, unless the parentheses hold an expression that starts with one.
      const save = this.pos;
      try {
        return { kind: 'scalarQuery', at, query: this.parenQuery() };
      } catch (e) {
        this.pos = save;
        if (this.peek(1).t === T.Word) throw e;
      }
    }
    this.expectOp('(');
    const first = this.expr();
    if (this.acceptOp(')')) return first;
    const items = [first];
    while (this.acceptOp(',')) items.push(this.expr());
    this.expectOp(')');
    return { kind: 'row', at, items };
  }

  /** A word in an expression: a keyword form, a function call or a column. */
  private word(): Expr {
    const t = this.tok;
    const u = t.u;
    const callNext = this.isAtOp(1, '(');
    switch (u) {
      case 'NULL':
        this.next();
        return { kind: 'null', at: t.s };
      case 'TRUE':
      case 'FALSE':
        this.next();
        return { kind: 'bool', at: t.s, value: u === 'TRUE' };
      case 'DEFAULT':
        this.next();
        if (this.acceptOp('(')) {
          const column = this.name('a column name');
          this.expectOp(')');
          return { kind: 'default', at: t.s, column };
        }
        return { kind: 'default', at: t.s };
      case 'CASE':
        return this.caseExpr();
      case 'EXISTS': {
        this.next();
        return { kind: 'exists', at: t.s, query: this.parenQuery() };
      }
      case 'ROW':
        if (callNext) {
          this.next();
          this.expectOp('(');
          const items = [this.expr()];
          while (this.acceptOp(',')) items.push(this.expr());
          this.expectOp(')');
          return { kind: 'row', at: t.s, items };
        }
        break;
      case 'INTERVAL':
        return this.interval();
      case 'DATE':
      case 'TIME':
      case 'TIMESTAMP':
        if (this.peek(1).t === T.Str) {
          this.next();
          return { kind: 'typed', at: t.s, type: u, value: this.next().v };
        }
        break;
      case 'MATCH':
        throw unsupportedSyntax('MATCH ... AGAINST');
      case 'NOT':
        throw this.error();
    }
    if (NILADIC.has(u)) {
      this.next();
      const args: Expr[] = [];
      if (this.acceptOp('(')) {
        if (!this.isOp(')')) args.push(this.expr());
        this.expectOp(')');
      }
      return { kind: 'call', at: t.s, name: u, args };
    }
    if (callNext) return this.call();
    if (RESERVED.has(u)) throw this.error();
    return this.columnOrCall();
  }

  /** name, t.name, s.t.name; or a call of a function with a quoted name. */
  private columnOrCall(): Expr {
    const at = this.tok.s;
    if (this.isAtOp(1, '(')) return this.call();
    const parts = [this.name('a column name')];
    while (this.isOp('.') && parts.length < 3) {
      this.next();
      // After a qualifier any word is a name (t.key, t.order).
      if (this.isOp('*')) throw this.error('* is allowed in a select list only');
      parts.push(this.name('a column name', true));
    }
    if (parts.length === 1) return { kind: 'column', at, name: parts[0]! };
    if (parts.length === 2) return { kind: 'column', at, table: parts[0]!, name: parts[1]! };
    return { kind: 'column', at, schema: parts[0]!, table: parts[1]!, name: parts[2]! };
  }

  private caseExpr(): Expr {
    const at = this.expect('CASE').s;
    const operand = this.is('WHEN') ? undefined : this.expr();
    const whens: { when: Expr; then: Expr }[] = [];
    while (this.accept('WHEN')) {
      const when = this.expr();
      this.expect('THEN');
      whens.push({ when, then: this.expr() });
    }
    if (whens.length === 0) throw this.error('expected WHEN');
    const otherwise = this.accept('ELSE') ? this.expr() : undefined;
    this.expect('END');
    return {
      kind: 'case',
      at,
      ...(operand !== undefined ? { operand } : {}),
      whens,
      ...(otherwise !== undefined ? { else: otherwise } : {}),
    };
  }

  /** A type of CAST and CONVERT. */
  castType(): CastType {
    const w = this.tok;
    if (w.t !== T.Word) throw this.error('expected a type');
    this.next();
    let name = w.u;
    const out: CastType = { name };
    if (name === 'SIGNED' || name === 'UNSIGNED') {
      if (!this.accept('INTEGER')) this.accept('INT');
      out.name = 'SIGNED';
      if (name === 'UNSIGNED') out.unsigned = true;
      return out;
    }
    if (name === 'DOUBLE') this.accept('PRECISION');
    if (name === 'NCHAR' || name === 'NATIONAL') {
      if (name === 'NATIONAL') this.expect('CHAR');
      name = 'CHAR';
      out.name = name;
    }
    if (this.acceptOp('(')) {
      out.length = this.integer();
      if (this.acceptOp(',')) out.scale = this.integer();
      this.expectOp(')');
    }
    if (this.acceptSeq('CHARACTER', 'SET') || this.accept('CHARSET'))
      out.charset = this.nameOrString('a charset');
    else if (this.accept('UNICODE')) out.charset = 'ucs2';
    else if (this.accept('ASCII')) out.charset = 'latin1';
    if (this.accept('UNSIGNED')) out.unsigned = true;
    return out;
  }

  /** An unsigned integer literal (a length, a precision, a count). */
  integer(): number {
    const t = this.tok;
    if (t.t !== T.Num || t.x !== 'int') throw this.error('expected an integer');
    this.next();
    return Number(t.v);
  }

  /** A function call, the special forms included. */
  private call(): Expr {
    const t = this.next();
    const name = t.t === T.QuotedId ? t.v.toUpperCase() : t.u;
    const at = t.s;
    this.expectOp('(');
    if (AGGREGATES.has(name)) return this.aggregate(name, at);
    switch (name) {
      case 'CAST': {
        const arg = this.expr();
        this.expect('AS');
        const type = this.castType();
        this.expectOp(')');
        return { kind: 'cast', at, arg, type };
      }
      case 'CONVERT': {
        const arg = this.expr();
        if (this.accept('USING')) {
          const charset = this.nameOrString('a charset');
          this.expectOp(')');
          return { kind: 'convert', at, arg, charset };
        }
        this.expectOp(',');
        const type = this.castType();
        this.expectOp(')');
        return { kind: 'cast', at, arg, type };
      }
      case 'TRIM': {
        const mode = this.oneOf('BOTH', 'LEADING', 'TRAILING');
        if (mode !== undefined && this.accept('FROM')) {
          const s = this.expr();
          this.expectOp(')');
          return { kind: 'call', at, name, args: [s], mode };
        }
        const first = this.expr();
        if (this.accept('FROM')) {
          const s = this.expr();
          this.expectOp(')');
          return { kind: 'call', at, name, args: [s, first], mode: mode ?? 'BOTH' };
        }
        if (mode !== undefined) throw this.error('expected FROM');
        this.expectOp(')');
        return { kind: 'call', at, name, args: [first] };
      }
      case 'SUBSTRING':
      case 'SUBSTR': {
        const s = this.expr();
        const args = [s];
        if (this.accept('FROM')) {
          args.push(this.expr());
          if (this.accept('FOR')) args.push(this.expr());
        } else {
          while (this.acceptOp(',')) args.push(this.expr());
        }
        this.expectOp(')');
        return { kind: 'call', at, name, args };
      }
      case 'POSITION': {
        const sub = this.bitExpr(0);
        this.expect('IN');
        const s = this.expr();
        this.expectOp(')');
        return { kind: 'call', at, name: 'LOCATE', args: [sub, s] };
      }
      case 'EXTRACT': {
        const unit = this.tok.u;
        if (!INTERVAL_UNITS.has(unit)) throw this.error('expected a unit');
        this.next();
        this.expect('FROM');
        const d = this.expr();
        this.expectOp(')');
        return { kind: 'call', at, name, args: [d], mode: unit };
      }
      case 'TIMESTAMPDIFF':
      case 'TIMESTAMPADD': {
        const unit = this.tok.u;
        if (!INTERVAL_UNITS.has(unit)) throw this.error('expected a unit');
        this.next();
        const args: Expr[] = [];
        while (this.acceptOp(',')) args.push(this.expr());
        this.expectOp(')');
        return { kind: 'call', at, name, args, mode: unit };
      }
      case 'CHAR': {
        const args = [this.expr()];
        while (this.acceptOp(',')) args.push(this.expr());
        let mode: string | undefined;
        if (this.accept('USING')) mode = this.nameOrString('a charset');
        this.expectOp(')');
        return { kind: 'call', at, name, args, ...(mode !== undefined ? { mode } : {}) };
      }
    }
    const args: Expr[] = [];
    if (!this.isOp(')')) {
      do args.push(this.expr());
      while (this.acceptOp(','));
    }
    this.expectOp(')');
    if (this.is('OVER')) throw unsupportedSyntax('window functions (OVER)');
    return { kind: 'call', at, name, args };
  }

  private aggregate(name: string, at: number): Aggregate {
    let distinct = false;
    if (this.accept('DISTINCT') || this.accept('DISTINCTROW')) distinct = true;
    else this.accept('ALL');
    const args: Expr[] = [];
    if (name === 'COUNT' && !distinct && this.isOp('*')) {
      this.next();
    } else {
      do args.push(this.expr());
      while (this.acceptOp(','));
    }
    const out: Aggregate = { kind: 'aggregate', at, name, args, distinct };
    if (name === 'GROUP_CONCAT') {
      if (this.acceptSeq('ORDER', 'BY')) out.orderBy = this.orderItems();
      if (this.accept('SEPARATOR')) {
        if (this.tok.t !== T.Str) throw this.error('expected a string');
        out.separator = this.next().v;
      }
    }
    this.expectOp(')');
    if (this.is('OVER')) throw unsupportedSyntax('window functions (OVER)');
    return out;
  }
}
