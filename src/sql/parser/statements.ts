/**
 * Statements: queries and EXPLAIN; INSERT, REPLACE, UPDATE, DELETE; CREATE, DROP and ALTER of
 * tables, views, indexes and databases, TRUNCATE; transactions; SET, SHOW, DESCRIBE, USE; LOCK and
 * UNLOCK TABLES. What MySQL has and tidemark does not run (triggers, procedures, multi-table
 * UPDATE) is read as far as needed to say so with INVALID_ARGUMENT, not a syntax error.
 *
 * This file reads a statement's first words and hands it to its family: dml.ts (data changes),
 * ddl.ts, session.ts (SET, SHOW, LOCK); transactions, EXPLAIN and DESCRIBE are read here.
 */
import type { Statement } from './ast.js';
import { T } from './lexer.js';
import { QUERY_WORDS } from './queries.js';
import { unsupportedSyntax } from './cursor.js';
import { SessionParser } from './session.js';

export class StatementParser extends SessionParser {
  /** Every statement of the text (separated by semicolons; empty ones are skipped). */
  statements(): Statement[] {
    const out: Statement[] = [];
    for (;;) {
      while (this.acceptOp(';'));
      if (this.atEnd) break;
      const start = this.tok.s;
      const s = this.statement();
      s.start = start;
      s.end = this.lastEnd;
      out.push(s);
      if (!this.atEnd && !this.isOp(';')) throw this.error();
    }
    if (out.length === 0) throw this.error('empty statement');
    return out;
  }

  statement(): Statement {
    const t = this.tok;
    if (t.t === T.Op && t.v === '(') return { kind: 'select', query: this.query() };
    if (t.t !== T.Word) throw this.error();
    switch (t.u) {
      case 'SELECT':
      case 'WITH':
      case 'VALUES':
      case 'TABLE':
        return { kind: 'select', query: this.query() };
      case 'EXPLAIN':
      case 'DESCRIBE':
      case 'DESC':
        return this.explainOrDescribe();
      case 'INSERT':
      case 'REPLACE':
        return this.insert();
      case 'UPDATE':
        return this.update();
      case 'DELETE':
        return this.delete();
      case 'CREATE':
        return this.create();
      case 'DROP':
        return this.drop();
      case 'ALTER':
        return this.alter();
      case 'RENAME': {
        this.next();
        this.oneOf('TABLE', 'TABLES');
        const from = this.tableName();
        this.expect('TO');
        const to = this.tableName();
        if (this.isOp(',')) throw unsupportedSyntax('RENAME TABLE of several tables');
        return { kind: 'alterTable', table: from, actions: [{ kind: 'renameTable', to }] };
      }
      case 'TRUNCATE':
        this.next();
        this.accept('TABLE');
        return { kind: 'truncate', table: this.tableName() };
      case 'BEGIN':
        this.next();
        this.accept('WORK');
        return { kind: 'begin' };
      case 'START': {
        this.next();
        this.expect('TRANSACTION');
        let readOnly = false;
        if (!this.isOp(';') && !this.atEnd) {
          do {
            if (this.acceptSeq('WITH', 'CONSISTENT', 'SNAPSHOT')) continue;
            this.expect('READ');
            readOnly = this.oneOf('ONLY', 'WRITE') === 'ONLY';
          } while (this.acceptOp(','));
        }
        return { kind: 'begin', ...(readOnly ? { readOnly } : {}) };
      }
      case 'COMMIT':
        this.next();
        this.accept('WORK');
        this.chainAndRelease();
        return { kind: 'commit' };
      case 'ROLLBACK': {
        this.next();
        this.accept('WORK');
        if (this.accept('TO')) {
          this.accept('SAVEPOINT');
          return { kind: 'rollback', savepoint: this.name('a savepoint name') };
        }
        this.chainAndRelease();
        return { kind: 'rollback' };
      }
      case 'SAVEPOINT':
        this.next();
        return { kind: 'savepoint', name: this.name('a savepoint name') };
      case 'RELEASE':
        this.next();
        this.expect('SAVEPOINT');
        return { kind: 'releaseSavepoint', name: this.name('a savepoint name') };
      case 'SET':
        return this.set();
      case 'SHOW':
        return this.show();
      case 'USE':
        this.next();
        return { kind: 'use', database: this.name('a database name') };
      case 'LOCK':
        return this.lockTables();
      case 'UNLOCK':
        this.next();
        if (!this.accept('TABLES')) this.expect('TABLE');
        return { kind: 'unlockTables' };
    }
    if (this.isAt(1, 'TABLE') || this.isAt(1, 'TABLES') || t.u === 'REINDEX') {
      throw unsupportedSyntax(t.u);
    }
    throw this.error();
  }

  private chainAndRelease(): void {
    if (this.accept('AND')) {
      this.accept('NO');
      this.expect('CHAIN');
    }
    if (this.accept('NO')) this.expect('RELEASE');
    else this.accept('RELEASE');
  }

  private explainOrDescribe(): Statement {
    this.next();
    const t = this.tok;
    // EXPLAIN [FORMAT = x] statement; DESCRIBE table [column].
    if (this.accept('FORMAT')) {
      this.expectOp('=');
      this.name('a format', true);
    } else if (this.accept('EXTENDED') || this.accept('PARTITIONS')) {
      // Old EXPLAIN modifiers: same output here.
    }
    if (this.is('ANALYZE')) throw unsupportedSyntax('EXPLAIN ANALYZE');
    if (
      this.isOp('(') ||
      (this.tok.t === T.Word &&
        (QUERY_WORDS.has(this.tok.u) || ['INSERT', 'REPLACE', 'UPDATE', 'DELETE'].includes(this.tok.u)))
    ) {
      return { kind: 'explain', statement: this.statement() };
    }
    if (t !== this.tok) throw this.error();
    const table = this.tableName();
    let column: string | undefined;
    if (this.tok.t === T.Str) column = this.next().v;
    else if (this.atName) column = this.name();
    return { kind: 'describe', table, ...(column !== undefined ? { column } : {}) };
  }
}
