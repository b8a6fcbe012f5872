import type { Key } from '../../src/schema/schema.js';
import type { WaitOptions } from '../../src/mem/types.js';
import type { MemTable, StagedWrite } from '../../src/table/memtable.js';

/**
 * Place rows (values in column order, already checked) and reserve versions for them and for
 * deletes, waiting for memory when the limit is reached: what a commit does in two steps
 * (ensureRoom, then tryStage in the synchronous step that also takes its commit timestamp), looped
 * until the room made is still there when tryStage runs.
 */
export async function stage(
  mt: MemTable,
  puts: readonly (readonly unknown[])[],
  putKeys: readonly Key[],
  delKeys: readonly Key[],
  wait: WaitOptions,
): Promise<StagedWrite> {
  for (;;) {
    await mt.ensureRoom(puts, delKeys.length, wait);
    const s = mt.tryStage(puts, putKeys, delKeys);
    if (s !== undefined) return s;
  }
}
