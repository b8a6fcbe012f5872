/**
 * The online build of an index (TxnManager.createIndex): the rows committed before its hidden table
 * existed get their entries, in batches, while writes go on.
 */
import { TidemarkError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Key } from '../schema/schema.js';
import type { Table } from '../table/table.js';
import { OWN, type ResultChunk } from './batch.js';
import { asKey, uniqueViolation } from './indexes.js';
import type { Transaction } from './transaction.js';

/** What a build needs of the transaction manager. */
export interface BuildHost {
  begin(expires: boolean): Transaction;
  commit(tx: Transaction): Promise<void>;
  rollback(tx: Transaction, reason?: string, cause?: unknown): void;
}

/** Rows per build transaction. */
const BUILD_BATCH = 2048;
/** Tries of one batch that keeps meeting concurrent writes before the build gives up (CONFLICT). */
const BUILD_ATTEMPTS = 200;
const PROGRESS_EVERY_MS = 5000;

/** The rows of a scan chunk: their values in column order (engine representation). */
function chunkValues(c: ResultChunk): unknown[][] {
  const out = new Array<unknown[]>(c.n);
  for (let i = 0; i < c.n; i++) {
    if (c.rangeStart >= 0) out[i] = c.sources[0]!.rawValues(c.rangeStart + i);
    else out[i] = c.src[i] === OWN ? c.own![i]! : c.sources[c.src[i]!]!.rawValues(c.row[i]!);
  }
  return out;
}

/**
 * Add the entries of `t`'s rows to index `h`, a batch of rows (in key order) per transaction, each
 * at a fresh snapshot. Every commit since `h` was created keeps its entries itself; a batch adds
 * only those missing. A batch that meets a concurrent commit of the same entry (the row changed
 * since its snapshot) conflicts and is read again. DUPLICATE_KEY if two rows share a UNIQUE entry.
 */
export async function buildIndex(host: BuildHost, t: Table, h: Table, logger: Logger): Promise<void> {
  const codec = h.codec(t);
  const pkIndex = t.schema.pk.index;
  const cmp = t.compare;
  let from: Key | undefined;
  let rows = 0;
  const started = performance.now();
  let reported = started;
  for (;;) {
    let next: Key | undefined;
    let done = false;
    for (let attempt = 1; ; attempt++) {
      const tx = host.begin(false);
      try {
        let n = 0;
        next = undefined;
        done = true;
        scan: for await (const batch of tx._merged(
          t,
          from,
          undefined,
          BUILD_BATCH + 1,
          undefined,
          chunkValues,
        )) {
          for (const values of batch) {
            if (n === BUILD_BATCH) {
              next = t.schema.keyOf(values);
              done = false;
              break scan;
            }
            n++;
            const k = codec.keyOf(values);
            const pk = t.schema.keyOf(values);
            const own = tx._ownEntry(h, k);
            if (own !== undefined) {
              if (own.values !== null) throw uniqueViolation(t, h);
              continue;
            }
            const found = h.lookup(k, tx.snapshotTs);
            const ref = found instanceof Promise ? await found : found;
            if (ref !== undefined) {
              if (cmp(asKey(ref.source.rawValue(ref.row, 1)), pk) !== 0) throw uniqueViolation(t, h);
              continue;
            }
            tx._putIndexEntry(h, [k, values[pkIndex]]);
          }
        }
        await host.commit(tx);
        rows += n;
        break;
      } catch (e) {
        host.rollback(tx, 'index build', e);
        if (!(e instanceof TidemarkError) || e.code !== 'CONFLICT' || attempt >= BUILD_ATTEMPTS) throw e;
        await new Promise((r) => setTimeout(r, Math.min(50, attempt)));
      }
    }
    if (done) break;
    from = next;
    const now = performance.now();
    if (now - reported >= PROGRESS_EVERY_MS) {
      reported = now;
      logger.info(
        { table: t.name, index: h.schema.index!.name, rows, ms: Math.round(now - started) },
        'building an index',
      );
    }
  }
  logger.info(
    { table: t.name, index: h.schema.index!.name, rows, ms: Math.round(performance.now() - started) },
    'index built',
  );
}
