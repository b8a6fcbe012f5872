/**
 * Secondary indexes inside a transaction. An index is a hidden table (src/schema/index_key.ts) whose
 * entries a transaction writes along with the rows they index, in the same write set: they commit,
 * conflict, replay, flush, merge and checkpoint with them. This file keeps the entries of a write set
 * in step with its rows, and reads rows through an index.
 */
import { invalidArgument, TidemarkError } from '../errors.js';
import { compareBytes, describe, mapKey, type Key, type MapKey, type Row } from '../schema/schema.js';
import type { RangeOptions } from '../schema/index_key.js';
import type { Table } from '../table/table.js';
import { plantedBug } from '../util/plant.js';
import { OWN, type ResultChunk } from './batch.js';
import type { TableWrites, WriteEntry } from './writes.js';

/** What index maintenance needs of a transaction. */
export interface IndexWriteHost {
  readonly snapshotTs: number;
  _tableWrites(t: Table): TableWrites;
  _setEntry(tw: TableWrites, mk: MapKey, e: WriteEntry | undefined): void;
  _reserve(bytes: number): void;
  _forget(t: Table): void;
}

/** An index as describeTable and tx.indexes list it. */
export interface IndexInfo {
  name: string;
  columns: string[];
  unique: boolean;
}

export function indexInfo(h: Table): IndexInfo {
  const d = h.schema.index!;
  return { name: d.name, columns: [...d.columns], unique: d.unique };
}

/** Bytes of an index entry in a write set besides its key (see entryBytes in transaction.ts). */
const ENTRY_BYTES = 128;

/** A UNIQUE index would hold two rows with the same values. */
export function uniqueViolation(base: Table, h: Table): TidemarkError {
  const d = h.schema.index!;
  return new TidemarkError(
    'DUPLICATE_KEY',
    `${base.name} already has a row with these values of (${d.columns.join(', ')}), which index ${d.name} keeps unique`,
    { details: { table: base.name, index: d.name, columns: [...d.columns], mysqlErrno: 1062 } },
  );
}

/** A table's values for `key` at the snapshot (null: no row). */
export async function snapshotValues(t: Table, key: Key, ts: number): Promise<unknown[] | null> {
  const found = t.lookup(key, ts);
  const ref = found instanceof Promise ? await found : found;
  return ref === undefined ? null : ref.source.rawValues(ref.row);
}

/**
 * Bring the entries of indexes `hs` (default: those the writes keep) from row `prev` to row `next`
 * (values in column order; null for no row): the entry of `prev` goes, the entry of `next` comes.
 * A UNIQUE entry another row holds, at the snapshot, since it, or in this transaction, is
 * DUPLICATE_KEY (one committed by a transaction still in flight is caught at commit).
 */
export async function maintainIndexes(
  host: IndexWriteHost,
  tw: TableWrites,
  prev: readonly unknown[] | null,
  next: readonly unknown[] | null,
  hs: readonly Table[] = tw.indexed,
): Promise<void> {
  const t = tw.table;
  for (const h of hs) {
    const codec = h.codec(t);
    const kOld = prev === null ? undefined : codec.keyOf(prev);
    const kNew = next === null ? undefined : codec.keyOf(next);
    if (kOld !== undefined && kNew !== undefined && compareBytes(kOld, kNew) === 0) continue;
    const hw = host._tableWrites(h);
    if (kOld !== undefined && !plantedBug('index-stale-entry')) {
      const mk = mapKey(kOld);
      const own = hw.entries.get(mk);
      // An entry this transaction made goes without a trace; one the snapshot may hold is deleted
      // (also when the index, being built, does not hold it yet: the delete keeps a build from
      // adding it behind this commit's back, see Engine.createIndex).
      if (own !== undefined && own.values !== null && own.insert) host._setEntry(hw, mk, undefined);
      else {
        host._reserve(ENTRY_BYTES + kOld.length);
        host._setEntry(hw, mk, { key: kOld, values: null, insert: false });
      }
    }
    if (kNew !== undefined) {
      const mk = mapKey(kNew);
      const own = hw.entries.get(mk);
      if (own !== undefined && own.values !== null) throw uniqueViolation(t, h);
      const unique = codec.isUniqueKey(next!);
      if (own === undefined && unique) {
        const newest = h.newest(kNew);
        if (newest !== undefined && !newest.deleted) throw uniqueViolation(t, h);
        const seen = h.lookup(kNew, host.snapshotTs);
        if ((seen instanceof Promise ? await seen : seen) !== undefined) throw uniqueViolation(t, h);
        // Another statement of this transaction may have claimed it meanwhile.
        const again = hw.entries.get(mk);
        if (again !== undefined && again.values !== null) throw uniqueViolation(t, h);
      }
      host._reserve(ENTRY_BYTES + kNew.length);
      const pk = next![t.schema.pk.index];
      // A UNIQUE key no row had must still be free at commit; other entries name their row (whose
      // own write conflicts as any write does).
      host._setEntry(hw, mk, {
        key: kNew,
        values: [kNew, pk],
        insert: own === undefined && unique,
      });
    }
  }
}

/**
 * Make the writes keep exactly the table's live indexes: entries for an index created since they
 * began (from each row's values at the snapshot to its values now), and none for one dropped.
 */
export async function syncIndexes(host: IndexWriteHost, tw: TableWrites): Promise<void> {
  const live = tw.table.liveIndexes;
  if (sameIndexes(live, tw.indexed)) return;
  for (const h of tw.indexed) if (!live.includes(h)) host._forget(h);
  const added = live.filter((h) => !tw.indexed.includes(h));
  if (added.length > 0) {
    for (const e of [...tw.entries.values()]) {
      if (e.old === undefined) e.old = await snapshotValues(tw.table, e.key, host.snapshotTs);
      await maintainIndexes(host, tw, e.old, e.values, added);
    }
  }
  tw.indexed = live;
}

export function sameIndexes(a: readonly Table[], b: readonly Table[]): boolean {
  return a.length === b.length && a.every((h, i) => h === b[i]);
}

// ---- reads ----

/** What reads through an index need of a transaction. */
export interface IndexReadHost {
  readonly snapshotTs: number;
  /** Entries of a table in [gte, lt) merged with the transaction's own writes (Transaction.merged). */
  _merged<T>(
    t: Table,
    gte: Key | undefined,
    lt: Key | undefined,
    size: number,
    cols: readonly number[] | undefined,
    map: (c: ResultChunk) => T,
  ): AsyncGenerator<T>;
  /** The row with this key, at the snapshot with the transaction's writes. */
  _row(t: Table, key: Key, cols: readonly number[] | undefined): Row | undefined | Promise<Row | undefined>;
  _ownEntry(t: Table, key: Key): WriteEntry | undefined;
  /** A row from values in column order (engine representation), as reads return it. */
  _rowOf(t: Table, values: readonly unknown[], cols: readonly number[]): Row;
}

export interface IndexScanOptions extends RangeOptions {
  index: string;
}

/** A value of the primary key as keys are compared (a bool key as 1/0). */
export const asKey = (v: unknown): Key => (typeof v === 'boolean' ? (v ? 1 : 0) : (v as Key));

/** Column `col` of row i of a scan chunk (engine representation). */
export function rawAt(c: ResultChunk, i: number, col: number): unknown {
  if (c.rangeStart >= 0) return c.sources[0]!.rawValue(c.rangeStart + i, col);
  return c.src[i] === OWN ? c.own![i]![col] : c.sources[c.src[i]!]!.rawValue(c.row[i]!, col);
}

/** The keys of the rows a chunk of index entries names. */
function rowKeys(c: ResultChunk): Key[] {
  const out = new Array<Key>(c.n);
  for (let i = 0; i < c.n; i++) out[i] = asKey(rawAt(c, i, 1));
  return out;
}

/** Entries of a chunk as [entry key, row key] pairs (the row key as the row holds it). */
function entries(c: ResultChunk): [Uint8Array, unknown][] {
  const out = new Array<[Uint8Array, unknown]>(c.n);
  for (let i = 0; i < c.n; i++) out[i] = [rawAt(c, i, 0) as Uint8Array, rawAt(c, i, 1)];
  return out;
}

const INDEX_CHUNK = 256;
/** Entries of an index per window of a reverse read (see Transaction.scanRowsReverse). */
const REVERSE_WINDOW_ENTRIES = 1024;

/**
 * Entries of index `h` in [lower, upper) in index order (descending with `reverse`: windows read
 * forward and handed out backwards), at most `limit`, as `map` makes them of each chunk read with
 * columns `cols`.
 */
async function* walk<T>(
  host: IndexReadHost,
  h: Table,
  range: { lower: Uint8Array | undefined; upper: Uint8Array | undefined },
  limit: number,
  reverse: boolean,
  cols: readonly number[],
  map: (c: ResultChunk) => T[],
): AsyncGenerator<T[]> {
  if (limit === 0) return;
  let produced = 0;
  const take = (items: T[]): T[] => {
    if (items.length > limit - produced) items.length = limit - produced;
    produced += items.length;
    return items;
  };
  if (!reverse) {
    for await (const items of host._merged(h, range.lower, range.upper, INDEX_CHUNK, cols, map)) {
      yield take(items);
      if (produced >= limit) return;
    }
    return;
  }
  const splits = h.splitKeys(range.lower, range.upper, REVERSE_WINDOW_ENTRIES);
  let top = range.upper;
  for (let i = splits.length; i >= 0; i--) {
    const bottom = i === 0 ? range.lower : (splits[i - 1] as Uint8Array);
    const items: T[] = [];
    for await (const part of host._merged(h, bottom, top, INDEX_CHUNK, cols, map)) items.push(...part);
    const window = take(items.reverse());
    if (window.length > 0) yield window;
    if (produced >= limit) return;
    top = bottom;
  }
}

/**
 * A row of a read that needs only indexed columns and the key, made from the entry's values of the
 * indexed columns (in index order) and the row key: no row is read (a covering read).
 */
function coveredRow(
  host: IndexReadHost,
  t: Table,
  h: Table,
  indexed: readonly unknown[],
  pk: unknown,
  cols: readonly number[],
): Row {
  const values = new Array<unknown>(t.schema.columns.length);
  h.codec(t).cols.forEach((c, i) => (values[c.index] = indexed[i]));
  values[t.schema.pk.index] = pk;
  return host._rowOf(t, values, cols);
}

/** Rows through index `h` of `t` in [lower, upper), a block at a time. */
export async function* indexRows(
  host: IndexReadHost,
  t: Table,
  h: Table,
  range: { lower: Uint8Array | undefined; upper: Uint8Array | undefined },
  cols: readonly number[] | undefined,
  limit: number,
  reverse: boolean,
): AsyncGenerator<Row[]> {
  const codec = h.codec(t);
  if (codec.covers(cols)) {
    for await (const pairs of walk(host, h, range, limit, reverse, [0, 1], entries))
      yield pairs.map(([k, pk]) => coveredRow(host, t, h, codec.decode(k), pk, cols!));
    return;
  }
  for await (const keys of walk(host, h, range, limit, reverse, [1], rowKeys)) {
    const rows = new Array<Row>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const found = host._row(t, keys[i]!, cols);
      const row = found instanceof Promise ? await found : found;
      if (row === undefined) throw missingRow(t, h, keys[i]!);
      rows[i] = row;
    }
    yield rows;
  }
}

/** The row a UNIQUE index's entry for `values` names, or undefined. */
export async function rowByUnique(
  host: IndexReadHost,
  t: Table,
  h: Table,
  values: unknown,
  cols: readonly number[] | undefined,
): Promise<Row | undefined> {
  const codec = h.codec(t);
  const d = h.schema.index!;
  if (!d.unique)
    throw invalidArgument(`getBy reads through a UNIQUE index; ${d.name} of ${t.name} is not one`);
  const vals = codec.normalizeTuple('getBy', 0, values);
  if (vals.length !== codec.cols.length)
    throw invalidArgument(
      `getBy through ${d.name} takes ${codec.cols.length} value(s), one per column, got ${describe(values)}`,
    );
  if (vals.includes(null)) return undefined;
  const key = codec.uniqueKey(vals);
  let pk: unknown;
  const own = host._ownEntry(h, key);
  if (own !== undefined) {
    if (own.values === null) return undefined;
    pk = own.values[1];
  } else {
    const found = h.lookup(key, host.snapshotTs);
    const ref = found instanceof Promise ? await found : found;
    if (ref === undefined) return undefined;
    pk = ref.source.rawValue(ref.row, 1);
  }
  if (codec.covers(cols)) return coveredRow(host, t, h, vals, pk, cols!);
  const k = asKey(pk);
  const found = host._row(t, k, cols);
  const row = found instanceof Promise ? await found : found;
  if (row === undefined) throw missingRow(t, h, k);
  return row;
}

/** How many entries of an index are in a range, counted up to `cap`. */
export async function countEntries(
  host: IndexReadHost,
  h: Table,
  range: { lower: Uint8Array | undefined; upper: Uint8Array | undefined },
  cap: number,
): Promise<number> {
  let n = 0;
  for await (const c of host._merged(h, range.lower, range.upper, INDEX_CHUNK, [1], (c) => c.n)) {
    n += c;
    if (n >= cap) return cap;
  }
  return n;
}

function missingRow(t: Table, h: Table, key: Key): TidemarkError {
  return new TidemarkError(
    'CORRUPTION',
    `index ${h.schema.index!.name} of ${t.name} names a row (${describe(key)}) the table does not have`,
    { details: { table: t.name, index: h.schema.index!.name } },
  );
}
