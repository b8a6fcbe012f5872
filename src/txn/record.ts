import { COLUMN_TYPES, TableSchema, type ColumnDef, type ColumnType, type Key } from '../catalog/schema.js';
import { TidemarkError } from '../errors.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';

/** WAL record types written by the database (the WAL itself treats them as opaque bytes). */
export const RecordType = {
  /** A committed transaction: its DDL and writes, with its commit timestamp. */
  TXN: 1,
} as const;

const TXN_FORMAT = 1;
const OP_CREATE = 1;
const OP_DROP = 2;
const OP_WRITE = 3;

export type TxnOp =
  | { kind: 'create'; tableId: number; schema: TableSchema }
  | { kind: 'drop'; tableId: number }
  | { kind: 'write'; tableId: number; puts: (readonly unknown[])[]; delKeys: Key[] };

export interface TxnRecord {
  commitTs: number;
  ops: TxnOp[];
}

function width(type: ColumnType): number {
  return type === 'int32' ? 4 : type === 'bool' ? 1 : 8;
}

function isVar(type: ColumnType): boolean {
  return type === 'string' || type === 'bytes';
}

function valueBytes(v: unknown): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : (v as Uint8Array).length;
}

/** Bytes of one column of n values (puts: with a null map if nullable). */
function columnSize(def: ColumnDef, values: (i: number) => unknown, n: number, withNulls: boolean): number {
  let size = withNulls && def.nullable ? n : 0;
  if (!isVar(def.type)) return size + n * width(def.type);
  size += n * 4;
  for (let i = 0; i < n; i++) {
    const v = values(i);
    if (v !== null) size += valueBytes(v);
  }
  return size;
}

function writeColumn(
  w: ByteWriter,
  def: ColumnDef,
  values: (i: number) => unknown,
  n: number,
  withNulls: boolean,
): void {
  if (withNulls && def.nullable) for (let i = 0; i < n; i++) w.u8(values(i) === null ? 1 : 0);
  if (isVar(def.type)) {
    const lens = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const v = values(i);
      lens[i] = v === null ? 0 : valueBytes(v);
      w.u32(lens[i]!);
    }
    for (let i = 0; i < n; i++) {
      const v = values(i);
      if (v === null) continue;
      if (typeof v === 'string') w.utf8(v);
      else w.raw(v as Uint8Array);
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const v = values(i);
    switch (def.type) {
      case 'int32':
        w.i32(v === null ? 0 : (v as number));
        break;
      case 'bool':
        w.u8(v === true || v === 1 ? 1 : 0);
        break;
      default:
        w.f64(v === null ? 0 : (v as number));
    }
  }
}

function readColumn(
  r: ByteReader,
  def: ColumnDef,
  n: number,
  withNulls: boolean,
  set: (i: number, v: unknown) => void,
): void {
  let nulls: Uint8Array | undefined;
  if (withNulls && def.nullable) nulls = r.raw(n);
  if (isVar(def.type)) {
    const lens = new Array<number>(n);
    for (let i = 0; i < n; i++) lens[i] = r.u32();
    for (let i = 0; i < n; i++) {
      const b = r.raw(lens[i]!);
      if (nulls !== undefined && nulls[i] === 1) set(i, null);
      else set(i, def.type === 'string' ? r.utf8Of(b) : b.slice());
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    let v: unknown;
    switch (def.type) {
      case 'int32':
        v = r.i32();
        break;
      case 'bool':
        v = r.u8() === 1;
        break;
      default:
        v = r.f64();
    }
    set(i, nulls !== undefined && nulls[i] === 1 ? null : v);
  }
}

function schemaSize(s: TableSchema): number {
  let n = 2 + Buffer.byteLength(s.name, 'utf8') + 2 + 2;
  for (const c of s.columns) n += 2 + Buffer.byteLength(c.name, 'utf8') + 2;
  return n;
}

export function writeSchema(w: ByteWriter, s: TableSchema): void {
  w.str16(s.name);
  w.u16(s.columns.length);
  for (const c of s.columns) {
    w.str16(c.name);
    w.u8(COLUMN_TYPES.indexOf(c.type));
    w.u8(c.nullable ? 1 : 0);
  }
  w.u16(s.pk.index);
}

export function readSchema(r: ByteReader): TableSchema {
  const name = r.str16();
  const n = r.u16();
  const cols: ColumnDef[] = [];
  for (let i = 0; i < n; i++) {
    const cname = r.str16();
    const type = COLUMN_TYPES[r.u8()];
    if (type === undefined) r.fail('unknown column type');
    cols.push({ name: cname, type, nullable: r.u8() === 1, index: i });
  }
  const pk = r.u16();
  if (pk >= n) r.fail('primary key index out of range');
  return new TableSchema(name, cols, pk);
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
  let size = 1 + 8 + 4;
  for (const op of rec.ops) {
    size += 1 + 4;
    if (op.kind === 'create') size += schemaSize(op.schema);
    else if (op.kind === 'write') {
      const s = schemaOf(op.tableId);
      size += 8;
      for (const c of s.columns) size += columnSize(c, (i) => op.puts[i]![c.index], op.puts.length, true);
      size += columnSize(s.pk, (i) => op.delKeys[i], op.delKeys.length, false);
    }
  }
  const buf = pool.allocateSync(size, 'txn.record');
  try {
    const w = new ByteWriter(buf.bytes);
    w.u8(TXN_FORMAT);
    w.f64(rec.commitTs);
    w.u32(rec.ops.length);
    for (const op of rec.ops) {
      w.u8(op.kind === 'create' ? OP_CREATE : op.kind === 'drop' ? OP_DROP : OP_WRITE);
      w.u32(op.tableId);
      if (op.kind === 'create') writeSchema(w, op.schema);
      else if (op.kind === 'write') {
        const s = schemaOf(op.tableId);
        w.u32(op.puts.length);
        w.u32(op.delKeys.length);
        for (const c of s.columns) writeColumn(w, c, (i) => op.puts[i]![c.index], op.puts.length, true);
        writeColumn(w, s.pk, (i) => op.delKeys[i], op.delKeys.length, false);
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
 * same record is resolved from that record. Any inconsistency is CORRUPTION.
 */
export function decodeTxn(
  payload: Uint8Array,
  where: string,
  schemaOf: (tableId: number) => TableSchema | undefined,
): TxnRecord {
  const r: ByteReader = new ByteReader(payload, where);
  const format = r.u8();
  if (format !== TXN_FORMAT) r.fail(`unknown transaction record format ${format}`);
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
    } else if (kind === OP_WRITE) {
      const s = created.get(tableId) ?? schemaOf(tableId);
      if (s === undefined) r.fail(`write to unknown table ${tableId}`);
      const np = r.u32();
      const nd = r.u32();
      const puts: unknown[][] = Array.from({ length: np }, () => new Array<unknown>(s.columns.length));
      for (const c of s.columns) readColumn(r, c, np, true, (i, v) => (puts[i]![c.index] = v));
      const delKeys = new Array<Key>(nd);
      readColumn(
        r,
        s.pk,
        nd,
        false,
        (i, v) => (delKeys[i] = s.pk.type === 'bool' ? (v ? 1 : 0) : (v as Key)),
      );
      ops.push({ kind: 'write', tableId, puts, delKeys });
    } else {
      r.fail(`unknown operation ${kind}`);
    }
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
  return { commitTs, ops };
}
