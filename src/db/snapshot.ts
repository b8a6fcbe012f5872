import type { Row } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import type { Batch } from '../txn/batch.js';
import type { TxnManager } from '../txn/manager.js';
import type { ScanBatchesOptions, ScanOptions, Transaction } from '../txn/transaction.js';

/**
 * A read view of the database as of one commit, held until `release()` (from `db.snapshot()`).
 * Every get and scan through it sees the same state, whatever commits after it was taken. While it
 * is held, the versions it may read are kept (flushes and merges retain them), so release it when
 * done; unlike a transaction it has no timeout. `db.close()` ends any snapshot still held: later
 * calls give CLOSED.
 */
export class Snapshot {
  /** @internal */
  constructor(
    private readonly tx: Transaction,
    private readonly txns: TxnManager,
  ) {}

  /** The commit timestamp it reads at. */
  get ts(): number {
    return this.tx.snapshotTs;
  }

  /** Whether it was released (or ended by close). */
  get released(): boolean {
    return this.tx.state !== 'active';
  }

  /** The row with this key as of the snapshot, or undefined. */
  get(table: string, key: unknown, options: { columns?: readonly string[] } = {}): Promise<Row | undefined> {
    this.check();
    return this.tx.get(table, key, options);
  }

  /** The row a UNIQUE index holds for these values as of the snapshot, or undefined. */
  getBy(
    table: string,
    index: string,
    values: unknown,
    options: { columns?: readonly string[] } = {},
  ): Promise<Row | undefined> {
    this.check();
    return this.tx.getBy(table, index, values, options);
  }

  /** Rows as of the snapshot, in key order (or reverse): as `db.scan`. */
  scan(table: string, options: ScanOptions = {}): AsyncGenerator<Row> {
    this.check();
    return this.tx.scan(table, options);
  }

  /** @internal Rows as of the snapshot a block at a time (see Transaction.scanBlocks). */
  scanBlocks(table: string, options: ScanOptions = {}): AsyncGenerator<Row[]> {
    this.check();
    return this.tx.scanBlocks(table, options);
  }

  /** Columnar batches as of the snapshot: as `db.scanBatches`. */
  scanBatches(table: string, options: ScanBatchesOptions = {}): AsyncGenerator<Batch> {
    this.check();
    return this.tx.scanBatches(table, options);
  }

  /** Let go of the snapshot (idempotent). Scans still running through it end with CLOSED. */
  release(): void {
    if (this.tx.state === 'active') void this.txns.commit(this.tx);
  }

  private check(): void {
    if (this.tx.state !== 'active')
      throw new TidemarkError(
        'CLOSED',
        this.tx.endReason === undefined
          ? 'the snapshot was released'
          : `the snapshot ended: ${this.tx.endReason}`,
      );
  }
}
