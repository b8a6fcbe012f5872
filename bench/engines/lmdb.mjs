// lmdb-js 3 with its defaults (overlappingSync: a commit is durable once its flush resolves).
// Values are msgpack-encoded objects; gets are synchronous.
import { open } from 'lmdb';

export const settings =
  'lmdb-js 3.5, defaults (overlappingSync: a write resolves once committed, durable once flushed), msgpack values';

export async function create(dir) {
  const t = open({ path: `${dir}/t`, compression: false });
  const c = open({ path: `${dir}/c`, compression: false });
  return {
    insertBatch: (rows) =>
      t.transaction(() => {
        for (const r of rows) t.put(r.id, r);
      }),
    insertOne: (r) => c.put(r.id, r),
    // Like for like with the other engines: resolve once the commit is durable (flushed to disk).
    insertOneDurable: async (r) => {
      await c.put(r.id, r);
      await c.flushed;
    },
    durableSettings: 'lmdb-js 3.5, defaults, each commit awaited until `flushed` resolves (durable on disk)',
    get: async (id) => t.get(id),
    sum: async () => {
      let s = 0;
      for (const { value } of t.getRange()) s += value.value;
      return s;
    },
    poolHighWater: () => null,
    close: async () => {
      await t.close();
      await c.close();
    },
  };
}

export const objects = {
  settings:
    'lmdb-js 3.5, defaults (overlappingSync, msgpack values, no object cache), loads in 1000-row transactions',
  supports: { gets: true, sum: false },
  async open(dir) {
    const db = open({ path: dir, compression: false });
    return {
      loadGets: (rows) =>
        db.transaction(() => {
          for (const r of rows) db.put(r.id, r);
        }),
      settle: async () => {
        await db.flushed;
      },
      get: async (id) => db.get(id),
      close: () => db.close(),
      poolHighWater: () => null,
    };
  },
};

export const ycsb = {
  settings: objects.settings,
  async open(dir) {
    const db = open({ path: dir, compression: false });
    return {
      load: (rows) =>
        db.transaction(() => {
          for (const r of rows) db.put(r.id, r);
        }),
      settle: async () => {
        await db.flushed;
      },
      read: async (id) => db.get(id),
      update: async (id, value) => {
        const r = db.get(id);
        await db.put(id, { ...r, value });
      },
      insert: (r) => db.put(r.id, r),
      scan: async (id, n) => [...db.getRange({ start: id, limit: n }).map(({ value }) => value)],
      poolHighWater: () => null,
      close: () => db.close(),
    };
  },
};
