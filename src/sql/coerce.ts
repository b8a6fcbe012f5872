/**
 * Values into and out of a table's columns: MySQL's strict-mode conversions on writes (range,
 * length and type checks), the engine's stored forms, and keys as the engine takes them.
 */
import { TidemarkError } from '../errors.js';
import {
  dateText,
  Decimal,
  exactOf,
  parseDate,
  roundHalfAway,
  stringToDecimal,
  stringToNumber,
  toNumber,
  toText,
  type SqlValue,
} from './values.js';
import { canonicalInt, divRound as divRoundHalfAway } from '../util/decimal.js';
import { ROWID, sqlTypeText, TUPLE_KEY, type SqlColumn, type SqlTable } from './catalog.js';

/** A key as the engine takes it. */
export function keyValue(t: SqlTable, v: unknown): unknown {
  if (t.keyColumn === ROWID || t.keyColumn === TUPLE_KEY) return v;
  const c = t.columns.find((x) => x.name === t.keyColumn)!;
  return engineOf(c, v as SqlValue);
}

/** The range of a declared integer type (with UNSIGNED), as MySQL checks it. */
function integerRange(c: SqlColumn): [bigint, bigint] {
  const bits: Record<string, number> = {
    TINYINT: 8,
    SMALLINT: 16,
    MEDIUMINT: 24,
    INT: 32,
    INTEGER: 32,
    YEAR: 16,
  };
  const b = bits[c.sqlType.toUpperCase()] ?? (c.type === 'int32' ? 32 : 64);
  if (c.unsigned === true) return [0n, (1n << BigInt(b)) - 1n];
  return [-(1n << BigInt(b - 1)), (1n << BigInt(b - 1)) - 1n];
}

/** A SQL value as the engine stores it in this column (no checks: it came from the engine). */
export function engineOf(c: SqlColumn, v: SqlValue): unknown {
  if (v === null) return null;
  if (c.type === 'bool') return v !== 0;
  return v;
}

/** An engine value as a SQL value. */
export function sqlOf(c: SqlColumn, v: unknown): SqlValue {
  if (v === null || v === undefined) return null;
  if (c.type === 'bool') return v === true || v === 1 ? 1 : 0;
  if (c.type === 'timestamp' && typeof v === 'number') return new Date(v);
  if (c.type === 'decimal' && typeof v === 'string') return Decimal.parse(v) ?? null;
  return v as SqlValue;
}

/** A value for a column, converted as MySQL (strict mode) converts it, or a SCHEMA error. */
export function coerce(t: SqlTable, c: SqlColumn, v: SqlValue): unknown {
  if (v === null) {
    if (!c.nullable) {
      throw new TidemarkError('SCHEMA', `column ${c.name} cannot be null`, {
        details: { table: t.name, column: c.name, mysqlErrno: 1048 },
      });
    }
    return null;
  }
  const bad = (): TidemarkError =>
    new TidemarkError(
      'SCHEMA',
      `incorrect ${c.sqlType} value ${JSON.stringify(toText(v)).slice(0, 60)} for column ${c.name}`,
      {
        details: { table: t.name, column: c.name, mysqlErrno: 1366 },
      },
    );
  const outOfRange = (shown: string): TidemarkError =>
    new TidemarkError('SCHEMA', `Out of range value ${shown} for column ${c.name} (${sqlTypeText(c)})`, {
      details: { table: t.name, column: c.name, mysqlErrno: 1264 },
    });
  /** The value as an exact number (strings must be numbers whole), or a 1366 error. */
  const exact = (): Decimal => {
    if (typeof v === 'string') {
      if (!/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v)) throw bad();
      return Decimal.parse(v.trim()) ?? stringToDecimal(v);
    }
    if (v instanceof Date || v instanceof Uint8Array) throw bad();
    const d = exactOf(v);
    if (d === undefined) throw bad();
    return d;
  };
  switch (c.type) {
    case 'int32':
    case 'int64':
    case 'uint64': {
      // MySQL rounds a fraction away (half away from zero) and checks the declared type's range.
      const d = exact();
      const u = divRoundHalfAway(d.u, d.s);
      const [lo, hi] = integerRange(c);
      if (u < lo || u > hi) throw outOfRange(d.toString());
      return canonicalInt(u);
    }
    case 'decimal': {
      const p = c.precision ?? 10;
      const s = c.scale ?? 0;
      const d = exact();
      const r = d.rescale(s);
      if (r.intDigits > p - s) throw outOfRange(d.toString());
      return r;
    }
    case 'float64': {
      let n: number;
      if (typeof v === 'number') n = v;
      else if (typeof v === 'bigint' || v instanceof Decimal) n = toNumber(v);
      else if (typeof v === 'string') {
        if (!/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v)) throw bad();
        n = stringToNumber(v);
      } else throw bad();
      if (c.scale !== undefined) n = roundHalfAway(n, c.scale);
      return n;
    }
    case 'bool':
      if (typeof v === 'number') return v !== 0;
      if (typeof v === 'bigint') return v !== 0n;
      if (v instanceof Decimal) return v.sign() !== 0;
      if (typeof v === 'string') return stringToNumber(v) !== 0;
      throw bad();
    case 'string': {
      const s = v instanceof Date ? dateText(v) : toText(v);
      if (c.length !== undefined && [...s].length > c.length) {
        throw new TidemarkError('SCHEMA', `value too long for column ${c.name} (${c.sqlType}(${c.length}))`, {
          details: { table: t.name, column: c.name, mysqlErrno: 1406 },
        });
      }
      return s;
    }
    case 'bytes':
      return v instanceof Uint8Array ? v : new Uint8Array(Buffer.from(toText(v), 'utf8'));
    case 'timestamp': {
      if (v instanceof Date) return v;
      if (typeof v === 'string') {
        const d = parseDate(v);
        if (d === undefined) throw bad();
        return d;
      }
      throw bad();
    }
  }
}
