import { describe, expect, it } from 'vitest';
import { memDb } from '../helpers/db.js';

/**
 * Zone maps: a scan's conditions on numeric columns skip the row groups of objects whose smallest
 * and greatest values rule them out. A skipped group's rows must still hide older versions of their
 * keys (they act as deletes for that scan): the second test fails if they are simply dropped.
 */
describe('SQL scans and zone maps', () => {
  it('skip the row groups whose zone maps rule the conditions out, with the same results', async () => {
    const { db } = await memDb({ storage: { rowGroupRows: 64, mergeMinObjects: 0 } });
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, v INT, at DATETIME, s VARCHAR(9))');
      for (let k = 0; k < 2000; k += 500) {
        const values = Array.from({ length: 500 }, (_, j) => {
          const i = k + j;
          const at = new Date(Date.UTC(2024, 0, 1) + i * 3_600_000)
            .toISOString()
            .slice(0, 19)
            .replace('T', ' ');
          return `(${i}, ${i * 10}, '${at}', 's${i % 7}')`;
        });
        await db.query(`INSERT INTO t VALUES ${values.join(', ')}`);
      }
      await db.flush();
      const before = db.stats().sql.zoneSkippedGroups;
      expect(await rows2(db, 'SELECT count(*), min(v), max(v) FROM t WHERE v >= 19000')).toEqual([
        [100, 19000, 19990],
      ]);
      const afterV = db.stats().sql.zoneSkippedGroups;
      // 2000 rows in groups of 64: all but the last two groups hold only smaller values.
      expect(afterV - before).toBeGreaterThanOrEqual(29);
      // Times compare as times; BETWEEN gives two conditions.
      expect(
        await rows2(
          db,
          "SELECT count(*) FROM t WHERE at BETWEEN '2024-01-02 00:00:00' AND '2024-01-02 23:59:59'",
        ),
      ).toEqual([[24]]);
      expect(db.stats().sql.zoneSkippedGroups - afterV).toBeGreaterThanOrEqual(29);
      // Conditions the zone maps cannot judge (strings, <>) skip nothing and still filter.
      const mark = db.stats().sql.zoneSkippedGroups;
      expect(await rows2(db, "SELECT count(*) FROM t WHERE s = 's3' AND v <> 30")).toEqual([[285]]);
      expect(db.stats().sql.zoneSkippedGroups).toBe(mark);
    } finally {
      await db.close();
    }
  });

  it("a skipped group's rows still hide the older versions of their keys", async () => {
    const { db } = await memDb({ storage: { rowGroupRows: 64, mergeMinObjects: 0 } });
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
      await db.query(
        `INSERT INTO t VALUES ${Array.from({ length: 640 }, (_, i) => `(${i}, ${i})`).join(', ')}`,
      );
      await db.flush();
      // Newer versions of keys 0-63 in a newer object, all far out of the range asked for.
      await db.query('UPDATE t SET v = v + 100000 WHERE id < 64');
      await db.flush();
      expect(db.stats().files.objects).toBeGreaterThanOrEqual(2);
      const before = db.stats().sql.zoneSkippedGroups;
      // Keys 0-63 had v < 10 in the older object: their newer versions (v >= 100000) must win.
      expect(await rows2(db, 'SELECT count(*) FROM t WHERE v < 10')).toEqual([[0]]);
      expect(await rows2(db, 'SELECT count(*) FROM t WHERE v < 100')).toEqual([[36]]);
      expect(db.stats().sql.zoneSkippedGroups - before).toBeGreaterThan(0);
      // The same through a transaction with writes of its own on top.
      await db.transaction(async (tx) => {
        await tx.query('UPDATE t SET v = 5 WHERE id = 70');
        expect((await tx.query('SELECT id FROM t WHERE v < 10')).rows).toEqual([[70]]);
      });
    } finally {
      await db.close();
    }
  });
});

async function rows2(
  db: { query(sql: string): Promise<{ rows: unknown[][] }> },
  sql: string,
): Promise<unknown[][]> {
  return (await db.query(sql)).rows;
}
