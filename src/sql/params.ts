/** A statement's parameters as SQL values, checked against its placeholders. */
import { TidemarkError } from '../errors.js';
import { Decimal, type SqlValue } from './values.js';
import { canonicalInt, INT64_MIN, UINT64_MAX } from '../util/decimal.js';
import type { Prepared } from './prepared.js';

/** The parameters as SQL values, as many as the statement has placeholders, or INVALID_ARGUMENT. */
export function bindParams(p: Prepared, params: readonly unknown[]): SqlValue[] {
  return checkCount(p.params, checkParams(params));
}

/** The parameters, when there are as many as the SQL has placeholders. */
function checkCount(placeholders: number, values: SqlValue[]): SqlValue[] {
  if (values.length !== placeholders) {
    throw new TidemarkError(
      'INVALID_ARGUMENT',
      `the SQL has ${placeholders} placeholders, got ${values.length} parameters`,
    );
  }
  return values;
}

function checkParams(params: readonly unknown[]): SqlValue[] {
  if (!Array.isArray(params)) throw new TidemarkError('INVALID_ARGUMENT', 'params must be an array');
  return params.map((v, i) => {
    if (v === null || v === undefined) return null;
    if (typeof v === 'number' || typeof v === 'string' || v instanceof Uint8Array || v instanceof Date)
      return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'bigint') {
      if (v > UINT64_MAX || v < INT64_MIN) {
        throw new TidemarkError(
          'INVALID_ARGUMENT',
          `parameter ${i + 1}: ${v} is outside the 64-bit integer range (BIGINT and BIGINT UNSIGNED)`,
        );
      }
      return canonicalInt(v);
    }
    if (v instanceof Decimal) return v;
    throw new TidemarkError('INVALID_ARGUMENT', `parameter ${i + 1}: cannot bind a ${typeof v}`);
  });
}
