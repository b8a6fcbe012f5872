/**
 * Queries: SELECT with every MySQL clause, set operations (UNION, INTERSECT and EXCEPT, each with
 * ALL or DISTINCT; INTERSECT binds tighter than the other two, as in MySQL 8.0.31 and the SQL
 * standard), parenthesized queries that keep their own ORDER BY and LIMIT, WITH, VALUES ROW(...)
 * and TABLE t, and the FROM clause's table references and joins (comma joins bind looser than JOIN).
 */
import { TidemarkError } from '../../errors.js';
import type {
  Cte,
  Expr,
  Limit,
  Query,
  QueryTerm,
  SelectCore,
  SelectItem,
  SetOpKind,
  Star,
  TableName,
  TableRef,
} from './ast.js';
import { unsupportedSyntax } from './cursor.js';
import { ExprParser } from './expressions.js';
import { T } from './lexer.js';

/** Words that open a query, for EXPLAIN and INSERT ... SELECT. */
export const QUERY_WORDS = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE']);

const SET_RANK: Record<string, number> = { UNION: 1, EXCEPT: 1, INTERSECT: 2 };

/** SELECT modifiers that change nothing here (they are hints to MySQL's optimizer or cache). */
const SELECT_HINTS = new Set([
  'HIGH_PRIORITY',
  'STRAIGHT_JOIN',
  'SQL_SMALL_RESULT',
  'SQL_BIG_RESULT',
  'SQL_BUFFER_RESULT',
  'SQL_NO_CACHE',
  'SQL_CACHE',
  'SQL_CALC_FOUND_ROWS',
]);

export abstract class QueryParser extends ExprParser {
  query(): Query {
    const at = this.tok.s;
    let withClause: Query['with'];
    if (this.accept('WITH')) {
      const recursive = this.accept('RECURSIVE');
      const ctes: Cte[] = [];
      do {
        const name = this.name('a table name');
        const columns = this.isOp('(') ? this.nameList() : undefined;
        this.expect('AS');
        ctes.push({ name, query: this.parenQuery(), ...(columns !== undefined ? { columns } : {}) });
      } while (this.acceptOp(','));
      withClause = { recursive, ctes };
    }
    const body = this.setExpr(1);
    const orderBy = this.acceptSeq('ORDER', 'BY') ? this.orderItems() : [];
    const limit = this.limitClause();
    let lock: Query['lock'];
    if (this.acceptSeq('FOR', 'UPDATE')) lock = 'update';
    else if (this.acceptSeq('FOR', 'SHARE') || this.acceptSeq('LOCK', 'IN', 'SHARE', 'MODE')) lock = 'share';
    if (lock !== undefined) {
      if (this.accept('OF')) {
        do this.name('a table name');
        while (this.acceptOp(','));
      }
      if (!this.accept('NOWAIT')) this.acceptSeq('SKIP', 'LOCKED');
    }
    if (this.is('INTO')) throw unsupportedSyntax('SELECT ... INTO');
    return {
      kind: 'query',
      at,
      ...(withClause !== undefined ? { with: withClause } : {}),
      body,
      orderBy,
      ...(limit !== undefined ? { limit } : {}),
      ...(lock !== undefined ? { lock } : {}),
      text: this.text(at, this.lastEnd),
    };
  }

  /** LIMIT n, LIMIT offset, n, LIMIT n OFFSET offset. */
  limitClause(): Limit | undefined {
    if (!this.accept('LIMIT')) return undefined;
    const first = this.unary();
    if (this.acceptOp(',')) return { offset: first, count: this.unary() };
    if (this.accept('OFFSET')) return { count: first, offset: this.unary() };
    return { count: first };
  }

  /** Set operations by precedence climbing: INTERSECT (rank 2) over UNION and EXCEPT (rank 1). */
  private setExpr(min: number): QueryTerm {
    let left = this.queryPrimary();
    for (;;) {
      const t = this.tok;
      const rank = t.t === T.Word ? SET_RANK[t.u] : undefined;
      if (rank === undefined || rank < min) break;
      this.next();
      let all = false;
      if (this.accept('ALL')) all = true;
      else this.accept('DISTINCT');
      const right = this.setExpr(rank + 1);
      left = { kind: 'setop', at: t.s, op: t.u as SetOpKind, all, left, right };
    }
    return left;
  }

  private queryPrimary(): QueryTerm {
    const t = this.tok;
    if (this.isOp('(')) {
      this.next();
      const query = this.query();
      this.expectOp(')');
      return { kind: 'nested', at: t.s, query };
    }
    if (this.accept('VALUES')) {
      const rows: Expr[][] = [];
      do {
        this.expect('ROW');
        rows.push(this.exprList());
      } while (this.acceptOp(','));
      return { kind: 'values', at: t.s, rows };
    }
    if (this.accept('TABLE')) {
      const table = this.tableName();
      return {
        kind: 'select',
        at: t.s,
        distinct: false,
        items: [{ kind: 'star', at: t.s }],
        from: [table],
        groupBy: [],
        withRollup: false,
      };
    }
    return this.selectCore();
  }

  /** `( expr, ... )`. */
  exprList(): Expr[] {
    this.expectOp('(');
    const out: Expr[] = [];
    if (!this.isOp(')')) {
      do out.push(this.expr());
      while (this.acceptOp(','));
    }
    this.expectOp(')');
    return out;
  }

  private selectCore(): SelectCore {
    const at = this.expect('SELECT').s;
    let distinct = false;
    let all = false;
    for (;;) {
      if (this.accept('DISTINCT') || this.accept('DISTINCTROW')) distinct = true;
      // SELECT ALL: the default; with DISTINCT too, an error.
      else if (this.accept('ALL')) all = true;
      else if (this.tok.t === T.Word && SELECT_HINTS.has(this.tok.u)) this.next();
      else break;
    }
    if (distinct && all) {
      throw new TidemarkError('INVALID_ARGUMENT', 'incorrect usage of ALL and DISTINCT', {
        details: { mysqlErrno: 1221 },
      });
    }
    const items: (SelectItem | Star)[] = [];
    do items.push(this.selectItem());
    while (this.acceptOp(','));
    if (this.is('INTO')) throw unsupportedSyntax('SELECT ... INTO');
    let from: TableRef[] = [];
    if (this.accept('FROM')) {
      if (!this.accept('DUAL')) from = this.tableRefs();
    }
    const where = this.accept('WHERE') ? this.expr() : undefined;
    let groupBy: Expr[] = [];
    let withRollup = false;
    if (this.acceptSeq('GROUP', 'BY')) {
      groupBy = [];
      do {
        groupBy.push(this.expr());
        // GROUP BY x ASC|DESC: an old MySQL form, the order of the groups (ignored, as MySQL 8 does).
        if (!this.accept('ASC')) this.accept('DESC');
      } while (this.acceptOp(','));
      if (this.acceptSeq('WITH', 'ROLLUP')) withRollup = true;
    }
    const having = this.accept('HAVING') ? this.expr() : undefined;
    if (this.is('WINDOW')) throw unsupportedSyntax('WINDOW');
    return {
      kind: 'select',
      at,
      distinct,
      items,
      from,
      ...(where !== undefined ? { where } : {}),
      groupBy,
      withRollup,
      ...(having !== undefined ? { having } : {}),
    };
  }

  private selectItem(): SelectItem | Star {
    const t = this.tok;
    if (this.isOp('*')) {
      this.next();
      return { kind: 'star', at: t.s };
    }
    // t.* and s.t.*
    if (this.atName && this.isAtOp(1, '.')) {
      if (this.isAtOp(2, '*')) {
        const table = this.name();
        this.next();
        this.next();
        return { kind: 'star', at: t.s, table };
      }
      if (this.peek(2).t !== T.Op && this.isAtOp(3, '.') && this.isAtOp(4, '*')) {
        this.name();
        this.next();
        const table = this.name('a table name', true);
        this.next();
        this.next();
        return { kind: 'star', at: t.s, table };
      }
    }
    const expr = this.expr();
    const text = this.text(t.s, this.lastEnd);
    let alias: string | undefined;
    if (this.accept('AS')) alias = this.nameOrString('an alias');
    else if (this.atName || this.tok.t === T.Str) alias = this.nameOrString('an alias');
    return { kind: 'item', expr, text, ...(alias !== undefined ? { alias } : {}) };
  }

  /** Table references separated by commas. */
  tableRefs(): TableRef[] {
    const out = [this.tableRef()];
    while (this.acceptOp(',')) out.push(this.tableRef());
    return out;
  }

  /** A table reference: a factor and the joins after it, left to right. */
  tableRef(): TableRef {
    let left = this.tableFactor();
    for (;;) {
      const at = this.tok.s;
      let type: 'inner' | 'cross' | 'left' | 'right' | 'straight';
      let natural = false;
      if (this.accept('NATURAL')) {
        natural = true;
        const side = this.oneOf('LEFT', 'RIGHT');
        if (side !== undefined) this.accept('OUTER');
        else this.accept('INNER');
        this.expect('JOIN');
        type = side === 'LEFT' ? 'left' : side === 'RIGHT' ? 'right' : 'inner';
      } else if (this.accept('STRAIGHT_JOIN')) type = 'straight';
      else if (this.acceptSeq('INNER', 'JOIN') || this.accept('JOIN')) type = 'inner';
      else if (this.acceptSeq('CROSS', 'JOIN')) type = 'cross';
      else if (this.is('LEFT') || this.is('RIGHT')) {
        type = this.next().u === 'LEFT' ? 'left' : 'right';
        this.accept('OUTER');
        this.expect('JOIN');
      } else break;
      const right = this.tableFactor();
      let on: Expr | undefined;
      let using: string[] | undefined;
      if (!natural) {
        if (this.accept('ON')) on = this.expr();
        else if (this.accept('USING')) using = this.nameList();
        else if (type === 'left' || type === 'right') throw this.error('expected ON or USING');
      }
      left = {
        kind: 'join',
        at,
        type,
        natural,
        left,
        right,
        ...(on !== undefined ? { on } : {}),
        ...(using !== undefined ? { using } : {}),
      };
    }
    return left;
  }

  private tableFactor(): TableRef {
    const at = this.tok.s;
    const lateral = this.accept('LATERAL');
    if (this.isOp('(')) {
      if (lateral || this.queryAhead()) {
        const save = this.pos;
        try {
          const query = this.parenQuery();
          return this.derived(at, query, lateral);
        } catch (e) {
          // `((SELECT ...) AS d JOIN t ...)`: parenthesized references starting with a derived table.
          this.pos = save;
          if (lateral || this.peek(1).t === T.Word) throw e;
        }
      }
      this.next();
      const refs = this.tableRefs();
      this.expectOp(')');
      let ref = refs[0]!;
      for (let i = 1; i < refs.length; i++) {
        ref = { kind: 'join', at, type: 'cross', natural: false, left: ref, right: refs[i]! };
      }
      return ref;
    }
    const table = this.tableName();
    if (this.accept('PARTITION')) this.nameList('a partition name');
    const alias = this.alias();
    this.indexHints();
    return alias !== undefined ? { ...table, alias } : table;
  }

  private derived(at: number, query: Query, lateral: boolean): TableRef {
    const alias = this.alias();
    const columns = alias !== undefined && this.isOp('(') ? this.nameList() : undefined;
    return {
      kind: 'derived',
      at,
      query,
      lateral,
      ...(alias !== undefined ? { alias } : {}),
      ...(columns !== undefined ? { columns } : {}),
    };
  }

  /** `[AS] alias` after a table reference. */
  private alias(): string | undefined {
    if (this.accept('AS')) return this.nameOrString('an alias');
    if (this.atName || this.tok.t === T.Str) return this.nameOrString('an alias');
    return undefined;
  }

  /** USE/IGNORE/FORCE INDEX (...): hints to MySQL's planner, read and left unused. */
  private indexHints(): void {
    while (
      (this.is('USE') || this.is('IGNORE') || this.is('FORCE')) &&
      (this.isAt(1, 'INDEX') || this.isAt(1, 'KEY'))
    ) {
      this.next();
      this.next();
      if (this.accept('FOR')) {
        if (!this.accept('JOIN')) {
          this.oneOf('ORDER', 'GROUP');
          this.expect('BY');
        }
      }
      this.expectOp('(');
      if (!this.isOp(')')) {
        do this.name('an index name', true);
        while (this.acceptOp(','));
      }
      this.expectOp(')');
    }
  }

  /** `name` or `schema.name`. */
  tableName(): TableName {
    const at = this.tok.s;
    const first = this.name('a table name');
    if (this.isOp('.')) {
      this.next();
      const name = this.name('a table name', true);
      return { kind: 'table', at, schema: first, name };
    }
    return { kind: 'table', at, name: first };
  }
}
