// tidemark/level: an abstract-level database on tidemark (see docs/level.md).
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  AbstractIterator,
  AbstractKeyIterator,
  AbstractLevel,
  AbstractSnapshot,
  AbstractValueIterator,
} from 'abstract-level';
import type { AbstractDatabaseOptions } from 'abstract-level';
import { describe, type Row } from '../schema/schema.js';
import { open, type Database } from '../api/database.js';
import type { OpenOptions } from '../db/options.js';
import type { Snapshot } from '../db/snapshot.js';
import { invalidArgument, TidemarkError } from '../errors.js';
import type { Transaction } from '../txn/transaction.js';
import { planted, plantedKeep } from '../util/plant.js';

/** The table entries live in, unless `table` says otherwise: keys and values as bytes. */
export const DEFAULT_TABLE = 'level';

/** A batch written in one transaction is retried this many times on a write-write conflict. */
const CONFLICT_RETRIES = 64;
/** Keys deleted per transaction by clear(). */
const CLEAR_CHUNK = 1000;

type Format = 'buffer' | 'view' | 'utf8';
type Bytes = Uint8Array;
/** A key or value as abstract-level hands it to the private API: bytes, or a string (utf8). */
type In = Uint8Array | string;
/** What the private API gives back: bytes or, for the utf8 format, a string. */
type Out = Uint8Array | string;

export interface TidemarkLevelOptions<K, V> extends AbstractDatabaseOptions<K, V> {
  /** Options for the tidemark database underneath (memory, wal, checkpoint, log, ...). */
  tidemark?: OpenOptions;
  /** The table holding the entries (created when missing). Default 'level'. */
  table?: string;
}

interface RangeOptions {
  gt?: In;
  gte?: In;
  lt?: In;
  lte?: In;
  reverse?: boolean;
  limit?: number;
  keys?: boolean;
  values?: boolean;
  keyEncoding?: Format;
  valueEncoding?: Format;
  snapshot?: TidemarkLevelSnapshot | null;
  signal?: AbortSignal | null;
}

interface ReadOptions {
  keyEncoding?: Format;
  valueEncoding?: Format;
  snapshot?: TidemarkLevelSnapshot | null;
}

interface BatchOp {
  type: 'put' | 'del';
  key: In;
  value?: In;
}

/**
 * An abstract-level database whose entries live in a tidemark table: writes are tidemark
 * transactions (durable when they resolve, through group commit), reads come from snapshots (each
 * get, getMany and iterator takes one synchronously; `db.snapshot()` gives an explicit one), and
 * the WAL, checkpoints, memory pools and leak accounting are tidemark's. Keys are ordered as
 * unsigned bytes, as LevelDB orders them.
 *
 * `new TidemarkLevel(location, options)` as classic-level; `options.tidemark` goes to tidemark's
 * `open`. The tidemark database is `db.tidemark` while open.
 */
export class TidemarkLevel<KDefault = string, VDefault = string> extends AbstractLevel<
  Buffer | Uint8Array,
  KDefault,
  VDefault
> {
  readonly location: string;
  readonly table: string;
  private readonly openOptions: OpenOptions;
  private db: Database | undefined;

  constructor(location: string, options: TidemarkLevelOptions<KDefault, VDefault> = {}) {
    super(
      {
        // utf8 too: strings come and go through Buffer.from and a TextDecoder, the fastest ways.
        encodings: { buffer: true, view: true, utf8: true },
        // getSync is in abstract-level 3's manifest, not yet in level-supports' types.
        implicitSnapshots: true,
        explicitSnapshots: true,
        permanence: true,
        seek: true,
        createIfMissing: true,
        errorIfExists: true,
        deferredOpen: true,
        has: true,
        getSync: false,
        additionalMethods: {},
        signals: { iterators: true },
      } as ConstructorParameters<typeof AbstractLevel>[0],
      options,
    );
    if (typeof location !== 'string' || location === '')
      throw invalidArgument(`location must be a non-empty string, got ${describe(location)}`);
    const table = options.table ?? DEFAULT_TABLE;
    if (typeof table !== 'string' || table === '')
      throw invalidArgument(`option table must be a non-empty string, got ${describe(table)}`);
    this.location = location;
    this.table = table;
    this.openOptions = options.tidemark ?? {};
  }

  /** The tidemark database underneath (for stats, metrics, checkpoints); only while open. */
  get tidemark(): Database {
    if (this.db === undefined) throw new TidemarkError('CLOSED', `${this.location} is not open`);
    return this.db;
  }

  async _open(options: { createIfMissing: boolean; errorIfExists: boolean }): Promise<void> {
    // A tidemark directory has its write-ahead log from the first open on.
    const exists = existsSync(path.join(this.location, 'wal'));
    if (!exists && !options.createIfMissing)
      throw new TidemarkError('NOT_FOUND', `${this.location} does not exist (createIfMissing is false)`);
    if (exists && options.errorIfExists)
      throw new TidemarkError('INVALID_ARGUMENT', `${this.location} exists (errorIfExists is true)`);
    const db = await open(this.location, this.openOptions);
    try {
      if (!db.tables().includes(this.table)) {
        await db.createTable(this.table, { columns: { key: 'bytes', value: 'bytes' }, primaryKey: 'key' });
      } else {
        const spec = db.describeTable(this.table);
        const cols = spec.columns as Record<string, unknown>;
        const typeOf = (c: unknown) => (typeof c === 'string' ? c : (c as { type: string }).type);
        if (spec.primaryKey !== 'key' || typeOf(cols['key']) !== 'bytes' || typeOf(cols['value']) !== 'bytes')
          throw new TidemarkError(
            'SCHEMA',
            `table ${this.table} of ${this.location} is not a key-value table (key bytes primary key, value bytes)`,
          );
      }
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
    this.db = db;
  }

  async _close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    await db?.close();
  }

  async _get(key: In, options: ReadOptions): Promise<Bytes | string | undefined> {
    const row = await this.reader(options).get(this.table, bytes(key), VALUE);
    return row === undefined ? undefined : out(row['value'], options.valueEncoding);
  }

  async _getMany(keys: In[], options: ReadOptions): Promise<(Bytes | string | undefined)[]> {
    return this.withSnapshot(options, (snap) =>
      Promise.all(
        keys.map(async (k) => {
          const row = await snap.get(this.table, bytes(k), VALUE);
          return row === undefined ? undefined : out(row['value'], options.valueEncoding);
        }),
      ),
    );
  }

  async _has(key: In, options: ReadOptions): Promise<boolean> {
    return (await this.reader(options).get(this.table, bytes(key), KEY)) !== undefined;
  }

  async _hasMany(keys: In[], options: ReadOptions): Promise<boolean[]> {
    return this.withSnapshot(options, (snap) =>
      Promise.all(keys.map(async (k) => (await snap.get(this.table, bytes(k), KEY)) !== undefined)),
    );
  }

  async _put(key: In, value: In): Promise<void> {
    await this.tidemark.upsert(this.table, { key: bytes(key), value: bytes(value) });
  }

  async _del(key: In): Promise<void> {
    await this.tidemark.delete(this.table, bytes(key));
  }

  async _batch(operations: BatchOp[]): Promise<void> {
    await this.write(async (tx) => {
      for (const op of operations) {
        if (op.type === 'put') await tx.upsert(this.table, { key: bytes(op.key), value: bytes(op.value!) });
        else await tx.delete(this.table, bytes(op.key));
      }
    });
  }

  async _clear(options: RangeOptions): Promise<void> {
    // Reads the range at a snapshot (so writes made after the call are left alone), deletes in
    // transactions of CLEAR_CHUNK keys: not atomic, as abstract-level allows.
    await this.withSnapshot(options, async (snap) => {
      let keys: Bytes[] = [];
      for await (const row of rangeScan(snap, this.table, options, KEY.columns)) {
        keys.push(row['key'] as Bytes);
        if (keys.length === CLEAR_CHUNK) {
          await this.deleteKeys(keys);
          keys = [];
        }
      }
      if (keys.length > 0) await this.deleteKeys(keys);
    });
  }

  _iterator(options: RangeOptions): object {
    return this.cursorIterator(TidemarkIterator, options, options);
  }

  _keys(options: RangeOptions): object {
    return this.cursorIterator(TidemarkKeyIterator, options, { ...options, keys: true, values: false });
  }

  _values(options: RangeOptions): object {
    return this.cursorIterator(TidemarkValueIterator, options, { ...options, keys: false, values: true });
  }

  _snapshot(options: { owner: unknown }): TidemarkLevelSnapshot {
    return new TidemarkLevelSnapshot(options, this.tidemark.snapshot());
  }

  // ---- helpers ----

  /** The explicit snapshot of a read, or the database's latest state. */
  private reader(options: ReadOptions): Snapshot | Database {
    return options.snapshot?.inner ?? this.tidemark;
  }

  /** Run `fn` on the read's explicit snapshot, or on one of its own, released after. */
  private async withSnapshot<T>(options: ReadOptions, fn: (snap: Snapshot) => Promise<T>): Promise<T> {
    const given = options.snapshot?.inner;
    const snap = given ?? this.tidemark.snapshot();
    try {
      return await fn(snap);
    } finally {
      if (given === undefined) snap.release();
    }
  }

  /** An iterator over a cursor whose snapshot is taken now, synchronously. */
  private cursorIterator(
    Kind: new (db: unknown, options: unknown) => { c: Cursor },
    options: RangeOptions,
    read: RangeOptions,
  ): object {
    const given = options.snapshot?.inner;
    const it = new Kind(this, options);
    it.c = new Cursor(given ?? this.tidemark.snapshot(), given === undefined, this.table, read);
    return it;
  }

  /**
   * Run blind writes in one transaction, again on a write-write conflict (another writer committed
   * one of the keys first: the writes do not depend on what they read, so retrying is safe).
   */
  private async write(fn: (tx: Transaction) => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.tidemark.transaction(fn);
        return;
      } catch (e) {
        if (!(e instanceof TidemarkError) || e.code !== 'CONFLICT' || attempt >= CONFLICT_RETRIES) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(8, 2 ** (attempt - 3))));
      }
    }
  }

  private deleteKeys(keys: Bytes[]): Promise<void> {
    return this.write(async (tx) => {
      for (const k of keys) await tx.delete(this.table, k);
    });
  }
}

const VALUE = { columns: ['value'] } as const;
const KEY = { columns: ['key'] } as const;

/** Keeps a leading U+FEFF, which is part of the value. */
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** A stored byte string as abstract-level asked for it: Buffer, Uint8Array ('view') or a string. */
function out(v: unknown, format: Format | undefined): Bytes | string {
  const u = v as Uint8Array;
  if (format === 'utf8') return utf8.decode(u);
  if (format === 'view') return u;
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** A key or value from abstract-level as bytes (strings come for the utf8 format). */
function bytes(v: In): Bytes {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** The smallest key greater than `k` in byte order: k followed by a zero byte. */
function successor(k: Bytes): Bytes {
  const s = new Uint8Array(k.length + 1);
  s.set(k);
  return s;
}

function compareBytes(a: Bytes, b: Bytes): number {
  return Buffer.compare(a, b);
}

/** [gte, lt) of abstract-level's range options (gte and lte take precedence over gt and lt). */
function bounds(o: RangeOptions): { gte: Bytes | undefined; lt: Bytes | undefined } {
  const gte = o.gte !== undefined ? bytes(o.gte) : o.gt !== undefined ? successor(bytes(o.gt)) : undefined;
  const lt = o.lte !== undefined ? successor(bytes(o.lte)) : o.lt !== undefined ? bytes(o.lt) : undefined;
  return { gte, lt };
}

function isEmpty(gte: Bytes | undefined, lt: Bytes | undefined): boolean {
  return gte !== undefined && lt !== undefined && compareBytes(gte, lt) >= 0;
}

async function* rangeScan(
  snap: Snapshot,
  table: string,
  o: RangeOptions,
  columns: readonly string[] | undefined,
): AsyncGenerator<Row> {
  const { gte, lt } = bounds(o);
  if (isEmpty(gte, lt)) return;
  const limit = o.limit !== undefined && o.limit >= 0 ? o.limit : undefined;
  yield* snap.scan(table, { gte, lt, reverse: o.reverse === true, limit, columns });
}

/**
 * What the three kinds of iterator share: a scan of the range at a snapshot (its own, released at
 * close, or an explicit one), restarted by seek. Closing the scan releases what it pinned.
 */
class Cursor {
  /** The scan, started at the first read (abstract-level checks an explicit snapshot first). */
  private gen: AsyncGenerator<Row[]> | undefined;
  /** Rows of the last block not handed out yet, from `at` on. */
  private block: Row[] = [];
  private at = 0;
  private range: { gte: Bytes | undefined; lt: Bytes | undefined } | undefined;
  /** The scan a seek replaced, still being closed. */
  private closing: Promise<unknown> | undefined;
  private readonly gte: Bytes | undefined;
  private readonly lt: Bytes | undefined;
  private readonly reverse: boolean;
  private readonly columns: string[] | undefined;
  readonly keys: boolean;
  readonly values: boolean;
  readonly keyFormat: Format | undefined;
  readonly valueFormat: Format | undefined;
  private readonly signal: AbortSignal | undefined;

  constructor(
    private readonly snap: Snapshot,
    private readonly ownsSnapshot: boolean,
    private readonly table: string,
    o: RangeOptions,
  ) {
    ({ gte: this.gte, lt: this.lt } = bounds(o));
    this.reverse = o.reverse === true;
    this.keys = o.keys !== false;
    this.values = o.values !== false;
    this.columns = this.keys && this.values ? undefined : this.keys ? ['key'] : ['value'];
    this.keyFormat = o.keyEncoding;
    this.valueFormat = o.valueEncoding;
    this.signal = o.signal ?? undefined;
    this.range = { gte: this.gte, lt: this.lt };
  }

  async next(): Promise<Row | undefined> {
    if (this.at < this.block.length || (await this.fill())) return this.block[this.at++];
    return undefined;
  }

  async nextv(size: number): Promise<Row[]> {
    const rows: Row[] = [];
    while (rows.length < size) {
      if (this.at >= this.block.length && !(await this.fill())) break;
      const take = Math.min(size - rows.length, this.block.length - this.at);
      for (let i = 0; i < take; i++) rows.push(this.block[this.at++]!);
    }
    return rows;
  }

  /** Read the scan's next block of rows (the scan started first if it must be); false at the end. */
  private async fill(): Promise<boolean> {
    if (this.closing !== undefined) await this.settle();
    if (this.range !== undefined) {
      const { gte, lt } = this.range;
      this.range = undefined;
      if (!isEmpty(gte, lt))
        this.gen = this.snap.scanBlocks(this.table, {
          gte,
          lt,
          reverse: this.reverse,
          columns: this.columns,
        });
    }
    this.block = [];
    this.at = 0;
    if (this.gen === undefined) return false;
    const r = await this.gen.next();
    // A signal aborted while the read was under way: the call fails (abstract-level refuses later ones).
    if (this.signal?.aborted === true) throw new LevelAbortError(this.signal.reason);
    if (r.done === true) {
      this.gen = undefined;
      return false;
    }
    this.block = r.value;
    return this.block.length > 0 || this.fill();
  }

  /** Forward: to the first key >= target; reverse: to the last key <= target (within the range). */
  seek(input: In): void {
    const target = bytes(input);
    const old = this.gen;
    this.gen = undefined;
    this.block = [];
    this.at = 0;
    if (old !== undefined) {
      const prev = this.closing ?? Promise.resolve();
      this.closing = prev.then(() => old.return(undefined)).catch(() => undefined);
    }
    if (this.reverse) {
      const upper = successor(target);
      this.range = {
        gte: this.gte,
        lt: this.lt !== undefined && compareBytes(this.lt, upper) < 0 ? this.lt : upper,
      };
    } else {
      const gte = this.gte !== undefined && compareBytes(this.gte, target) > 0 ? this.gte : target;
      this.range = { gte, lt: this.lt };
    }
  }

  async close(): Promise<void> {
    const g = this.gen;
    this.gen = undefined;
    // Planted leak 'level-iterator': a closed iterator keeps its scan and its snapshot.
    if (planted('level-iterator')) {
      plantedKeep.push(g, this.snap);
      return;
    }
    try {
      await this.settle();
      await g?.return(undefined);
    } finally {
      if (this.ownsSnapshot) this.snap.release();
    }
  }

  private async settle(): Promise<void> {
    const c = this.closing;
    this.closing = undefined;
    await c;
  }

  key(row: Row): Out {
    return out(row['key'], this.keyFormat);
  }

  value(row: Row): Out {
    return out(row['value'], this.valueFormat);
  }
}

// The three kinds of iterator (entries, keys, values) extend three abstract-level classes that share
// no base; one mixin gives each the same private methods over a Cursor, `map` making what it yields.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type IteratorClass = abstract new (...args: any[]) => { readonly limit: number; readonly count: number };

function overCursor<T>(Base: IteratorClass, map: (c: Cursor, r: Row) => T) {
  abstract class CursorIterator extends Base {
    /** Set right after construction (see TidemarkLevel.cursorIterator). */
    c!: Cursor;

    async _next(): Promise<T | undefined> {
      const r = await this.c.next();
      return r === undefined ? undefined : map(this.c, r);
    }

    async _nextv(size: number): Promise<T[]> {
      return (await this.c.nextv(size)).map((r) => map(this.c, r));
    }

    async _all(): Promise<T[]> {
      return (await this.c.nextv(this.limit - this.count)).map((r) => map(this.c, r));
    }

    _seek(target: In): void {
      this.c.seek(target);
    }

    async _close(): Promise<void> {
      await this.c.close();
    }
  }
  return CursorIterator as unknown as new (db: unknown, options: unknown) => CursorIterator;
}

const TidemarkIterator = overCursor(AbstractIterator, (c, r) => [
  c.keys ? c.key(r) : undefined,
  c.values ? c.value(r) : undefined,
]);
const TidemarkKeyIterator = overCursor(AbstractKeyIterator, (c, r) => c.key(r));
const TidemarkValueIterator = overCursor(AbstractValueIterator, (c, r) => c.value(r));

/** What an iterator call gives when its signal is aborted (as abstract-level's AbortError). */
class LevelAbortError extends Error {
  readonly code = 'LEVEL_ABORTED';
  constructor(cause: unknown) {
    super('Operation has been aborted', { cause });
  }
  override get name(): string {
    return 'AbortError';
  }
}

/** An explicit snapshot: a tidemark Snapshot, released when abstract-level closes it. */
export class TidemarkLevelSnapshot extends (AbstractSnapshot as unknown as new (options: {
  owner: unknown;
}) => AbstractSnapshot) {
  constructor(
    options: { owner: unknown },
    /** @internal */ readonly inner: Snapshot,
  ) {
    // abstract-level's types omit the constructor's options (the owner to attach to).
    super(options);
  }

  async _close(): Promise<void> {
    this.inner.release();
  }
}
