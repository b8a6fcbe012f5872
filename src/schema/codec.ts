import { COLUMN_TYPES, columnDef, TableSchema, type ColumnDef } from './schema.js';
import type { ByteReader, ByteWriter } from '../util/bytes.js';

/**
 * A table schema in binary: u16-length name, u16 column count, per column a u16-length name, a u8
 * type (index in COLUMN_TYPES) and a u8 nullable flag (a decimal column then has a u8 precision and
 * a u8 scale), then the u16 primary-key column index. Used by the WAL's create-table operation and
 * by object footers.
 *
 * The schema of an index's hidden table sets the top bit of the primary-key column index (which is
 * below 1024), and its index definition follows: u32 indexed table id, u16-length name, u8 unique,
 * u8 column count, then each column's u16-length name.
 */
const INDEX_FLAG = 0x8000;

export function schemaSize(s: TableSchema): number {
  let n = 2 + Buffer.byteLength(s.name, 'utf8') + 2 + 2;
  for (const c of s.columns) n += 2 + Buffer.byteLength(c.name, 'utf8') + 2 + (c.type === 'decimal' ? 2 : 0);
  if (s.index !== undefined) {
    n += 4 + 2 + Buffer.byteLength(s.index.name, 'utf8') + 1 + 1;
    for (const c of s.index.columns) n += 2 + Buffer.byteLength(c, 'utf8');
  }
  return n;
}

export function writeSchema(w: ByteWriter, s: TableSchema): void {
  w.str16(s.name);
  w.u16(s.columns.length);
  for (const c of s.columns) {
    w.str16(c.name);
    w.u8(COLUMN_TYPES.indexOf(c.type));
    w.u8(c.nullable ? 1 : 0);
    if (c.type === 'decimal') {
      w.u8(c.precision!);
      w.u8(c.scale!);
    }
  }
  if (s.index === undefined) {
    w.u16(s.pk.index);
    return;
  }
  w.u16(s.pk.index | INDEX_FLAG);
  w.u32(s.index.base);
  w.str16(s.index.name);
  w.u8(s.index.unique ? 1 : 0);
  w.u8(s.index.columns.length);
  for (const c of s.index.columns) w.str16(c);
}

export function readSchema(r: ByteReader): TableSchema {
  const name = r.str16();
  const n = r.u16();
  const cols: ColumnDef[] = [];
  for (let i = 0; i < n; i++) {
    const cname = r.str16();
    const type = COLUMN_TYPES[r.u8()];
    if (type === undefined) r.fail('unknown column type');
    const nullable = r.u8() === 1;
    if (type !== 'decimal') {
      cols.push(columnDef(cname, type, nullable, i));
      continue;
    }
    const precision = r.u8();
    const scale = r.u8();
    if (precision < 1 || precision > 65 || scale > 30 || scale > precision)
      r.fail(`decimal column ${cname} with precision ${precision} and scale ${scale}`);
    cols.push(columnDef(cname, type, nullable, i, precision, scale));
  }
  const pkField = r.u16();
  const pk = pkField & ~INDEX_FLAG;
  if (pk >= n) r.fail('primary key index out of range');
  const s = new TableSchema(name, cols, pk);
  if ((pkField & INDEX_FLAG) !== 0) {
    const base = r.u32();
    const iname = r.str16();
    const unique = r.u8() === 1;
    const count = r.u8();
    const columns: string[] = [];
    for (let i = 0; i < count; i++) columns.push(r.str16());
    if (count === 0) r.fail(`index ${iname} without columns`);
    s.index = { base, name: iname, columns, unique };
  }
  return s;
}
