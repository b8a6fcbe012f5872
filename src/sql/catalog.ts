/**
 * What SQL knows about tables beyond tidemark's schema: MySQL type names, defaults, hidden keys,
 * unique constraints, auto-increment, views and indexes. Kept in the table `__tidemark_sql` (one row
 * per table, view or index, its definition as JSON). A tidemark table without a row there (made with
 * `db.createTable`) is usable from SQL as it is: its SQL shape is derived from its schema.
 */
import { createHash } from 'node:crypto';
import type { ColumnType, TableSpec } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import { Decimal, type SqlValue } from './values.js';
import { compareWithDouble, DECIMAL_MAX_SCALE, encodeOrdered, nextDown, pow10 } from '../util/decimal.js';

export const META_TABLE = '__tidemark_sql';
/** The hidden key of a table declared without a primary key. */
export const ROWID = '__rowid';
/** The hidden key of a table declared with a primary key of several columns (their encoding). */
export const TUPLE_KEY = '__pk';

export interface SqlColumn {
  name: string;
  /** The MySQL type as declared ('INT', 'VARCHAR', ...). */
  sqlType: string;
  /** VARCHAR(n)/CHAR(n): the longest value in characters. */
  length?: number;
  /** DECIMAL(p, s): digits in all. */
  precision?: number;
  /** DECIMAL(p, s) and DOUBLE(m, d): the scale values are rounded to. */
  scale?: number;
  /** An UNSIGNED integer type (its range is checked on writes). */
  unsigned?: boolean;
  type: ColumnType;
  nullable: boolean;
  /**
   * The default value (JSON-able: dates as { date: ms }, integers past 2^53 as { int: digits },
   * DECIMALs as their text), or 'CURRENT_TIMESTAMP'.
   */
  default?: unknown;
  autoIncrement?: boolean;
}

export interface SqlTable {
  kind: 'table';
  name: string;
  columns: SqlColumn[];
  /** The declared primary key columns (empty: none, the hidden row id is the key). */
  primaryKey: string[];
  /** The tidemark key column: the primary key, ROWID or TUPLE_KEY. */
  keyColumn: string;
  /**
   * Column sets declared UNIQUE in catalogs written before the engine had indexes (then checked by
   * scans); since, every UNIQUE constraint is an index (SqlIndex), and this is empty. Legacy sets
   * become indexes when the catalog is read (SqlMeta.buildMissing).
   */
  unique: string[][];
}

export interface SqlView {
  kind: 'view';
  name: string;
  sql: string;
  columns?: string[];
}

export interface SqlIndex {
  kind: 'index';
  /** The name SQL knows it by (MySQL's: any text; compared case-insensitively). */
  name: string;
  table: string;
  columns: string[];
  unique: boolean;
  /**
   * The engine's index (see engineIndexName). Absent in catalogs written before the engine had
   * indexes: such an index is built when the catalog is read (SqlMeta.buildMissing).
   */
  engine?: string;
  /** Key parts declared DESC (SHOW INDEX's collation 'D'); the engine's index is ascending. */
  desc?: boolean[];
}

/** An index of a table as SQL uses it: its SQL name, the engine's, its columns. */
export interface TableIndex {
  name: string;
  engine: string;
  columns: string[];
  unique: boolean;
  desc?: boolean[];
}

/** Names the engine takes for indexes (as for columns). */
const ENGINE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * The engine's name for an index SQL names `name`: the name itself when the engine takes it, else
 * (a quoted name with other characters, or longer than 64) its letters, digits and underscores and
 * a hash of the whole name, so that the mapping is deterministic and two names never meet.
 */
export function engineIndexName(name: string): string {
  if (ENGINE_NAME.test(name)) return name;
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 12);
  let base = name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 40);
  if (!/^[A-Za-z_]/.test(base)) base = `i_${base}`;
  return `${base}_${hash}`.slice(0, 64);
}

/**
 * MySQL's name for an index declared without one: its first column's, then with _2, _3, ...
 * until it is free (names compare case-insensitively; PRIMARY is the primary key's).
 */
export function autoIndexName(first: string, taken: (name: string) => boolean): string {
  if (first.toUpperCase() !== 'PRIMARY' && !taken(first)) return first;
  for (let n = 2; ; n++) if (!taken(`${first}_${n}`)) return `${first}_${n}`;
}

export type SqlObject = SqlTable | SqlView | SqlIndex;

/** The meta row key: tables and views share MySQL's namespace, indexes are per table. */
export function metaKey(o: SqlObject): string {
  return o.kind === 'index'
    ? `index:${o.table}:${o.name}`
    : `${o.kind === 'view' ? 'view' : 'table'}:${o.name}`;
}

const TYPE_NAMES: Record<string, ColumnType> = {
  INT: 'int32',
  INTEGER: 'int32',
  MEDIUMINT: 'int32',
  SMALLINT: 'int32',
  TINYINT: 'int32',
  YEAR: 'int32',
  BIGINT: 'int64',
  SERIAL: 'int64',
  DOUBLE: 'float64',
  FLOAT: 'float64',
  REAL: 'float64',
  DECIMAL: 'decimal',
  NUMERIC: 'decimal',
  DEC: 'decimal',
  FIXED: 'decimal',
  VARCHAR: 'string',
  CHAR: 'string',
  CHARACTER: 'string',
  NVARCHAR: 'string',
  NCHAR: 'string',
  TEXT: 'string',
  TINYTEXT: 'string',
  MEDIUMTEXT: 'string',
  LONGTEXT: 'string',
  STRING: 'string',
  JSON: 'string',
  ENUM: 'string',
  BOOLEAN: 'bool',
  BOOL: 'bool',
  BIT: 'bool',
  BLOB: 'bytes',
  TINYBLOB: 'bytes',
  MEDIUMBLOB: 'bytes',
  LONGBLOB: 'bytes',
  BINARY: 'bytes',
  VARBINARY: 'bytes',
  TIMESTAMP: 'timestamp',
  DATETIME: 'timestamp',
  DATE: 'timestamp',
};

export function columnTypeOf(sqlType: string, unsigned = false): ColumnType {
  const name = sqlType.toUpperCase();
  const t = TYPE_NAMES[name];
  if (t === undefined) {
    throw new TidemarkError('SCHEMA', `unknown column type ${sqlType}`, { details: { type: sqlType } });
  }
  // INT UNSIGNED reaches 2^32 - 1 (kept in 64 bits); BIGINT UNSIGNED 2^64 - 1.
  if (unsigned && (name === 'INT' || name === 'INTEGER')) return 'int64';
  if (unsigned && (name === 'BIGINT' || name === 'SERIAL')) return 'uint64';
  return t;
}

const SQL_NAME: Record<ColumnType, string> = {
  int32: 'INT',
  int64: 'BIGINT',
  float64: 'DOUBLE',
  bool: 'BOOLEAN',
  string: 'TEXT',
  bytes: 'BLOB',
  timestamp: 'TIMESTAMP',
  uint64: 'BIGINT',
  decimal: 'DECIMAL',
};

/** The SQL shape of a table made through the API (no meta row). */
export function tableFromSpec(name: string, spec: TableSpec): SqlTable {
  const columns: SqlColumn[] = Object.entries(spec.columns).map(([col, s]) => {
    const type = typeof s === 'string' ? s : s.type;
    const nullable = typeof s === 'string' ? false : (s.nullable ?? false);
    const c: SqlColumn = { name: col, sqlType: SQL_NAME[type], type, nullable };
    if (type === 'uint64') c.unsigned = true;
    if (type === 'decimal' && typeof s !== 'string') {
      c.precision = s.precision ?? 10;
      c.scale = s.scale ?? 0;
    }
    return c;
  });
  return {
    kind: 'table',
    name,
    columns,
    primaryKey: [spec.primaryKey],
    keyColumn: spec.primaryKey,
    unique: [],
  };
}

/** The tidemark spec of a table declared in SQL. */
export function specOf(t: SqlTable): TableSpec {
  const columns: TableSpec['columns'] = {};
  if (t.keyColumn === ROWID) columns[ROWID] = 'int64';
  if (t.keyColumn === TUPLE_KEY) columns[TUPLE_KEY] = 'bytes';
  for (const c of t.columns) {
    if (c.type === 'decimal')
      columns[c.name] = {
        type: c.type,
        nullable: c.nullable,
        precision: c.precision ?? 10,
        scale: c.scale ?? 0,
      };
    else columns[c.name] = c.nullable ? { type: c.type, nullable: true } : c.type;
  }
  return { columns, primaryKey: t.keyColumn };
}

/** Defaults as stored in JSON, back to values. */
export function defaultValue(c: SqlColumn): SqlValue {
  const d = c.default;
  if (d === undefined || d === null) return null;
  if (d === 'CURRENT_TIMESTAMP') return new Date();
  if (typeof d === 'object' && 'date' in d) return new Date((d as { date: number }).date);
  if (typeof d === 'object' && 'int' in d) return BigInt((d as { int: string }).int);
  return d as SqlValue;
}

/**
 * An order-preserving encoding of a tuple of key values as bytes (the hidden key of a table with
 * a primary key of several columns): numbers as sign-flipped big-endian doubles, strings as UTF-8
 * with 0x00 escaped as 0x00 0xFF and ended by 0x00 0x00.
 */
export function encodeTuple(values: readonly SqlValue[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const double = (x: number): Buffer => {
    const b = Buffer.alloc(9);
    b[0] = 1;
    b.writeDoubleBE(x === 0 ? 0 : x, 1);
    if ((b[1]! & 0x80) !== 0) for (let i = 1; i < 9; i++) b[i] = ~b[i]! & 0xff;
    else b[1]! |= 0x80;
    return b;
  };
  for (const v of values) {
    if (typeof v === 'number' || v instanceof Date) {
      parts.push(double(typeof v === 'number' ? v : v.getTime()));
    } else if (v instanceof Decimal) {
      // A DECIMAL column's values: 4, then 40 bytes of value × 10^30, order-preserving (two's
      // complement, big-endian, sign bit flipped). Equal values (1.5, 1.50) encode alike.
      parts.push(Uint8Array.of(4), encodeOrdered(v.rescale(DECIMAL_MAX_SCALE).u, 40));
    } else if (typeof v === 'bigint') {
      // An integer past 2^53 among a BIGINT column's numbers (safe integers encode as the exact
      // doubles they are, as they always have): as a double when it is one exactly (2^60), else
      // after the largest double below it, a 3 and its exact value (40 bytes, as for DECIMAL):
      // after that double and whatever follows it (tags 1 and 2, or the end), before the next.
      const x = Number(v);
      const c = compareWithDouble(new Decimal(v, 0), x);
      if (c === 0) parts.push(double(x));
      else
        parts.push(
          double(c > 0 ? x : nextDown(x)),
          Uint8Array.of(3),
          encodeOrdered(v * pow10(DECIMAL_MAX_SCALE), 40),
        );
    } else {
      const raw = typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v as Uint8Array);
      const out: number[] = [2];
      for (const x of raw) {
        out.push(x);
        if (x === 0) out.push(0xff);
      }
      out.push(0, 0);
      parts.push(Uint8Array.from(out));
    }
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** A column's type as MySQL shows it: DECIMAL(10,2), INT UNSIGNED, VARCHAR(20). */
export function sqlTypeText(c: SqlColumn): string {
  let t = c.sqlType.toUpperCase();
  if (c.type === 'decimal') t += `(${c.precision ?? 10},${c.scale ?? 0})`;
  else if (c.length !== undefined) t += `(${c.length})`;
  if (c.unsigned === true) t += ' UNSIGNED';
  return t;
}
