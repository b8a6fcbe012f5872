/**
 * The leak soak's workload: the scenarios it repeats, the table it writes, and the cycles of the
 * 'level' and 'sql' scenarios (the cycle runner, harness.ts, runs the others inline).
 */
import type { Database } from '../api/database.js';
import type { TableSpec } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import { TidemarkLevel } from '../level/index.js';
import type { Rng } from '../util/random.js';
import { checkPools, poolSnapshot, quiesce } from './census.js';

/** The operations the soak repeats, one per cycle, in this order. */
export const SCENARIOS = [
  'incremental',
  'global',
  'compaction',
  'gc',
  'flush',
  'merge',
  'scan-abandon',
  'index',
  'checkpoint-fault',
  'recovery',
  'close-busy',
  'level',
  'sql',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const INCREMENTALS_PER_GLOBAL = 3;
/** ckp/ at quiescence: two meta files, two globals, the incrementals of a chain. */
export const CHECKPOINT_FILES_BOUND = 2 + 2 + INCREMENTALS_PER_GLOBAL;
export const KEYS = 2000;
/** The 'level' scenario's TidemarkLevel lives in this subdirectory of the soak's directory. */
export const LEVEL_SUBDIR = 'level';

export const SPEC = {
  columns: { k: 'int64', v: 'float64', s: 'string', f: { type: 'bool', nullable: true } },
  primaryKey: 'k',
  // Every write keeps an index: its entries flush, merge, checkpoint and go with the rows.
  indexes: [{ name: 'by_s', columns: ['s', 'f'] }],
} satisfies TableSpec;

export function row(k: number, seq: number) {
  return { k, v: seq / 8, s: `value-${seq % 977}`, f: seq % 5 === 0 ? null : seq % 2 === 0 };
}

/**
 * One cycle of the 'level' scenario: a TidemarkLevel of its own (in DIR/level/) opened, written
 * (puts, batches, a flush so that reads cross objects), read every way (iterators run to the end,
 * closed midway, in reverse with seeks; keys and values iterators; an explicit snapshot with
 * getMany; a clear), then its pools checked against their baseline at quiescence, then one
 * iterator and one snapshot left open and the database closed over them: close() must close them
 * and prove every pool at zero.
 */
export async function levelCycle(dir: string, rng: Rng, seq: number, context: string): Promise<void> {
  const lv = new TidemarkLevel<string, string>(dir, {
    tidemark: {
      memory: { leakDetection: 'paranoid', limitBytes: 64 << 20 },
      checkpoint: { intervalMs: 0 },
      storage: { memtableRowsMax: 400, rowGroupRows: 64, mergeMinObjects: 3 },
      wal: { segmentBytes: 256 << 10 },
    },
  });
  await lv.open();
  try {
    const db = lv.tidemark;
    await quiesce(db);
    const baseline = poolSnapshot(db);
    const key = () => `k${String(rng.int(KEYS)).padStart(5, '0')}`;
    await lv.batch(
      Array.from({ length: 200 }, () => ({ type: 'put' as const, key: key(), value: `v${seq}` })),
    );
    for (let i = 0; i < 20; i++) await lv.put(key(), `p${seq}`);
    await db.flush();
    await lv.del(key());
    const chained = lv.batch();
    for (let i = 0; i < 20; i++) chained.put(key(), `c${seq}`);
    await chained.write();
    for await (const _ of lv.iterator({ gte: 'k00100', lt: 'k00400' })) void _;
    const half = lv.iterator({ reverse: true });
    await half.nextv(25);
    half.seek('k01000');
    await half.next();
    await half.close();
    await lv.keys({ limit: 30 }).all();
    await lv.values({ reverse: true, lte: 'k01500', limit: 30 }).all();
    const snap = lv.snapshot();
    await lv.put(key(), `s${seq}`);
    await lv.getMany([key(), key(), key()], { snapshot: snap });
    for await (const _ of lv.keys({ snapshot: snap, gt: 'k01900' })) void _;
    await snap.close();
    await lv.clear({ gte: `k0${rng.int(10)}`, lt: `k0${rng.int(10)}5`, limit: 50 });
    await quiesce(db);
    checkPools(db, baseline, `${context}: TidemarkLevel`);
    // Left open on purpose: close() must close them.
    const open = lv.iterator();
    await open.next();
    lv.snapshot();
  } finally {
    // Rejects with LEAK (naming the holders) if anything is still held.
    await lv.close();
  }
}

/**
 * One cycle of the 'sql' scenario: SQL DDL and writes (a table of its own, with a hidden row id
 * and a UNIQUE column), a join with a grouping large enough to reserve query memory, a correlated
 * subquery, a query that fails midway through a scan, a session's transaction left open and ended,
 * and a table dropped every few cycles. The loop's checks then prove the `query` pool back at its
 * baseline and nothing pinned.
 */
export async function sqlTables(db: Database): Promise<void> {
  await db.query('CREATE TABLE IF NOT EXISTS sqlt (id INT PRIMARY KEY, k VARCHAR(20), v DOUBLE)');
  await db.query('CREATE TABLE IF NOT EXISTS sqln (tag VARCHAR(20) UNIQUE, n INT)');
}

export async function sqlCycle(db: Database, rng: Rng, seq: number): Promise<void> {
  const rows = Array.from({ length: 300 }, () => rng.int(KEYS));
  const values = [...new Set(rows)].map((id) => `(${id}, 'k${id % 1500}', ${seq})`).join(', ');
  await db.query(`REPLACE INTO sqlt VALUES ${values}`);
  await db.query('INSERT INTO sqln VALUES (?, ?)', [`t${seq}`, seq]);
  await db.query('UPDATE sqlt SET v = v + 1 WHERE id BETWEEN ? AND ?', [rng.int(KEYS), rng.int(KEYS)]);
  await db.query('DELETE FROM sqlt WHERE id < ?', [rng.int(50)]);
  await db.query(
    'SELECT a.k, count(*), sum(a.v), max(b.v) FROM sqlt a JOIN sqlt b ON a.id = b.id GROUP BY a.k ORDER BY 2 DESC LIMIT 5',
  );
  await db.query('SELECT id, (SELECT count(*) FROM sqln WHERE n <= sqlt.id) FROM sqlt WHERE id < 30');
  // Fails at the row with the greatest id, after the scan has handed out batches.
  await db
    .query("SELECT REPEAT('x', CASE WHEN id = (SELECT max(id) FROM sqlt) THEN 20000000 ELSE 1 END) FROM sqlt")
    .then(
      () => {
        throw new Error('the oversized REPEAT succeeded');
      },
      (e: unknown) => {
        if (!(e instanceof TidemarkError)) throw e;
      },
    );
  const session = db.session();
  await session.query('BEGIN');
  await session.query('INSERT INTO sqln (tag, n) VALUES (?, ?)', [`open${seq}`, 0]);
  await session.query('SELECT count(*) FROM sqln');
  session.end();
  if (seq % 5 === 4) {
    await db.query('DROP TABLE sqln');
    await sqlTables(db);
  }
}
