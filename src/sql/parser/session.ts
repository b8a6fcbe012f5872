/** Session statements: SET (variables, NAMES, TRANSACTION), SHOW, LOCK TABLES. */
import type { SetAssignment, ShowStatement, Statement, TableName, Variable } from './ast.js';
import { NILADIC } from './expressions.js';
import { T } from './lexer.js';
import { DdlParser } from './ddl.js';

/** Words that stay expressions when they stand alone as a SET value (any other word is a string). */
const BARE_EXPRESSIONS = new Set(['NULL', 'TRUE', 'FALSE', 'DEFAULT']);

export abstract class SessionParser extends DdlParser {
  protected set(): Statement {
    this.expect('SET');
    if (this.accept('NAMES')) {
      if (this.accept('DEFAULT')) return { kind: 'setNames' };
      const charset = this.nameOrString('a charset');
      const collation = this.accept('COLLATE') ? this.nameOrString('a collation') : undefined;
      return { kind: 'setNames', charset, ...(collation !== undefined ? { collation } : {}) };
    }
    if (this.acceptSeq('CHARACTER', 'SET') || this.accept('CHARSET')) {
      if (this.accept('DEFAULT')) return { kind: 'setNames' };
      return { kind: 'setNames', charset: this.nameOrString('a charset') };
    }
    const scopeAhead = this.tok.u === 'GLOBAL' || this.tok.u === 'SESSION' || this.tok.u === 'LOCAL';
    if (this.is('TRANSACTION') || (scopeAhead && this.isAt(1, 'TRANSACTION'))) {
      const scope = scopeAhead ? (this.next().u === 'GLOBAL' ? 'global' : 'session') : undefined;
      this.expect('TRANSACTION');
      let isolation: string | undefined;
      let readOnly: boolean | undefined;
      do {
        if (this.acceptSeq('ISOLATION', 'LEVEL')) {
          if (this.acceptSeq('REPEATABLE', 'READ')) isolation = 'REPEATABLE-READ';
          else if (this.acceptSeq('READ', 'COMMITTED')) isolation = 'READ-COMMITTED';
          else if (this.acceptSeq('READ', 'UNCOMMITTED')) isolation = 'READ-UNCOMMITTED';
          else if (this.accept('SERIALIZABLE')) isolation = 'SERIALIZABLE';
          else throw this.error('expected an isolation level');
        } else {
          this.expect('READ');
          readOnly = this.oneOf('ONLY', 'WRITE') === 'ONLY';
        }
      } while (this.acceptOp(','));
      return {
        kind: 'setTransaction',
        ...(scope !== undefined ? { scope } : {}),
        ...(isolation !== undefined ? { isolation } : {}),
        ...(readOnly !== undefined ? { readOnly } : {}),
      };
    }
    const assignments: SetAssignment[] = [];
    do assignments.push(this.setAssignment());
    while (this.acceptOp(','));
    return { kind: 'set', assignments };
  }

  private setAssignment(): SetAssignment {
    const t = this.tok;
    let target: Variable;
    if (t.t === T.UserVar || t.t === T.SysVar) {
      const e = this.unary();
      if (e.kind !== 'variable') throw this.error('expected a variable', t.s);
      target = e;
    } else {
      let scope: 'global' | 'session' | undefined;
      const s = this.oneOf('GLOBAL', 'SESSION', 'LOCAL', 'PERSIST', 'PERSIST_ONLY');
      if (s !== undefined) scope = s === 'GLOBAL' || s.startsWith('PERSIST') ? 'global' : 'session';
      let name = this.name('a variable name', true);
      // SET sql_mode.x / SET @@session.x handled by the lexer; dotted names here: a.b
      while (this.acceptOp('.')) name += `.${this.name('a variable name', true)}`;
      target = { kind: 'variable', at: t.s, system: true, name, ...(scope !== undefined ? { scope } : {}) };
    }
    if (!this.acceptOp('=')) this.expectOp(':=');
    // A bare word is its own name: SET sql_mode = TRADITIONAL, SET autocommit = ON.
    const v = this.tok;
    const after = this.peek(1);
    const alone = after.t === T.End || (after.t === T.Op && (after.v === ',' || after.v === ';'));
    if (v.t === T.Word && alone && !BARE_EXPRESSIONS.has(v.u) && !NILADIC.has(v.u)) {
      this.next();
      return { target, value: { kind: 'string', at: v.s, value: v.v } };
    }
    return { target, value: this.expr() };
  }

  protected show(): ShowStatement {
    this.expect('SHOW');
    const out: ShowStatement = { kind: 'show', what: '', full: false };
    for (;;) {
      if (this.accept('FULL')) out.full = true;
      else if (this.accept('EXTENDED') || this.accept('STORAGE')) {
        // SHOW EXTENDED COLUMNS, SHOW STORAGE ENGINES: the same here.
      } else if (this.is('GLOBAL') || this.is('SESSION') || this.is('LOCAL')) {
        out.scope = this.next().u === 'GLOBAL' ? 'global' : 'session';
      } else break;
    }
    if (this.accept('CREATE')) {
      const what = this.tok.u;
      if (
        ![
          'TABLE',
          'VIEW',
          'DATABASE',
          'SCHEMA',
          'TRIGGER',
          'PROCEDURE',
          'FUNCTION',
          'EVENT',
          'USER',
        ].includes(what)
      )
        throw this.error();
      this.next();
      out.what = `CREATE ${what === 'SCHEMA' ? 'DATABASE' : what}`;
      if (what === 'DATABASE' || what === 'SCHEMA') {
        this.acceptSeq('IF', 'NOT', 'EXISTS');
        out.database = this.name('a database name');
      } else if (what === 'USER') out.database = this.user();
      else out.target = this.tableName();
      return out;
    }
    if (this.isAt(0, 'COUNT') && this.isAtOp(1, '(')) {
      // SHOW COUNT(*) WARNINGS
      this.next();
      this.expectOp('(');
      this.expectOp('*');
      this.expectOp(')');
      out.what = `COUNT ${this.oneOf('WARNINGS', 'ERRORS') ?? ''}`;
      if (out.what === 'COUNT ') throw this.error('expected WARNINGS or ERRORS');
      return out;
    }
    const words: string[] = [];
    while (this.tok.t === T.Word && !['FROM', 'IN', 'LIKE', 'WHERE', 'LIMIT', 'FOR'].includes(this.tok.u)) {
      words.push(this.next().u);
    }
    if (words.length === 0) throw this.error();
    let what = words.join(' ');
    if (what === 'SCHEMAS') what = 'DATABASES';
    if (what === 'FIELDS') what = 'COLUMNS';
    if (what === 'INDEXES' || what === 'KEYS') what = 'INDEX';
    if (what === 'CHARSET' || what === 'CHARACTER SET') what = 'CHARACTER SET';
    out.what = what;
    if (what === 'COLUMNS' || what === 'INDEX') {
      if (!this.accept('FROM')) this.expect('IN');
      out.target = this.tableName();
    }
    if (this.accept('FROM') || this.accept('IN')) out.database = this.name('a database name');
    if (what === 'GRANTS' && this.accept('FOR')) out.database = this.user();
    if (this.accept('LIKE')) out.like = this.string();
    else if (this.accept('WHERE')) out.where = this.expr();
    const limit = this.limitClause();
    if (limit !== undefined) out.limit = limit;
    return out;
  }

  protected lockTables(): Statement {
    this.expect('LOCK');
    if (!this.accept('TABLES')) this.expect('TABLE');
    const tables: { table: TableName; alias?: string; write: boolean }[] = [];
    do {
      const table = this.tableName();
      let alias: string | undefined;
      if (this.accept('AS')) alias = this.name('an alias');
      else if (this.atName && !this.is('READ') && !this.is('WRITE') && !this.is('LOW_PRIORITY'))
        alias = this.name();
      let write: boolean;
      if (this.accept('READ')) {
        this.accept('LOCAL');
        write = false;
      } else {
        this.accept('LOW_PRIORITY');
        this.expect('WRITE');
        write = true;
      }
      tables.push({ table, write, ...(alias !== undefined ? { alias } : {}) });
    } while (this.acceptOp(','));
    return { kind: 'lockTables', tables };
  }
}
