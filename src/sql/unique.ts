/** UNIQUE constraints: checked on writes, and over a table's rows when a UNIQUE index is created. */
import { TidemarkError } from '../errors.js';
import type { Transaction } from '../txn/transaction.js';
import { hashKey, type SqlValue } from './values.js';
import type { SqlTable } from './catalog.js';
import { atNewest, type SqlHost } from './host.js';
import { sqlOf } from './coerce.js';

/** UNIQUE columns: no two rows (committed, or being written) with the same non-null values. */
export async function checkUnique(
  t: SqlTable,
  rows: Record<string, unknown>[],
  tx: Transaction,
  replacing: unknown[],
): Promise<void> {
  if (t.unique.length === 0) return;
  // Keys compared as SQL values (a DECIMAL key comes from a scan as its text, from a row as a Decimal).
  const keyCol = t.columns.find((c) => c.name === t.keyColumn);
  const kh = (v: unknown): string => hashKey(keyCol !== undefined ? sqlOf(keyCol, v) : (v as SqlValue));
  const skip = new Set(replacing.map(kh));
  for (const cols of t.unique) {
    const keyOf = (r: Record<string, unknown>): string | undefined => {
      let k = '';
      for (const c of cols) {
        const v = r[c];
        if (v === null || v === undefined) return undefined;
        k += `${hashKey(
          sqlOf(
            t.columns.find((x) => x.name === c)!,
            v,
          ),
        )}\u0001`;
      }
      return k;
    };
    const mine = new Map<string, unknown>();
    for (const r of rows) {
      const k = keyOf(r);
      if (k === undefined) continue;
      if (mine.has(k)) throw duplicate(t, cols);
      mine.set(k, r[t.keyColumn]);
    }
    for await (const b of tx.scanBatches(t.name, { columns: [t.keyColumn, ...cols] })) {
      for (let i = 0; i < b.length; i++) {
        const r: Record<string, unknown> = {};
        for (const c of [t.keyColumn, ...cols]) {
          r[c] = b.nulls?.[c]?.[i] === 1 ? null : (b.columns[c] as ArrayLike<unknown>)[i];
        }
        const k = keyOf(r);
        if (k === undefined) continue;
        const owner = mine.get(k);
        if (owner === undefined && !mine.has(k)) continue;
        const key = r[t.keyColumn];
        if (skip.has(kh(key))) continue;
        if (kh(owner) === kh(key)) continue;
        throw duplicate(t, cols);
      }
    }
  }
}

/** Before a UNIQUE index is made: no two rows of the table (at the newest commit) with the same values. */
export async function checkExistingUnique(host: SqlHost, t: SqlTable, cols: string[]): Promise<void> {
  await atNewest(host, async (tx) => {
    const seen = new Set<string>();
    for await (const b of tx.scanBatches(t.name, { columns: cols })) {
      for (let i = 0; i < b.length; i++) {
        let k = '';
        let hasNull = false;
        for (const c of cols) {
          if (b.nulls?.[c]?.[i] === 1) hasNull = true;
          k += `${hashKey((b.columns[c] as ArrayLike<SqlValue>)[i] as SqlValue)}\u0001`;
        }
        if (hasNull) continue;
        if (seen.has(k)) throw duplicate(t, cols);
        seen.add(k);
      }
    }
  });
}

function duplicate(t: SqlTable, cols: string[]): TidemarkError {
  return new TidemarkError('DUPLICATE_KEY', `duplicate value for UNIQUE (${cols.join(', ')}) of ${t.name}`, {
    details: { table: t.name, columns: cols, mysqlErrno: 1062 },
  });
}
