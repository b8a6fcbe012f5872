import { invalidArgument, TidemarkError } from '../errors.js';
import {
  canonicalInt,
  DECIMAL_INT64_PRECISION,
  DECIMAL_MAX_PRECISION,
  DECIMAL_MAX_SCALE,
  Decimal,
  decimalBytes,
  decodeOrdered,
  divFloor,
  encodeOrdered,
  INT64_MAX,
  INT64_MIN,
  pow10,
  toBigInt,
  UINT64_MAX,
} from '../util/decimal.js';

export type ColumnType =
  'int32' | 'int64' | 'float64' | 'bool' | 'string' | 'bytes' | 'timestamp' | 'uint64' | 'decimal';

/** The order matters: a column's type is stored as its index here (schema_codec). */
export const COLUMN_TYPES: readonly ColumnType[] = [
  'int32',
  'int64',
  'float64',
  'bool',
  'string',
  'bytes',
  'timestamp',
  'uint64',
  'decimal',
];

/**
 * How a column's values are laid out in memtables, the WAL and objects: its type, except for
 * DECIMAL, whose scaled integers are int64 up to 18 digits and order-preserving bytes beyond.
 */
export type StorageType = Exclude<ColumnType, 'decimal'>;

/**
 * How a column is declared in `createTable`: a type name, or `{ type, nullable }`; a decimal
 * column as `{ type: 'decimal', precision, scale }` (precision 1..65, scale 0..30, at most the
 * precision; 'decimal' alone is DECIMAL(10, 0), as in MySQL).
 */
export type ColumnSpec =
  ColumnType | { type: ColumnType; nullable?: boolean; precision?: number; scale?: number };

export interface TableSpec {
  columns: Record<string, ColumnSpec>;
  primaryKey: string;
  /** Secondary indexes (see createIndex); describeTable lists the table's built ones. */
  indexes?: { name: string; columns: string[]; unique?: boolean }[];
}

/** What the schema of an index's hidden table records: whose index it is, and its definition. */
export interface IndexOf {
  /** The id of the indexed table. */
  base: number;
  name: string;
  columns: readonly string[];
  unique: boolean;
}

export interface ColumnDef {
  name: string;
  type: ColumnType;
  nullable: boolean;
  /** Position in the table. */
  index: number;
  /** DECIMAL: digits in all, and after the point. */
  precision?: number;
  scale?: number;
  /** How the values are laid out (see StorageType). */
  storage: StorageType;
}

/** A column definition with its storage type filled in. */
export function columnDef(
  name: string,
  type: ColumnType,
  nullable: boolean,
  index: number,
  precision?: number,
  scale?: number,
): ColumnDef {
  if (type !== 'decimal') return { name, type, nullable, index, storage: type };
  const p = precision ?? 10;
  const s = scale ?? 0;
  return {
    name,
    type,
    nullable,
    index,
    precision: p,
    scale: s,
    storage: p <= DECIMAL_INT64_PRECISION ? 'int64' : 'bytes',
  };
}

/** A row as the API takes and returns it. */
export type Row = Record<string, unknown>;
/**
 * A primary-key value once checked: numbers for numeric, bool and timestamp keys; 64-bit integers
 * (and decimals' scaled integers) beyond the safe range as bigints; wide decimals as bytes.
 */
export type Key = number | bigint | string | Uint8Array;

/** Limits stated in the README and enforced here. */
export const LIMITS = {
  nameLength: 64,
  columns: 1024,
  /** A string (UTF-8 bytes) or bytes value. */
  valueBytes: 16 * 1024 * 1024,
  /** A primary-key string or bytes value: keys are compared often and kept in indexes. */
  keyBytes: 4096,
} as const;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkName(what: 'table' | 'column' | 'index', name: unknown): string {
  if (typeof name !== 'string') throw invalidArgument(`${what} name must be a string, got ${describe(name)}`);
  if (name.length === 0 || name.length > LIMITS.nameLength || !NAME.test(name)) {
    throw invalidArgument(
      `${what} name ${JSON.stringify(name)} is invalid: 1 to ${LIMITS.nameLength} letters, digits and _, not starting with a digit`,
    );
  }
  return name;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (v instanceof Date) return 'Date';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return v.length > 40 ? `string(${v.length})` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint')
    return `${typeof v} ${String(v)}`;
  return typeof v;
}

const encoder = new TextEncoder();

/**
 * The schema of one table: its columns in order and its primary key. Knows how to check a row and
 * normalize its values to the engine's representation.
 */
export class TableSchema {
  readonly columns: readonly ColumnDef[];
  readonly byName: ReadonlyMap<string, ColumnDef>;
  readonly pk: ColumnDef;
  /** Set on the schema of an index's hidden table (see src/schema/index_key.ts). */
  index: IndexOf | undefined;

  constructor(
    readonly name: string,
    columns: ColumnDef[],
    pkIndex: number,
  ) {
    this.columns = columns;
    this.byName = new Map(columns.map((c) => [c.name, c]));
    this.pk = columns[pkIndex]!;
  }

  static fromSpec(name: string, spec: unknown): TableSchema {
    checkName('table', name);
    if (typeof spec !== 'object' || spec === null)
      throw invalidArgument('table spec must be an object { columns, primaryKey }');
    const { columns, primaryKey } = spec as Partial<TableSpec>;
    if (typeof columns !== 'object' || columns === null || Array.isArray(columns)) {
      throw invalidArgument('table spec needs columns: an object of column name to type');
    }
    const entries = Object.entries(columns);
    if (entries.length === 0) throw invalidArgument('a table needs at least one column');
    if (entries.length > LIMITS.columns)
      throw invalidArgument(`a table has at most ${LIMITS.columns} columns`);
    const defs: ColumnDef[] = entries.map(([col, s], index) => {
      checkName('column', col);
      const type = typeof s === 'string' ? s : (s as { type?: unknown } | null)?.type;
      const o = typeof s === 'object' && s !== null ? (s as Record<string, unknown>) : {};
      const nullable = o.nullable ?? false;
      if (!COLUMN_TYPES.includes(type as ColumnType)) {
        throw invalidArgument(
          `column ${col}: type must be one of ${COLUMN_TYPES.join(', ')}, got ${describe(type)}`,
        );
      }
      if (typeof nullable !== 'boolean') throw invalidArgument(`column ${col}: nullable must be a boolean`);
      if (type !== 'decimal') {
        if (o.precision !== undefined || o.scale !== undefined)
          throw invalidArgument(`column ${col}: precision and scale are for decimal columns`);
        return columnDef(col, type as ColumnType, nullable, index);
      }
      const precision = o.precision ?? 10;
      const scale = o.scale ?? 0;
      if (
        !Number.isInteger(precision) ||
        (precision as number) < 1 ||
        (precision as number) > DECIMAL_MAX_PRECISION
      )
        throw invalidArgument(
          `column ${col}: decimal precision must be an integer from 1 to ${DECIMAL_MAX_PRECISION}, got ${describe(precision)}`,
        );
      if (!Number.isInteger(scale) || (scale as number) < 0 || (scale as number) > DECIMAL_MAX_SCALE)
        throw invalidArgument(
          `column ${col}: decimal scale must be an integer from 0 to ${DECIMAL_MAX_SCALE}, got ${describe(scale)}`,
        );
      if ((scale as number) > (precision as number))
        throw invalidArgument(
          `column ${col}: decimal scale ${describe(scale)} exceeds its precision ${describe(precision)}`,
        );
      return columnDef(col, 'decimal', nullable, index, precision as number, scale as number);
    });
    if (typeof primaryKey !== 'string')
      throw invalidArgument('table spec needs primaryKey: the name of a column');
    const pk = defs.findIndex((d) => d.name === primaryKey);
    if (pk < 0) throw invalidArgument(`primary key ${JSON.stringify(primaryKey)} is not a column`);
    if (defs[pk]!.nullable) throw invalidArgument(`primary key ${primaryKey} cannot be nullable`);
    return new TableSchema(name, defs, pk);
  }

  /** The spec this schema was made from (for `describe` and the catalog). */
  toSpec(): TableSpec {
    const columns: Record<string, ColumnSpec> = {};
    for (const c of this.columns) {
      if (c.type === 'decimal') {
        columns[c.name] = {
          type: c.type,
          ...(c.nullable ? { nullable: true } : {}),
          precision: c.precision!,
          scale: c.scale!,
        };
      } else columns[c.name] = c.nullable ? { type: c.type, nullable: true } : c.type;
    }
    return { columns, primaryKey: this.pk.name };
  }

  column(name: string): ColumnDef {
    const c = this.byName.get(name);
    if (c === undefined) {
      throw new TidemarkError('SCHEMA', `table ${this.name} has no column ${JSON.stringify(name)}`, {
        details: { table: this.name, column: name },
      });
    }
    return c;
  }

  /**
   * Check a row given to insert or upsert and return its values in column order, normalized
   * (int64 bigint -> number, timestamp Date -> ms, bool -> 0/1 kept as boolean here).
   */
  normalizeRow(row: unknown): unknown[] {
    if (typeof row !== 'object' || row === null || Array.isArray(row) || row instanceof Uint8Array) {
      throw new TidemarkError('SCHEMA', `a row of ${this.name} must be an object, got ${describe(row)}`);
    }
    const r = row as Record<string, unknown>;
    const values = new Array<unknown>(this.columns.length);
    let present = 0;
    for (const c of this.columns) {
      const v = Object.prototype.hasOwnProperty.call(r, c.name) ? r[c.name] : undefined;
      if (v !== undefined) present++;
      values[c.index] = v;
    }
    // More own properties than known columns with values: find the unknown one (or an undefined).
    let own = 0;
    for (const k in r) if (Object.prototype.hasOwnProperty.call(r, k)) own++;
    if (own !== present) for (const k of Object.keys(r)) this.column(k);
    for (const c of this.columns) values[c.index] = this.normalizeValue(c, values[c.index]);
    return values;
  }

  normalizeValue(c: ColumnDef, v: unknown): unknown {
    if (v === undefined || v === null) {
      if (c.nullable) return null;
      throw new TidemarkError(
        'SCHEMA',
        c === this.pk
          ? `the primary key ${c.name} of ${this.name} is missing`
          : `column ${this.name}.${c.name} is not nullable, got ${v === null ? 'null' : 'no value'}`,
        { details: { table: this.name, column: c.name } },
      );
    }
    if (c === this.pk && typeof v === 'number' && !Number.isFinite(v)) {
      throw invalidArgument(`${this.name}.${c.name}: a primary key cannot be ${v}`);
    }
    const bad = (): TidemarkError =>
      new TidemarkError('SCHEMA', `column ${this.name}.${c.name} is ${c.type}, got ${describe(v)}`, {
        details: { table: this.name, column: c.name },
      });
    const outOfDecimalRange = (shown: unknown): TidemarkError =>
      invalidArgument(
        `${this.name}.${c.name}: ${String(shown)} is out of the range of DECIMAL(${c.precision}, ${c.scale})`,
      );
    switch (c.type) {
      case 'int32':
        if (typeof v !== 'number' || !Number.isInteger(v)) throw bad();
        if (v < -2147483648 || v > 2147483647)
          throw invalidArgument(`${this.name}.${c.name}: ${v} is out of the int32 range`);
        return v;
      case 'int64':
      case 'uint64': {
        const lo = c.type === 'int64' ? INT64_MIN : 0n;
        const hi = c.type === 'int64' ? INT64_MAX : UINT64_MAX;
        if (typeof v === 'bigint') {
          if (v < lo || v > hi)
            throw invalidArgument(
              `${this.name}.${c.name}: ${v} is out of the ${c.type} range (${lo} to ${hi})`,
            );
          return canonicalInt(v);
        }
        if (typeof v !== 'number' || !Number.isInteger(v)) throw bad();
        if (!Number.isSafeInteger(v))
          throw invalidArgument(
            `${this.name}.${c.name}: ${v} is not a safe integer (it may have been rounded already): pass a bigint`,
          );
        if (v < 0 && c.type === 'uint64')
          throw invalidArgument(`${this.name}.${c.name}: ${v} is out of the uint64 range (0 to ${hi})`);
        return v === 0 ? 0 : v;
      }
      case 'decimal': {
        if (typeof v === 'number' && c.storage === 'int64') {
          // A double whose shortest text has at most `scale` digits after the point is that text's
          // scaled integer r exactly when r / 10^scale gives the double back (|r| < 2^50: no two
          // such decimals share a double): no text, no bigint.
          const p = 10 ** c.scale!;
          const r = Math.round(v * p);
          if (Math.abs(r) < 2 ** 50 && r / p === v) {
            if (Math.abs(r) >= 10 ** c.precision!) throw outOfDecimalRange(v);
            return r + 0;
          }
        }
        const d = toDecimal(v);
        if (d === undefined) throw bad();
        const r = d.rescale(c.scale!);
        if (r.intDigits > c.precision! - c.scale!) throw outOfDecimalRange(d.toString());
        return decimalInternal(c, r.u);
      }
      case 'float64':
        if (typeof v !== 'number') throw bad();
        return v;
      case 'bool':
        if (typeof v !== 'boolean') throw bad();
        return v;
      case 'timestamp': {
        const ms = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : undefined;
        if (ms === undefined) throw bad();
        if (!Number.isFinite(ms))
          throw invalidArgument(`${this.name}.${c.name}: invalid timestamp ${describe(v)}`);
        return ms;
      }
      case 'string': {
        if (typeof v !== 'string') throw bad();
        // Strings are stored as UTF-8: a lone surrogate would come back as U+FFFD, so refuse it.
        if (!v.isWellFormed())
          throw invalidArgument(`${this.name}.${c.name}: string with a lone surrogate is not valid Unicode`);
        // A UTF-8 encoding is at most 3 bytes per UTF-16 unit: only long strings need measuring.
        const limit = c === this.pk ? LIMITS.keyBytes : LIMITS.valueBytes;
        if (v.length * 3 > limit && encoder.encode(v).length > limit) {
          throw invalidArgument(`${this.name}.${c.name}: string of more than ${limit} bytes`);
        }
        return v;
      }
      case 'bytes': {
        if (!(v instanceof Uint8Array)) throw bad();
        const limit = c === this.pk ? LIMITS.keyBytes : LIMITS.valueBytes;
        if (v.length > limit)
          throw invalidArgument(`${this.name}.${c.name}: value of ${v.length} bytes exceeds ${limit}`);
        return v;
      }
    }
  }

  /** Check a key argument (get, update, delete, scan bounds) against the primary key's type. */
  normalizeKey(v: unknown): Key {
    if (v === undefined || v === null) {
      throw new TidemarkError('SCHEMA', `a key of ${this.name} cannot be ${String(v)}`, {
        details: { table: this.name },
      });
    }
    if (this.pk.type === 'decimal') {
      // A key with more digits than the column's scale is between two keys, not rounded to one:
      // a scaled key with a half step (155.5 for 1.554 at scale 2) orders between 1.55 and 1.56,
      // so get finds nothing and scan bounds keep exactly the keys the value bounds.
      // A key past the column's range is past every key (a bound, or a key no row has).
      const d = toDecimal(v);
      const s = this.pk.scale!;
      const max = pow10(this.pk.precision!);
      if (d !== undefined && d.truncate(s).intDigits > this.pk.precision! - s)
        return decimalInternal(this.pk, d.sign() < 0 ? -max : max);
      if (d !== undefined && d.s > s) {
        if (d.truncate(s).rescale(d.s).u !== d.u) {
          const lower = divFloor(d.u, d.s - s);
          if (this.pk.storage === 'int64' && lower > -(2n ** 51n) && lower < 2n ** 51n)
            return Number(lower) + 0.5;
          throw invalidArgument(
            `${this.name}.${this.pk.name}: a key of ${d.toString()} has more digits after the point than DECIMAL(${this.pk.precision}, ${s})`,
          );
        }
      }
    }
    const n = this.normalizeValue(this.pk, v);
    return typeof n === 'boolean' ? (n ? 1 : 0) : (n as Key);
  }

  /** The key of a normalized row. */
  keyOf(values: readonly unknown[]): Key {
    const k = values[this.pk.index];
    return typeof k === 'boolean' ? (k ? 1 : 0) : (k as Key);
  }
}

/** A value given for a decimal column as a Decimal: strings, numbers, bigints and Decimals. */
export function toDecimal(v: unknown): Decimal | undefined {
  if (v instanceof Decimal) return v;
  if (typeof v === 'string') return Decimal.parse(v);
  if (typeof v === 'number') return Number.isFinite(v) ? Decimal.fromNumber(v) : undefined;
  if (typeof v === 'bigint') return new Decimal(v, 0);
  return undefined;
}

/** A decimal column's scaled integer in the engine's representation (see StorageType). */
function decimalInternal(c: ColumnDef, u: bigint): Key {
  return c.storage === 'int64' ? canonicalInt(u) : encodeOrdered(u, decimalBytes(c.precision!));
}

/** A decimal column's value, from the engine's representation (its scaled integer). */
export function decimalOf(c: ColumnDef, v: unknown): Decimal {
  const u = c.storage === 'bytes' ? decodeOrdered(v as Uint8Array) : toBigInt(v as number | bigint);
  return new Decimal(u, c.scale!);
}

/**
 * A value in the engine's representation as the API returns it: timestamps as Dates, decimals as
 * their text (with exactly the column's scale), bytes copied.
 */
export function apiValue(c: ColumnDef, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (c.type) {
    case 'timestamp':
      return new Date(v as number);
    case 'decimal':
      return decimalOf(c, v).toString();
    case 'bytes':
      return (v as Uint8Array).slice();
    default:
      return v;
  }
}

export type KeyCompare = (a: Key, b: Key) => number;

function compareScalar(a: Key, b: Key): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Lexicographic byte order. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * The order of primary keys: numeric for numbers (bool as 0/1, timestamps as ms), UTF-16 code unit
 * order for strings (JavaScript's own), byte order for bytes. Objects are sorted by the same order.
 */
export function keyCompare(type: StorageType): KeyCompare {
  return type === 'bytes' ? (a, b) => compareBytes(a as Uint8Array, b as Uint8Array) : compareScalar;
}

/** A key usable in a Map: bytes become a latin1 string, one char per byte. */
export type MapKey = number | bigint | string;

export function mapKey(k: Key): MapKey {
  return k instanceof Uint8Array ? Buffer.from(k.buffer, k.byteOffset, k.length).toString('latin1') : k;
}
