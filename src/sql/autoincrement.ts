/**
 * AUTO_INCREMENT values and hidden row ids: one more than the greatest, found by a scan the first
 * time a process needs one, then counted in memory.
 */
import type { Transaction } from '../txn/transaction.js';
import { canonicalInt } from '../util/decimal.js';
import type { SqlTable } from './catalog.js';
import { atNewest, type SqlHost } from './host.js';

/** The next values of a database's auto-increment columns and hidden row ids. */
export class AutoIncrement {
  /** Next values of auto-increment columns and hidden row ids (exact past 2^53: bigints). */
  private readonly nextIds = new Map<string, bigint>();

  constructor(private readonly host: SqlHost) {}

  /** The next value of an auto-increment column or hidden row id: one more than the greatest. */
  async next(t: SqlTable, column: string, tx: Transaction): Promise<number | bigint> {
    const key = `${t.name}\u0000${column}`;
    let next = this.nextIds.get(key);
    if (next === undefined) {
      // The greatest value at the newest commit and in the caller's transaction (its own writes).
      const newest = await atNewest(this.host, (fresh) => greatest(fresh, t, column));
      const mine = await greatest(tx, t, column);
      next = (newest > mine ? newest : mine) + 1n;
    }
    this.nextIds.set(key, next + 1n);
    return canonicalInt(next);
  }

  /** An explicit value in an auto-increment column: later automatic values go past it, as MySQL's do. */
  async saw(t: SqlTable, column: string, v: bigint, tx: Transaction): Promise<void> {
    const key = `${t.name}\u0000${column}`;
    let next = this.nextIds.get(key);
    if (next === undefined) {
      next = BigInt(await this.next(t, column, tx));
      this.nextIds.set(key, next);
    }
    if (v >= next) this.nextIds.set(key, v + 1n);
  }

  /** A dropped table's counters are forgotten. */
  forget(table: string): void {
    for (const k of [...this.nextIds.keys()]) if (k.startsWith(`${table}\u0000`)) this.nextIds.delete(k);
  }
}

/** The greatest value of an integer column as `tx` sees it (0 when none), exactly. */
async function greatest(tx: Transaction, t: SqlTable, column: string): Promise<bigint> {
  let max: number | bigint = 0;
  if (column === t.keyColumn) {
    for await (const r of tx.scan(t.name, { reverse: true, limit: 1, columns: [column] })) {
      const v = (r as Record<string, unknown>)[column];
      if (typeof v === 'number' || typeof v === 'bigint') max = v;
    }
  } else {
    for await (const b of tx.scanBatches(t.name, { columns: [column] })) {
      const d = b.columns[column] as ArrayLike<number | bigint | null>;
      for (let i = 0; i < b.length; i++) {
        const v = d[i];
        if (v !== null && v !== undefined && v > max) max = v;
      }
    }
  }
  return typeof max === 'bigint' ? max : BigInt(Math.max(0, Math.trunc(max)));
}
