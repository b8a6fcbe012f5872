import { describe, expect, it } from 'vitest';
import { Decimal, open, TidemarkError } from '../../src/index.js';

const dec = (t: string): Decimal => Decimal.parse(t)!;
import { memDb } from '../helpers/db.js';
import { codeOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

const rows = async (
  db: { query(sql: string, p?: unknown[]): Promise<{ rows: unknown[][] }> },
  sql: string,
  p: unknown[] = [],
) => (await db.query(sql, p)).rows;

describe('SQL: DDL and types', () => {
  it('maps MySQL type names onto tidemark types and gives values back as SQL has them', async () => {
    const { db } = await memDb();
    try {
      await db.query(
        `CREATE TABLE t (id BIGINT PRIMARY KEY, i INT NOT NULL, d DOUBLE, m DECIMAL(10,2), s VARCHAR(5),
           x TEXT, ok BOOLEAN, b BLOB, at DATETIME)`,
      );
      expect(db.describeTable('t')).toEqual({
        columns: {
          id: 'int64',
          i: 'int32',
          d: { type: 'float64', nullable: true },
          m: { type: 'decimal', nullable: true, precision: 10, scale: 2 },
          s: { type: 'string', nullable: true },
          x: { type: 'string', nullable: true },
          ok: { type: 'bool', nullable: true },
          b: { type: 'bytes', nullable: true },
          at: { type: 'timestamp', nullable: true },
        },
        primaryKey: 'id',
        indexes: [],
      });
      const r = await db.query('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
        1,
        '42',
        2.5,
        3.14159,
        'abc',
        '',
        true,
        new Uint8Array([1, 2]),
        '2024-02-29 12:34:56',
      ]);
      expect(r.affectedRows).toBe(1);
      const got = await db.query('SELECT * FROM t');
      expect(got.columns).toEqual(['id', 'i', 'd', 'm', 's', 'x', 'ok', 'b', 'at']);
      expect(got.rows).toEqual([
        [
          1,
          42,
          2.5,
          dec('3.14'),
          'abc',
          '',
          1,
          new Uint8Array([1, 2]),
          new Date(Date.UTC(2024, 1, 29, 12, 34, 56)),
        ],
      ]);
      // Through the API the same row reads in tidemark's own types.
      expect((await db.get('t', 1))!.ok).toBe(true);
    } finally {
      await db.close();
    }
  });

  it('refuses what strict MySQL refuses, with SCHEMA, and keeps the table as it was', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(3) NOT NULL, n INT)');
      await db.query("INSERT INTO t VALUES (1, 'a', 1)");
      for (const bad of [
        "INSERT INTO t VALUES (2, 'long', 1)",
        'INSERT INTO t VALUES (2, NULL, 1)',
        'INSERT INTO t (id) VALUES (2)',
        "INSERT INTO t VALUES (2, 'b', 'many')",
        "INSERT INTO t VALUES (2, 'b', 99999999999)",
        'INSERT INTO t (id, nope) VALUES (2, 1)',
        "UPDATE t SET s = 'toolong' WHERE id = 1",
      ]) {
        expect(await codeOf(db.query(bad)), bad).toBe('SCHEMA');
      }
      expect(await codeOf(db.query("INSERT INTO t VALUES (1, 'b', 2)"))).toBe('DUPLICATE_KEY');
      expect(await codeOf(db.query('CREATE TABLE t (a INT)'))).toBe('INVALID_ARGUMENT');
      expect(await codeOf(db.query('CREATE TABLE u (a GEOMETRY)'))).toBe('SCHEMA');
      expect(await codeOf(db.query('SELECT * FROM nowhere'))).toBe('NOT_FOUND');
      expect(await rows(db, 'SELECT * FROM t')).toEqual([[1, 'a', 1]]);
    } finally {
      await db.close();
    }
  });

  it('applies DEFAULT and AUTO_INCREMENT, also after a reopen', async () => {
    const { dir, cleanup } = tempDir('tidemark-sql-');
    try {
      let db = await open(dir);
      await db.query(
        "CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, s VARCHAR(9) DEFAULT 'none', n DOUBLE DEFAULT 1.5)",
      );
      await db.query("INSERT INTO t (s) VALUES ('a'), ('b')");
      await db.query('INSERT INTO t (n) VALUES (7)');
      expect(await rows(db, 'SELECT * FROM t ORDER BY id')).toEqual([
        [1, 'a', 1.5],
        [2, 'b', 1.5],
        [3, 'none', 7],
      ]);
      await db.close();
      db = await open(dir);
      await db.query("INSERT INTO t (s) VALUES ('c')");
      expect(await rows(db, 'SELECT id FROM t WHERE s = ?', ['c'])).toEqual([[4]]);
      await db.close();
    } finally {
      cleanup();
    }
  });

  it('gives a table without a primary key a hidden row id that survives a restart', async () => {
    const { dir, cleanup } = tempDir('tidemark-sql-');
    try {
      let db = await open(dir);
      await db.query('CREATE TABLE t (a INT, b TEXT)');
      await db.query("INSERT INTO t VALUES (1, 'x'), (1, 'x'), (2, NULL)");
      expect((await db.query('SELECT * FROM t')).columns).toEqual(['a', 'b']);
      await db.close();
      db = await open(dir);
      // New rows after the restart do not collide with the old ones' hidden ids.
      await db.query("INSERT INTO t VALUES (1, 'x')");
      expect(await rows(db, 'SELECT a, b, count(*) FROM t GROUP BY a, b ORDER BY a')).toEqual([
        [1, 'x', 3],
        [2, null, 1],
      ]);
      expect((await db.query('DELETE FROM t WHERE a = 1')).affectedRows).toBe(3);
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[1]]);
      await db.close();
    } finally {
      cleanup();
    }
  });

  it('keys a table on a primary key of several columns, and moves rows whose key changes', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (a INT, b VARCHAR(9), v INT, PRIMARY KEY (a, b))');
      await db.query("INSERT INTO t VALUES (1, 'x', 1), (1, 'y', 2), (2, 'x', 3)");
      expect(await codeOf(db.query("INSERT INTO t VALUES (1, 'y', 9)"))).toBe('DUPLICATE_KEY');
      expect((await db.query("UPDATE t SET b = 'z' WHERE a = 1 AND b = 'y'")).affectedRows).toBe(1);
      expect(await codeOf(db.query("UPDATE t SET b = 'x' WHERE a = 1 AND b = 'z'"))).toBe('DUPLICATE_KEY');
      await db.query("REPLACE INTO t VALUES (2, 'x', 30)");
      expect(await rows(db, 'SELECT * FROM t ORDER BY a, b')).toEqual([
        [1, 'x', 1],
        [1, 'z', 2],
        [2, 'x', 30],
      ]);
    } finally {
      await db.close();
    }
  });

  it('enforces UNIQUE columns on insert and update; NULLs do not collide', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(40) UNIQUE)');
      await db.query("INSERT INTO t VALUES (1, 'a@x'), (2, NULL), (3, NULL)");
      expect(await codeOf(db.query("INSERT INTO t VALUES (4, 'a@x')"))).toBe('DUPLICATE_KEY');
      expect(await codeOf(db.query("INSERT INTO t VALUES (4, 'b@x'), (5, 'b@x')"))).toBe('DUPLICATE_KEY');
      expect(await codeOf(db.query("UPDATE t SET email = 'a@x' WHERE id = 2"))).toBe('DUPLICATE_KEY');
      await db.query("UPDATE t SET email = 'a@x' WHERE id = 1");
      await db.query('CREATE TABLE u (n INT)');
      await db.query('INSERT INTO u VALUES (1), (1)');
      expect(await codeOf(db.query('CREATE UNIQUE INDEX un ON u (n)'))).toBe('DUPLICATE_KEY');
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[3]]);
    } finally {
      await db.close();
    }
  });

  it('keeps views and indexes across a restart; drops them, and refuses unknown ones', async () => {
    const { dir, cleanup } = tempDir('tidemark-sql-');
    try {
      let db = await open(dir);
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
      await db.query('INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)');
      await db.query('CREATE VIEW big AS SELECT id, v * 2 AS w FROM t WHERE v > 10');
      await db.query('CREATE INDEX tv ON t (v)');
      await db.close();
      db = await open(dir);
      expect(await rows(db, 'SELECT * FROM big ORDER BY id')).toEqual([
        [2, 40],
        [3, 60],
      ]);
      expect(db.tables()).toContain('t');
      expect(await codeOf(db.query('INSERT INTO big VALUES (1, 2)'))).toBe('INVALID_ARGUMENT');
      expect(await codeOf(db.query('CREATE INDEX tv ON t (v)'))).toBe('INVALID_ARGUMENT');
      await db.query('DROP INDEX tv ON t');
      expect(await codeOf(db.query('DROP INDEX tv ON t'))).toBe('NOT_FOUND');
      await db.query('DROP VIEW big');
      expect(await codeOf(db.query('SELECT * FROM big'))).toBe('NOT_FOUND');
      await db.query('DROP VIEW IF EXISTS big');
      await db.query('DROP TABLE t');
      await db.query('DROP TABLE IF EXISTS t');
      expect(await codeOf(db.query('DROP TABLE t'))).toBe('NOT_FOUND');
      await db.close();
    } finally {
      cleanup();
    }
  });

  it('reads tables made through the API', async () => {
    const { db } = await memDb();
    try {
      await db.createTable('acc', {
        columns: { id: 'int64', owner: 'string', active: { type: 'bool', nullable: true } },
        primaryKey: 'id',
      });
      await db.insert('acc', [
        { id: 1, owner: 'ann', active: true },
        { id: 2, owner: 'bo', active: null },
      ]);
      expect(await rows(db, 'SELECT owner FROM acc WHERE active')).toEqual([['ann']]);
      await db.query("INSERT INTO acc VALUES (3, 'cy', FALSE)");
      expect(await db.get('acc', 3)).toEqual({ id: 3, owner: 'cy', active: false });
    } finally {
      await db.close();
    }
  });
});

describe('SQL: queries', () => {
  it('binds ? parameters, and refuses a wrong count or type', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, s TEXT)');
      await db.query('INSERT INTO t VALUES (?, ?), (?, ?)', [1, "it's", 2n, null]);
      expect(await rows(db, 'SELECT s FROM t WHERE id = ? OR s = ?', [2, "it's"])).toEqual([
        ["it's"],
        [null],
      ]);
      // '?' inside a string is text, not a placeholder.
      expect(await rows(db, "SELECT '?', ?", [5])).toEqual([['?', 5]]);
      expect(await codeOf(db.query('SELECT ?', []))).toBe('INVALID_ARGUMENT');
      expect(await codeOf(db.query('SELECT ?', [{}]))).toBe('INVALID_ARGUMENT');
      expect(await codeOf(db.query('SELECT 1', 'x' as never))).toBe('INVALID_ARGUMENT');
    } finally {
      await db.close();
    }
  });

  it('reports syntax errors with their position, and the database stays usable', async () => {
    const { db } = await memDb();
    try {
      const e = await db.query('SELECT a,\n  b FROM t WHERE').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TidemarkError);
      expect((e as TidemarkError).code).toBe('SYNTAX');
      expect((e as TidemarkError).details).toMatchObject({ line: 2, column: 17 });
      expect((e as TidemarkError).message).toMatch(/line 2, column 17: unexpected end of input/);
      // Positions are in the caller's text, with placeholders the same as without: at the FROM
      // where an expression should be.
      const e2 = await db.query('SELECT ?, ?, FROM x', [1, 2]).catch((x: unknown) => x);
      const e3 = await db.query('SELECT 1, 2, FROM x').catch((x: unknown) => x);
      expect((e2 as TidemarkError).details).toEqual((e3 as TidemarkError).details);
      expect((e2 as TidemarkError).details).toMatchObject({ line: 1, column: 14 });
      expect(await codeOf(db.query(''))).toBe('SYNTAX');
      expect(await codeOf(db.query(42 as never))).toBe('INVALID_ARGUMENT');
      expect(await rows(db, 'SELECT 1 + 1')).toEqual([[2]]);
    } finally {
      await db.close();
    }
  });

  it('follows MySQL semantics for arithmetic, NULL logic, comparisons and functions', async () => {
    const { db } = await memDb();
    try {
      expect(
        await rows(
          db,
          `SELECT 7 / 2, 7 DIV 2, -7 DIV 2, 7 % 3, 1 / 0, NULL AND 0, NULL OR 1, NULL = NULL, 10 > '9',
             CAST('12abc' AS SIGNED), CAST(2.5 AS SIGNED), ROUND(-2.5), COALESCE(NULL, NULL, 3), NULLIF(1, 1),
             IFNULL(NULL, 'y'), CONCAT('a', 1, NULL), CONCAT_WS('-', 'a', NULL, 'b'), UPPER('ab'), SUBSTRING('hello', -3, 2),
             CASE WHEN 1 > 2 THEN 'x' WHEN 2 > 1 THEN 'y' END, 3 BETWEEN 1 AND 5, 'abc' LIKE 'a_c', 'a%' LIKE 'a\\\\%',
             2 IN (1, NULL), 1 IN (1, NULL), ABS(-3), CHAR_LENGTH('héllo'), LENGTH('héllo')`,
        ),
      ).toEqual([
        [
          // 7 / 2 is a DECIMAL, with div_precision_increment's 4 digits; ROUND(-2.5) one too.
          dec('3.5000'),
          3,
          -3,
          1,
          null,
          0,
          1,
          null,
          1,
          12,
          3,
          dec('-3'),
          3,
          null,
          'y',
          null,
          'a-b',
          'AB',
          'll',
          'y',
          1,
          1,
          1,
          null,
          1,
          3,
          5,
          6,
        ],
      ]);
    } finally {
      await db.close();
    }
  });

  it('joins, groups, sorts, unions and nests subqueries', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE u (id INT PRIMARY KEY, name TEXT)');
      await db.query('CREATE TABLE o (id INT PRIMARY KEY, uid INT, qty INT)');
      await db.query("INSERT INTO u VALUES (1, 'ann'), (2, 'bo'), (3, 'cy')");
      await db.query('INSERT INTO o VALUES (10, 1, 2), (11, 1, 3), (12, 3, 5), (13, 9, 1)');
      expect(
        await rows(
          db,
          'SELECT u.name, sum(o.qty) AS total, count(*) n FROM u JOIN o ON o.uid = u.id GROUP BY u.name HAVING total > 1 ORDER BY total DESC, 1',
        ),
      ).toEqual([
        ['ann', 5, 2],
        ['cy', 5, 1],
      ]);
      expect(
        await rows(db, 'SELECT u.name, o.qty FROM u LEFT JOIN o ON o.uid = u.id AND o.qty > 2 ORDER BY 1, 2'),
      ).toEqual([
        ['ann', 3],
        ['bo', null],
        ['cy', 5],
      ]);
      expect(await rows(db, 'SELECT count(*) FROM u CROSS JOIN o')).toEqual([[12]]);
      expect(
        await rows(db, 'SELECT name FROM u WHERE id IN (SELECT uid FROM o WHERE qty >= 3) ORDER BY name'),
      ).toEqual([['ann'], ['cy']]);
      expect(
        await rows(db, 'SELECT name FROM u WHERE NOT EXISTS (SELECT 1 FROM o WHERE o.uid = u.id)'),
      ).toEqual([['bo']]);
      expect(
        await rows(db, 'SELECT name, (SELECT max(qty) FROM o WHERE uid = u.id) FROM u ORDER BY id'),
      ).toEqual([
        ['ann', 3],
        ['bo', null],
        ['cy', 5],
      ]);
      expect(await rows(db, 'SELECT uid FROM o UNION SELECT id FROM u ORDER BY 1 DESC LIMIT 2')).toEqual([
        [9],
        [3],
      ]);
      expect(await rows(db, 'SELECT uid FROM o UNION ALL SELECT id FROM u')).toHaveLength(7);
      expect(
        await rows(db, 'SELECT count(DISTINCT uid), sum(DISTINCT qty), avg(qty), group_concat(qty) FROM o'),
      ).toEqual([[3, 11, dec('2.7500'), '2,3,5,1']]);
      expect(await rows(db, 'SELECT x.n FROM (SELECT count(*) AS n FROM o) AS x')).toEqual([[4]]);
      expect(await rows(db, 'SELECT DISTINCT uid FROM o ORDER BY uid LIMIT 2 OFFSET 1')).toEqual([[3], [9]]);
      expect(await codeOf(db.query('SELECT (SELECT id FROM u) FROM o'))).toBe('INVALID_ARGUMENT');
      expect(await codeOf(db.query('SELECT id FROM u, o'))).toBe('SCHEMA');
    } finally {
      await db.close();
    }
  });

  it('turns key conditions into point reads and ranges, and equalities into hash joins (EXPLAIN)', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
      await db.query('CREATE TABLE s (id INT PRIMARY KEY, tid INT)');
      const plan = async (sql: string) =>
        (await rows(db, `EXPLAIN ${sql}`, [])).map((r) => String(r[0])).join('\n');
      expect(await plan('SELECT v FROM t WHERE id = 5')).toMatch(/point read t/);
      expect(await plan('SELECT v FROM t WHERE id >= 5 AND id < 9 AND v > 1')).toMatch(
        /key range scan t[\s\S]*key id >= 5[\s\S]*key id < 9/,
      );
      expect(await plan('SELECT v FROM t WHERE id BETWEEN 1 AND 3')).toMatch(/key range scan/);
      expect(await plan('SELECT v FROM t WHERE v = 5')).toMatch(/full scan t/);
      // Either table may be the one held in memory: the join order is the planner's.
      expect(await plan('SELECT * FROM t JOIN s ON s.tid = t.id')).toMatch(
        /hash join on (t\.id = s\.tid|s\.tid = t\.id)/,
      );
      // A correlated key condition is a point read per outer row.
      expect(await plan('SELECT (SELECT v FROM t WHERE t.id = s.tid) FROM s')).toMatch(
        /project \(subquery\)/,
      );
      await db.query('INSERT INTO t VALUES (1, 10), (2, 20), (3, 30), (4, 40)');
      // Ranges give the same rows as the conditions alone would, at the edges too.
      expect(await rows(db, 'SELECT id FROM t WHERE id > 1.5 AND id <= 3.5')).toEqual([[2], [3]]);
      expect(await rows(db, 'SELECT id FROM t WHERE id = 2.5')).toEqual([]);
      expect(await rows(db, 'SELECT id FROM t WHERE id = NULL')).toEqual([]);
      expect(await rows(db, "SELECT id FROM t WHERE id = '3'")).toEqual([[3]]);
      expect(await rows(db, 'SELECT id FROM t WHERE 2 < id')).toEqual([[3], [4]]);
      // BETWEEN alone on the key: integer bounds decide by the range (no row checked), the others
      // through the condition, with own writes of a transaction merged in either way.
      expect(await rows(db, 'SELECT id, v FROM t WHERE id BETWEEN 2 AND 3')).toEqual([
        [2, 20],
        [3, 30],
      ]);
      expect(await rows(db, 'SELECT id FROM t WHERE id BETWEEN ? AND ?', [0, 9])).toEqual([
        [1],
        [2],
        [3],
        [4],
      ]);
      expect(await rows(db, 'SELECT id FROM t WHERE id BETWEEN 3 AND 2')).toEqual([]);
      expect(await rows(db, 'SELECT id FROM t WHERE id BETWEEN 1.5 AND 3.5')).toEqual([[2], [3]]);
      expect(await rows(db, "SELECT id FROM t WHERE id BETWEEN '2' AND '3'")).toEqual([[2], [3]]);
      expect(await rows(db, "SELECT id FROM t WHERE id BETWEEN 2 AND '3'")).toEqual([[2], [3]]);
      expect(await rows(db, 'SELECT id FROM t WHERE id BETWEEN ? AND ?', [null, 3])).toEqual([]);
      expect(await rows(db, 'SELECT SUM(v) FROM t WHERE id BETWEEN 2 AND 4')).toEqual([[90]]);
      // Bounds past INT's range select what is in range (they used to fail the scan).
      expect(await rows(db, 'SELECT id FROM t WHERE id BETWEEN -5000000000 AND 5000000000')).toHaveLength(4);
      expect(await rows(db, 'SELECT id FROM t WHERE id > -5000000000 AND id < 3')).toEqual([[1], [2]]);
      expect(await rows(db, 'SELECT id FROM t WHERE id >= 5000000000')).toEqual([]);
      expect(await rows(db, 'SELECT id FROM t WHERE id < -2147483648')).toEqual([]);
      const s = db.session();
      await s.query('BEGIN');
      await s.query('INSERT INTO t VALUES (5, 50)');
      await s.query('DELETE FROM t WHERE id = 2');
      expect((await s.query('SELECT id FROM t WHERE id BETWEEN 2 AND 5')).rows).toEqual([[3], [4], [5]]);
      // DELETE reads only keys, except with ORDER BY (a position there counts whole rows).
      expect((await s.query('DELETE FROM t ORDER BY v DESC LIMIT 1')).affectedRows).toBe(1);
      expect((await s.query('DELETE FROM t WHERE v < 35 AND id > 1')).affectedRows).toBe(1);
      expect((await s.query('SELECT id FROM t ORDER BY id')).rows).toEqual([[1], [4]]);
      await s.query('ROLLBACK');
      s.end();
    } finally {
      await db.close();
    }
  });
});

describe('SQL: transactions', () => {
  it('BEGIN/COMMIT/ROLLBACK through db.query, and sessions of their own', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
      await db.query('BEGIN');
      await db.query('INSERT INTO t VALUES (1, 1)');
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[1]]);
      // Another session does not see the open transaction's write.
      const other = db.session();
      expect(await rows(other, 'SELECT count(*) FROM t')).toEqual([[0]]);
      await db.query('ROLLBACK');
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[0]]);
      await db.query('START TRANSACTION');
      await db.query('INSERT INTO t VALUES (2, 2)');
      await db.query('COMMIT');
      expect(await rows(other, 'SELECT id FROM t')).toEqual([[2]]);
      // A write-write conflict between two sessions' transactions: the second committer gets CONFLICT.
      const a = db.session();
      const b = db.session();
      await a.query('BEGIN');
      await b.query('BEGIN');
      await a.query('UPDATE t SET v = 10 WHERE id = 2');
      await b.query('UPDATE t SET v = 20 WHERE id = 2');
      await a.query('COMMIT');
      expect(await codeOf(b.query('COMMIT'))).toBe('CONFLICT');
      expect(await rows(db, 'SELECT v FROM t')).toEqual([[10]]);
      // DDL commits an open transaction first, as MySQL does.
      await a.query('BEGIN');
      await a.query('INSERT INTO t VALUES (3, 3)');
      await a.query('CREATE TABLE u (x INT)');
      await a.query('ROLLBACK');
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[2]]);
    } finally {
      await db.close();
    }
  });

  it('tx.query runs in db.transaction: rolled back with it, and refuses BEGIN and DDL', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
      await expect(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO t VALUES (?, ?)', [1, 1]);
          expect((await tx.query('SELECT count(*) FROM t')).rows).toEqual([[1]]);
          throw new Error('no');
        }),
      ).rejects.toThrow('no');
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[0]]);
      await db.transaction(async (tx) => {
        await tx.insert('t', { id: 5, v: 5 });
        await tx.query('UPDATE t SET v = v + 1');
        expect(await codeOf(tx.query('COMMIT'))).toBe('INVALID_ARGUMENT');
        expect(await codeOf(tx.query('DROP TABLE t'))).toBe('INVALID_ARGUMENT');
      });
      expect(await rows(db, 'SELECT * FROM t')).toEqual([[5, 6]]);
      let kept: { query(s: string): Promise<unknown> } | undefined;
      await db.transaction((tx) => {
        kept = tx;
      });
      expect(await codeOf(kept!.query('SELECT 1'))).toBe('CLOSED');
    } finally {
      await db.close();
    }
  });
});

describe('SQL: resources', () => {
  it('a grouping too big for the query pool fails with MEMORY_LIMIT; the database goes on, pools back to zero', async () => {
    const { db } = await memDb({ memory: { leakDetection: 'paranoid', queryBytes: 1 << 20 } });
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, s TEXT)');
      for (let k = 0; k < 20; k++) {
        const values = Array.from(
          { length: 1000 },
          (_, i) => `(${k * 1000 + i}, 'value-${k * 1000 + i}-${'x'.repeat(40)}')`,
        );
        await db.query(`INSERT INTO t VALUES ${values.join(', ')}`);
      }
      expect(await codeOf(db.query('SELECT s, count(*) FROM t GROUP BY s'))).toBe('MEMORY_LIMIT');
      expect(await codeOf(db.query('SELECT a.id FROM t a JOIN t b ON a.s = b.s'))).toBe('MEMORY_LIMIT');
      expect(db.stats().memory.pools.query!.bytes).toBe(0);
      expect(await rows(db, 'SELECT count(*), count(DISTINCT id % 7) FROM t')).toEqual([[20000, 7]]);
    } finally {
      await db.close();
    }
  });

  it('a query failing midway releases what its scans pinned (close proves it)', async () => {
    const { db } = await memDb({ storage: { memtableRowsMax: 500 } });
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
      for (let k = 0; k < 10; k++) {
        await db.query(
          `INSERT INTO t VALUES ${Array.from({ length: 1000 }, (_, i) => `(${k * 1000 + i}, ${i})`).join(', ')}`,
        );
      }
      await db.flush();
      const e = await db
        .query("SELECT REPEAT('x', CASE WHEN id = 9000 THEN 20000000 ELSE 1 END) FROM t")
        .catch((x: unknown) => x);
      expect((e as TidemarkError).code).toBe('INVALID_ARGUMENT');
      // A session left in a transaction with an open scan's results: ended by close.
      const s = db.session();
      await s.query('BEGIN');
      await s.query('SELECT count(*) FROM t WHERE v > 5');
    } finally {
      await db.close();
    }
  });

  it('refuses oversized SQL and values with INVALID_ARGUMENT', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, s LONGTEXT)');
      expect(await codeOf(db.query('INSERT INTO t VALUES (1, ?)', ['x'.repeat(17 * 1024 * 1024)]))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(await codeOf(db.query(`SELECT '${'x'.repeat(17 * 1024 * 1024)}'`))).toBe('INVALID_ARGUMENT');
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[0]]);
    } finally {
      await db.close();
    }
  });
});

describe('SQL: statements and results that once went wrong', () => {
  it('a failed statement in a transaction leaves none of its writes; the transaction goes on', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
      await db.query('INSERT INTO t VALUES (1, 10), (2, 20)');
      const s = db.session();
      await s.query('BEGIN');
      await s.query('INSERT INTO t VALUES (3, 30)');
      // Deletes row 1, then fails inserting it as 2: the delete must not stay.
      expect(await codeOf(s.query('UPDATE t SET id = 2 WHERE id = 1'))).toBe('DUPLICATE_KEY');
      expect(await rows(s, 'SELECT * FROM t ORDER BY id')).toEqual([
        [1, 10],
        [2, 20],
        [3, 30],
      ]);
      await s.query('COMMIT');
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[3]]);
      await db.transaction(async (tx) => {
        expect(await codeOf(tx.query('INSERT INTO t VALUES (4, 40), (1, 0)'))).toBe('DUPLICATE_KEY');
        expect((await tx.query('SELECT count(*) FROM t')).rows).toEqual([[3]]);
      });
    } finally {
      await db.close();
    }
  });

  it('joins numbers with strings and dates with text by value, as = compares them', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE a (n INT, at DATETIME)');
      await db.query('CREATE TABLE b (s VARCHAR(20))');
      await db.query("INSERT INTO a VALUES (1, '2024-01-01 00:00:00'), (2, NULL)");
      await db.query("INSERT INTO b VALUES ('1'), ('2.0'), ('x'), ('2024-01-01 00:00:00')");
      expect(await rows(db, 'SELECT a.n, b.s FROM a JOIN b ON a.n = b.s ORDER BY 1')).toEqual([
        [1, '1'],
        [2, '2.0'],
      ]);
      expect(await rows(db, 'SELECT a.n FROM a, b WHERE a.at = b.s')).toEqual([[1]]);
    } finally {
      await db.close();
    }
  });

  it('tells apart aggregates that differ only in their parameters', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (v INT)');
      await db.query('INSERT INTO t VALUES (1), (2), (3)');
      expect(await rows(db, 'SELECT SUM(?), SUM(?) FROM t', [1, 100])).toEqual([[3, 300]]);
      expect(await rows(db, 'SELECT COUNT(?), SUM(?) FROM t', [null, 3])).toEqual([[0, 9]]);
      expect(
        await rows(
          db,
          'SELECT SUM(CASE WHEN v > ? THEN 1 ELSE 0 END), SUM(CASE WHEN v > ? THEN 1 ELSE 0 END) FROM t',
          [0, 2],
        ),
      ).toEqual([[3, 1]]);
      expect((await db.query('SELECT ? + 1', [1])).columns).toEqual(['? + 1']);
    } finally {
      await db.close();
    }
  });

  it("reads the SQL catalog at the newest commit, not at a session's old snapshot", async () => {
    const { db } = await memDb();
    try {
      await db.createTable('x', { columns: { id: 'int64' }, primaryKey: 'id' });
      const s = db.session();
      await s.query('BEGIN');
      await s.query('SELECT count(*) FROM x');
      await db.query('CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(3) UNIQUE)');
      expect(await rows(s, 'SELECT count(*) FROM x')).toEqual([[0]]);
      await s.query('COMMIT');
      await s.query("INSERT INTO t (s) VALUES ('a')");
      expect(await codeOf(s.query("INSERT INTO t (s) VALUES ('toolong')"))).toBe('SCHEMA');
      expect(await codeOf(s.query("INSERT INTO t (s) VALUES ('a')"))).toBe('DUPLICATE_KEY');
    } finally {
      await db.close();
    }
  });

  it('moves AUTO_INCREMENT past explicit ids; applies SET left to right', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE c (id INT AUTO_INCREMENT PRIMARY KEY, x INT, y INT)');
      await db.query('INSERT INTO c (x) VALUES (10)');
      await db.query('INSERT INTO c VALUES (5, 20, 0)');
      await db.query('INSERT INTO c (x) VALUES (30)');
      expect(await rows(db, 'SELECT id, x FROM c ORDER BY id')).toEqual([
        [1, 10],
        [5, 20],
        [6, 30],
      ]);
      await db.query('UPDATE c SET x = x + 1, y = x WHERE id = 1');
      expect(await rows(db, 'SELECT x, y FROM c WHERE id = 1')).toEqual([[11, 11]]);
    } finally {
      await db.close();
    }
  });

  it('keeps the ORDER BY and LIMIT of parenthesized UNION parts; shows USING columns once', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(5))');
      await db.query("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')");
      expect(
        await rows(
          db,
          '(SELECT id FROM t ORDER BY id LIMIT 1) UNION ALL (SELECT id FROM t ORDER BY id DESC LIMIT 1)',
        ),
      ).toEqual([[1], [3]]);
      expect(
        await rows(
          db,
          '(SELECT id FROM t ORDER BY id LIMIT 2) UNION ALL (SELECT id FROM t ORDER BY id DESC LIMIT 1) ORDER BY 1 DESC LIMIT 2',
        ),
      ).toEqual([[3], [2]]);
      expect(
        await rows(db, 'SELECT id FROM t WHERE id < 3 UNION SELECT id FROM t ORDER BY 1 DESC LIMIT 1'),
      ).toEqual([[3]]);
      await db.query('CREATE TABLE u (id INT PRIMARY KEY, w INT)');
      await db.query('INSERT INTO u VALUES (1, 7)');
      const r = await db.query('SELECT * FROM t JOIN u USING (id)');
      expect(r.columns).toEqual(['id', 's', 'w']);
      expect(r.rows).toEqual([[1, 'a', 7]]);
      expect(await rows(db, 'SELECT id FROM t WHERE NOT (id > 1)')).toEqual([[1]]);
      expect(await codeOf(db.query('SELECT DISTINCT s FROM t ORDER BY id'))).toBe('INVALID_ARGUMENT');
    } finally {
      await db.close();
    }
  });

  it('refuses self-referencing views, alias cycles and DDL placeholders with TidemarkErrors', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY)');
      await db.query('CREATE VIEW w AS SELECT id FROM t');
      expect(await codeOf(db.query('CREATE OR REPLACE VIEW w AS SELECT id FROM w'))).toBe('INVALID_ARGUMENT');
      await db.query('CREATE VIEW w2 AS SELECT id FROM w');
      expect(await codeOf(db.query('CREATE OR REPLACE VIEW w AS SELECT id FROM w2'))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(await rows(db, 'SELECT * FROM w')).toEqual([]);
      expect(await codeOf(db.query('SELECT x AS y, y AS x FROM t GROUP BY id'))).toBe('SCHEMA');
      expect(await rows(db, "SELECT ~'abc', ~0")).toEqual([[2n ** 64n - 1n, 2n ** 64n - 1n]]);
      expect(await codeOf(db.query('CREATE TABLE d (a INT DEFAULT ?)', [5]))).toBe('INVALID_ARGUMENT');
      // Padding is linear: the quadratic version took minutes for this, past the test's time limit.
      expect(await rows(db, "SELECT LENGTH(LPAD('a', 300000, 'xy')), RPAD('ab', 5, 'xy')")).toEqual([
        [300000, 'abxyx'],
      ]);
    } finally {
      await db.close();
    }
  });
});

describe('SQL: session statements (what MySQL clients send on connect)', () => {
  it('variables, DATABASE(), SET, SHOW, DESCRIBE, USE and autocommit off', async () => {
    const { db } = await memDb();
    try {
      const s = db.session({ user: 'ann', connectionId: 7 });
      expect(await rows(s, 'SELECT @@version_comment LIMIT 1')).toEqual([['tidemark']]);
      expect(await rows(s, 'SELECT DATABASE(), USER(), CONNECTION_ID(), @@session.autocommit, @x')).toEqual([
        ['tidemark', 'ann@localhost', 7, 1, null],
      ]);
      await s.query('SET NAMES utf8mb4');
      await s.query('SET @x = 5');
      await s.query("SET SESSION sql_mode = 'TRADITIONAL'");
      expect(await rows(s, 'SELECT @x + 1, @@sql_mode')).toEqual([[6, 'TRADITIONAL']]);
      expect(await rows(s, "SHOW VARIABLES LIKE 'sql_mo%'")).toEqual([['sql_mode', 'TRADITIONAL']]);
      expect(await codeOf(s.query('SELECT @@no_such_variable'))).toBe('INVALID_ARGUMENT');
      await s.query('CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, s VARCHAR(5) UNIQUE)');
      expect(await rows(s, 'SHOW TABLES')).toEqual([['t']]);
      expect(await rows(s, 'DESCRIBE t')).toEqual([
        ['id', 'int', 'NO', 'PRI', null, 'auto_increment'],
        ['s', 'varchar(5)', 'YES', 'UNI', null, ''],
      ]);
      expect(await rows(s, 'SHOW COLUMNS FROM t')).toHaveLength(2);
      expect(await rows(s, 'SHOW DATABASES')).toEqual([['tidemark']]);
      await s.query('USE tidemark');
      expect(await codeOf(s.query('USE other'))).toBe('NOT_FOUND');
      // Autocommit off: writes wait for COMMIT; turning it on commits.
      await s.query('SET autocommit = 0');
      await s.query("INSERT INTO t (s) VALUES ('a')");
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[0]]);
      await s.query('COMMIT');
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[1]]);
      await s.query("INSERT INTO t (s) VALUES ('b')");
      await s.query('SET autocommit = 1');
      expect(await rows(db, 'SELECT count(*) FROM t')).toEqual([[2]]);
      expect(await rows(s, 'SHOW WARNINGS')).toEqual([]);
      expect((await s.query('SHOW CREATE TABLE t')).rows[0]![1]).toMatch(/CREATE TABLE t/);
      s.end();
    } finally {
      await db.close();
    }
  });

  it('among other statements of one text too, parameters shared out and errors placed in the text', async () => {
    const { db } = await memDb();
    try {
      const s = db.session();
      const all = await s.queryAll(
        "SET NAMES latin1; SELECT ';' AS semi, ?; SHOW VARIABLES LIKE 'character_set_client'; SELECT ? + 1",
        [5, 6],
      );
      expect(all.map((r) => r.rows)).toEqual([[], [[';', 5]], [['character_set_client', 'latin1']], [[7]]]);
      // The statement after a session statement runs (it used to be taken as part of it).
      expect((await s.query("SET NAMES utf8mb4; SELECT 'after'")).rows).toEqual([['after']]);
      expect(await rows(s, "SHOW VARIABLES LIKE 'character_set_results'")).toEqual([
        ['character_set_results', 'utf8mb4'],
      ]);
      // A syntax error in a later statement is placed in the whole text.
      const e = await s.queryAll('SET NAMES utf8mb4;\n  SELEC 1').catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'SYNTAX', details: { line: 2, column: 3, offset: 21 } });
      expect((e as Error).message).toMatch(/line 2, column 3 near "SELEC 1"/);
      expect(await codeOf(s.queryAll('SET NAMES utf8mb4; SELECT ?', []))).toBe('INVALID_ARGUMENT');
      expect(await codeOf(s.queryAll('SET NAMES utf8mb4; SELECT ?', [1, 2]))).toBe('INVALID_ARGUMENT');
      s.end();
    } finally {
      await db.close();
    }
  });
});
