import { ByteReader, ByteWriter } from '../util/bytes.js';

/**
 * WAL records of the storage layer (the TXN record is in txn/record.ts; type numbers are shared):
 *
 * - FREEZE (2): table id. The table's active memtable became immutable at this point in the log:
 *   every write logged before it (for this table) is in the frozen memtable, every one after it in
 *   the next.
 * - FLUSH (3): table id, data object id, tombstone object id (0 when none), min and max commit
 *   timestamp. The oldest frozen memtable of the table is now these objects.
 * - MERGE (4): table id, the ids of the input objects (the table's oldest layers, in order), then
 *   the output like FLUSH. Those layers are now one.
 */
export const StorageRecord = { FREEZE: 2, FLUSH: 3, MERGE: 4 } as const;

export interface LayerIds {
  data: number;
  tomb: number;
  minTs: number;
  maxTs: number;
}

export type StorageOp =
  | { kind: 'freeze'; tableId: number }
  | { kind: 'flush'; tableId: number; layer: LayerIds }
  | { kind: 'merge'; tableId: number; inputs: number[]; layer: LayerIds };

export function encodeStorage(op: StorageOp): { type: number; payload: Uint8Array } {
  const size = 1 + 4 + (op.kind === 'freeze' ? 0 : 32 + (op.kind === 'merge' ? 4 + op.inputs.length * 8 : 0));
  const out = new Uint8Array(size);
  const w = new ByteWriter(out);
  w.u8(1);
  w.u32(op.tableId);
  if (op.kind === 'merge') {
    w.u32(op.inputs.length);
    for (const id of op.inputs) w.u64(id);
  }
  if (op.kind !== 'freeze') {
    w.u64(op.layer.data);
    w.u64(op.layer.tomb);
    w.f64(op.layer.minTs);
    w.f64(op.layer.maxTs);
  }
  const type =
    op.kind === 'freeze'
      ? StorageRecord.FREEZE
      : op.kind === 'flush'
        ? StorageRecord.FLUSH
        : StorageRecord.MERGE;
  return { type, payload: out };
}

export function decodeStorage(type: number, payload: Uint8Array, where: string): StorageOp {
  const r: ByteReader = new ByteReader(payload, where);
  const format = r.u8();
  if (format !== 1) r.fail(`unknown storage record format ${format}`);
  const tableId = r.u32();
  let op: StorageOp;
  if (type === StorageRecord.FREEZE) op = { kind: 'freeze', tableId };
  else {
    let inputs: number[] = [];
    if (type === StorageRecord.MERGE) {
      const n = r.u32();
      inputs = Array.from({ length: n }, () => r.u64());
    }
    const layer = { data: r.u64(), tomb: r.u64(), minTs: r.f64(), maxTs: r.f64() };
    op =
      type === StorageRecord.FLUSH
        ? { kind: 'flush', tableId, layer }
        : { kind: 'merge', tableId, inputs, layer };
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
  return op;
}
