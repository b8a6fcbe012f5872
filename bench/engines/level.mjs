// classic-level 3 (LevelDB): JSON values, keys as 10-digit zero-padded decimals (so that they sort
// as numbers). `sync: true` on every write of the durable cases (each one fsynced).
import { ClassicLevel } from 'classic-level';

export const settings = 'classic-level 3 (LevelDB), sync: true on every write, JSON values, zero-padded keys';

const key = (id) => String(id).padStart(10, '0');
const SYNC = { sync: true };

async function openLevel(dir) {
  const db = new ClassicLevel(dir, { valueEncoding: 'json' });
  await db.open();
  return db;
}

export async function create(dir) {
  const t = await openLevel(`${dir}/t`);
  const c = await openLevel(`${dir}/c`);
  return {
    insertBatch: (rows) =>
      t.batch(
        rows.map((r) => ({ type: 'put', key: key(r.id), value: r })),
        SYNC,
      ),
    insertOne: (r) => c.put(key(r.id), r, SYNC),
    get: (id) => t.get(key(id)),
    sum: async () => {
      let s = 0;
      for await (const v of t.values()) s += v.value;
      return s;
    },
    poolHighWater: () => null,
    close: async () => {
      await t.close();
      await c.close();
    },
  };
}

export const ycsb = {
  settings,
  async open(dir) {
    const db = await openLevel(dir);
    return {
      load: (rows) =>
        db.batch(
          rows.map((r) => ({ type: 'put', key: key(r.id), value: r })),
          SYNC,
        ),
      settle: async () => {
        await db.compactRange(key(0), key(9_999_999_999));
      },
      read: (id) => db.get(key(id)),
      update: async (id, value) => {
        const r = await db.get(key(id));
        await db.put(key(id), { ...r, value }, SYNC);
      },
      insert: (r) => db.put(key(r.id), r, SYNC),
      scan: (id, n) => db.values({ gte: key(id), limit: n }).all(),
      poolHighWater: () => null,
      close: () => db.close(),
    };
  },
};
