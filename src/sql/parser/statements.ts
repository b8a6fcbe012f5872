/**
 * Statements: queries and EXPLAIN; INSERT, REPLACE, UPDATE, DELETE; CREATE, DROP and ALTER of
 * tables, views, indexes and databases, TRUNCATE; transactions; SET, SHOW, DESCRIBE, USE; LOCK and
 * UNLOCK TABLES. What MySQL has and tidemark does not run (triggers, procedures, multi-table
 * UPDATE) is read as far as needed to say so with INVALID_ARGUMENT, not a syntax error.
 */
import { TidemarkError } from '../../errors.js';
import type {
  AlterAction,
  AlterTableStatement,
  Assignment,
  ColumnDef,
  ColumnRef,
  CreateTableStatement,
  DataType,
  Expr,
  ForeignKeyTarget,
  InsertStatement,
  KeyPart,
  SetAssignment,
  ShowStatement,
  Statement,
  TableConstraint,
  TableName,
  Variable,
} from './ast.js';
import { NILADIC } from './expressions.js';
import { T } from './lexer.js';
import { QueryParser } from './queries.js';

function unsupportedSyntax(what: string): TidemarkError {
  return new TidemarkError('INVALID_ARGUMENT', `${what} is not supported`, {
    details: { unsupported: what, mysqlErrno: 1235 },
  });
}

/** Words that stay expressions when they stand alone as a SET value (any other word is a string). */
const BARE_EXPRESSIONS = new Set(['NULL', 'TRUE', 'FALSE', 'DEFAULT']);

/** Words that open a query, for EXPLAIN and INSERT ... SELECT. */
const QUERY_WORDS = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE']);

/** Types whose (n) is a length in characters or bytes, or a precision. */
const TWO_WORD_TYPES: Record<string, Record<string, string>> = {
  DOUBLE: { PRECISION: 'DOUBLE' },
  CHARACTER: { VARYING: 'VARCHAR' },
  CHAR: { VARYING: 'VARCHAR' },
  NATIONAL: { CHAR: 'CHAR', CHARACTER: 'CHAR', VARCHAR: 'VARCHAR' },
  LONG: { VARCHAR: 'MEDIUMTEXT', VARBINARY: 'MEDIUMBLOB' },
};

export class StatementParser extends QueryParser {
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

  // ---- data changes ----

  private insert(): InsertStatement {
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

  private update(): Statement {
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

  private delete(): Statement {
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

  // ---- DDL ----

  private create(): Statement {
    this.expect('CREATE');
    const orReplace = this.acceptSeq('OR', 'REPLACE');
    const temporary = this.accept('TEMPORARY');
    if (this.accept('TABLE')) return this.createTable(temporary);
    if (temporary) throw this.error('expected TABLE');
    const kind = this.oneOf('UNIQUE', 'FULLTEXT', 'SPATIAL');
    if (this.accept('INDEX')) {
      if (kind === 'FULLTEXT' || kind === 'SPATIAL') throw unsupportedSyntax(`${kind} indexes`);
      const name = this.name('an index name');
      this.indexType();
      this.expect('ON');
      const table = this.tableName();
      const parts = this.keyParts();
      this.indexOptions();
      this.alterOptions();
      return { kind: 'createIndex', unique: kind === 'UNIQUE', name, table, parts };
    }
    if (kind !== undefined) throw this.error('expected INDEX');
    if (this.is('DATABASE') || this.is('SCHEMA')) {
      this.next();
      const ifNotExists = this.acceptSeq('IF', 'NOT', 'EXISTS');
      const name = this.name('a database name');
      this.tableOptions();
      return { kind: 'createDatabase', ifNotExists, name };
    }
    // CREATE [ALGORITHM = x] [DEFINER = user] [SQL SECURITY x] VIEW
    for (;;) {
      if (this.accept('ALGORITHM')) {
        this.expectOp('=');
        this.name('an algorithm', true);
      } else if (this.accept('DEFINER')) {
        this.expectOp('=');
        this.user();
      } else if (this.acceptSeq('SQL', 'SECURITY')) this.name('DEFINER or INVOKER', true);
      else break;
    }
    if (this.accept('VIEW')) {
      const view = this.tableName();
      const columns = this.isOp('(') ? this.nameList() : undefined;
      this.expect('AS');
      const query = this.query();
      if (this.accept('WITH')) {
        this.oneOf('CASCADED', 'LOCAL');
        this.expect('CHECK');
        this.expect('OPTION');
      }
      return { kind: 'createView', orReplace, view, ...(columns !== undefined ? { columns } : {}), query };
    }
    const what = this.tok.u;
    if (['TRIGGER', 'PROCEDURE', 'FUNCTION', 'EVENT', 'USER', 'ROLE', 'TABLESPACE', 'SERVER'].includes(what))
      throw unsupportedSyntax(`CREATE ${what}`);
    throw this.error();
  }

  /** A user as DEFINER and GRANT name it: name, 'name'@'host', CURRENT_USER. */
  private user(): string {
    if (this.accept('CURRENT_USER')) {
      if (this.acceptOp('(')) this.expectOp(')');
      return 'CURRENT_USER';
    }
    const name = this.nameOrString('a user');
    if (this.tok.t === T.UserVar) return `${name}@${this.next().v}`;
    return name;
  }

  private createTable(temporary: boolean): CreateTableStatement {
    const ifNotExists = this.acceptSeq('IF', 'NOT', 'EXISTS');
    const table = this.tableName();
    const out: CreateTableStatement = {
      kind: 'createTable',
      ifNotExists,
      temporary,
      table,
      columns: [],
      constraints: [],
      options: {},
    };
    if (this.accept('LIKE')) {
      out.like = this.tableName();
      return out;
    }
    if (this.isOp('(') && this.isAt(1, 'LIKE')) {
      this.next();
      this.next();
      out.like = this.tableName();
      this.expectOp(')');
      return out;
    }
    if (this.isOp('(') && !this.queryAhead()) {
      this.next();
      do {
        const c = this.constraint();
        if (c !== undefined) out.constraints.push(c);
        else out.columns.push(this.columnDef());
      } while (this.acceptOp(','));
      this.expectOp(')');
    }
    out.options = this.tableOptions();
    if (this.is('PARTITION')) throw unsupportedSyntax('PARTITION BY');
    this.oneOf('IGNORE', 'REPLACE');
    const hadAs = this.accept('AS');
    if (hadAs || this.isOp('(') || (this.tok.t === T.Word && QUERY_WORDS.has(this.tok.u))) {
      out.as = this.query();
    }
    return out;
  }

  /** A table constraint at this point of a CREATE TABLE or ALTER TABLE ADD, or undefined. */
  private constraint(): TableConstraint | undefined {
    let name: string | undefined;
    if (this.is('CONSTRAINT')) {
      this.next();
      if (!this.is('PRIMARY') && !this.is('UNIQUE') && !this.is('FOREIGN') && !this.is('CHECK'))
        name = this.name('a constraint name');
    }
    if (this.acceptSeq('PRIMARY', 'KEY')) {
      this.indexType();
      const parts = this.keyParts();
      this.indexOptions();
      return { kind: 'primary', ...(name !== undefined ? { name } : {}), parts };
    }
    if (this.accept('UNIQUE')) {
      this.oneOf('INDEX', 'KEY');
      const own = this.atName ? this.name() : undefined;
      this.indexType();
      const parts = this.keyParts();
      this.indexOptions();
      const n = own ?? name;
      return { kind: 'unique', ...(n !== undefined ? { name: n } : {}), parts };
    }
    if (this.acceptSeq('FOREIGN', 'KEY')) {
      const own = this.atName ? this.name() : undefined;
      const columns = this.nameList();
      const references = this.references();
      const n = name ?? own;
      return { kind: 'foreign', ...(n !== undefined ? { name: n } : {}), columns, references };
    }
    if (this.accept('CHECK')) {
      this.expectOp('(');
      const expr = this.expr();
      this.expectOp(')');
      this.enforced();
      return { kind: 'check', ...(name !== undefined ? { name } : {}), expr };
    }
    if (name !== undefined) throw this.error('expected PRIMARY KEY, UNIQUE, FOREIGN KEY or CHECK');
    const fulltext = this.oneOf('FULLTEXT', 'SPATIAL');
    if (fulltext !== undefined || this.is('INDEX') || this.is('KEY')) {
      if (fulltext === undefined || this.is('INDEX') || this.is('KEY')) this.next();
      const own = this.atName ? this.name() : undefined;
      this.indexType();
      const parts = this.keyParts();
      this.indexOptions();
      return {
        kind: 'index',
        ...(own !== undefined ? { name: own } : {}),
        parts,
        fulltext: fulltext !== undefined,
      };
    }
    return undefined;
  }

  private enforced(): void {
    this.accept('NOT');
    this.accept('ENFORCED');
  }

  private indexType(): void {
    if (this.accept('USING')) this.name('an index type', true);
  }

  private indexOptions(): void {
    for (;;) {
      if (this.accept('KEY_BLOCK_SIZE')) {
        this.acceptOp('=');
        this.integer();
      } else if (this.is('USING')) this.indexType();
      else if (this.acceptSeq('WITH', 'PARSER')) this.name('a parser', true);
      else if (this.accept('COMMENT')) this.string();
      else if (!this.accept('VISIBLE') && !this.accept('INVISIBLE')) break;
    }
  }

  /** ALGORITHM = x, LOCK = x after CREATE INDEX and in ALTER TABLE. */
  private alterOptions(): void {
    while (this.is('ALGORITHM') || this.is('LOCK')) {
      this.next();
      this.acceptOp('=');
      this.name('a value', true);
    }
  }

  private string(): string {
    if (this.tok.t !== T.Str) throw this.error('expected a string');
    return this.next().v;
  }

  private keyParts(): KeyPart[] {
    this.expectOp('(');
    const out: KeyPart[] = [];
    do {
      if (this.isOp('(')) throw unsupportedSyntax('functional key parts');
      const column = this.name('a column name');
      let length: number | undefined;
      if (this.acceptOp('(')) {
        length = this.integer();
        this.expectOp(')');
      }
      const desc = this.accept('DESC');
      if (!desc) this.accept('ASC');
      out.push({ column, desc, ...(length !== undefined ? { length } : {}) });
    } while (this.acceptOp(','));
    this.expectOp(')');
    return out;
  }

  private references(): ForeignKeyTarget {
    this.expect('REFERENCES');
    const table = this.tableName().name;
    const columns = this.isOp('(') ? this.nameList() : [];
    const out: ForeignKeyTarget = { table, columns };
    if (this.accept('MATCH')) this.oneOf('FULL', 'PARTIAL', 'SIMPLE');
    for (;;) {
      if (this.acceptSeq('ON', 'DELETE')) out.onDelete = this.refOption();
      else if (this.acceptSeq('ON', 'UPDATE')) out.onUpdate = this.refOption();
      else break;
    }
    return out;
  }

  private refOption(): string {
    if (this.accept('RESTRICT')) return 'RESTRICT';
    if (this.accept('CASCADE')) return 'CASCADE';
    if (this.acceptSeq('SET', 'NULL')) return 'SET NULL';
    if (this.acceptSeq('SET', 'DEFAULT')) return 'SET DEFAULT';
    if (this.acceptSeq('NO', 'ACTION')) return 'NO ACTION';
    throw this.error('expected RESTRICT, CASCADE, SET NULL, SET DEFAULT or NO ACTION');
  }

  private columnDef(): ColumnDef {
    const name = this.name('a column name');
    const type = this.dataType();
    const c: ColumnDef = { name, type, autoIncrement: false, primaryKey: false, unique: false };
    for (;;) {
      if (this.acceptSeq('NOT', 'NULL')) c.nullable = false;
      else if (this.accept('NULL')) c.nullable = true;
      else if (this.accept('DEFAULT')) c.default = this.unary();
      else if (this.accept('AUTO_INCREMENT')) c.autoIncrement = true;
      else if (this.accept('UNIQUE')) {
        this.accept('KEY');
        c.unique = true;
      } else if (this.acceptSeq('PRIMARY', 'KEY') || this.accept('KEY')) c.primaryKey = true;
      else if (this.accept('COMMENT')) c.comment = this.string();
      else if (this.accept('COLLATE')) type.collation = this.nameOrString('a collation');
      else if (this.acceptSeq('CHARACTER', 'SET') || this.accept('CHARSET'))
        type.charset = this.nameOrString('a charset');
      else if (this.accept('COLUMN_FORMAT') || this.accept('STORAGE')) this.name('a value', true);
      else if (this.acceptSeq('ON', 'UPDATE')) c.onUpdate = this.unary();
      else if (this.accept('VISIBLE') || this.accept('INVISIBLE')) {
        // Column visibility: every column is visible here.
      } else if (this.acceptSeq('SERIAL', 'DEFAULT', 'VALUE')) {
        c.autoIncrement = true;
        c.nullable = false;
        c.unique = true;
      } else if (this.is('GENERATED') || this.is('AS')) {
        if (this.accept('GENERATED')) this.expect('ALWAYS');
        this.expect('AS');
        this.expectOp('(');
        const expr = this.expr();
        this.expectOp(')');
        const how = this.oneOf('VIRTUAL', 'STORED', 'PERSISTENT');
        c.generated = { expr, stored: how === 'STORED' || how === 'PERSISTENT' };
      } else if (this.is('REFERENCES')) c.references = this.references();
      else if (this.is('CHECK') || (this.is('CONSTRAINT') && this.isAt(2, 'CHECK'))) {
        if (this.accept('CONSTRAINT')) this.name('a constraint name');
        this.expect('CHECK');
        this.expectOp('(');
        c.check = this.expr();
        this.expectOp(')');
        this.enforced();
      } else break;
    }
    return c;
  }

  private dataType(): DataType {
    const t = this.tok;
    if (t.t !== T.Word) throw this.error('expected a type');
    this.next();
    let name = t.u;
    const second = TWO_WORD_TYPES[name];
    if (second !== undefined && this.tok.t === T.Word && second[this.tok.u] !== undefined) {
      name = second[this.next().u]!;
      if (t.u === 'NATIONAL' && name === 'CHAR' && this.accept('VARYING')) name = 'VARCHAR';
    } else if (name === 'NCHAR') name = 'CHAR';
    else if (name === 'NVARCHAR') name = 'VARCHAR';
    const out: DataType = { name, unsigned: false, zerofill: false };
    if ((name === 'ENUM' || name === 'SET') && this.isOp('(')) {
      this.next();
      out.values = [];
      do out.values.push(this.string());
      while (this.acceptOp(','));
      this.expectOp(')');
    } else if (this.acceptOp('(')) {
      out.length = this.integer();
      if (this.acceptOp(',')) out.scale = this.integer();
      this.expectOp(')');
    }
    for (;;) {
      if (this.accept('UNSIGNED')) out.unsigned = true;
      else if (this.accept('SIGNED')) out.unsigned = false;
      else if (this.accept('ZEROFILL')) {
        out.zerofill = true;
        out.unsigned = true;
      } else if (this.acceptSeq('CHARACTER', 'SET') || this.accept('CHARSET'))
        out.charset = this.nameOrString('a charset');
      else if (this.is('COLLATE')) {
        this.next();
        out.collation = this.nameOrString('a collation');
      } else if (
        this.is('BINARY') &&
        ['CHAR', 'VARCHAR', 'TEXT', 'TINYTEXT', 'MEDIUMTEXT', 'LONGTEXT'].includes(name)
      ) {
        this.next();
        out.collation = 'binary';
      } else if (this.accept('ASCII')) out.charset = 'latin1';
      else if (this.accept('UNICODE')) out.charset = 'ucs2';
      else break;
    }
    return out;
  }

  /** Table options (ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ...): names upper-cased, values as written. */
  private tableOptions(): Record<string, string> {
    const out: Record<string, string> = {};
    for (;;) {
      this.acceptOp(',');
      const t = this.tok;
      if (
        t.t !== T.Word ||
        t.u === 'AS' ||
        t.u === 'IGNORE' ||
        t.u === 'REPLACE' ||
        QUERY_WORDS.has(t.u) ||
        t.u === 'PARTITION'
      )
        break;
      let key: string;
      this.accept('DEFAULT');
      if (this.acceptSeq('CHARACTER', 'SET') || this.accept('CHARSET')) key = 'CHARSET';
      else if (this.accept('COLLATE')) key = 'COLLATE';
      else if (this.tok.t === T.Word) key = this.next().u;
      else throw this.error('expected a table option');
      this.acceptOp('=');
      const v = this.tok;
      if (v.t === T.Str || v.t === T.Num || v.t === T.Word || v.t === T.QuotedId) {
        this.next();
        out[key] = v.v;
      } else throw this.error('expected a value');
    }
    return out;
  }

  private drop(): Statement {
    this.expect('DROP');
    const temporary = this.accept('TEMPORARY');
    if (this.accept('TABLE') || this.accept('TABLES')) {
      const ifExists = this.acceptSeq('IF', 'EXISTS');
      const tables = [this.tableName()];
      while (this.acceptOp(',')) tables.push(this.tableName());
      this.oneOf('RESTRICT', 'CASCADE');
      return { kind: 'dropTable', ifExists, tables };
    }
    if (temporary) throw this.error('expected TABLE');
    if (this.accept('VIEW')) {
      const ifExists = this.acceptSeq('IF', 'EXISTS');
      const views = [this.tableName()];
      while (this.acceptOp(',')) views.push(this.tableName());
      this.oneOf('RESTRICT', 'CASCADE');
      return { kind: 'dropView', ifExists, views };
    }
    if (this.accept('INDEX')) {
      const name = this.name('an index name');
      if (!this.accept('ON')) return { kind: 'dropIndex', name };
      const table = this.tableName();
      this.alterOptions();
      return { kind: 'dropIndex', name, table };
    }
    if (this.accept('DATABASE') || this.accept('SCHEMA')) {
      const ifExists = this.acceptSeq('IF', 'EXISTS');
      return { kind: 'dropDatabase', ifExists, name: this.name('a database name') };
    }
    const what = this.tok.u;
    if (['TRIGGER', 'PROCEDURE', 'FUNCTION', 'EVENT', 'USER', 'ROLE'].includes(what))
      throw unsupportedSyntax(`DROP ${what}`);
    throw this.error();
  }

  private alter(): AlterTableStatement {
    this.expect('ALTER');
    this.accept('IGNORE');
    if (!this.accept('TABLE')) {
      const what = this.tok.u;
      if (what === 'DATABASE' || what === 'SCHEMA' || what === 'VIEW' || what === 'USER')
        throw unsupportedSyntax(`ALTER ${what}`);
      this.expect('TABLE');
    }
    const table = this.tableName();
    const actions: AlterAction[] = [];
    if (this.atEnd || this.isOp(';')) return { kind: 'alterTable', table, actions };
    do actions.push(this.alterAction());
    while (this.acceptOp(','));
    return { kind: 'alterTable', table, actions };
  }

  private position(): { first: true } | { after: string } | undefined {
    if (this.accept('FIRST')) return { first: true };
    if (this.accept('AFTER')) return { after: this.name('a column name') };
    return undefined;
  }

  private alterAction(): AlterAction {
    if (this.accept('ADD')) {
      const c = this.constraint();
      if (c !== undefined) return { kind: 'addConstraint', constraint: c };
      this.accept('COLUMN');
      if (this.isOp('(')) throw unsupportedSyntax('ADD of several columns in parentheses');
      const column = this.columnDef();
      const position = this.position();
      return { kind: 'addColumn', column, ...(position !== undefined ? { position } : {}) };
    }
    if (this.accept('DROP')) {
      if (this.acceptSeq('PRIMARY', 'KEY')) return { kind: 'dropPrimaryKey' };
      if (this.acceptSeq('FOREIGN', 'KEY'))
        return { kind: 'dropForeignKey', name: this.name('a constraint name') };
      if (this.accept('INDEX') || this.accept('KEY'))
        return { kind: 'dropIndex', name: this.name('an index name') };
      if (this.accept('CHECK') || this.accept('CONSTRAINT')) throw unsupportedSyntax('DROP CHECK');
      this.accept('COLUMN');
      return { kind: 'dropColumn', name: this.name('a column name') };
    }
    if (this.accept('MODIFY')) {
      this.accept('COLUMN');
      const column = this.columnDef();
      const position = this.position();
      return { kind: 'modifyColumn', column, ...(position !== undefined ? { position } : {}) };
    }
    if (this.accept('CHANGE')) {
      this.accept('COLUMN');
      const from = this.name('a column name');
      const column = this.columnDef();
      const position = this.position();
      return { kind: 'changeColumn', from, column, ...(position !== undefined ? { position } : {}) };
    }
    if (this.accept('RENAME')) {
      if (this.accept('COLUMN')) {
        const from = this.name('a column name');
        this.expect('TO');
        return { kind: 'renameColumn', from, to: this.name('a column name') };
      }
      if (this.accept('INDEX') || this.accept('KEY')) {
        const from = this.name('an index name');
        this.expect('TO');
        return { kind: 'renameIndex', from, to: this.name('an index name') };
      }
      if (!this.accept('TO')) this.accept('AS');
      return { kind: 'renameTable', to: this.tableName() };
    }
    if (this.accept('ALTER')) {
      this.accept('COLUMN');
      const column = this.name('a column name');
      if (this.acceptSeq('SET', 'DEFAULT')) return { kind: 'alterDefault', column, default: this.unary() };
      if (this.acceptSeq('DROP', 'DEFAULT')) return { kind: 'alterDefault', column };
      if (this.acceptSeq('SET', 'VISIBLE') || this.acceptSeq('SET', 'INVISIBLE'))
        return { kind: 'options', options: {} };
      throw this.error('expected SET DEFAULT or DROP DEFAULT');
    }
    if (this.accept('ENABLE') || this.accept('DISABLE')) {
      this.expect('KEYS');
      return { kind: 'options', options: {} };
    }
    if (this.acceptSeq('CONVERT', 'TO')) {
      if (!this.acceptSeq('CHARACTER', 'SET')) this.expect('CHARSET');
      const options: Record<string, string> = { CHARSET: this.nameOrString('a charset') };
      if (this.accept('COLLATE')) options.COLLATE = this.nameOrString('a collation');
      return { kind: 'options', options };
    }
    if (this.accept('FORCE')) return { kind: 'options', options: {} };
    if (this.is('ALGORITHM') || this.is('LOCK')) {
      this.alterOptions();
      return { kind: 'options', options: {} };
    }
    if (this.is('ORDER')) throw unsupportedSyntax('ALTER TABLE ... ORDER BY');
    const options = this.tableOptions();
    if (Object.keys(options).length === 0) throw this.error('expected an ALTER TABLE action');
    return { kind: 'options', options };
  }

  // ---- session statements ----

  private set(): Statement {
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

  private show(): ShowStatement {
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

  private lockTables(): Statement {
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
