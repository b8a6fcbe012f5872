// tidemark, from this repository's build (dist/). Durable: wal.sync 'batch' (group commit, every
// commit fdatasynced before it resolves).
import { open } from '../../dist/index.js';

export const settings =
  "wal.sync 'batch' (each commit fdatasynced, shared by group commit); memory limit 2 GiB; leakDetection 'simple'; SUM through scanBatches({ borrow: true })";

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
    sum: () => sumValues(db, 't', 16384),
    poolHighWater: () => db.stats().memory.highWaterBytes,
    close: () => db.close(),
  };
}

export const objects = {
  settings:
    "wal.sync 'batch'; memory limit 2 GiB (block cache 512 MiB); db.flush() and db.compact() after the load, so the data lives in objects; SUM through scanBatches({ borrow: true }) (zero-copy batches)",
  supports: { gets: true, sum: true },
  async open(dir) {
    const db = await open(dir, { memory: { limitBytes: 2 * 1024 ** 3 }, checkpoint: { intervalMs: 0 } });
    if (!db.tables().includes('g')) {
      await db.createTable('g', {
        columns: { id: 'int64', name: 'string', value: 'float64', flag: 'bool' },
        primaryKey: 'id',
      });
      await db.createTable('s', { columns: { id: 'int64', value: 'float64' }, primaryKey: 'id' });
    }
    return {
      loadGets: (rows) => db.insert('g', rows),
      loadSum: (rows) => db.insert('s', rows),
      settle: async () => {
        await db.flush();
        await db.compact();
      },
      get: (id) => db.get('g', id),
      sum: () => sumValues(db, 's', 65536),
      filtered: async (min) => {
        let count = 0;
        let sum = 0;
        for await (const b of db.scanBatches('s', { columns: ['value'], batchRows: 65536, borrow: true })) {
          const v = b.columns.value;
          for (let i = 0; i < v.length; i++)
            if (v[i] >= min) {
              count++;
              sum += v[i];
            }
        }
        return { count, sum };
      },
      storage: () => db.stats().storage,
      poolHighWater: () => db.stats().memory.highWaterBytes,
      close: () => db.close(),
    };
  },
};

/** SUM(value) through scanBatches. */
async function sumValues(db, table, batchRows) {
  let s = 0;
  // borrow: zero-copy views of cached object chunks, valid until the next batch (read at once here).
  for await (const b of db.scanBatches(table, { columns: ['value'], batchRows, borrow: true })) {
    const v = b.columns.value;
    for (let i = 0; i < v.length; i++) s += v[i];
  }
  return s;
}

export const ycsb = {
  settings:
    "wal.sync 'batch' (each update fdatasynced, shared by group commit); memory limit 2 GiB; checkpoints off",
  async open(dir) {
    const db = await open(dir, { memory: { limitBytes: 2 * 1024 ** 3 }, checkpoint: { intervalMs: 0 } });
    await db.createTable('y', {
      columns: { id: 'int64', field: 'string', value: 'float64' },
      primaryKey: 'id',
    });
    return {
      load: (rows) => db.insert('y', rows),
      settle: async () => {
        await db.flush();
        await db.compact();
      },
      read: (id) => db.get('y', id),
      update: (id, value) => db.update('y', id, { value }),
      insert: (r) => db.insert('y', r),
      scan: async (id, n) => {
        const out = [];
        for await (const r of db.scan('y', { gte: id, limit: n })) out.push(r);
        return out;
      },
      poolHighWater: () => db.stats().memory.highWaterBytes,
      close: () => db.close(),
    };
  },
};
