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
  columnTypeOf,
  META_TABLE,
  metaKey,
  ROWID,
  specOf,
  TUPLE_KEY,
  type SqlColumn,
  type SqlIndex,
  type SqlTable,
  type SqlView,
} from './catalog.js';
import { constantLevel, mentionExpr, mentions, unsupported } from './bind.js';
import type { QueryResult } from '../txn/query.js';
import type { SqlHost } from './host.js';
import { viewQuery, type SqlMeta } from './meta.js';
import { coerce } from './coerce.js';
import { checkExistingUnique } from './unique.js';
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
      case 'createIndex': {
        const tname = ast.table.name;
        const t = this.meta.targetTable(tname);
        const name = ast.name;
        const cols: string[] = ast.parts.map((part) => {
          const n = part.column.toLowerCase();
          const col = t.columns.find((x) => x.name.toLowerCase() === n);
          if (col === undefined)
            throw new TidemarkError('SCHEMA', `unknown column ${part.column} in ${tname}`, {
              details: { mysqlErrno: 1072 },
            });
          return col.name;
        });
        if (this.meta.has(`index:${tname}:${name}`)) {
          throw new TidemarkError('INVALID_ARGUMENT', `duplicate index name ${name}`, {
            details: { mysqlErrno: 1061 },
          });
        }
        if (ast.unique) {
          const t2: SqlTable = { ...t, unique: [...t.unique, cols] };
          await checkExistingUnique(this.host, t2, cols);
          await this.meta.put(t2, metaKey(t2));
        }
        const idx: SqlIndex = { kind: 'index', name, table: tname, columns: cols, unique: ast.unique };
        await this.meta.put(idx, metaKey(idx));
        return none;
      }
      case 'dropIndex': {
        const name = ast.name;
        let tname: string;
        if (ast.table === undefined) {
          // Without ON: the index of that name, if exactly one table has one.
          const owners = [...this.meta.values()].filter((m) => m.kind === 'index' && m.name === name);
          if (owners.length > 1) {
            throw new TidemarkError(
              'INVALID_ARGUMENT',
              `several tables have an index ${name}: say which with ON`,
            );
          }
          tname = owners.length === 1 ? (owners[0] as SqlIndex).table : '';
        } else tname = ast.table.name;
        const m = this.meta.get(`index:${tname}:${name}`);
        if (m === undefined || m.kind !== 'index') {
          throw new TidemarkError('NOT_FOUND', `unknown index ${name} on ${tname}`, {
            details: { mysqlErrno: 1091 },
          });
        }
        if (m.unique) {
          const t = this.meta.targetTable(tname);
          const t2: SqlTable = { ...t, unique: t.unique.filter((u) => u.join(',') !== m.columns.join(',')) };
          await this.meta.put(t2, metaKey(t2));
        }
        await this.meta.put(undefined, metaKey(m));
        return none;
      }
    }
    throw unsupported(ddlName(ast));
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
    const unique: string[][] = [];
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
      if (d.unique) unique.push([cname]);
      columns.push(col);
    }
    for (const c of ast.constraints) {
      if (c.kind === 'primary') onePrimary(colNames(c.parts));
      else if (c.kind === 'unique') unique.push(colNames(c.parts));
      else if (c.kind === 'foreign') throw unsupported('FOREIGN KEY');
      else if (c.kind === 'check') throw unsupported('CHECK');
      // A plain INDEX/KEY in CREATE TABLE: accepted, not used (see the README).
      else colNames(c.parts);
    }
    if (columns.length === 0) throw new TidemarkError('SCHEMA', 'a table needs at least one column');
    for (const k of primaryKey) {
      const c = columns.find((x) => x.name === k)!;
      c.nullable = false;
    }
    const keyColumn = primaryKey.length === 1 ? primaryKey[0]! : primaryKey.length === 0 ? ROWID : TUPLE_KEY;
    const t: SqlTable = { kind: 'table', name, columns, primaryKey, keyColumn, unique };
    await this.host.createTable(name, specOf(t));
    await this.meta.put(t, metaKey(t));
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

/** Names of the current time a DEFAULT may give: the column then defaults to the time of each insert. */
const NOW_NAMES = new Set(['CURRENT_TIMESTAMP', 'NOW', 'LOCALTIMESTAMP', 'LOCALTIME']);

/** How an unsupported DDL statement is named in its error. */
function ddlName(ast: A.Statement): string {
  switch (ast.kind) {
    case 'alterTable':
      return 'ALTER TABLE';
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
