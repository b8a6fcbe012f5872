/** SHOW and DESCRIBE: the catalog and the session's variables as result rows. */
import type * as A from './parser/ast.js';
import { TidemarkError } from '../errors.js';
import type { SessionInfo } from './vector.js';
import { defaultValue, sqlTypeText } from './catalog.js';
import { unsupported } from './bind.js';
import { likeRegex, toText } from './values.js';
import type { QueryResult } from '../txn/query.js';
import type { SqlMeta } from './meta.js';

/** SHOW TABLES, SHOW DATABASES, SHOW COLUMNS FROM t, DESCRIBE t, SHOW VARIABLES and the like. */
export async function runShow(
  meta: SqlMeta,
  ast: A.ShowStatement | A.DescribeStatement,
  session: SessionInfo,
): Promise<QueryResult> {
  await meta.load();
  const result = (columns: string[], rows: unknown[][]): QueryResult => ({
    columns,
    rows,
    affectedRows: 0,
  });
  if (ast.kind === 'describe') return columnsOf(meta, ast.table.name);
  if (ast.where !== undefined) throw unsupported('SHOW ... WHERE');
  const like = ast.like !== undefined ? likeRegex(ast.like) : undefined;
  const matches = (name: string) => like === undefined || like.test(name);
  switch (ast.what) {
    case 'DATABASES':
      return result(['Database'], matches(session.database) ? [[session.database]] : []);
    case 'TABLES': {
      const rows = meta
        .objects()
        .filter((o) => matches(o.name))
        .map((o) => (ast.full ? [o.name, o.kind === 'view' ? 'VIEW' : 'BASE TABLE'] : [o.name]));
      const name = `Tables_in_${session.database}${ast.like !== undefined ? ` (${ast.like})` : ''}`;
      return result(ast.full ? [name, 'Table_type'] : [name], rows);
    }
    case 'COLUMNS':
      return columnsOf(meta, ast.target!.name, matches);
    case 'VARIABLES': {
      const rows = [...session.system.entries()]
        .filter(([k]) => matches(k))
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, v === null ? null : toText(v)]);
      return result(['Variable_name', 'Value'], rows);
    }
    case 'WARNINGS':
    case 'ERRORS':
      return result(['Level', 'Code', 'Message'], []);
    case 'COUNT WARNINGS':
    case 'COUNT ERRORS':
      return result([`@@session.${ast.what === 'COUNT WARNINGS' ? 'warning' : 'error'}_count`], [[0]]);
    case 'STATUS':
      return result(['Variable_name', 'Value'], []);
    case 'INDEX':
      return indexesOf(meta, ast.target!.name);
    case 'CREATE TABLE': {
      const name = ast.target!.name;
      const create = await meta.createStatement(name);
      if (create === undefined) {
        throw new TidemarkError('NOT_FOUND', `unknown table ${name}`, { details: { mysqlErrno: 1146 } });
      }
      return result(['Table', 'Create Table'], [[name, create]]);
    }
  }
  throw unsupported(`SHOW ${ast.what}`);
}

/** DESCRIBE t and SHOW COLUMNS FROM t. */
function columnsOf(
  meta: SqlMeta,
  name: string,
  matches: (name: string) => boolean = () => true,
): QueryResult {
  const t = meta.targetTable(name);
  const indexes = meta.indexes(t.name);
  // MySQL's Key: PRI for the primary key's columns, UNI for a one-column UNIQUE index's, MUL for
  // the first column of any other index.
  const key = (c: string): string => {
    if (t.primaryKey.includes(c)) return 'PRI';
    if (indexes.some((i) => i.unique && i.columns.length === 1 && i.columns[0] === c)) return 'UNI';
    if (t.unique.some((u) => u.length === 1 && u[0] === c)) return 'UNI';
    if (indexes.some((i) => i.columns[0] === c) || t.unique.some((u) => u[0] === c)) return 'MUL';
    return '';
  };
  const rows = t.columns
    .filter((c) => matches(c.name))
    .map((c) => [
      c.name,
      sqlTypeText(c).toLowerCase(),
      c.nullable ? 'YES' : 'NO',
      key(c.name),
      c.default === undefined || c.default === null
        ? null
        : c.default === 'CURRENT_TIMESTAMP'
          ? 'CURRENT_TIMESTAMP'
          : toText(defaultValue(c)),
      c.autoIncrement === true ? 'auto_increment' : '',
    ]);
  return { columns: ['Field', 'Type', 'Null', 'Key', 'Default', 'Extra'], rows, affectedRows: 0 };
}

/**
 * SHOW INDEX FROM t: one row per column of each index (the primary key first as PRIMARY, then the
 * UNIQUE indexes, then the others), with MariaDB's columns. Cardinality is the table's estimated
 * rows for the primary key and UNIQUE indexes and NULL (not known) for the others.
 */
function indexesOf(meta: SqlMeta, name: string): QueryResult {
  const t = meta.targetTable(name);
  const rows: unknown[][] = [];
  const estimate = meta.estimatedRows(t.name);
  const nullable = (c: string) => (t.columns.find((x) => x.name === c)?.nullable === true ? 'YES' : '');
  const add = (key: string, unique: boolean, cols: readonly string[], desc?: readonly boolean[]) => {
    cols.forEach((c, i) =>
      rows.push([
        t.name,
        unique ? 0 : 1,
        key,
        i + 1,
        c,
        desc?.[i] === true ? 'D' : 'A',
        unique ? estimate : null,
        null,
        null,
        nullable(c),
        'BTREE',
        '',
        '',
        'NO',
      ]),
    );
  };
  if (t.primaryKey.length > 0) add('PRIMARY', true, t.primaryKey);
  for (const ix of meta.indexes(t.name)) add(ix.name, ix.unique, ix.columns, ix.desc);
  return {
    columns: [
      'Table',
      'Non_unique',
      'Key_name',
      'Seq_in_index',
      'Column_name',
      'Collation',
      'Cardinality',
      'Sub_part',
      'Packed',
      'Null',
      'Index_type',
      'Comment',
      'Index_comment',
      'Ignored',
    ],
    rows,
    affectedRows: 0,
  };
}
