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
