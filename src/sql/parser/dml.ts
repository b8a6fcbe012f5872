/** Data changes: INSERT and REPLACE (VALUES, SET or a query), UPDATE and DELETE. */
import type { Assignment, ColumnRef, Expr, InsertStatement, Statement } from './ast.js';
import { T } from './lexer.js';
import { QUERY_WORDS, QueryParser } from './queries.js';
import { unsupportedSyntax } from './cursor.js';

export abstract class DataChangeParser extends QueryParser {
  protected insert(): InsertStatement {
    const replace = this.next().u === 'REPLACE';
    this.oneOf('LOW_PRIORITY', 'DELAYED', 'HIGH_PRIORITY');
    const ignore = this.accept('IGNORE');
    this.accept('INTO');
    const table = this.tableName();
    if (this.accept('PARTITION')) this.nameList('a partition name');
    let columns: string[] | undefined;
    // (a, b) is a column list unless it opens a query: INSERT INTO t (SELECT ...).
    if (this.isOp('(') && !this.queryAhead()) {
      this.next();
      columns = [];
      if (!this.isOp(')')) {
        do columns.push(this.columnName());
        while (this.acceptOp(','));
      }
      this.expectOp(')');
    }
    let source: InsertStatement['source'];
    if (this.accept('VALUES') || this.accept('VALUE')) {
      const rows: Expr[][] = [];
      do {
        this.accept('ROW');
        rows.push(this.exprList());
      } while (this.acceptOp(','));
      source = { kind: 'values', rows };
      if (this.accept('AS')) {
        // INSERT ... VALUES (...) AS new ON DUPLICATE KEY UPDATE a = new.a
        throw unsupportedSyntax('a row alias in INSERT');
      }
    } else if (this.is('SET')) {
      this.next();
      source = { kind: 'set', set: this.assignments() };
    } else if (this.isOp('(') || (this.tok.t === T.Word && QUERY_WORDS.has(this.tok.u))) {
      source = { kind: 'query', query: this.query() };
    } else throw this.error('expected VALUES, SET or a query');
    let onDuplicate: Assignment[] | undefined;
    if (this.acceptSeq('ON', 'DUPLICATE', 'KEY', 'UPDATE')) {
      if (replace) throw this.error();
      onDuplicate = this.assignments();
    }
    return {
      kind: 'insert',
      replace,
      ignore,
      table,
      ...(columns !== undefined ? { columns } : {}),
      source,
      ...(onDuplicate !== undefined ? { onDuplicate } : {}),
    };
  }

  /** A column name, possibly qualified (INSERT's column list allows t.a). */
  private columnName(): string {
    let n = this.name('a column name');
    while (this.acceptOp('.')) n = this.name('a column name', true);
    return n;
  }

  private columnRef(): ColumnRef {
    const at = this.tok.s;
    const parts = [this.name('a column name')];
    while (this.acceptOp('.')) parts.push(this.name('a column name', true));
    if (parts.length > 3) throw this.error('too many qualifiers', at);
    const name = parts[parts.length - 1]!;
    if (parts.length === 1) return { kind: 'column', at, name };
    if (parts.length === 2) return { kind: 'column', at, table: parts[0]!, name };
    return { kind: 'column', at, schema: parts[0]!, table: parts[1]!, name };
  }

  private assignments(): Assignment[] {
    const out: Assignment[] = [];
    do {
      const column = this.columnRef();
      if (!this.acceptOp('=')) this.expectOp(':=');
      out.push({ column, value: this.expr() });
    } while (this.acceptOp(','));
    return out;
  }

  protected update(): Statement {
    this.next();
    this.accept('LOW_PRIORITY');
    const ignore = this.accept('IGNORE');
    const tables = this.tableRefs();
    this.expect('SET');
    const set = this.assignments();
    const where = this.accept('WHERE') ? this.expr() : undefined;
    const orderBy = this.acceptSeq('ORDER', 'BY') ? this.orderItems() : [];
    const limit = this.limitClause();
    return {
      kind: 'update',
      ignore,
      tables,
      set,
      ...(where !== undefined ? { where } : {}),
      orderBy,
      ...(limit !== undefined ? { limit } : {}),
    };
  }

  protected delete(): Statement {
    this.next();
    let ignore = false;
    for (;;) {
      if (this.accept('IGNORE')) ignore = true;
      else if (!this.accept('LOW_PRIORITY') && !this.accept('QUICK')) break;
    }
    const targets: string[] = [];
    if (!this.is('FROM')) {
      // DELETE t1, t2 FROM ...
      do {
        targets.push(this.name('a table name'));
        if (this.acceptOp('.')) this.expectOp('*');
      } while (this.acceptOp(','));
    }
    this.expect('FROM');
    let from = this.tableRefs();
    if (this.accept('USING')) {
      // DELETE FROM t1, t2 USING refs
      for (const f of from) if (f.kind === 'table') targets.push(f.alias ?? f.name);
      from = this.tableRefs();
    }
    const where = this.accept('WHERE') ? this.expr() : undefined;
    const orderBy = this.acceptSeq('ORDER', 'BY') ? this.orderItems() : [];
    const limit = this.limitClause();
    return {
      kind: 'delete',
      ignore,
      targets,
      from,
      ...(where !== undefined ? { where } : {}),
      orderBy,
      ...(limit !== undefined ? { limit } : {}),
    };
  }
}
