import type { QueryResult } from '../../txn/query.js';
import type { ResultColumn, ResultKind } from '../../sql/describe.js';
import { INT64_MAX, INT64_MIN, UINT64_MAX } from '../../util/decimal.js';
import { dateText, Decimal, toDecimalValue, toText, type SqlValue } from '../../sql/values.js';
import type { Reader, Writer } from './protocol.js';
import { CHARSET_BINARY, CHARSET_UTF8MB4, TYPE, type ColumnDef } from './protocol.js';

// How values travel in the MySQL protocol: column definitions for a result's values, rows in the
// text and the binary protocol, and the parameters of a prepared statement's execution.

/** A row's payload in the text protocol: each value a length-encoded string, NULL as 0xFB. */
export function textRow(w: Writer, cols: readonly ColumnDef[], row: readonly unknown[]): void {
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (v === null || v === undefined) w.int1(0xfb);
    else w.lstr(textValue(v as SqlValue, cols[i]));
  }
}

/** A row's payload in the binary protocol: 0x00, a NULL bitmap (offset 2), then each non-NULL value by its column's type. */
export function binaryRow(w: Writer, cols: readonly ColumnDef[], row: readonly unknown[]): void {
  w.int1(0);
  const bitmap = w.size;
  w.zeros((cols.length + 7 + 2) >> 3);
  for (let i = 0; i < cols.length; i++) {
    const v = row[i] as SqlValue | undefined;
    if (v === null || v === undefined) w.orByte(bitmap + ((i + 2) >> 3), 1 << ((i + 2) & 7));
    // A string in a string column, the usual value, goes straight in.
    else if (typeof v === 'string' && cols[i]!.type === TYPE.VAR_STRING) w.lstr(v);
    else writeBinaryValue(w, cols[i]!, v);
  }
}

/** Column definitions from a result's values: MySQL types as clients convert them. */
export function describeColumns(r: QueryResult): ColumnDef[] {
  return r.columns.map((name, i) => {
    let kind: 'int' | 'uint' | 'decimal' | 'double' | 'string' | 'bytes' | 'date' | 'null' = 'null';
    let scale = 0;
    let digits = 1;
    let negative = false;
    for (const row of r.rows) {
      const v = row[i];
      if (v === null || v === undefined) continue;
      if (typeof v === 'number' || typeof v === 'bigint') {
        const int = typeof v === 'bigint' || Number.isSafeInteger(v);
        if (int && v < 0) negative = true;
        digits = Math.max(digits, int ? String(v).replace('-', '').length : 1);
        const big = typeof v === 'bigint' && v > 9223372036854775807n;
        if (kind === 'null' || kind === 'int' || kind === 'uint')
          kind = !int ? 'double' : big || (kind as string) === 'uint' ? 'uint' : 'int';
        else if (kind === 'decimal' && int)
          digits = Math.max(digits, String(v).replace('-', '').length + scale);
        else if (kind !== 'double') kind = 'string';
      } else if (v instanceof Decimal) {
        if (kind === 'null' || kind === 'int' || kind === 'uint' || kind === 'decimal') {
          kind = 'decimal';
          scale = Math.max(scale, v.s);
          digits = Math.max(digits, v.intDigits + scale);
        } else if (kind !== 'double') kind = 'string';
      } else if (typeof v === 'string') kind = 'string';
      else if (v instanceof Uint8Array) kind = kind === 'null' || kind === 'bytes' ? 'bytes' : 'string';
      else if (v instanceof Date) kind = kind === 'null' || kind === 'date' ? 'date' : 'string';
    }
    // Past BIGINT's range and negative values in one column: neither BIGINT nor BIGINT UNSIGNED
    // holds both, DECIMAL(20, 0) does (as MySQL types such a UNION).
    if (kind === 'uint' && negative) kind = 'decimal';
    return columnDef(name, kind === 'null' ? undefined : kind, scale, digits);
  });
}

/**
 * The definition of a column of this kind (undefined: unknown, a VARCHAR as MySQL gives a NULL
 * column): integers as BIGINT (UNSIGNED for 'uint'), DECIMAL(digits, scale), DOUBLE, VARCHAR,
 * BLOB, DATETIME.
 */
export function columnDef(
  name: string,
  kind: ResultKind | undefined,
  scale = 0,
  digits = DECIMAL_DIGITS_MAX,
): ColumnDef {
  switch (kind) {
    case 'int':
    case 'uint':
      return {
        name,
        type: TYPE.LONGLONG,
        charset: CHARSET_BINARY,
        length: 20,
        // BINARY, NUM; UNSIGNED for values past BIGINT's range.
        flags: 0x80 | 0x8000 | (kind === 'uint' ? 0x20 : 0),
        decimals: 0,
      };
    case 'decimal':
      // As MySQL describes DECIMAL(p, s): digits, a point and a sign; the text carries s digits.
      return {
        name,
        type: TYPE.NEWDECIMAL,
        charset: CHARSET_BINARY,
        length: Math.max(digits, scale + 1) + (scale > 0 ? 1 : 0) + 1,
        flags: 0x80 | 0x8000,
        decimals: scale,
      };
    case 'double':
      return {
        name,
        type: TYPE.DOUBLE,
        charset: CHARSET_BINARY,
        length: 22,
        flags: 0x80 | 0x8000,
        decimals: 31,
      };
    case 'bytes':
      return {
        name,
        type: TYPE.BLOB,
        charset: CHARSET_BINARY,
        length: 65535,
        flags: 0x80 | 0x10,
        decimals: 0,
      };
    case 'date':
      return { name, type: TYPE.DATETIME, charset: CHARSET_BINARY, length: 23, flags: 0x80, decimals: 3 };
    default:
      return {
        name,
        type: TYPE.VAR_STRING,
        charset: CHARSET_UTF8MB4,
        length: 1020,
        flags: 0,
        decimals: 31,
      };
  }
}

/** DECIMAL's most digits. */
const DECIMAL_DIGITS_MAX = 65;

/**
 * A prepared statement's result columns as its prepare response declares them (what describe.ts
 * knows; a column of unknown kind as a VARCHAR), and for each whether its kind is known.
 */
export function declaredColumns(columns: readonly ResultColumn[]): { defs: ColumnDef[]; known: boolean[] } {
  return {
    defs: columns.map((c) => columnDef(c.name, c.kind, c.scale, c.precision)),
    known: columns.map((c) => c.kind !== undefined),
  };
}

/**
 * An execution's column definitions: the declared ones (so that they match the prepare response),
 * except for a column of unknown kind or with a value the declared type does not hold exactly,
 * which is described by its values (as MySQL sends the metadata of an execution anew, and clients
 * read it from there).
 */
export function executedColumns(
  declared: { defs: readonly ColumnDef[]; known: readonly boolean[] },
  r: QueryResult,
): ColumnDef[] {
  if (declared.defs.length !== r.columns.length) return describeColumns(r);
  let byValues: ColumnDef[] | undefined;
  return declared.defs.map((d, i) => {
    if (declared.known[i] === true && r.rows.every((row) => holds(d, row[i]))) {
      return d.name === r.columns[i] ? d : { ...d, name: r.columns[i]! };
    }
    byValues ??= describeColumns(r);
    return byValues[i]!;
  });
}

/** Whether a value goes exactly into a column of this definition (NULL goes anywhere). */
export function holds(d: ColumnDef, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  switch (d.type) {
    case TYPE.LONGLONG: {
      const unsigned = (d.flags & 0x20) !== 0;
      if (typeof v === 'number') return Number.isSafeInteger(v) && (!unsigned || v >= 0);
      if (typeof v !== 'bigint') return false;
      return unsigned ? v >= 0n && v <= UINT64_MAX : v >= INT64_MIN && v <= INT64_MAX;
    }
    case TYPE.NEWDECIMAL:
      if (v instanceof Decimal) return v.s <= d.decimals;
      return typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v));
    case TYPE.DOUBLE:
      return typeof v === 'number';
    case TYPE.BLOB:
      return v instanceof Uint8Array;
    case TYPE.DATETIME:
      return v instanceof Date;
    default:
      return typeof v === 'string';
  }
}

/** A value as the text protocol sends it (in a DECIMAL column, every value with its scale). */
function textValue(v: SqlValue, col?: ColumnDef): string | Uint8Array {
  if (
    col?.type === TYPE.NEWDECIMAL &&
    (typeof v === 'number' || typeof v === 'bigint' || v instanceof Decimal)
  )
    return toDecimalValue(v).rescale(col.decimals).toString();
  if (v instanceof Uint8Array) return v;
  if (v instanceof Date) return dateText(v);
  return toText(v);
}

function writeBinaryValue(w: Writer, col: ColumnDef, v: SqlValue): void {
  const type = col.type;
  switch (type) {
    case TYPE.LONGLONG:
      if (typeof v === 'bigint') w.int8(v);
      else w.int64(Math.trunc(typeof v === 'number' ? v : Number(toText(v))));
      return;
    case TYPE.DOUBLE:
      w.double(typeof v === 'number' ? v : Number(toText(v)));
      return;
    case TYPE.DATETIME: {
      const d = v instanceof Date ? v : new Date(toText(v));
      const ms = d.getUTCMilliseconds();
      w.int1(ms !== 0 ? 11 : 7)
        .int2(d.getUTCFullYear())
        .int1(d.getUTCMonth() + 1)
        .int1(d.getUTCDate())
        .int1(d.getUTCHours())
        .int1(d.getUTCMinutes())
        .int1(d.getUTCSeconds());
      if (ms !== 0) w.int4(ms * 1000);
      return;
    }
    case TYPE.BLOB:
      w.lstr(v instanceof Uint8Array ? v : toText(v));
      return;
    default:
      w.lstr(textValue(v, col));
  }
}

/** A parameter of COM_STMT_EXECUTE in the binary protocol (type: low byte, 0x8000 unsigned). */
export function readBinaryValue(r: Reader, type: number): unknown {
  const unsigned = (type & 0x8000) !== 0;
  switch (type & 0xff) {
    case TYPE.NULL:
      return null;
    case TYPE.TINY: {
      const v = r.sint(1);
      return unsigned ? v & 0xff : v;
    }
    case TYPE.SHORT:
    case TYPE.YEAR: {
      const v = r.sint(2);
      return unsigned ? v & 0xffff : v;
    }
    case TYPE.LONG:
    case TYPE.INT24: {
      const v = r.sint(4);
      return unsigned ? v >>> 0 : v;
    }
    case TYPE.LONGLONG:
      return r.int64(unsigned);
    case TYPE.NEWDECIMAL:
    case TYPE.DECIMAL: {
      // Sent as text: a DECIMAL parameter, exact.
      const t = Buffer.from(r.lbytes()).toString('utf8');
      return Decimal.parse(t) ?? t;
    }
    case TYPE.FLOAT:
      return r.float();
    case TYPE.DOUBLE:
      return r.double();
    case TYPE.DATE:
    case TYPE.DATETIME:
    case TYPE.TIMESTAMP: {
      const n = r.int1();
      if (n === 0) return new Date(Date.UTC(0, 0, 0));
      const y = r.int2();
      const mo = r.int1();
      const d = r.int1();
      let h = 0;
      let mi = 0;
      let s = 0;
      let us = 0;
      if (n >= 7) {
        h = r.int1();
        mi = r.int1();
        s = r.int1();
      }
      if (n >= 11) us = r.int4();
      return new Date(Date.UTC(y, mo - 1, d, h, mi, s, Math.floor(us / 1000)));
    }
    case TYPE.TIME: {
      const n = r.int1();
      const b = r.raw(n);
      return n === 0 ? '00:00:00' : `${b[5]}:${b[6]}:${b[7]}`;
    }
    case TYPE.BLOB:
    case TYPE.TINY_BLOB:
    case TYPE.MEDIUM_BLOB:
    case TYPE.LONG_BLOB:
      return new Uint8Array(r.lbytes());
    default:
      return r.lbytes().toString('utf8');
  }
}
