import { COLUMN_TYPES, TableSchema, type ColumnDef } from './schema.js';
import type { ByteReader, ByteWriter } from '../util/bytes.js';

/**
 * A table schema in binary: u16-length name, u16 column count, per column a u16-length name, a u8
 * type (index in COLUMN_TYPES) and a u8 nullable flag, then the u16 primary-key column index. Used by
 * the WAL's create-table operation and by object footers.
 */
export function schemaSize(s: TableSchema): number {
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
