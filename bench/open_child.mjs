// Open time after SIGKILL. `fill ENGINE DIR MIB`: write 1000-row transactions until MIB of log has
// accumulated since the last checkpoint, print "ready", and wait to be killed. `open ENGINE DIR`:
// open the directory the killed process left, count the rows, print one JSON line.
import { statSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { now, row } from './lib/data.mjs';

const [mode, engine, dir, mib] = process.argv.slice(2);

function dirBytes(d, re) {
  let n = 0;
  for (const f of readdirSync(d)) if (re.test(f)) n += statSync(path.join(d, f)).size;
  return n;
}

const engines = {
  tidemark: {
    settings:
      "wal.sync 'batch'; checkpoints off (intervalMs 0, walBytesMax 1 GiB): everything since the table's creation is replayed from the WAL",
    async fill(target) {
      const { open } = await import('../dist/index.js');
      const db = await open(dir, { checkpoint: { intervalMs: 0, walBytesMax: 1024 ** 3 } });
      await db.createTable('t', {
        columns: { id: 'int64', name: 'string', value: 'float64', flag: 'bool' },
        primaryKey: 'id',
      });
      let n = 0;
      while (db.stats().wal.bytes < target) {
        await db.insert(
          't',
          Array.from({ length: 1000 }, (_, i) => row(n + i)),
        );
        n += 1000;
      }
      return { rows: n, walBytes: db.stats().wal.bytes };
    },
    async open() {
      const { open } = await import('../dist/index.js');
      const t0 = now();
      const db = await open(dir, { checkpoint: { intervalMs: 0, walBytesMax: 1024 ** 3 } });
      const openMs = now() - t0;
      let rows = 0;
      for await (const b of db.scanBatches('t', { columns: ['id'] })) rows += b.length;
      const recovery = db.stats().recovery;
      await db.close();
      return { openMs, rows, replayedRecords: recovery.replayedRecords };
    },
  },
  sqlite: {
    settings:
      'better-sqlite3 12, journal_mode=WAL, synchronous=FULL, wal_autocheckpoint=0 (the WAL file holds everything since creation); open time includes the first query, which runs SQLite recovery',
    async fill(target) {
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(path.join(dir, 'open.sqlite'));
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('wal_autocheckpoint = 0');
      db.exec(
        'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value REAL NOT NULL, flag INTEGER NOT NULL)',
      );
      const ins = db.prepare('INSERT INTO t (id, name, value, flag) VALUES (?, ?, ?, ?)');
      const batch = db.transaction((rows) => {
        for (const r of rows) ins.run(r.id, r.name, r.value, r.flag ? 1 : 0);
      });
      let n = 0;
      while (dirBytes(dir, /-wal$/) < target) {
        batch(Array.from({ length: 1000 }, (_, i) => row(n + i)));
        n += 1000;
      }
      return { rows: n, walBytes: dirBytes(dir, /-wal$/) };
    },
    async open() {
      const { default: Database } = await import('better-sqlite3');
      const t0 = now();
      const db = new Database(path.join(dir, 'open.sqlite'));
      db.pragma('journal_mode = WAL');
      const rows = db.prepare('SELECT count(*) AS n FROM t').get().n;
      const openMs = now() - t0;
      db.close();
      return { openMs, rows };
    },
  },
};

const e = engines[engine];
if (mode === 'fill') {
  const r = await e.fill(Number(mib) * 1024 * 1024);
  process.stdout.write(JSON.stringify({ ready: true, ...r }) + '\n');
  setInterval(() => undefined, 1000); // until killed
} else {
  const r = await e.open();
  process.stdout.write(JSON.stringify({ settings: e.settings, ...r }) + '\n');
}
