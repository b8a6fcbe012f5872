import { describe, mapKey, type Key, type MapKey, type Row, type TableSchema } from '../schema/schema.js';
import { invalidArgument, TidemarkError } from '../errors.js';
import type { TableScan } from '../table/scan.js';
import type { Table } from '../table/table.js';
import type { ZoneFilter } from '../table/object_layer.js';
import type { Catalog } from '../catalog/catalog.js';
import type { QueryResult } from './query.js';
import { buildBatch, OWN, readChunkRow, valuesToRow, type Batch, type ResultChunk } from './batch.js';
import type { RangeOptions } from '../schema/index_key.js';
import {
  countEntries,
  indexInfo,
  indexRows,
  maintainIndexes,
  rowByUnique,
  sameIndexes,
  snapshotValues,
  syncIndexes,
  type IndexInfo,
} from './indexes.js';
import { TableWrites, type WriteEntry } from './writes.js';

export { TableWrites, type WriteEntry };

/**
 * Runs `tx.query`: given to each transaction by whoever begins it. The engine does not know SQL; the
 * database facade above the engine and the SQL layer (src/api/database.ts) answers it.
 */
export interface QueryRunner {
  _queryIn(tx: Transaction, sql: string, params: readonly unknown[]): Promise<QueryResult>;
}

export interface ScanOptions {
  /**
   * Read through this secondary index: rows in its order, then by primary key. The bounds then
   * are tuples of values of the index's columns: `eq` for the leading ones, gte/gt/lte/lt for the
   * ones after them (a bound compares as a prefix: lte ['M'] takes every entry whose column is 'M').
   */
  index?: string;
  /** With `index`: values of the leading columns (a single value for the first). */
  eq?: unknown;
  /** Keys >= gte. */
  gte?: unknown;
  /** With `index`: entries past gt. */
  gt?: unknown;
  /** With `index`: entries up to and including lte. */
  lte?: unknown;
  /** Keys < lt. */
  lt?: unknown;
  /** Only these columns in each row (default: all). */
  columns?: readonly string[];
  /** At most this many rows. */
  limit?: number;
  /** In descending key order (default false). */
  reverse?: boolean;
}

export interface ScanBatchesOptions {
  gte?: unknown;
  lt?: unknown;
  columns?: readonly string[];
  /** Rows per batch at most (default 4096; 1 to 65536 accepted, batches hold at most 16,000 rows). */
  batchRows?: number;
  /**
   * Zero-copy batches: where a batch is one run of rows of one object row group, its fixed-width
   * columns are views of the engine's cached memory instead of copies. Such arrays are valid only
   * until the iteration moves on (the next batch, or the end of the loop); read them before, and
   * never write to them. For aggregations over large scans. Default false: the arrays are yours.
   */
  borrow?: boolean;
  /**
   * How decimal columns come: 'string' (default), their text as `get` and `scan` give it; or
   * 'scaled', their scaled integers (value × 10^scale): a Float64Array while every one is within
   * ±2^53 (a null is 0, see `nulls`), else an array with bigints; for computing without parsing.
   */
  decimals?: 'string' | 'scaled';
  /**
   * @internal Conditions (ANDed) the caller applies to every row it is handed: row groups of
   * objects whose zone maps rule them out are not read (SQL's scans). Numbers only: timestamps in
   * ms. `skipped` counts the row groups left unread.
   */
  zone?: { atoms: readonly { column: string; op: string; value: number }[]; skipped: number };
}

/**
 * What a transaction needs of the manager that began it (TxnManager implements it): its options,
 * the catalog, the open check, the in-flight commits and the write-set accounting.
 */
export interface TxnHost {
  readonly options: { readonly maxWriteBytes: number; readonly safeIntegers?: boolean };
  readonly catalog: Catalog;
  checkOpen(): void;
  isInflight(tableId: number, key: Key): boolean;
  accountWrites(delta: number): void;
}

export type TxnState = 'active' | 'committing' | 'committed' | 'aborted';

const SCAN_CHUNK = 256;
/** `merged`'s map for callers that read the chunks themselves. */
const same = (chunk: ResultChunk): ResultChunk => chunk;
/** Entries of a memtable per window of a reverse scan (objects divide at their row groups). */
const REVERSE_WINDOW_ENTRIES = 1024;
const DEFAULT_BATCH_ROWS = 4096;
const MAX_BATCH_ROWS = 65536;
/**
 * Batches hold at most this many rows, whatever batchRows asks: an 8-byte column then stays under
 * glibc malloc's 128 KiB mmap threshold (see DEFAULT_ROW_GROUP_ROWS): larger typed arrays are
 * mmapped fresh each time, and their page faults cost more than the rows they carry.
 */
const BATCH_ROWS_CAP = 16_000;
/** Bytes of an entry in the write set besides its values: the map slot, arrays, bookkeeping. */
const ENTRY_OVERHEAD_BYTES = 96;

/**
 * A transaction under snapshot isolation. Reads see the database as of `snapshotTs` plus the
 * transaction's own writes; writes stay in the transaction until commit. Obtained from
 * `db.transaction(fn)`; after it ends, every call gives CLOSED.
 */
export class Transaction {
  state: TxnState = 'active';
  /** Why the transaction ended without committing, for CLOSED messages. */
  endReason: string | undefined;
  readonly writes = new Map<number, TableWrites>();
  private writeBytes = 0;
  /** While a statement runs (see _statement): the write set's entries before it changed them. */
  private undo: { tw: TableWrites; mk: MapKey; before: WriteEntry | undefined }[] | undefined;
  private undoBytes = 0;
  /** When it began (performance.now()), for the timeout. */
  readonly startedMs = performance.now();
  /** Whether transaction.timeoutMs applies (not to snapshots). */
  expires = true;
  /** Scans open in this transaction: closed when it ends. */
  private readonly scans = new Set<TableScan>();
  private statementRunning = false;
  /** Settles when the write call under way (if any) is done: the next one waits for it. */
  private turns: Promise<void> = Promise.resolve();

  /** @internal */
  constructor(
    readonly id: number,
    readonly snapshotTs: number,
    private readonly mgr: TxnHost,
    private readonly queries?: QueryRunner,
  ) {}

  get hasWrites(): boolean {
    for (const w of this.writes.values()) if (w.entries.size > 0) return true;
    return false;
  }

  /**
   * Run SQL in this transaction (`?` placeholders bind `params`); BEGIN/COMMIT/ROLLBACK and DDL are
   * refused here: the transaction belongs to `db.transaction`.
   */
  async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    this.checkUsable();
    if (this.queries === undefined)
      throw new TidemarkError('INVALID_ARGUMENT', 'SQL is not available here: open the database with open()');
    return this.queries._queryIn(this, sql, params);
  }

  /** Insert rows; a key that exists (here or committed by another transaction) is DUPLICATE_KEY. */
  async insert(table: string, rows: Row | readonly Row[]): Promise<number> {
    const t = this.tableFor(table);
    const s = t.schema;
    const list = asRows(rows);
    // Check every row first: a bad row changes nothing.
    const normalized = list.map((r) => s.normalizeRow(r));
    // Entries go in as they are checked (so a key twice in one call is caught like any other); if
    // one fails, the call's entries are taken out again: a failed call changes nothing.
    return this.atomically(async () => {
      const tw = this.tableWrites(t);
      await syncIndexes(this, tw);
      for (const values of normalized) {
        const key = s.keyOf(values);
        const mk = mapKey(key);
        const own = tw.entries.get(mk);
        if (own !== undefined && own.values !== null) throw duplicate(s, key);
        let insert = true;
        if (own !== undefined) {
          // Re-inserting a key this transaction deleted: it existed at the snapshot unless we made it.
          insert = own.insert;
        } else {
          // Visible to us, or committed live by another transaction since our snapshot.
          const newest = t.newest(key);
          if (newest !== undefined && !newest.deleted) throw duplicate(s, key);
          const seen = t.lookup(key, this.snapshotTs);
          if ((seen instanceof Promise ? await seen : seen) !== undefined) throw duplicate(s, key);
        }
        const e: WriteEntry = { key, values, insert, old: own !== undefined ? own.old : null };
        this.put(tw, mk, e);
        if (tw.indexed.length > 0) await maintainIndexes(this, tw, null, values);
      }
      return normalized.length;
    });
  }

  /** Insert or replace rows by primary key. */
  async upsert(table: string, rows: Row | readonly Row[]): Promise<number> {
    const t = this.tableFor(table);
    const s = t.schema;
    const normalized = asRows(rows).map((row) => s.normalizeRow(row));
    return this.atomically(async () => {
      const tw = this.tableWrites(t);
      await syncIndexes(this, tw);
      for (const values of normalized) {
        const key = s.keyOf(values);
        const mk = mapKey(key);
        const own = tw.entries.get(mk);
        if (own === undefined) this.checkNotNewer(t, key);
        let old = own?.old;
        if (own === undefined && tw.indexed.length > 0) old = await snapshotValues(t, key, this.snapshotTs);
        const e: WriteEntry = { key, values, insert: false, old };
        this.put(tw, mk, e);
        if (tw.indexed.length > 0)
          await maintainIndexes(this, tw, own !== undefined ? own.values : old!, values);
      }
      return normalized.length;
    });
  }

  /** Change some columns of the row with this key. Resolves false if there is no such row. */
  async update(table: string, key: unknown, patch: Row): Promise<boolean> {
    const t = this.tableFor(table);
    const s = t.schema;
    const k = s.normalizeKey(key);
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
      throw new TidemarkError(
        'SCHEMA',
        `an update of ${s.name} takes an object of column values, got ${describe(patch)}`,
      );
    }
    return this.atomically(async () => {
      const tw = this.tableWrites(t);
      await syncIndexes(this, tw);
      const own = tw.entries.get(mapKey(k));
      const current = own !== undefined ? own.values : await snapshotValues(t, k, this.snapshotTs);
      if (current === null) return false;
      const next = current.slice();
      for (const name of Object.keys(patch)) {
        const c = s.column(name);
        const v = s.normalizeValue(c, patch[name]);
        if (
          c === s.pk &&
          mapKey(s.keyOf(next)) !== mapKey(typeof v === 'boolean' ? (v ? 1 : 0) : (v as Key))
        ) {
          throw invalidArgument(
            `update cannot change the primary key ${s.name}.${c.name}; delete and insert instead`,
          );
        }
        next[c.index] = v;
      }
      if (own === undefined) this.checkNotNewer(t, k);
      const e: WriteEntry = { key: k, values: next, insert: own?.insert ?? false, old: own?.old ?? current };
      this.put(tw, mapKey(k), e);
      if (tw.indexed.length > 0) await maintainIndexes(this, tw, current, next);
      return true;
    });
  }

  /** Delete the row with this key. Resolves false if there is no such row. */
  async delete(table: string, key: unknown): Promise<boolean> {
    const t = this.tableFor(table);
    const k = t.schema.normalizeKey(key);
    const mk = mapKey(k);
    return this.atomically(async () => {
      const tw = this.tableWrites(t);
      await syncIndexes(this, tw);
      const own = tw.entries.get(mk);
      let prev: unknown[] | null;
      if (own !== undefined) {
        if (own.values === null) return false;
        prev = own.values;
        // Inserted and deleted in this transaction: nothing to commit for this key.
        if (own.insert) this.setEntry(tw, mk, undefined);
        else {
          const e: WriteEntry = { key: k, values: null, insert: false, old: own.old };
          this.put(tw, mk, e);
        }
      } else {
        prev = await snapshotValues(t, k, this.snapshotTs);
        if (prev === null) return false;
        this.checkNotNewer(t, k);
        const e: WriteEntry = { key: k, values: null, insert: false, old: prev };
        this.put(tw, mk, e);
      }
      if (tw.indexed.length > 0) await maintainIndexes(this, tw, prev, null);
      return true;
    });
  }

  // ---- indexes ----

  /**
   * Rows through a secondary index, in index order then primary key (descending with `reverse`):
   * those matching `eq` (values of the leading columns) within the bounds gte/gt/lte/lt on the
   * columns after them (see IndexCodec.range). What a full scan filtered the same way would give.
   */
  private indexBlocks(
    t: Table,
    o: ScanOptions,
    cols: number[] | undefined,
    limit: number,
  ): AsyncGenerator<Row[]> {
    const h = this.readableIndex(t, o.index);
    const range = h.codec(t).range(o);
    const reverse = o.reverse ?? false;
    if (typeof reverse !== 'boolean')
      throw invalidArgument(`reverse must be a boolean, got ${describe(reverse)}`);
    return indexRows(this, t, h, range, cols, limit, reverse);
  }

  /** The row a UNIQUE index holds for these values (one per column), or undefined. */
  async getBy(
    table: string,
    index: string,
    values: unknown,
    options: { columns?: readonly string[] } = {},
  ): Promise<Row | undefined> {
    const t = this.tableFor(table);
    const h = this.readableIndex(t, index);
    return rowByUnique(this, t, h, values, columnIndexes(t.schema, options.columns));
  }

  /** The indexes of a table this transaction may read through (built by its snapshot). */
  indexes(table: string): IndexInfo[] {
    return this.tableFor(table).indexesAt(this.snapshotTs).map(indexInfo);
  }

  /**
   * How many entries of an index are in a range (as `scan` with `index` takes it), counted up to
   * `cap`: a probe for cost estimates that reads at most about `cap` entries.
   */
  async indexCount(table: string, index: string, range: RangeOptions, cap: number): Promise<number> {
    const t = this.tableFor(table);
    const h = this.readableIndex(t, index);
    if (!Number.isInteger(cap) || cap < 1)
      throw invalidArgument(`cap must be a positive integer, got ${describe(cap)}`);
    return countEntries(this, h, h.codec(t).range(range ?? {}), cap);
  }

  /** About how many rows a table holds (no I/O; see Table.estimatedRows). */
  estimatedRows(table: string): number {
    return this.tableFor(table).estimatedRows;
  }

  private readableIndex(t: Table, name: unknown): Table {
    if (typeof name !== 'string') throw invalidArgument(`index name must be a string, got ${describe(name)}`);
    const h = t.indexesAt(this.snapshotTs).find((i) => i.schema.index!.name === name);
    if (h === undefined)
      throw new TidemarkError(
        'NOT_FOUND',
        `table ${t.name} has no index ${JSON.stringify(name)} at this transaction's snapshot`,
        { details: { table: t.name, index: name } },
      );
    return h;
  }

  /** @internal Bring every index's entries in step with the rows written (at commit). */
  async _syncIndexes(): Promise<void> {
    for (const tw of [...this.writes.values()])
      if (tw.table.schema.index === undefined) await syncIndexes(this, tw);
  }

  /** @internal Whether the writes keep exactly the live indexes of their tables (checked at commit). */
  _indexesCurrent(): boolean {
    for (const tw of this.writes.values())
      if (tw.table.schema.index === undefined && !sameIndexes(tw.table.liveIndexes, tw.indexed)) return false;
    return true;
  }

  /** @internal An index build's entry: `values` [key, row key] (see Engine.createIndex). */
  _putIndexEntry(h: Table, values: [Uint8Array, unknown]): void {
    const e: WriteEntry = { key: values[0], values, insert: false };
    this.put(this.tableWrites(h), mapKey(values[0]), e);
  }

  /** @internal */
  _tableWrites(t: Table): TableWrites {
    return this.tableWrites(t);
  }

  /** @internal */
  _setEntry(tw: TableWrites, mk: MapKey, e: WriteEntry | undefined): void {
    this.setEntry(tw, mk, e);
  }

  /** @internal */
  _reserve(bytes: number): void {
    this.reserveWrites(bytes);
  }

  /** @internal Drop the writes to a table (an index dropped while the transaction ran). */
  _forget(t: Table): void {
    this.writes.delete(t.id);
  }

  /** @internal */
  _rowOf(t: Table, values: readonly unknown[], cols: readonly number[]): Row {
    return bigInts(valuesToRow(t.schema, values, cols), this.bigIntColumns(t));
  }

  /** @internal */
  _ownEntry(t: Table, key: Key): WriteEntry | undefined {
    return this.writes.get(t.id)?.entries.get(mapKey(key));
  }

  /** @internal */
  _row(t: Table, k: Key, cols: readonly number[] | undefined): Row | undefined | Promise<Row | undefined> {
    const own = this.writes.get(t.id)?.entries.get(mapKey(k));
    const big = this.bigIntColumns(t);
    if (own !== undefined)
      return own.values === null ? undefined : bigInts(valuesToRow(t.schema, own.values, cols), big);
    const found = t.lookup(k, this.snapshotTs);
    if (found instanceof Promise)
      return found.then((ref) =>
        ref === undefined ? undefined : bigInts(ref.source.readRow(ref.row, cols), big),
      );
    return found === undefined ? undefined : bigInts(found.source.readRow(found.row, cols), big);
  }

  /** @internal */
  _merged<T>(
    t: Table,
    gte: Key | undefined,
    lt: Key | undefined,
    size: number,
    cols: readonly number[] | undefined,
    map: (c: ResultChunk) => T,
  ): AsyncGenerator<T> {
    return this.merged(t, gte, lt, size, cols, undefined, map);
  }

  /** The row with this key, or undefined. */
  async get(
    table: string,
    key: unknown,
    options: { columns?: readonly string[] } = {},
  ): Promise<Row | undefined> {
    return this._get(table, key, options.columns);
  }

  /**
   * @internal `get`, answered synchronously when this transaction's writes or the memtables decide
   * (no promise for the SQL point read path); a promise when an object must be read.
   */
  _get(
    table: string,
    key: unknown,
    columns: readonly string[] | undefined,
  ): Row | undefined | Promise<Row | undefined> {
    const t = this.tableFor(table);
    const k = t.schema.normalizeKey(key);
    return this._row(t, k, columnIndexes(t.schema, columns));
  }

  /** With `safeIntegers`, the table's 64-bit integer columns (their values become bigints). */
  private bigIntColumns(t: Table): string[] | undefined {
    return this.mgr.options.safeIntegers === true ? int64Columns(t.schema) : undefined;
  }

  /**
   * Rows in primary-key order (descending with `reverse`) within [gte, lt), with the transaction's
   * own writes applied.
   */
  scan(table: string, options: ScanOptions = {}): AsyncGenerator<Row> {
    return rowsOf(this.scanBlocks(table, options));
  }

  private async *bigIntBlocks(blocks: AsyncGenerator<Row[]>, names: string[]): AsyncGenerator<Row[]> {
    for await (const rows of blocks) {
      for (const r of rows) bigInts(r, names);
      yield rows;
    }
  }

  /**
   * @internal What `scan` gives, a block of rows at a time (each block read whole, so nothing of the
   * scan's pins is needed to read it): for callers that hand rows out in bulk (tidemark/level).
   */
  scanBlocks(table: string, options: ScanOptions = {}): AsyncGenerator<Row[]> {
    const t = this.tableFor(table);
    if (typeof options === 'object' && options !== null && options.index !== undefined) {
      const o = checkScanOptions(t.schema, { ...options, gte: undefined, lt: undefined }, true);
      return this.indexBlocks(t, options, o.cols, o.limit);
    }
    const o = checkScanOptions(t.schema, options, true);
    const reverse = options.reverse ?? false;
    if (typeof reverse !== 'boolean')
      throw invalidArgument(`reverse must be a boolean, got ${describe(reverse)}`);
    const blocks = reverse
      ? this.scanRowsReverse(t, o.gte, o.lt, o.cols, o.limit)
      : this.scanRows(t, o.gte, o.lt, o.cols, o.limit);
    const big = this.bigIntColumns(t);
    return big === undefined ? blocks : this.bigIntBlocks(blocks, big);
  }

  /** Columnar batches of the rows scan would give (typed arrays per column), in key order. */
  scanBatches(table: string, options: ScanBatchesOptions = {}): AsyncGenerator<Batch> {
    const t = this.tableFor(table);
    const o = checkScanOptions(t.schema, options, false);
    const rows = options.batchRows ?? DEFAULT_BATCH_ROWS;
    if (!Number.isInteger(rows) || rows < 1 || rows > MAX_BATCH_ROWS) {
      throw invalidArgument(
        `batchRows must be an integer from 1 to ${MAX_BATCH_ROWS}, got ${describe(options.batchRows)}`,
      );
    }
    if (options.borrow !== undefined && typeof options.borrow !== 'boolean')
      throw invalidArgument(`borrow must be a boolean, got ${describe(options.borrow)}`);
    let zone: ZoneFilter | undefined;
    if (options.zone !== undefined) {
      const outer = options.zone;
      zone = {
        atoms: outer.atoms.map((a) => ({ col: t.schema.column(a.column).index, op: a.op, value: a.value })),
        get skipped() {
          return outer.skipped;
        },
        set skipped(n: number) {
          outer.skipped = n;
        },
      };
    }
    const decimals = options.decimals ?? 'string';
    if (decimals !== 'string' && decimals !== 'scaled')
      throw invalidArgument(`decimals must be 'string' or 'scaled', got ${describe(options.decimals)}`);
    const cols = o.cols;
    const borrow = options.borrow === true;
    const big = this.bigIntColumns(t) !== undefined;
    return this.merged(t, o.gte, o.lt, Math.min(rows, BATCH_ROWS_CAP), cols, zone, (chunk) =>
      buildBatch(t.schema, chunk, cols, borrow, decimals === 'scaled', big),
    );
  }

  private async *scanRows(
    t: Table,
    gte: Key | undefined,
    lt: Key | undefined,
    cols: number[] | undefined,
    limit: number,
  ): AsyncGenerator<Row[]> {
    if (limit === 0) return;
    let produced = 0;
    for await (const chunk of this.merged(t, gte, lt, SCAN_CHUNK, cols, undefined, same)) {
      // Read while the chunk is valid (the scan's pins held), then handed out.
      const n = Math.min(chunk.n, limit - produced);
      const rows = new Array<Row>(n);
      for (let i = 0; i < n; i++) rows[i] = readChunkRow(t.schema, chunk, i, cols);
      produced += n;
      yield rows;
      if (produced >= limit) return;
    }
  }

  /**
   * Rows in descending key order: the range cut into windows at keys where the table's layers divide
   * their entries (index leaves of the memtables, row groups of the objects), each window read
   * forward and handed out backwards, from the top down. A window holds at most about one such part
   * of each layer, so memory stays bounded whatever the range; every window reads at the
   * transaction's snapshot, so together they see one state, whatever flushes or merges meanwhile.
   * A window is read whole before its rows are handed out: nothing stays pinned between them.
   */
  private async *scanRowsReverse(
    t: Table,
    gte: Key | undefined,
    lt: Key | undefined,
    cols: number[] | undefined,
    limit: number,
  ): AsyncGenerator<Row[]> {
    if (limit === 0) return;
    const splits = t.splitKeys(gte, lt, REVERSE_WINDOW_ENTRIES);
    let upper = lt;
    let produced = 0;
    for (let i = splits.length; i >= 0; i--) {
      const lower = i === 0 ? gte : splits[i - 1];
      const rows: Row[] = [];
      for await (const chunk of this.merged(t, lower, upper, SCAN_CHUNK, cols, undefined, same))
        for (let j = 0; j < chunk.n; j++) rows.push(readChunkRow(t.schema, chunk, j, cols));
      rows.reverse();
      if (rows.length > limit - produced) rows.length = limit - produced;
      produced += rows.length;
      if (rows.length > 0) yield rows;
      if (produced >= limit) return;
      upper = lower;
    }
  }

  /**
   * The table's visible rows in [gte, lt) merged with this transaction's own writes, in key order,
   * in chunks of up to about `size` rows (never empty). The scan pins the table's layers for its
   * whole life and releases them however it ends (done, break, error); between chunks it checks
   * that the transaction is still usable. Each chunk is handed out as what `map` makes of it (while
   * the chunk is valid), so a caller needs no generator of its own in between.
   */
  private async *merged<T>(
    t: Table,
    gte: Key | undefined,
    lt: Key | undefined,
    size: number,
    cols: readonly number[] | undefined,
    zone: ZoneFilter | undefined,
    map: (chunk: ResultChunk) => T,
  ): AsyncGenerator<T> {
    const own = this.writes.get(t.id)?.sortedIn(gte, lt) ?? [];
    const cmp = t.compare;
    let oi = 0;
    const scan = t.openScan(this.snapshotTs, gte, lt, cols ?? t.schema.columns.map((c) => c.index), zone);
    this.scans.add(scan);
    try {
      for (;;) {
        this.checkUsable();
        const c = await scan.next(size, oi < own.length);
        this.checkUsable();
        const last = c.last;
        // Own writes that fall within this chunk (all that remain, when the table has no more keys).
        let oEnd = oi;
        while (oEnd < own.length && (c.done || cmp(own[oEnd]!.key, last!) <= 0)) oEnd++;
        let out: ResultChunk;
        if (oEnd === oi)
          out = {
            n: c.n,
            src: c.src,
            row: c.row,
            own: undefined,
            sources: c.sources,
            rangeStart: c.rangeStart,
          };
        else {
          const cap = c.n + (oEnd - oi);
          const src = new Int32Array(cap);
          const row = new Int32Array(cap);
          const ownValues = new Array<unknown[] | undefined>(cap);
          let n = 0;
          const emitOwn = (e: WriteEntry) => {
            if (e.values === null) return;
            src[n] = OWN;
            ownValues[n++] = e.values;
          };
          for (let i = 0; i < c.n; i++) {
            const key = c.keys![i]!;
            while (oi < oEnd && cmp(own[oi]!.key, key) < 0) emitOwn(own[oi++]!);
            if (oi < oEnd && cmp(own[oi]!.key, key) === 0) {
              emitOwn(own[oi++]!);
              continue;
            }
            src[n] = c.rangeStart >= 0 ? 0 : c.src[i]!;
            row[n++] = c.rangeStart >= 0 ? c.rangeStart + i : c.row[i]!;
          }
          while (oi < oEnd) emitOwn(own[oi++]!);
          out = { n, src, row, own: ownValues, sources: c.sources, rangeStart: -1 };
        }
        if (out.n > 0) yield map(out);
        if (c.done) return;
      }
    } finally {
      this.scans.delete(scan);
      scan.close();
    }
  }

  private tableFor(name: string): Table {
    this.checkUsable();
    if (typeof name !== 'string') throw invalidArgument(`table name must be a string, got ${describe(name)}`);
    return this.mgr.catalog.get(name, this.snapshotTs);
  }

  /** @internal */
  checkUsable(): void {
    if (this.state !== 'active') {
      throw new TidemarkError(
        'CLOSED',
        `transaction ${this.id} has ended${this.endReason !== undefined ? ` (${this.endReason})` : ''}`,
      );
    }
    this.mgr.checkOpen();
  }

  /** Fail early when another transaction committed a newer version of the key since our snapshot. */
  private checkNotNewer(t: Table, key: Key): void {
    const newest = t.newest(key);
    if ((newest !== undefined && newest.ts > this.snapshotTs) || this.mgr.isInflight(t.id, key)) {
      throw conflict(t.schema, key);
    }
  }

  private tableWrites(t: Table): TableWrites {
    let tw = this.writes.get(t.id);
    if (tw === undefined) {
      tw = new TableWrites(t);
      this.writes.set(t.id, tw);
    }
    return tw;
  }

  /** Add or replace an entry of the write set, its bytes accounted. */
  private put(tw: TableWrites, mk: MapKey, e: WriteEntry): void {
    this.reserveWrites(entryBytes(e));
    this.setEntry(tw, mk, e);
  }

  /** Change the write set (undefined: remove the entry), remembering the entry before if a statement runs. */
  private setEntry(tw: TableWrites, mk: MapKey, e: WriteEntry | undefined): void {
    this.undo?.push({ tw, mk, before: tw.entries.get(mk) });
    if (e === undefined) tw.entries.delete(mk);
    else tw.entries.set(mk, e);
  }

  /**
   * @internal Run one statement (SQL's INSERT, UPDATE, DELETE...) atomically within the
   * transaction: if it fails, its writes are undone and the transaction goes on as it was before
   * it, as MySQL rolls back a failed statement only. One statement at a time per transaction.
   */
  async _statement<T>(fn: () => Promise<T>): Promise<T> {
    this.checkUsable();
    if (this.statementRunning) {
      throw invalidArgument(`transaction ${this.id} is running another statement: one at a time`);
    }
    this.statementRunning = true;
    try {
      return await this.inTurn(fn);
    } finally {
      this.statementRunning = false;
    }
  }

  /**
   * Run one write call (insert, upsert, update, delete: a row and its index entries) all or
   * nothing. Calls take turns (the entries of one are checked against those of the one before);
   * within a statement, the statement's undo covers them.
   */
  private atomically<T>(fn: () => Promise<T>): Promise<T> {
    return this.statementRunning ? fn() : this.inTurn(fn);
  }

  private async inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.turns;
    let release!: () => void;
    this.turns = new Promise<void>((r) => (release = r));
    try {
      await before;
      this.checkUsable();
      return await this.logged(fn);
    } finally {
      release();
    }
  }

  /** Run `fn`, undoing its changes to the write set if it fails. */
  private async logged<T>(fn: () => Promise<T>): Promise<T> {
    this.undo = [];
    this.undoBytes = this.writeBytes;
    try {
      return await fn();
    } catch (e) {
      const undo = this.undo;
      for (let i = undo.length - 1; i >= 0; i--) {
        const u = undo[i]!;
        if (u.before === undefined) u.tw.entries.delete(u.mk);
        else u.tw.entries.set(u.mk, u.before);
      }
      if (this.state === 'active' && this.writeBytes > this.undoBytes) {
        this.mgr.accountWrites(this.undoBytes - this.writeBytes);
        this.writeBytes = this.undoBytes;
      }
      throw e;
    } finally {
      this.undo = undefined;
    }
  }

  /** Account the write set in the memtable pool, within the per-transaction bound. */
  private reserveWrites(bytes: number): void {
    const next = this.writeBytes + bytes;
    const max = this.mgr.options.maxWriteBytes;
    if (next > max) {
      throw new TidemarkError(
        'MEMORY_LIMIT',
        `transaction ${this.id} would hold ${next} bytes of writes, over transaction.maxWriteBytes (${max}); commit in smaller transactions`,
      );
    }
    this.mgr.accountWrites(bytes);
    this.writeBytes = next;
  }

  /**
   * @internal Release what the transaction holds: its write set's accounting, and the pins of scans
   * still open (a scan resumed afterwards gives CLOSED).
   */
  releaseResources(): void {
    this.mgr.accountWrites(-this.writeBytes);
    this.writeBytes = 0;
    for (const s of this.scans) s.close();
    this.scans.clear();
  }
}

function entryBytes(e: WriteEntry): number {
  let n = ENTRY_OVERHEAD_BYTES;
  if (e.values !== null) {
    for (const v of e.values) {
      n += 8;
      if (typeof v === 'string') n += v.length * 2;
      else if (v instanceof Uint8Array) n += v.length;
    }
  }
  return n;
}

/** Rows one at a time from blocks of rows. */
async function* rowsOf(blocks: AsyncGenerator<Row[]>): AsyncGenerator<Row> {
  for await (const b of blocks) yield* b;
}

function asRows(rows: Row | readonly Row[]): readonly Row[] {
  return Array.isArray(rows) ? (rows as readonly Row[]) : [rows as Row];
}

export function columnIndexes(s: TableSchema, columns: readonly string[] | undefined): number[] | undefined {
  if (columns === undefined) return undefined;
  if (!Array.isArray(columns))
    throw invalidArgument(`columns must be an array of column names, got ${describe(columns)}`);
  return columns.map((c) => {
    if (typeof c !== 'string') throw invalidArgument(`column names must be strings, got ${describe(c)}`);
    return s.column(c).index;
  });
}

/** A schema's int64 and uint64 columns, or undefined when it has none. */
export function int64Columns(s: TableSchema): string[] | undefined {
  const names = s.columns.filter((c) => c.type === 'int64' || c.type === 'uint64').map((c) => c.name);
  return names.length > 0 ? names : undefined;
}

/** Row values of `names` that are numbers, as bigints (safeIntegers). */
export function bigInts(row: Row, names: string[] | undefined): Row {
  if (names !== undefined) for (const n of names) if (typeof row[n] === 'number') row[n] = BigInt(row[n]);
  return row;
}

function checkScanOptions(s: TableSchema, o: ScanOptions | ScanBatchesOptions, withLimit: boolean) {
  if (typeof o !== 'object' || o === null) throw invalidArgument('scan options must be an object');
  const ix = o as ScanOptions;
  if (ix.index === undefined && (ix.eq !== undefined || ix.gt !== undefined || ix.lte !== undefined))
    throw invalidArgument('eq, gt and lte are bounds of a read through an index: give index too');
  if (!withLimit && ix.index !== undefined)
    throw invalidArgument('scanBatches reads in primary-key order: read through an index with scan');
  const gte = o.gte === undefined ? undefined : s.normalizeKey(o.gte);
  const lt = o.lt === undefined ? undefined : s.normalizeKey(o.lt);
  const cols = columnIndexes(s, o.columns);
  let limit = Infinity;
  if (withLimit && (o as ScanOptions).limit !== undefined) {
    limit = (o as ScanOptions).limit!;
    if (!Number.isInteger(limit) || limit < 0)
      throw invalidArgument(`limit must be a non-negative integer, got ${describe(limit)}`);
  }
  return { gte, lt, cols, limit };
}

function duplicate(s: TableSchema, key: Key): TidemarkError {
  return new TidemarkError(
    'DUPLICATE_KEY',
    `${s.name} already has a row with ${s.pk.name} = ${describe(key)}`,
    {
      details: { table: s.name, key: detailKey(key) },
    },
  );
}

export function conflict(s: TableSchema, key: Key): TidemarkError {
  return new TidemarkError(
    'CONFLICT',
    `write-write conflict on ${s.name} ${s.pk.name} = ${describe(key)}: another transaction committed it after this one began`,
    { details: { table: s.name, key: detailKey(key) } },
  );
}

export { duplicate };

/** A key as error details show it (JSON-able: bytes in hex, bigints as text). */
function detailKey(key: Key): string | number {
  return key instanceof Uint8Array
    ? Buffer.from(key).toString('hex')
    : typeof key === 'bigint'
      ? key.toString()
      : key;
}
