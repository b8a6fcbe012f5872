/**
 * Secondary indexes: their definitions, and the order-preserving ("memcomparable") encoding of
 * their entries' keys. An index of a table is kept as a hidden table of its own whose primary key
 * is such an encoding (see docs/formats/index.md): comparing two encoded keys byte by byte orders
 * them as their values compare column by column, NULL first, then by the row's primary key.
 */
import { invalidArgument, TidemarkError } from '../errors.js';
import { canonicalInt, decimalBytes } from '../util/decimal.js';
import {
  checkName,
  columnDef,
  describe,
  LIMITS,
  TableSchema,
  toDecimal,
  type ColumnDef,
  type IndexOf,
} from './schema.js';

export type { IndexOf };

/** An index as the API declares and describes it. */
export interface IndexSpec {
  name: string;
  columns: string[];
  unique?: boolean;
}

/** The most columns an index may have (as MySQL). */
export const MAX_INDEX_COLUMNS = 16;
/** The most indexes a table may have (as MySQL). */
export const MAX_INDEXES = 64;

/** The name of the hidden table that keeps index `name` of table `table` (never a user's name). */
export function indexTableName(table: string, name: string): string {
  return `${table}#${name}`;
}

/** Check an index declaration against the table's schema; returns it normalized. */
export function checkIndexSpec(base: TableSchema, spec: unknown): Required<IndexSpec> {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    throw invalidArgument(`an index is declared as { name, columns, unique? }, got ${describe(spec)}`);
  const o = spec as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (k !== 'name' && k !== 'columns' && k !== 'unique')
      throw invalidArgument(`unknown index option ${JSON.stringify(k)}; known: name, columns, unique`);
  const name = checkName('index', o.name);
  const cols = o.columns;
  if (!Array.isArray(cols) || cols.length === 0)
    throw invalidArgument(`index ${name}: columns must be a non-empty array of column names`);
  if (cols.length > MAX_INDEX_COLUMNS)
    throw invalidArgument(`index ${name}: at most ${MAX_INDEX_COLUMNS} columns`);
  const seen = new Set<string>();
  for (const c of cols) {
    if (typeof c !== 'string')
      throw invalidArgument(`index ${name}: column names must be strings, got ${describe(c)}`);
    base.column(c);
    if (seen.has(c)) throw invalidArgument(`index ${name}: column ${c} is named twice`);
    seen.add(c);
  }
  const unique = o.unique ?? false;
  if (typeof unique !== 'boolean') throw invalidArgument(`index ${name}: unique must be a boolean`);
  return { name, columns: [...(cols as string[])], unique };
}

/**
 * The schema of an index's hidden table: `k`, the encoded key (its primary key), and `p`, the
 * indexed row's primary key as the table's own type.
 */
export function indexTableSchema(base: TableSchema, baseId: number, spec: Required<IndexSpec>): TableSchema {
  const pk = base.pk;
  const cols = [columnDef('k', 'bytes', false, 0), columnDef('p', pk.type, false, 1, pk.precision, pk.scale)];
  const s = new TableSchema(indexTableName(base.name, spec.name), cols, 0);
  s.index = { base: baseId, name: spec.name, columns: spec.columns, unique: spec.unique };
  return s;
}

const TAG_NULL = 0x00;
const TAG_VALUE = 0x01;
/** Greater than any tag: a prefix followed by it bounds every key that extends the prefix. */
const PAST_PREFIX = 0x02;

/** Writes encoded keys into a buffer that grows as needed. */
class KeyWriter {
  buf = new Uint8Array(256);
  n = 0;
  private readonly view8 = new DataView(new ArrayBuffer(8));

  room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }

  byte(v: number): void {
    this.room(1);
    this.buf[this.n++] = v;
  }

  /** 8 bytes, big-endian, of a 64-bit pattern given as its two 32-bit halves. */
  u64(hi: number, lo: number): void {
    this.room(8);
    const b = this.buf;
    const n = this.n;
    b[n] = hi >>> 24;
    b[n + 1] = (hi >>> 16) & 0xff;
    b[n + 2] = (hi >>> 8) & 0xff;
    b[n + 3] = hi & 0xff;
    b[n + 4] = lo >>> 24;
    b[n + 5] = (lo >>> 16) & 0xff;
    b[n + 6] = (lo >>> 8) & 0xff;
    b[n + 7] = lo & 0xff;
    this.n += 8;
  }

  f64(v: number): void {
    const d = this.view8;
    // One NaN, and -0 as 0: equal values encode equally.
    d.setFloat64(0, Number.isNaN(v) ? NaN : v === 0 ? 0 : v);
    let hi = d.getUint32(0);
    let lo = d.getUint32(4);
    if (hi & 0x80000000) {
      hi = ~hi >>> 0;
      lo = ~lo >>> 0;
    } else hi = (hi | 0x80000000) >>> 0;
    this.u64(hi, lo);
  }

  take(): Uint8Array {
    const out = this.buf.slice(0, this.n);
    this.n = 0;
    return out;
  }
}

const TWO32 = 4294967296;

/** A 64-bit integer (number or bigint) as two 32-bit halves of its two's complement, sign flipped if signed. */
function int64Halves(v: number | bigint, signed: boolean): [number, number] {
  if (typeof v === 'bigint') {
    let u = BigInt.asUintN(64, v);
    if (signed) u ^= 1n << 63n;
    return [Number(u >> 32n), Number(u & 0xffffffffn)];
  }
  const hi = Math.floor(v / TWO32);
  const lo = v - hi * TWO32;
  return [signed ? (hi ^ 0x80000000) >>> 0 : hi >>> 0, lo >>> 0];
}

/** One value (engine representation, not null) of a column. */
function writeValue(w: KeyWriter, c: ColumnDef, v: unknown): void {
  switch (c.storage) {
    case 'int32':
      w.room(4);
      {
        const u = ((v as number) ^ 0x80000000) >>> 0;
        w.buf[w.n++] = u >>> 24;
        w.buf[w.n++] = (u >>> 16) & 0xff;
        w.buf[w.n++] = (u >>> 8) & 0xff;
        w.buf[w.n++] = u & 0xff;
      }
      return;
    case 'int64':
    case 'uint64': {
      const [hi, lo] = int64Halves(v as number | bigint, c.storage === 'int64');
      w.u64(hi, lo);
      return;
    }
    case 'float64':
    case 'timestamp':
      w.f64(v as number);
      return;
    case 'bool':
      w.byte(v === true || v === 1 ? 1 : 0);
      return;
    case 'string': {
      // UTF-16 code units, each in 1 to 3 bytes that keep their order (the engine orders strings
      // by code unit), none starting with 0, then a 0 byte.
      const s = v as string;
      w.room(s.length * 3 + 1);
      const b = w.buf;
      let n = w.n;
      for (let i = 0; i < s.length; i++) {
        const u = s.charCodeAt(i);
        if (u < 0x7f) b[n++] = u + 1;
        else if (u < 0x7f + 0x4000) {
          const x = u - 0x7f;
          b[n++] = 0x80 | (x >>> 8);
          b[n++] = x & 0xff;
        } else {
          const x = u - 0x7f - 0x4000;
          b[n++] = 0xc0;
          b[n++] = x >>> 8;
          b[n++] = x & 0xff;
        }
      }
      b[n++] = 0;
      w.n = n;
      return;
    }
    case 'bytes': {
      const a = v as Uint8Array;
      if (c.type === 'decimal') {
        // Wide decimals are already order-preserving bytes of a fixed width.
        w.room(a.length);
        w.buf.set(a, w.n);
        w.n += a.length;
        return;
      }
      // 0 escaped as 0 0xff; the end as 0 1 (which sorts before any escaped or other byte).
      w.room(a.length * 2 + 2);
      const b = w.buf;
      let n = w.n;
      for (let i = 0; i < a.length; i++) {
        const x = a[i]!;
        b[n++] = x;
        if (x === 0) b[n++] = 0xff;
      }
      b[n++] = 0;
      b[n++] = 1;
      w.n = n;
      return;
    }
  }
}

/**
 * How one index encodes: its columns' definitions, and the table's primary key (appended to every
 * entry of a non-unique index, and to entries of a unique one that have a NULL).
 */
export class IndexCodec {
  readonly cols: readonly ColumnDef[];
  private readonly w = new KeyWriter();
  private readonly view = new DataView(new ArrayBuffer(8));

  constructor(
    readonly base: TableSchema,
    readonly def: IndexOf,
  ) {
    this.cols = def.columns.map((c) => base.column(c));
  }

  /**
   * The entry key of a row (its values in column order, engine representation). Throws
   * INVALID_ARGUMENT if the key would be longer than the limit on keys.
   */
  keyOf(values: readonly unknown[]): Uint8Array {
    const w = this.w;
    let hasNull = false;
    for (const c of this.cols) {
      const v = values[c.index];
      if (v === null || v === undefined) {
        hasNull = true;
        w.byte(TAG_NULL);
      } else {
        w.byte(TAG_VALUE);
        writeValue(w, c, v);
      }
    }
    if (!this.def.unique || hasNull) {
      w.byte(TAG_VALUE);
      writeValue(w, this.base.pk, values[this.base.pk.index]);
    }
    if (w.n > LIMITS.keyBytes) {
      const n = w.n;
      w.n = 0;
      throw new TidemarkError(
        'INVALID_ARGUMENT',
        `a key of index ${this.def.name} of ${this.base.name} would be ${n} bytes, over the limit of ${LIMITS.keyBytes}`,
        { details: { table: this.base.name, index: this.def.name } },
      );
    }
    return w.take();
  }

  /**
   * Whether the entry key of a row is the only one its values may have: a unique index's entry
   * without NULLs (two rows with such equal keys violate the index).
   */
  isUniqueKey(values: readonly unknown[]): boolean {
    if (!this.def.unique) return false;
    for (const c of this.cols) if (values[c.index] === null || values[c.index] === undefined) return false;
    return true;
  }

  /**
   * The encoding of values for the leading columns from `from` on (already normalized), appended
   * to `prefix`.
   */
  private encodeTuple(prefix: Uint8Array | undefined, from: number, values: readonly unknown[]): Uint8Array {
    const w = this.w;
    if (prefix !== undefined) {
      w.room(prefix.length);
      w.buf.set(prefix, 0);
      w.n = prefix.length;
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null) w.byte(TAG_NULL);
      else {
        w.byte(TAG_VALUE);
        writeValue(w, this.cols[from + i]!, v);
      }
    }
    return w.take();
  }

  /**
   * The indexed columns' values an entry key holds (engine representation), decoded: what a read
   * that needs only those columns and the row's key takes from the index without reading the row.
   */
  decode(key: Uint8Array): unknown[] {
    const out = new Array<unknown>(this.cols.length);
    let i = 0;
    const u32 = () => {
      const v = ((key[i]! << 24) | (key[i + 1]! << 16) | (key[i + 2]! << 8) | key[i + 3]!) >>> 0;
      i += 4;
      return v;
    };
    for (let c = 0; c < this.cols.length; c++) {
      const def = this.cols[c]!;
      if (key[i++] === TAG_NULL) {
        out[c] = null;
        continue;
      }
      switch (def.storage) {
        case 'int32':
          out[c] = (u32() ^ 0x80000000) | 0;
          break;
        case 'int64':
        case 'uint64': {
          let hi = u32();
          const lo = u32();
          if (def.storage === 'int64') hi = (hi ^ 0x80000000) | 0;
          const v = hi * TWO32 + lo;
          out[c] = Number.isSafeInteger(v) ? v + 0 : canonicalInt((BigInt(hi) << 32n) + BigInt(lo));
          break;
        }
        case 'float64':
        case 'timestamp': {
          let hi = u32();
          let lo = u32();
          if (hi & 0x80000000) hi = (hi ^ 0x80000000) >>> 0;
          else {
            hi = ~hi >>> 0;
            lo = ~lo >>> 0;
          }
          this.view.setUint32(0, hi);
          this.view.setUint32(4, lo);
          out[c] = this.view.getFloat64(0);
          break;
        }
        case 'bool':
          out[c] = key[i++] === 1;
          break;
        case 'string': {
          let s = '';
          const units: number[] = [];
          for (;;) {
            const b = key[i++]!;
            if (b === 0) break;
            if (b < 0x80) units.push(b - 1);
            else if (b < 0xc0) units.push((((b & 0x3f) << 8) | key[i++]!) + 0x7f);
            else {
              units.push(((key[i]! << 8) | key[i + 1]!) + 0x7f + 0x4000);
              i += 2;
            }
            if (units.length === 4096) {
              s += String.fromCharCode(...units);
              units.length = 0;
            }
          }
          out[c] = s + String.fromCharCode(...units);
          break;
        }
        case 'bytes': {
          if (def.type === 'decimal') {
            const w = decimalBytes(def.precision!);
            out[c] = key.slice(i, i + w);
            i += w;
            break;
          }
          const bytes: number[] = [];
          for (;;) {
            const b = key[i++]!;
            if (b !== 0) bytes.push(b);
            else if (key[i++] === 0xff) bytes.push(0);
            else break;
          }
          out[c] = Uint8Array.from(bytes);
          break;
        }
      }
    }
    return out;
  }

  /**
   * Whether a read of these columns (indexes in the table) can be answered from the entries alone:
   * each is an indexed column or the primary key. Not float64 columns: their entries keep -0 as 0.
   */
  covers(cols: readonly number[] | undefined): boolean {
    if (cols === undefined) return false;
    for (const c of cols) {
      if (c === this.base.pk.index) continue;
      const def = this.cols.find((d) => d.index === c);
      if (def === undefined || def.storage === 'float64') return false;
    }
    return true;
  }

  /** The key of a unique entry for values of every column (normalized, none null). */
  uniqueKey(values: readonly unknown[]): Uint8Array {
    return this.encodeTuple(undefined, 0, values);
  }

  /** Normalize the values of a tuple for columns from `from` on (as writes are). */
  normalizeTuple(what: string, from: number, tuple: unknown): unknown[] {
    const values = Array.isArray(tuple) ? (tuple as unknown[]) : [tuple];
    if (values.length > this.cols.length - from)
      throw invalidArgument(
        `${what} has ${values.length} values, but index ${this.def.name} has ${this.cols.length - from} column(s) there`,
      );
    return values.map((v, i) => {
      const c = this.cols[from + i]!;
      if (v === null || v === undefined) return null;
      // A decimal bound with more digits than the column keeps would be rounded onto a value a
      // row may have: refused rather than made to match what a comparison would not.
      const d = c.type === 'decimal' ? toDecimal(v) : undefined;
      if (d !== undefined && d.s > c.scale! && d.truncate(c.scale!).rescale(d.s).u !== d.u)
        throw invalidArgument(
          `${what}: ${d.toString()} has more digits after the point than ${this.base.name}.${c.name}, DECIMAL(${c.precision}, ${c.scale})`,
        );
      return this.base.normalizeValue({ ...c, nullable: true }, v);
    });
  }

  /**
   * The key range [lower, upper) of entries matching `eq` (a prefix of the index's columns) and
   * bounds on the columns after it. A bound tuple compares as a prefix: `lte ['M']` takes in every
   * entry whose next column is 'M', `gt ['A']` leaves them all out.
   */
  range(o: RangeOptions): { lower: Uint8Array | undefined; upper: Uint8Array | undefined } {
    const eq = o.eq === undefined ? [] : this.normalizeTuple('eq', 0, o.eq);
    const from = eq.length;
    if (o.gte !== undefined && o.gt !== undefined) throw invalidArgument('give gte or gt, not both');
    if (o.lte !== undefined && o.lt !== undefined) throw invalidArgument('give lte or lt, not both');
    const prefix = eq.length > 0 ? this.encodeTuple(undefined, 0, eq) : undefined;
    const bound = (t: unknown, what: string) =>
      this.encodeTuple(prefix, from, this.normalizeTuple(what, from, t));
    const past = (k: Uint8Array) => {
      const out = new Uint8Array(k.length + 1);
      out.set(k);
      out[k.length] = PAST_PREFIX;
      return out;
    };
    let lower: Uint8Array | undefined = prefix;
    if (o.gte !== undefined) lower = bound(o.gte, 'gte');
    else if (o.gt !== undefined) lower = past(bound(o.gt, 'gt'));
    let upper: Uint8Array | undefined = prefix !== undefined ? past(prefix) : undefined;
    if (o.lt !== undefined) upper = bound(o.lt, 'lt');
    else if (o.lte !== undefined) upper = past(bound(o.lte, 'lte'));
    return { lower, upper };
  }
}

/** The bounds of a read through an index (see IndexCodec.range). */
export interface RangeOptions {
  eq?: unknown;
  gte?: unknown;
  gt?: unknown;
  lte?: unknown;
  lt?: unknown;
}
