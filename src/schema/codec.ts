import { COLUMN_TYPES, columnDef, TableSchema, type ColumnDef } from './schema.js';
import type { ByteReader, ByteWriter } from '../util/bytes.js';

/**
 * A table schema in binary: u16-length name, u16 column count, per column a u16-length name, a u8
 * type (index in COLUMN_TYPES) and a u8 nullable flag (a decimal column then has a u8 precision and
 * a u8 scale), then the u16 primary-key column index. Used by the WAL's create-table operation and
 * by object footers.
 */
export function schemaSize(s: TableSchema): number {
  let n = 2 + Buffer.byteLength(s.name, 'utf8') + 2 + 2;
  for (const c of s.columns) n += 2 + Buffer.byteLength(c.name, 'utf8') + 2 + (c.type === 'decimal' ? 2 : 0);
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
  const pk = r.u16();
  if (pk >= n) r.fail('primary key index out of range');
  return new TableSchema(name, cols, pk);
}
