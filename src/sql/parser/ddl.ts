/**
 * DDL: CREATE and DROP of tables, views, indexes and databases, ALTER TABLE, with MySQL's column
 * definitions, data types, constraints and table options.
 */
import type {
  AlterAction,
  AlterTableStatement,
  ColumnDef,
  CreateTableStatement,
  DataType,
  ForeignKeyTarget,
  KeyPart,
  Statement,
  TableConstraint,
} from './ast.js';
import { T } from './lexer.js';
import { QUERY_WORDS } from './queries.js';
import { unsupportedSyntax } from './cursor.js';
import { DataChangeParser } from './dml.js';

/** Types whose (n) is a length in characters or bytes, or a precision. */
const TWO_WORD_TYPES: Record<string, Record<string, string>> = {
  DOUBLE: { PRECISION: 'DOUBLE' },
  CHARACTER: { VARYING: 'VARCHAR' },
  CHAR: { VARYING: 'VARCHAR' },
  NATIONAL: { CHAR: 'CHAR', CHARACTER: 'CHAR', VARCHAR: 'VARCHAR' },
  LONG: { VARCHAR: 'MEDIUMTEXT', VARBINARY: 'MEDIUMBLOB' },
};

export abstract class DdlParser extends DataChangeParser {
  protected create(): Statement {
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
  protected user(): string {
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

  protected string(): string {
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

  protected drop(): Statement {
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

  protected alter(): AlterTableStatement {
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
}
