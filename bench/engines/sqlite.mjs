// better-sqlite3 12: journal_mode=WAL, synchronous=FULL (every commit fsynced).
import Database from 'better-sqlite3';
import * as path from 'node:path';

export const settings = 'better-sqlite3 12, journal_mode=WAL, synchronous=FULL, prepared statements';

export async function create(dir) {
  const db = new Database(path.join(dir, 'bench.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(
    'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value REAL NOT NULL, flag INTEGER NOT NULL)',
  );
  db.exec(
    'CREATE TABLE c (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value REAL NOT NULL, flag INTEGER NOT NULL)',
  );
  const ins = db.prepare('INSERT INTO t (id, name, value, flag) VALUES (?, ?, ?, ?)');
  const insC = db.prepare('INSERT INTO c (id, name, value, flag) VALUES (?, ?, ?, ?)');
  const batch = db.transaction((rows) => {
    for (const r of rows) ins.run(r.id, r.name, r.value, r.flag ? 1 : 0);
  });
  const get = db.prepare('SELECT id, name, value, flag FROM t WHERE id = ?');
  const sum = db.prepare('SELECT sum(value) AS s FROM t');
  return {
    insertBatch: async (rows) => batch(rows),
    insertOne: async (r) => insC.run(r.id, r.name, r.value, r.flag ? 1 : 0),
    get: async (id) => get.get(id),
    sum: async () => sum.get().s,
    poolHighWater: () => null,
    close: async () => db.close(),
  };
}

export const objects = {
  settings,
  supports: { gets: true, sum: true },
  async open(dir) {
    const db = new Database(path.join(dir, 'objects.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(
      'CREATE TABLE IF NOT EXISTS g (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value REAL NOT NULL, flag INTEGER NOT NULL)',
    );
    db.exec('CREATE TABLE IF NOT EXISTS s (id INTEGER PRIMARY KEY, value REAL NOT NULL)');
    const insG = db.prepare('INSERT INTO g (id, name, value, flag) VALUES (?, ?, ?, ?)');
    const insS = db.prepare('INSERT INTO s (id, value) VALUES (?, ?)');
    const loadG = db.transaction((rows) => {
      for (const r of rows) insG.run(r.id, r.name, r.value, r.flag ? 1 : 0);
    });
    const loadS = db.transaction((rows) => {
      for (const r of rows) insS.run(r.id, r.value);
    });
    const get = db.prepare('SELECT id, name, value, flag FROM g WHERE id = ?');
    const sum = db.prepare('SELECT sum(value) AS s FROM s');
    const filtered = db.prepare('SELECT count(*) AS count, sum(value) AS sum FROM s WHERE value >= ?');
    return {
      filtered: async (min) => filtered.get(min),
      loadGets: async (rows) => loadG(rows),
      loadSum: async (rows) => loadS(rows),
      settle: async () => {
        db.pragma('wal_checkpoint(TRUNCATE)');
      },
      get: async (id) => get.get(id),
      sum: async () => sum.get().s,
      close: async () => db.close(),
      poolHighWater: () => null,
    };
  },
};

export const ycsb = {
  settings,
  async open(dir) {
    const db = new Database(path.join(dir, 'ycsb.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE y (id INTEGER PRIMARY KEY, field TEXT NOT NULL, value REAL NOT NULL)');
    const ins = db.prepare('INSERT INTO y (id, field, value) VALUES (?, ?, ?)');
    const load = db.transaction((rows) => {
      for (const r of rows) ins.run(r.id, r.field, r.value);
    });
    const get = db.prepare('SELECT id, field, value FROM y WHERE id = ?');
    const upd = db.prepare('UPDATE y SET value = ? WHERE id = ?');
    const scan = db.prepare('SELECT id, field, value FROM y WHERE id >= ? ORDER BY id LIMIT ?');
    return {
      load: async (rows) => load(rows),
      settle: async () => {
        db.pragma('wal_checkpoint(TRUNCATE)');
      },
      read: async (id) => get.get(id),
      update: async (id, value) => upd.run(value, id),
      insert: async (r) => ins.run(r.id, r.field, r.value),
      scan: async (id, n) => scan.all(id, n),
      poolHighWater: () => null,
      close: async () => db.close(),
    };
  },
};
