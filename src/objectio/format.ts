import { TableSchema, type ColumnDef, type Key, type StorageType } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import { readSchema, schemaSize, writeSchema } from '../schema/codec.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32 } from '../util/crc.js';
import { canonicalInt } from '../util/decimal.js';
import type { Physical } from './encoding.js';

/**
 * The columnar object file (docs/formats/object.md):
 *
 *   header (16 bytes) | column chunks ... | bloom filter | footer | trailer (16 bytes)
 *
 * header: magic "TDMKOBJ\0", u16 format version, u16 kind (1 data, 2 tombstone), u32 reserved.
 * trailer: u32 footer length, u32 crc32 of the footer, magic "TDMKEND\0".
 */
export const OBJ_DIR = 'obj';
export const OBJECT_FORMAT_VERSION = 2;
export const HEADER_BYTES = 16;
export const TRAILER_BYTES = 16;
const MAGIC = new TextEncoder().encode('TDMKOBJ\0');
const END_MAGIC = new TextEncoder().encode('TDMKEND\0');

export type ObjectKind = 'data' | 'tombstone';

/** The hidden column holding each row's commit timestamp, always last. */
export const TS_COLUMN = '__ts';

export interface ChunkMeta {
  offset: number;
  length: number;
  crc: number;
  encoding: number;
  nulls: number;
  /** Zone map: smallest and greatest value (numbers for numeric columns; undefined otherwise). */
  min: number | undefined;
  max: number | undefined;
}

export interface RowGroupMeta {
  firstRow: number;
  rows: number;
  minKey: Key;
  maxKey: Key;
  chunks: ChunkMeta[];
}

export interface ObjectMeta {
  id: number;
  kind: ObjectKind;
  tableId: number;
  /** The table's schema (data objects) or a one-column schema of the primary key (tombstones). */
  schema: TableSchema;
  rows: number;
  minKey: Key;
  maxKey: Key;
  minTs: number;
  maxTs: number;
  /** True when no key has more than one version in the object. */
  singleVersion: boolean;
  rowGroups: RowGroupMeta[];
  bloomOffset: number;
  bloomLength: number;
  /** CRC-32 of the bloom filter (a damaged filter could hide keys: it is checked when read). */
  bloomCrc: number;
  fileBytes: number;
}

export function objectName(id: number): string {
  return `${id.toString(16).padStart(16, '0')}.obj`;
}

export function objectPath(id: number): string {
  return `${OBJ_DIR}/${objectName(id)}`;
}

export function parseObjectName(name: string): number | undefined {
  const m = /^([0-9a-f]{16})\.obj$/.exec(name);
  if (m === null) return undefined;
  const id = parseInt(m[1]!, 16);
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

/** The physical layout of a column of a given type. */
export function physicalOf(type: StorageType): Physical {
  switch (type) {
    case 'int32':
      return 'i32';
    case 'bool':
      return 'u8';
    case 'string':
    case 'bytes':
      return 'var';
    default:
      return 'f64';
  }
}

/** The columns stored in an object of `kind` for a table: user columns (or just the key) and __ts. */
export function storedColumns(
  kind: ObjectKind,
  schema: TableSchema,
): { name: string; physical: Physical; def: ColumnDef | undefined }[] {
  const user = kind === 'data' ? schema.columns : [schema.pk];
  return [
    ...user.map((d) => ({ name: d.name, physical: physicalOf(d.storage), def: d })),
    { name: TS_COLUMN, physical: 'f64', def: undefined },
  ];
}

/** The one-column schema of a tombstone object. */
export function tombstoneSchema(schema: TableSchema): TableSchema {
  return new TableSchema(schema.name, [{ ...schema.pk, index: 0 }], 0);
}

export function encodeHeader(kind: ObjectKind): Uint8Array {
  const h = new Uint8Array(HEADER_BYTES);
  h.set(MAGIC, 0);
  const v = new DataView(h.buffer);
  v.setUint16(8, OBJECT_FORMAT_VERSION, true);
  v.setUint16(10, kind === 'data' ? 1 : 2, true);
  return h;
}

// ---- footer ----

function keySize(k: Key): number {
  if (typeof k === 'number') return 1 + 8;
  if (typeof k === 'string') return 1 + 4 + Buffer.byteLength(k, 'utf8');
  if (typeof k === 'bigint') return 1 + 4 + k.toString().length;
  return 1 + 4 + k.length;
}

function writeKey(w: ByteWriter, k: Key): void {
  if (typeof k === 'number') {
    w.u8(0);
    w.f64(k);
  } else if (typeof k === 'string') {
    w.u8(1);
    w.u32(Buffer.byteLength(k, 'utf8'));
    w.utf8(k);
  } else if (typeof k === 'bigint') {
    // A 64-bit integer beyond the safe range: its decimal digits.
    const t = k.toString();
    w.u8(3);
    w.u32(t.length);
    w.utf8(t);
  } else {
    w.u8(2);
    w.u32(k.length);
    w.raw(k);
  }
}

function readKey(r: ByteReader): Key {
  const t = r.u8();
  if (t === 0) return r.f64();
  if (t === 1) return r.utf8(r.u32());
  if (t === 2) return r.raw(r.u32()).slice();
  if (t === 3) {
    const text = r.utf8(r.u32());
    if (!/^-?\d{1,20}$/.test(text)) r.fail(`bad integer key ${JSON.stringify(text.slice(0, 30))}`);
    return canonicalInt(BigInt(text));
  }
  r.fail(`unknown key kind ${t}`);
}

const CHUNK_BYTES = 8 + 4 + 4 + 1 + 4 + 1 + 8 + 8;

export function encodeFooter(m: Omit<ObjectMeta, 'fileBytes'>): Uint8Array {
  let size =
    2 +
    1 +
    8 +
    4 +
    schemaSize(m.schema) +
    8 +
    keySize(m.minKey) +
    keySize(m.maxKey) +
    8 +
    8 +
    1 +
    4 +
    8 +
    8 +
    4;
  for (const g of m.rowGroups)
    size += 8 + 4 + keySize(g.minKey) + keySize(g.maxKey) + 2 + g.chunks.length * CHUNK_BYTES;
  const out = new Uint8Array(size);
  const w = new ByteWriter(out);
  w.u16(OBJECT_FORMAT_VERSION);
  w.u8(m.kind === 'data' ? 1 : 2);
  w.u64(m.id);
  w.u32(m.tableId);
  writeSchema(w, m.schema);
  w.u64(m.rows);
  writeKey(w, m.minKey);
  writeKey(w, m.maxKey);
  w.f64(m.minTs);
  w.f64(m.maxTs);
  w.u8(m.singleVersion ? 1 : 0);
  w.u32(m.rowGroups.length);
  w.u64(m.bloomOffset);
  w.u64(m.bloomLength);
  w.u32(m.bloomCrc);
  for (const g of m.rowGroups) {
    w.u64(g.firstRow);
    w.u32(g.rows);
    writeKey(w, g.minKey);
    writeKey(w, g.maxKey);
    w.u16(g.chunks.length);
    for (const c of g.chunks) {
      w.u64(c.offset);
      w.u32(c.length);
      w.u32(c.crc);
      w.u8(c.encoding);
      w.u32(c.nulls);
      w.u8(c.min === undefined ? 0 : 1);
      w.f64(c.min ?? 0);
      w.f64(c.max ?? 0);
    }
  }
  if (w.pos !== size)
    throw new TidemarkError('CORRUPTION', `object footer encoded ${w.pos} bytes, sized ${size}`);
  return out;
}

export function encodeTrailer(footer: Uint8Array): Uint8Array {
  const t = new Uint8Array(TRAILER_BYTES);
  const v = new DataView(t.buffer);
  v.setUint32(0, footer.length, true);
  v.setUint32(4, crc32(footer), true);
  t.set(END_MAGIC, 8);
  return t;
}

function corrupt(path: string, reason: string, offset?: number): TidemarkError {
  return new TidemarkError('CORRUPTION', `object ${path} is corrupt: ${reason}`, {
    details: { file: path, ...(offset !== undefined ? { offset } : {}) },
  });
}

/** Check a header read from the start of the file. */
export function checkHeader(h: Uint8Array, path: string): ObjectKind {
  if (h.length < HEADER_BYTES) throw corrupt(path, 'short header', 0);
  for (let i = 0; i < MAGIC.length; i++) if (h[i] !== MAGIC[i]) throw corrupt(path, 'bad magic', 0);
  const v = new DataView(h.buffer, h.byteOffset, HEADER_BYTES);
  if (v.getUint16(8, true) !== OBJECT_FORMAT_VERSION)
    throw corrupt(path, `unsupported format version ${v.getUint16(8, true)}`, 8);
  const kind = v.getUint16(10, true);
  if (kind !== 1 && kind !== 2) throw corrupt(path, `unknown kind ${kind}`, 10);
  return kind === 1 ? 'data' : 'tombstone';
}

/** From the trailer: where the footer is, and its checksum. */
export function parseTrailer(
  t: Uint8Array,
  fileBytes: number,
  path: string,
): { footerOffset: number; footerLength: number; crc: number } {
  if (t.length < TRAILER_BYTES || fileBytes < HEADER_BYTES + TRAILER_BYTES)
    throw corrupt(path, `file of ${fileBytes} bytes is too short`);
  for (let i = 0; i < END_MAGIC.length; i++)
    if (t[8 + i] !== END_MAGIC[i])
      throw corrupt(path, 'bad trailer magic (a truncated file?)', fileBytes - TRAILER_BYTES);
  const v = new DataView(t.buffer, t.byteOffset, TRAILER_BYTES);
  const footerLength = v.getUint32(0, true);
  const footerOffset = fileBytes - TRAILER_BYTES - footerLength;
  if (footerOffset < HEADER_BYTES)
    throw corrupt(path, `footer length ${footerLength} does not fit`, fileBytes - TRAILER_BYTES);
  return { footerOffset, footerLength, crc: v.getUint32(4, true) };
}

export function decodeFooter(
  footer: Uint8Array,
  crc: number,
  footerOffset: number,
  fileBytes: number,
  path: string,
): ObjectMeta {
  if (crc32(footer) !== crc) throw corrupt(path, 'footer checksum mismatch', footerOffset);
  const r: ByteReader = new ByteReader(footer, `object ${path} footer`);
  const version = r.u16();
  if (version !== OBJECT_FORMAT_VERSION) r.fail(`unsupported footer version ${version}`);
  const kindCode = r.u8();
  if (kindCode !== 1 && kindCode !== 2) r.fail(`unknown kind ${kindCode}`);
  const kind: ObjectKind = kindCode === 1 ? 'data' : 'tombstone';
  const id = r.u64();
  const tableId = r.u32();
  const schema = readSchema(r);
  const rows = r.u64();
  const minKey = readKey(r);
  const maxKey = readKey(r);
  const minTs = r.f64();
  const maxTs = r.f64();
  const singleVersion = r.u8() === 1;
  const groups = r.u32();
  const bloomOffset = r.u64();
  const bloomLength = r.u64();
  const bloomCrc = r.u32();
  const ncols = storedColumns(kind, schema).length;
  const rowGroups: RowGroupMeta[] = [];
  let expectRow = 0;
  for (let g = 0; g < groups; g++) {
    const firstRow = r.u64();
    const n = r.u32();
    if (firstRow !== expectRow) r.fail(`row group ${g} starts at row ${firstRow}, expected ${expectRow}`);
    expectRow += n;
    const gMin = readKey(r);
    const gMax = readKey(r);
    const nc = r.u16();
    if (nc !== ncols) r.fail(`row group ${g} has ${nc} columns, expected ${ncols}`);
    const chunks: ChunkMeta[] = [];
    for (let c = 0; c < nc; c++) {
      const offset = r.u64();
      const length = r.u32();
      const ccrc = r.u32();
      const encoding = r.u8();
      const nulls = r.u32();
      const hasZone = r.u8() === 1;
      const min = r.f64();
      const max = r.f64();
      if (offset < HEADER_BYTES || offset + length > footerOffset - bloomLength)
        r.fail(`chunk ${g}/${c} at ${offset}+${length} is outside the data area`);
      chunks.push({
        offset,
        length,
        crc: ccrc,
        encoding,
        nulls,
        min: hasZone ? min : undefined,
        max: hasZone ? max : undefined,
      });
    }
    rowGroups.push({ firstRow, rows: n, minKey: gMin, maxKey: gMax, chunks });
  }
  if (expectRow !== rows) r.fail(`row groups hold ${expectRow} rows, the object says ${rows}`);
  if (bloomOffset + bloomLength !== footerOffset)
    r.fail('the bloom filter does not end where the footer starts');
  if (r.remaining !== 0) r.fail(`${r.remaining} unexpected bytes`);
  return {
    id,
    kind,
    tableId,
    schema,
    rows,
    minKey,
    maxKey,
    minTs,
    maxTs,
    singleVersion,
    rowGroups,
    bloomOffset,
    bloomLength,
    bloomCrc,
    fileBytes,
  };
}
