/**
 * DDL: CREATE and DROP of tables, views and indexes, one statement at a time, outside transactions.
 * A table is a tidemark table plus its row in the meta table (MySQL types, defaults, keys, UNIQUE).
 */
import type * as A from './parser/ast.js';
import { TidemarkError } from '../errors.js';
import type { Expr } from './expr.js';
import { Planner } from './plan/planner.js';
import type { PlanCatalog } from './plan/rel.js';
import { getv, type Ctx } from './vector.js';
import { Decimal, type SqlValue } from './values.js';
import { DECIMAL_MAX_PRECISION, DECIMAL_MAX_SCALE } from '../util/decimal.js';
import {
  autoIndexName,
  columnTypeOf,
  engineIndexName,
  META_TABLE,
  metaKey,
  ROWID,
  specOf,
  TUPLE_KEY,
  type SqlColumn,
  type SqlIndex,
  type SqlObject,
  type SqlTable,
  type SqlView,
  type TableIndex,
} from './catalog.js';
import { constantLevel, mentionExpr, mentions, unsupported } from './bind.js';
import type { QueryResult } from '../txn/query.js';
import type { SqlHost } from './host.js';
import type { TableSpec } from '../schema/schema.js';
import { viewQuery, type SqlMeta } from './meta.js';
import { coerce } from './coerce.js';
import type { AutoIncrement } from './autoincrement.js';
import { plannerFor, type PlanCache } from './prepared.js';

/** The DDL statements of one database. */
export class SqlDdl {
  /** DDL statements run one at a time. */
  private turn: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: SqlHost,
    private readonly meta: SqlMeta,
    private readonly ids: AutoIncrement,
    private readonly plans: PlanCache,
  ) {}

  /** Run a DDL statement once those before it are done. */
  async run(ast: A.Statement): Promise<QueryResult> {
    const turn = this.turn.then(() => this.runNow(ast));
    this.turn = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private async runNow(ast: A.Statement): Promise<QueryResult> {
    await this.meta.load();
    const none: QueryResult = { columns: [], rows: [], affectedRows: 0 };
    switch (ast.kind) {
      case 'createTable':
        await this.createTable(ast);
        return none;
      case 'dropTable':
        await this.dropEach(ast.tables, ast.ifExists, 'table', async (name) => {
          await this.host.dropTable(name);
          for (const m of [...this.meta.values()]) {
            if (m.kind === 'index' && m.table === name) await this.meta.put(undefined, metaKey(m));
          }
          if (this.meta.has(`table:${name}`)) await this.meta.put(undefined, `table:${name}`);
          this.ids.forget(name);
          this.plans.clear();
        });
        return none;
      case 'createView': {
        const name = ast.view.name;
        if (this.meta.table(name) !== undefined || (this.meta.view(name) !== undefined && !ast.orReplace)) {
          throw new TidemarkError('INVALID_ARGUMENT', `table or view ${name} already exists`, {
            details: { mysqlErrno: 1050 },
          });
        }
        const text = ast.query.text;
        // Check it plans now, as the catalog will be (this view replaced), so that a broken view, or
        // one reaching itself, is refused at creation.
        const query = viewQuery(text);
        const next: PlanCatalog = {
          table: (n) => this.meta.table(n),
          view: (n) => (n === name ? { query } : this.meta.view(n)),
          estimatedRows: (n) => this.meta.estimatedRows(n),
        };
        const planned = plannerFor(next, query).select(query);
        if (ast.columns !== undefined && ast.columns.length !== planned.names.length) {
          throw new TidemarkError(
            'INVALID_ARGUMENT',
            'the view column list and the SELECT differ in length',
            {
              details: { mysqlErrno: 1353 },
            },
          );
        }
        const view: SqlView = {
          kind: 'view',
          name,
          sql: text,
          ...(ast.columns !== undefined ? { columns: ast.columns } : {}),
        };
        await this.meta.put(view, metaKey(view));
        return none;
      }
      case 'dropView':
        await this.dropEach(ast.views, ast.ifExists, 'view', (name) =>
          this.meta.put(undefined, `view:${name}`),
        );
        return none;
      case 'createIndex':
        if (ast.parts.length === 0) throw this.noKeyParts();
        await this.alterIndexes(
          ast.table.name,
          [],
          [],
          [{ name: ast.name, parts: ast.parts, unique: ast.unique }],
        );
        return none;
      case 'dropIndex': {
        let tname: string;
        if (ast.table === undefined) {
          // Without ON (SQLite's form): the index of that name, if exactly one table has one.
          const owners = this.host
            .tables()
            .filter(
              (t) => this.meta.index(t, ast.name) !== undefined || this.legacyRow(t, ast.name) !== undefined,
            );
          if (owners.length > 1) {
            throw new TidemarkError(
              'INVALID_ARGUMENT',
              `several tables have an index ${ast.name}: say which with ON`,
            );
          }
          if (owners.length === 0) throw cannotDrop(ast.name);
          tname = owners[0]!;
        } else tname = ast.table.name;
        await this.alterIndexes(tname, [ast.name], [], []);
        return none;
      }
      case 'alterTable': {
        const drops: string[] = [];
        const renames: { from: string; to: string }[] = [];
        const adds: IndexDecl[] = [];
        for (const a of ast.actions) {
          switch (a.kind) {
            case 'addConstraint': {
              const c = a.constraint;
              if (c.kind === 'unique')
                adds.push({
                  ...(c.name !== undefined ? { name: c.name } : {}),
                  parts: c.parts,
                  unique: true,
                });
              else if (c.kind === 'index') {
                if (c.fulltext) throw unsupported('FULLTEXT and SPATIAL indexes');
                adds.push({
                  ...(c.name !== undefined ? { name: c.name } : {}),
                  parts: c.parts,
                  unique: false,
                });
              } else if (c.kind === 'primary') throw unsupported('ALTER TABLE ... ADD PRIMARY KEY');
              else if (c.kind === 'foreign') throw unsupported('FOREIGN KEY');
              else throw unsupported('CHECK');
              break;
            }
            case 'dropIndex':
              drops.push(a.name);
              break;
            case 'renameIndex':
              renames.push({ from: a.from, to: a.to });
              break;
            case 'options':
              // Table options (ENGINE=..., CONVERT TO CHARACTER SET utf8mb4, FORCE, ALGORITHM=...):
              // nothing to change here, as CREATE TABLE takes them.
              break;
            default:
              throw unsupported(`ALTER TABLE ... ${alterName(a)}`);
          }
        }
        await this.alterIndexes(ast.table.name, drops, renames, adds);
        return none;
      }
    }
    throw unsupported(ddlName(ast));
  }

  private noKeyParts(): TidemarkError {
    return new TidemarkError('SYNTAX', 'an index needs at least one column');
  }

  /** A catalog row of an index made before the engine had indexes (not built yet), by SQL name. */
  private legacyRow(table: string, name: string): SqlIndex | undefined {
    const n = name.toLowerCase();
    return this.meta.indexRows(table).find((r) => r.engine === undefined && r.name.toLowerCase() === n);
  }

  /**
   * Index DDL on one table (CREATE INDEX, DROP INDEX, ALTER TABLE's ADD/DROP/RENAME INDEX): every
   * action checked first; then drops, renames (the catalog's names only: the engine's stays), and
   * builds, each new index built online by the engine (DUPLICATE_KEY when rows break UNIQUE: the
   * indexes this statement built are dropped again), and the catalog written in one transaction.
   */
  private async alterIndexes(
    tname: string,
    drops: readonly string[],
    renames: readonly { from: string; to: string }[],
    adds: readonly IndexDecl[],
  ): Promise<void> {
    const t = this.meta.targetTable(tname);
    // The names as they will be, step by step (drops, then renames, then adds).
    const names = new Map<string, string>();
    for (const ix of this.meta.indexes(tname)) names.set(ix.name.toLowerCase(), ix.name);
    for (const r of this.meta.indexRows(tname))
      if (r.engine === undefined) names.set(r.name.toLowerCase(), r.name);
    const dropped: { ix?: TableIndex; legacy?: SqlIndex }[] = [];
    for (const d of drops) {
      if (d.toUpperCase() === 'PRIMARY') throw unsupported('dropping the primary key');
      const key = d.toLowerCase();
      if (!names.has(key)) throw cannotDrop(d);
      names.delete(key);
      const ix = this.meta.index(tname, d);
      const legacy = this.legacyRow(tname, d);
      dropped.push({ ...(ix !== undefined ? { ix } : {}), ...(legacy !== undefined ? { legacy } : {}) });
    }
    const renamed: { ix: TableIndex; to: string }[] = [];
    for (const r of renames) {
      const ix = this.meta.index(tname, r.from);
      if (ix === undefined || !names.has(r.from.toLowerCase()))
        throw new TidemarkError('NOT_FOUND', `Key '${r.from}' doesn't exist in table '${tname}'`, {
          details: { mysqlErrno: 1176 },
        });
      names.delete(r.from.toLowerCase());
      checkIndexName(r.to, names);
      names.set(r.to.toLowerCase(), r.to);
      renamed.push({ ix, to: r.to });
    }
    const made: SqlIndex[] = [];
    for (const d of adds) {
      const cols = keyColumns(t, d.parts);
      let name = d.name;
      if (name === undefined) name = autoIndexName(cols[0]!, (n) => names.has(n.toLowerCase()));
      else checkIndexName(name, names);
      names.set(name.toLowerCase(), name);
      made.push(indexRow(t.name, name, cols, d.unique, d.parts));
    }
    const engineNames = new Set(this.host.describeTable(tname).indexes.map((e) => e.name));
    for (const m of made) {
      if (engineNames.has(m.engine!) && !dropped.some((d) => d.ix?.engine === m.engine))
        throw new TidemarkError('INVALID_ARGUMENT', `the table already has an index named ${m.engine}`, {
          details: { mysqlErrno: 1061 },
        });
    }
    const writes: [string, SqlObject | undefined][] = [];

    try {
      for (const d of dropped) {
        if (d.ix !== undefined) await this.host.dropIndex(tname, d.ix.engine);
        const row = d.legacy ?? this.meta.indexRows(tname).find((r) => r.engine === d.ix?.engine);
        if (row !== undefined) writes.push([metaKey(row), undefined]);
        // A UNIQUE set of an old catalog goes with its index.
        if (d.legacy?.unique === true) {
          const cols = d.legacy.columns.join(',');
          const cur = (this.meta.get(metaKey(t)) as SqlTable | undefined) ?? t;
          const t2: SqlTable = { ...cur, unique: cur.unique.filter((u) => u.join(',') !== cols) };
          writes.push([metaKey(t2), t2]);
        }
      }
    } finally {
      if (dropped.length > 0) this.meta.indexesChanged();
    }
    for (const r of renamed) {
      const row = this.meta.indexRows(tname).find((x) => x.engine === r.ix.engine);
      const next: SqlIndex = {
        ...(row ?? indexRow(tname, r.ix.name, r.ix.columns, r.ix.unique, undefined)),
        name: r.to,
        engine: r.ix.engine,
      };
      if (row !== undefined) writes.push([metaKey(row), undefined]);
      writes.push([metaKey(next), next]);
    }
    const built: SqlIndex[] = [];
    try {
      for (const m of made) {
        try {
          await this.host.createIndex(tname, m.engine!, m.columns, { unique: m.unique });
        } catch (e) {
          throw duplicateOf(e, tname, m.name);
        }
        built.push(m);
        writes.push([metaKey(m), m]);
      }
    } catch (e) {
      for (const m of built) {
        try {
          await this.host.dropIndex(tname, m.engine!);
        } catch {
          // Left in the engine: listed under its engine name; DROP INDEX removes it.
        }
      }
      if (writes.length > 0)
        await this.meta.putAll(
          writes.filter(([, o]) => o === undefined || o.kind !== 'index' || !made.includes(o)),
        );
      else this.meta.indexesChanged();
      throw e;
    }
    if (writes.length > 0) await this.meta.putAll(writes);
    else this.meta.indexesChanged();
  }

  /** DROP TABLE/VIEW [IF EXISTS] a, b: each dropped in turn; a missing one is NOT_FOUND unless IF EXISTS. */
  private async dropEach(
    names: readonly A.TableName[],
    ifExists: boolean,
    kind: 'table' | 'view',
    drop: (name: string) => Promise<void>,
  ): Promise<void> {
    for (const n of names) {
      const name = n.name;
      if ((kind === 'table' ? this.meta.table(name) : this.meta.view(name)) === undefined) {
        if (ifExists) continue;
        throw new TidemarkError('NOT_FOUND', `unknown ${kind} ${name}`, {
          details: { table: name, mysqlErrno: 1051 },
        });
      }
      await drop(name);
    }
  }

  private async createTable(ast: A.CreateTableStatement): Promise<void> {
    const name = ast.table.name;
    if (this.meta.table(name) !== undefined || this.meta.view(name) !== undefined || name === META_TABLE) {
      if (ast.ifNotExists) return;
      throw new TidemarkError('INVALID_ARGUMENT', `table ${name} already exists`, {
        details: { table: name, mysqlErrno: 1050 },
      });
    }
    if (ast.as !== undefined || ast.like !== undefined) throw unsupported('CREATE TABLE ... AS/LIKE');
    if (ast.temporary) throw unsupported('CREATE TEMPORARY TABLE');
    const columns: SqlColumn[] = [];
    let primaryKey: string[] = [];
    const indexDecls: IndexDecl[] = [];
    const colNames = (parts: readonly A.KeyPart[]): string[] =>
      parts.map((d) => {
        const n = d.column.toLowerCase();
        const c = columns.find((x) => x.name.toLowerCase() === n);
        if (c === undefined)
          throw new TidemarkError('SCHEMA', `unknown column ${d.column} in a key`, {
            details: { mysqlErrno: 1072 },
          });
        return c.name;
      });
    const onePrimary = (cols: string[]): void => {
      if (primaryKey.length > 0)
        throw new TidemarkError('SCHEMA', 'multiple primary keys defined', {
          details: { mysqlErrno: 1068 },
        });
      primaryKey = cols;
    };
    for (const d of ast.columns) {
      const cname = d.name;
      if (columns.some((c) => c.name.toLowerCase() === cname.toLowerCase())) {
        throw new TidemarkError('SCHEMA', `column ${cname} declared twice`, {
          details: { mysqlErrno: 1060 },
        });
      }
      if (d.generated !== undefined) throw unsupported('generated columns');
      if (d.references !== undefined) throw unsupported('FOREIGN KEY');
      if (d.check !== undefined) throw unsupported('CHECK');
      const sqlType = d.type.name;
      const type = columnTypeOf(sqlType, d.type.unsigned);
      const col: SqlColumn = { name: cname, sqlType, type, nullable: d.nullable !== false };
      if (d.type.unsigned && type !== 'float64' && type !== 'decimal') col.unsigned = true;
      if ((sqlType === 'VARCHAR' || sqlType === 'CHAR') && d.type.length !== undefined)
        col.length = d.type.length;
      if (type === 'decimal') {
        // DECIMAL is DECIMAL(10, 0); DECIMAL(p) is DECIMAL(p, 0); MySQL's limits 65 and 30.
        const p = d.type.length ?? 10;
        const s = d.type.scale ?? 0;
        if (p < 1 || p > DECIMAL_MAX_PRECISION)
          throw new TidemarkError(
            'SCHEMA',
            `Too-big precision ${p} specified for '${cname}'. Maximum is 65.`,
            {
              details: { mysqlErrno: 1426 },
            },
          );
        if (s > DECIMAL_MAX_SCALE)
          throw new TidemarkError(
            'SCHEMA',
            `Too big scale ${s} specified for column '${cname}'. Maximum is 30.`,
            {
              details: { mysqlErrno: 1425 },
            },
          );
        if (s > p)
          throw new TidemarkError(
            'SCHEMA',
            `For float(M,D), double(M,D) or decimal(M,D), M must be >= D (column '${cname}').`,
            {
              details: { mysqlErrno: 1427 },
            },
          );
        col.precision = p;
        col.scale = s;
      } else if (type === 'float64' && d.type.scale !== undefined) col.scale = d.type.scale;
      if (d.autoIncrement) {
        if (type !== 'int32' && type !== 'int64' && type !== 'uint64')
          throw new TidemarkError('SCHEMA', `AUTO_INCREMENT column ${cname} must be an integer`);
        col.autoIncrement = true;
      }
      if (d.default !== undefined && d.default.kind !== 'null') {
        const v = this.defaultOf(d.default);
        // JSON-able: dates as { date: ms }, integers past 2^53 as { int: digits }, DECIMALs as text.
        col.default =
          v === null
            ? null
            : v instanceof Date
              ? { date: v.getTime() }
              : typeof v === 'bigint'
                ? { int: v.toString() }
                : v instanceof Decimal
                  ? v.toString()
                  : v;
        if (v !== null && v !== 'CURRENT_TIMESTAMP') coerce({ name } as SqlTable, col, v);
      } else if (d.default !== undefined) col.default = null;
      if (d.primaryKey) onePrimary([cname]);
      if (d.unique) indexDecls.push({ parts: [{ column: cname, desc: false }], unique: true });
      columns.push(col);
    }
    for (const c of ast.constraints) {
      const named = c.name !== undefined ? { name: c.name } : {};
      if (c.kind === 'primary') onePrimary(colNames(c.parts));
      else if (c.kind === 'unique') indexDecls.push({ ...named, parts: c.parts, unique: true });
      else if (c.kind === 'foreign') throw unsupported('FOREIGN KEY');
      else if (c.kind === 'check') throw unsupported('CHECK');
      // FULLTEXT and SPATIAL: accepted, not built (no such index here; MATCH is not supported).
      else if (c.fulltext) colNames(c.parts);
      else indexDecls.push({ ...named, parts: c.parts, unique: false });
    }
    if (columns.length === 0) throw new TidemarkError('SCHEMA', 'a table needs at least one column');
    for (const k of primaryKey) {
      const c = columns.find((x) => x.name === k)!;
      c.nullable = false;
    }
    const keyColumn = primaryKey.length === 1 ? primaryKey[0]! : primaryKey.length === 0 ? ROWID : TUPLE_KEY;
    const t: SqlTable = { kind: 'table', name, columns, primaryKey, keyColumn, unique: [] };
    const names = new Map<string, string>();
    const indexes: SqlIndex[] = indexDecls.map((d) => {
      const cols = keyColumns(t, d.parts);
      let iname = d.name;
      if (iname === undefined) iname = autoIndexName(cols[0]!, (n) => names.has(n.toLowerCase()));
      else checkIndexName(iname, names);
      names.set(iname.toLowerCase(), iname);
      return indexRow(name, iname, cols, d.unique, d.parts);
    });
    const spec: TableSpec = {
      ...specOf(t),
      indexes: indexes.map((i) => ({ name: i.engine!, columns: i.columns, unique: i.unique })),
    };
    await this.host.createTable(name, spec);
    await this.meta.putAll([[metaKey(t), t], ...indexes.map((i): [string, SqlObject] => [metaKey(i), i])]);
  }

  /** A column's DEFAULT: a constant, or the string 'CURRENT_TIMESTAMP' for the time of each insert. */
  private defaultOf(dv: A.Expr): SqlValue {
    if (dv.kind === 'call' && dv.args.length === 0 && NOW_NAMES.has(dv.name.toUpperCase()))
      return 'CURRENT_TIMESTAMP';
    const m = mentions();
    mentionExpr(dv, m);
    const e: Expr = new Planner(this.meta, m).expr(dv, constantLevel());
    if (!e.constant || e.subs.length > 0) throw unsupported('a DEFAULT that is not a constant');
    const c = e.ev({ len: 1, cols: [] }, {} as Ctx);
    return getv(c, 0);
  }
}

/** An index as a statement declares it (unnamed: MySQL names it after its first column). */
interface IndexDecl {
  name?: string;
  parts: readonly A.KeyPart[];
  unique: boolean;
}

/** MySQL's limit on the columns of one index. */
const MAX_KEY_PARTS = 16;

/** An index's columns by the table's own names: each once, every one known. */
function keyColumns(t: SqlTable, parts: readonly A.KeyPart[]): string[] {
  if (parts.length > MAX_KEY_PARTS)
    throw new TidemarkError(
      'INVALID_ARGUMENT',
      `Too many key parts specified; max ${MAX_KEY_PARTS} parts allowed`,
      {
        details: { mysqlErrno: 1070 },
      },
    );
  const out: string[] = [];
  for (const p of parts) {
    const n = p.column.toLowerCase();
    const c = t.columns.find((x) => x.name.toLowerCase() === n);
    if (c === undefined)
      throw new TidemarkError('SCHEMA', `Key column '${p.column}' doesn't exist in table`, {
        details: { mysqlErrno: 1072 },
      });
    if (out.includes(c.name))
      throw new TidemarkError('SCHEMA', `Duplicate column name '${c.name}'`, {
        details: { mysqlErrno: 1060 },
      });
    // A prefix (col(10)): the engine indexes whole values, which answers every lookup the prefix
    // would. UNIQUE over a prefix is then UNIQUE over the values: weaker than MySQL's (it takes
    // 'ab' beside 'ac'), as UNIQUE (a(1)) was here before engine indexes (MySQL needs a prefix to
    // index a TEXT column at all).
    out.push(c.name);
  }
  return out;
}

/** An index name a statement gives: not PRIMARY, at most 64 characters, free on the table. */
function checkIndexName(name: string, taken: ReadonlyMap<string, string>): void {
  if (name === '' || name.toUpperCase() === 'PRIMARY')
    throw new TidemarkError('INVALID_ARGUMENT', `Incorrect index name '${name}'`, {
      details: { mysqlErrno: 1280 },
    });
  if (name.length > 64)
    throw new TidemarkError('INVALID_ARGUMENT', `Identifier name '${name}' is too long`, {
      details: { mysqlErrno: 1059 },
    });
  if (taken.has(name.toLowerCase()))
    throw new TidemarkError('INVALID_ARGUMENT', `Duplicate key name '${name}'`, {
      details: { mysqlErrno: 1061 },
    });
}

/** The catalog row of an index. */
function indexRow(
  table: string,
  name: string,
  columns: string[],
  unique: boolean,
  parts: readonly A.KeyPart[] | undefined,
): SqlIndex {
  const row: SqlIndex = { kind: 'index', name, table, columns, unique, engine: engineIndexName(name) };
  if (parts?.some((p) => p.desc) === true) row.desc = parts.map((p) => p.desc);
  return row;
}

function cannotDrop(name: string): TidemarkError {
  return new TidemarkError('NOT_FOUND', `Can't DROP INDEX \`${name}\`; check that it exists`, {
    details: { mysqlErrno: 1091 },
  });
}

/** The engine's DUPLICATE_KEY of an index build, in MySQL's words (the index by its SQL name). */
function duplicateOf(e: unknown, table: string, index: string): unknown {
  if (!(e instanceof TidemarkError) || e.code !== 'DUPLICATE_KEY') return e;
  return new TidemarkError('DUPLICATE_KEY', `Duplicate entry for key '${index}' of ${table}: ${e.message}`, {
    cause: e,
    details: { ...e.details, table, index, mysqlErrno: 1062 },
  });
}

/** How an ALTER TABLE action that is not supported is named in its error. */
function alterName(a: A.AlterAction): string {
  switch (a.kind) {
    case 'addColumn':
      return 'ADD COLUMN';
    case 'dropColumn':
      return 'DROP COLUMN';
    case 'dropPrimaryKey':
      return 'DROP PRIMARY KEY';
    case 'dropForeignKey':
      return 'DROP FOREIGN KEY';
    case 'modifyColumn':
      return 'MODIFY COLUMN';
    case 'changeColumn':
      return 'CHANGE COLUMN';
    case 'renameColumn':
      return 'RENAME COLUMN';
    case 'renameTable':
      return 'RENAME';
    case 'alterDefault':
      return 'ALTER COLUMN ... DEFAULT';
    default:
      return a.kind;
  }
}

/** Names of the current time a DEFAULT may give: the column then defaults to the time of each insert. */
const NOW_NAMES = new Set(['CURRENT_TIMESTAMP', 'NOW', 'LOCALTIMESTAMP', 'LOCALTIME']);

/** How an unsupported DDL statement is named in its error. */
function ddlName(ast: A.Statement): string {
  switch (ast.kind) {
    case 'truncate':
      return 'TRUNCATE';
    case 'createDatabase':
      return 'CREATE DATABASE';
    case 'dropDatabase':
      return 'DROP DATABASE';
  }
  return ast.kind;
}

const DDL_KINDS = new Set([
  'createTable',
  'dropTable',
  'createView',
  'dropView',
  'createIndex',
  'dropIndex',
  'alterTable',
  'truncate',
  'createDatabase',
  'dropDatabase',
]);

export function isDdl(ast: A.Statement): boolean {
  return DDL_KINDS.has(ast.kind);
}
