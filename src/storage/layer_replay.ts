import { TidemarkError } from '../errors.js';
import type { LayerIds, StorageOp } from '../table/log_records.js';

/** Where replay resumes after a checkpoint (see Checkpointer). */
export interface ReplayFrom {
  /** Every DDL and storage record at or below this LSN is reflected in the checkpoint. */
  storageLsn: number;
  /** Per table in the checkpoint: its writes below this LSN are in its objects. */
  redo: ReadonlyMap<number, number>;
}

/**
 * Each table's object layers (by ids, oldest first) as a checkpoint recorded them and the FLUSH and
 * MERGE records after it change them: the one replay of storage records, used by the open
 * (src/storage/storage.ts), `tidemark check` and `tidemark inspect`. A merge whose inputs are not a
 * run of the table's layers is CORRUPTION.
 */
export class LayerReplay {
  private readonly tables = new Map<number, LayerIds[]>();
  /** Where each layer was named (a checkpoint, a log record): for error messages. */
  private readonly sources = new WeakMap<LayerIds, string>();

  /** A table's layers as a checkpoint recorded them. */
  seed(tableId: number, layers: readonly LayerIds[], source: string): void {
    const copies = layers.map((l) => ({ ...l }));
    for (const l of copies) this.sources.set(l, source);
    this.tables.set(tableId, copies);
  }

  /** Apply a FLUSH or MERGE record (`where` names it). */
  apply(op: Exclude<StorageOp, { kind: 'freeze' }>, where: string): void {
    const layers = this.tables.get(op.tableId) ?? [];
    this.tables.set(op.tableId, layers);
    const out = op.layer.data !== 0 || op.layer.tomb !== 0 ? [op.layer] : [];
    this.sources.set(op.layer, where);
    if (op.kind === 'flush') {
      layers.push(...out);
      return;
    }
    const at = layers.findIndex((l) => l.data === op.inputs[0] && l.tomb === op.inputs[1]);
    const count = op.inputs.length / 2;
    const run = at < 0 ? [] : layers.slice(at, at + count).flatMap((l) => [l.data, l.tomb]);
    if (
      at < 0 ||
      !Number.isInteger(count) ||
      run.length !== op.inputs.length ||
      run.some((id, i) => id !== op.inputs[i])
    ) {
      throw new TidemarkError(
        'CORRUPTION',
        `${where}: a merge of table ${op.tableId} whose inputs are not a run of its layers`,
        { details: { where } },
      );
    }
    layers.splice(at, count, ...out);
  }

  /** The table's layers now, oldest first (empty if it has none). */
  layers(tableId: number): readonly LayerIds[] {
    return this.tables.get(tableId) ?? [];
  }

  /** What named this layer (a checkpoint, a log record). */
  source(ids: LayerIds): string | undefined {
    return this.sources.get(ids);
  }

  /** Object ids every table's layers hold. */
  liveIds(): Set<number> {
    const live = new Set<number>();
    for (const list of this.tables.values())
      for (const l of list) for (const id of [l.data, l.tomb]) if (id !== 0) live.add(id);
    return live;
  }

  clear(): void {
    this.tables.clear();
  }
}
