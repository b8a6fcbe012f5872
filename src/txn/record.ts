import type { TableSchema } from '../schema/schema.js';
import { type ColumnDef, type Key, type StorageType } from '../schema/schema.js';
import { canonicalInt } from '../util/decimal.js';
import { readSchema, schemaSize, writeSchema } from '../schema/codec.js';
import { TidemarkError } from '../errors.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';

/** WAL record types written by the database (the WAL itself treats them as opaque bytes). */
export const RecordType = {
  /** A committed transaction: its DDL and writes, with its commit timestamp. */
  TXN: 1,
} as const;

/**
 * 3: 64-bit integer columns (int64, uint64, decimals of up to 18 digits) as 8-byte two's
 * complement; 2 (still read): int64 as a double.
 */
const TXN_FORMAT = 3;
const TXN_FORMAT_DOUBLE_INT64 = 2;
const TWO32 = 4294967296;
const OP_CREATE = 1;
const OP_DROP = 2;
const OP_WRITE = 3;
/** An index's hidden table holds every entry from this commit on: reads may use it. */
const OP_READY = 4;

export type TxnOp =
  | { kind: 'create'; tableId: number; schema: TableSchema }
  | { kind: 'drop'; tableId: number }
  | { kind: 'ready'; tableId: number }
  | { kind: 'write'; tableId: number; puts: (readonly unknown[])[]; delKeys: Key[] };

export interface TxnRecord {
  commitTs: number;
  ops: TxnOp[];
}

function width(type: StorageType): number {
  return type === 'int32' ? 4 : type === 'bool' ? 1 : 8;
}

function isVar(type: StorageType): boolean {
  return type === 'string' || type === 'bytes';
}

function valueBytes(v: unknown): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : (v as Uint8Array).length;
}

/**
 * One column of a write op, ready to encode: its values in row order, and for string and bytes
 * columns their byte lengths, measured once for both the sizing and the writing.
 */
interface ColumnPlan {
  def: ColumnDef;
  values: unknown[];
  lens: Int32Array | undefined;
  withNulls: boolean;
  size: number;
}

function planColumn(def: ColumnDef, values: unknown[], withNulls: boolean): ColumnPlan {
  const n = values.length;
  let size = withNulls && def.nullable ? n : 0;
  let lens: Int32Array | undefined;
  if (!isVar(def.storage)) size += n * width(def.storage);
  else {
    lens = new Int32Array(n);
    size += n * 4;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      const len = v === null ? 0 : valueBytes(v);
      lens[i] = len;
      size += len;
    }
  }
  return { def, values, lens, withNulls, size };
}

function writeColumn(w: ByteWriter, p: ColumnPlan): void {
  const { def, values, lens } = p;
  const n = values.length;
  if (p.withNulls && def.nullable) for (let i = 0; i < n; i++) w.u8(values[i] === null ? 1 : 0);
  if (lens !== undefined) {
    for (let i = 0; i < n; i++) w.u32(lens[i]!);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v === null) continue;
      if (typeof v === 'string') w.utf8(v);
      else w.raw(v as Uint8Array);
    }
    return;
  }
  switch (def.storage) {
    case 'int32':
      for (let i = 0; i < n; i++) w.i32((values[i] as number | null) ?? 0);
      return;
    case 'int64':
    case 'uint64':
      for (let i = 0; i < n; i++) {
        const v = (values[i] as number | bigint | null) ?? 0;
        if (typeof v === 'bigint') {
          const b = BigInt.asUintN(64, v);
          w.u32(Number(b & 0xffffffffn));
          w.u32(Number(b >> 32n));
        } else {
          const hi = Math.floor(v / TWO32);
          w.u32(v - hi * TWO32);
          w.i32(hi);
        }
      }
      return;
    case 'bool':
      for (let i = 0; i < n; i++) w.u8(values[i] === true || values[i] === 1 ? 1 : 0);
      return;
    default:
      for (let i = 0; i < n; i++) w.f64((values[i] as number | null) ?? 0);
  }
}

function readColumn(
  r: ByteReader,
  def: ColumnDef,
  n: number,
  withNulls: boolean,
  set: (i: number, v: unknown) => void,
  format: number,
): void {
  let nulls: Uint8Array | undefined;
  if (withNulls && def.nullable) nulls = r.raw(n);
  if (isVar(def.storage)) {
    const lens = new Array<number>(n);
    for (let i = 0; i < n; i++) lens[i] = r.u32();
    for (let i = 0; i < n; i++) {
      const b = r.raw(lens[i]!);
      if (nulls !== undefined && nulls[i] === 1) set(i, null);
      else set(i, def.storage === 'string' ? r.utf8Of(b) : b.slice());
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    let v: unknown;
    switch (def.storage) {
      case 'int32':
        v = r.i32();
        break;
      case 'int64':
      case 'uint64': {
        if (format === TXN_FORMAT_DOUBLE_INT64) {
          v = r.f64();
          break;
        }
        const lo = r.u32();
        const hi = def.storage === 'uint64' ? r.u32() : r.i32();
        const x = hi * TWO32 + lo;
        if (Number.isSafeInteger(x)) v = x;
        else {
          const b = (BigInt(hi >>> 0) << 32n) | BigInt(lo);
          v = canonicalInt(def.storage === 'uint64' ? b : BigInt.asIntN(64, b));
        }
        break;
      }
      case 'bool':
        v = r.u8() === 1;
        break;
      default:
        v = r.f64();
    }
    set(i, nulls !== undefined && nulls[i] === 1 ? null : v);
  }
}

/**
 * Encode a transaction into a buffer from `pool` (released by the caller once the WAL has taken it).
 * `schemaOf` gives the schema of each table written.
 */
export function encodeTxn(
  rec: TxnRecord,
  schemaOf: (tableId: number) => TableSchema,
  pool: MemoryPool,
): PooledBuffer {
  // Plan every column first (values gathered by column, string lengths measured once), then size.
  let size = 1 + 8 + 4;
  const plans: ColumnPlan[][] = [];
  for (const op of rec.ops) {
    size += 1 + 4;
    if (op.kind === 'create') size += schemaSize(op.schema);
    else if (op.kind === 'write') {
      const s = schemaOf(op.tableId);
      size += 4 + 8;
      const cols: ColumnPlan[] = [];
      for (const c of s.columns) {
        const values = new Array<unknown>(op.puts.length);
        for (let i = 0; i < op.puts.length; i++) values[i] = op.puts[i]![c.index];
        cols.push(planColumn(c, values, true));
      }
      cols.push(planColumn(s.pk, op.delKeys, false));
      for (const p of cols) size += p.size;
      plans.push(cols);
    }
  }
  const buf = pool.allocateSync(size, 'txn.record');
  try {
    const w = new ByteWriter(buf.bytes);
    w.u8(TXN_FORMAT);
    w.f64(rec.commitTs);
    w.u32(rec.ops.length);
    let k = 0;
    for (const op of rec.ops) {
      w.u8(
        op.kind === 'create'
          ? OP_CREATE
          : op.kind === 'drop'
            ? OP_DROP
            : op.kind === 'ready'
              ? OP_READY
              : OP_WRITE,
      );
      w.u32(op.tableId);
      if (op.kind === 'create') writeSchema(w, op.schema);
      else if (op.kind === 'write') {
        const cols = plans[k++]!;
        // The byte length of the rest of the operation: replay can pass over a write it skips.
        w.u32(8 + cols.reduce((n, p) => n + p.size, 0));
        w.u32(op.puts.length);
        w.u32(op.delKeys.length);
        for (const p of cols) writeColumn(w, p);
      }
    }
    if (w.pos !== size)
      throw new TidemarkError('CORRUPTION', `transaction record encoded ${w.pos} bytes, sized ${size}`);
  } catch (e) {
    buf.release();
    throw e;
  }
  return buf;
}

/**
 * Decode a transaction record. `schemaOf` resolves tables created earlier; a table created in the
 * same record is resolved from that record. A write for which `skipWrite` says true is passed over
 * undecoded and left out (replay after a checkpoint that holds it already). Any inconsistency is
 * CORRUPTION.
 */
export function decodeTxn(
  payload: Uint8Array,
  where: string,
  schemaOf: (tableId: number) => TableSchema | undefined,
  skipWrite: (tableId: number) => boolean = () => false,
): TxnRecord {
  const r: ByteReader = new ByteReader(payload, where);
  const format = r.u8();
  if (format !== TXN_FORMAT && format !== TXN_FORMAT_DOUBLE_INT64)
    r.fail(`unknown transaction record format ${format}`);
  const commitTs = r.f64();
  const n = r.u32();
  const ops: TxnOp[] = [];
  const created = new Map<number, TableSchema>();
  for (let k = 0; k < n; k++) {
    const kind = r.u8();
    const tableId = r.u32();
    if (kind === OP_CREATE) {
      const schema = readSchema(r);
      created.set(tableId, schema);
      ops.push({ kind: 'create', tableId, schema });
    } else if (kind === OP_DROP) {
      ops.push({ kind: 'drop', tableId });
    } else if (kind === OP_READY) {
      ops.push({ kind: 'ready', tableId });
    } else if (kind === OP_WRITE) {
      const length = r.u32();
      if (!created.has(tableId) && skipWrite(tableId)) {
        r.raw(length);
        continue;
      }
      const s = created.get(tableId) ?? schemaOf(tableId);
      if (s === undefined) r.fail(`write to unknown table ${tableId}`);
      const opEnd = r.pos + length;
      const np = r.u32();
      const nd = r.u32();
      const puts: unknown[][] = Array.from({ length: np }, () => new Array<unknown>(s.columns.length));
      for (const c of s.columns) readColumn(r, c, np, true, (i, v) => (puts[i]![c.index] = v), format);
      const delKeys = new Array<Key>(nd);
      readColumn(
        r,
        s.pk,
        nd,
        false,
        (i, v) => (delKeys[i] = s.pk.storage === 'bool' ? (v ? 1 : 0) : (v as Key)),
        format,
      );
      if (r.pos !== opEnd)
        r.fail(`a write to table ${tableId} took ${r.pos - opEnd + length} bytes, not ${length}`);
      ops.push({ kind: 'write', tableId, puts, delKeys });
    } else {
      r.fail(`unknown operation ${kind}`);
    }
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
  return { commitTs, ops };
}
