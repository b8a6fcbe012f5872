// tidemark, from this repository's build (dist/). Durable: wal.sync 'batch' (group commit, every
// commit fdatasynced before it resolves).
import { open } from '../../dist/index.js';

export const settings =
  "wal.sync 'batch' (each commit fdatasynced, shared by group commit); memory limit 2 GiB; leakDetection 'simple'";

export async function create(dir) {
  const db = await open(dir, { memory: { limitBytes: 2 * 1024 ** 3 }, checkpoint: { intervalMs: 0 } });
  await db.createTable('t', {
    columns: { id: 'int64', name: 'string', value: 'float64', flag: 'bool' },
    primaryKey: 'id',
  });
  await db.createTable('c', {
    columns: { id: 'int64', name: 'string', value: 'float64', flag: 'bool' },
    primaryKey: 'id',
  });
  return {
    insertBatch: (rows) => db.insert('t', rows),
    insertOne: (r) => db.insert('c', r),
    get: (id) => db.get('t', id),
    sum: async () => {
      let s = 0;
      for await (const b of db.scanBatches('t', { columns: ['value'], batchRows: 16384 })) {
        const v = b.columns.value;
        for (let i = 0; i < v.length; i++) s += v[i];
      }
      return s;
    },
    poolHighWater: () => db.stats().memory.highWaterBytes,
    close: () => db.close(),
  };
}
