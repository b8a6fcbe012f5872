import { describe, expect, it } from 'vitest';
import { Decimal, type Database } from '../../src/index.js';
import type { ResultColumn } from '../../src/sql/describe.js';
import { memDb } from '../helpers/db.js';

// describe.ts: a statement's result columns without running it. Each query here is described, then
// run: the names must be the run's, and every value must be of the kind described (a kind the
// values do not have would make the server declare a type its rows then contradict).

/** Whether a value is of a described kind (what the MySQL server can send exactly as that type). */
function ofKind(c: ResultColumn, v: unknown): boolean {
  if (v === null) return true;
  switch (c.kind) {
    case 'int':
      return (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'bigint' && v < 2n ** 63n);
    case 'uint':
      return (
        (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n)
      );
    case 'decimal':
      return (
        (v instanceof Decimal && v.s <= c.scale!) ||
        typeof v === 'bigint' ||
        (typeof v === 'number' && Number.isSafeInteger(v))
      );
    case 'double':
      return typeof v === 'number';
    case 'string':
      return typeof v === 'string';
    case 'bytes':
      return v instanceof Uint8Array;
    case 'date':
      return v instanceof Date;
  }
  return true;
}

/** A column's kind as the expectations below write it: int, uint, decimal:2, double, string, bytes, date, ? (unknown). */
function kindText(c: ResultColumn): string {
  if (c.kind === undefined) return '?';
  return c.kind === 'decimal' ? `decimal:${c.scale}` : c.kind;
}

async function check(db: Database, sql: string, params: unknown[] = []): Promise<string> {
  const shape = await db._sql.describe(sql, 'tidemark');
  const r = await db.query(sql, params);
  expect(shape.params).toBe(params.length);
  const cols = shape.columns!;
  expect(
    cols.map((c) => c.name),
    sql,
  ).toEqual(r.columns);
  expect(r.rows.length, sql).toBeGreaterThan(0);
  for (const row of r.rows) {
    cols.forEach((c, i) =>
      expect(ofKind(c, row[i]), `${sql}: ${c.name} ${kindText(c)} holds ${String(row[i])}`).toBe(true),
    );
  }
  return cols.map(kindText).join(' ');
}

async function fixture(): Promise<Database> {
  const { db } = await memDb();
  await db.query(
    `CREATE TABLE t (id INT PRIMARY KEY, b BIGINT, u BIGINT UNSIGNED, d DOUBLE, m DECIMAL(10,2),
       s VARCHAR(20), bl BLOB, at DATETIME, ok BOOLEAN)`,
  );
  await db.query(`INSERT INTO t VALUES
    (1, 10, 18446744073709551615, 2.5, 12.25, 'a', X'0102', '2024-01-02 03:04:05', TRUE),
    (2, -20, 7, 4, -3.5, 'bb', X'', '2020-06-07 00:00:00', FALSE),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
  await db.query('CREATE TABLE v (id INT PRIMARY KEY, w INT, s VARCHAR(5))');
  await db.query("INSERT INTO v VALUES (1, 100, 'x'), (2, 200, 'y')");
  await db.query('CREATE VIEW tv AS SELECT id, m * 2 AS mm, s FROM t');
  return db;
}

describe('describing a statement before it runs', () => {
  it('table columns, stars, joins (USING, NATURAL), derived tables, CTEs and views', async () => {
    const db = await fixture();
    try {
      expect(await check(db, 'SELECT * FROM t')).toBe('int int uint double decimal:2 string bytes date int');
      expect(await check(db, 'SELECT s, id AS k FROM t WHERE id = ?', [1])).toBe('string int');
      expect(await check(db, 'SELECT s FROM t WHERE id BETWEEN ? AND ? ORDER BY s', [1, 3])).toBe('string');
      expect(await check(db, 'SELECT v.*, t.m FROM t JOIN v ON t.id = v.id')).toBe(
        'int int string decimal:2',
      );
      expect(await check(db, 'SELECT * FROM t JOIN v USING (id)')).toBe(
        'int int uint double decimal:2 string bytes date int int string',
      );
      expect(await check(db, 'SELECT * FROM v NATURAL JOIN v AS v2')).toBe('int int string');
      expect(await check(db, 'SELECT x.n, x.s FROM (SELECT id + 1 AS n, s FROM t) AS x')).toBe('int string');
      expect(await check(db, 'SELECT * FROM (SELECT d, m FROM t) AS x (a, b)')).toBe('double decimal:2');
      expect(await check(db, 'WITH c (a) AS (SELECT m FROM t) SELECT a FROM c')).toBe('decimal:2');
      expect(await check(db, 'SELECT mm, s FROM tv')).toBe('decimal:2 string');
      expect(await check(db, 'SELECT t.id, (SELECT w FROM v WHERE v.id = t.id) FROM t')).toBe('int int');
    } finally {
      await db.close();
    }
  });

  it('literals, operators, CASE, casts and functions as they compute', async () => {
    const db = await fixture();
    try {
      expect(await check(db, "SELECT 1, -2, 1.50, 1e0, 'x', X'01', TRUE, NULL, 18446744073709551615")).toBe(
        'int int decimal:2 double string bytes int ? uint',
      );
      expect(
        await check(db, 'SELECT id + b, id * m, m - m, b / id, m / 2, d + id, s + 1, b DIV 3, b % 3 FROM t'),
      ).toBe('int decimal:2 decimal:2 decimal:4 decimal:6 double double int int');
      expect(
        await check(db, 'SELECT -m, -d, id = 1, s LIKE ?, id IN (1, 2), NOT ok, b | 1 FROM t', ['a%']),
      ).toBe('decimal:2 double int int int int uint');
      expect(
        await check(
          db,
          "SELECT CASE WHEN id = 1 THEN b ELSE 0 END, CASE id WHEN 1 THEN 'one' ELSE id END FROM t",
        ),
      ).toBe('int string');
      expect(
        await check(db, 'SELECT IF(ok, m, id), COALESCE(d, id), IFNULL(s, 1), NULLIF(b, 10) FROM t'),
      ).toBe('decimal:2 double string int');
      expect(
        await check(
          db,
          'SELECT CAST(d AS SIGNED), CAST(b AS UNSIGNED), CAST(s AS DECIMAL(8,3)), CAST(id AS CHAR), CAST(at AS DATE), CAST(id AS DOUBLE) FROM t WHERE id < 3',
        ),
      ).toBe('int uint decimal:3 string date double');
      expect(
        await check(
          db,
          'SELECT UPPER(s), CONCAT(s, id), LENGTH(s), SQRT(id), DATABASE(), CONNECTION_ID(), ABS(b) FROM t',
        ),
      ).toBe('string string int double string int ?');
      expect(await check(db, 'SELECT ?, @x, @@autocommit', [5])).toBe('? ? ?');
    } finally {
      await db.close();
    }
  });

  it('aggregates, GROUP BY, set operations and VALUES', async () => {
    const db = await fixture();
    try {
      expect(
        await check(
          db,
          'SELECT COUNT(*), SUM(b), SUM(m), SUM(d), AVG(b), AVG(m), AVG(d), MIN(s), MAX(at), GROUP_CONCAT(s) FROM t',
        ),
      ).toBe('int int decimal:2 double decimal:4 decimal:6 double string date string');
      expect(await check(db, 'SELECT ok, COUNT(DISTINCT s), SUM(id) FROM t GROUP BY ok')).toBe('int int int');
      expect(await check(db, 'SELECT id FROM t UNION SELECT w FROM v')).toBe('int');
      expect(await check(db, 'SELECT m FROM t UNION ALL SELECT id FROM v')).toBe('decimal:2');
      expect(await check(db, "SELECT id FROM t UNION SELECT 'x'")).toBe('string');
      expect(await check(db, 'SELECT d FROM t UNION SELECT m FROM t')).toBe('?');
      expect(await check(db, 'VALUES ROW(1, 2.5), ROW(3, 4)')).toBe('int decimal:1');
    } finally {
      await db.close();
    }
  });

  it('statements without a result set, EXPLAIN, SHOW and DESCRIBE', async () => {
    const db = await fixture();
    try {
      for (const sql of [
        'INSERT INTO v VALUES (?, ?, ?)',
        'UPDATE v SET w = w + 1 WHERE id = ?',
        'DELETE FROM v WHERE id = ?',
        'BEGIN',
        'SET @a = 1',
        'CREATE TABLE z (id INT PRIMARY KEY)',
      ]) {
        expect((await db._sql.describe(sql, 'tidemark')).columns, sql).toEqual([]);
      }
      // SHOW and DESCRIBE: the columns show.ts gives, before it runs.
      for (const sql of [
        'SHOW DATABASES',
        'SHOW TABLES',
        "SHOW TABLES LIKE 't%'",
        'SHOW FULL TABLES',
        'SHOW COLUMNS FROM t',
        'DESCRIBE t',
        "SHOW VARIABLES LIKE 'auto%'",
        'SHOW WARNINGS',
        'SHOW ERRORS',
        'SHOW COUNT(*) WARNINGS',
        'SHOW STATUS',
        'SHOW CREATE TABLE t',
        'SHOW INDEX FROM t',
        'SHOW KEYS FROM t',
        'EXPLAIN SELECT * FROM t WHERE id = 1',
      ]) {
        const shape = await db._sql.describe(sql, 'tidemark');
        expect(
          shape.columns!.map((c) => c.name),
          sql,
        ).toEqual((await db.query(sql)).columns);
      }
      // Unknown tables and columns are refused before anything runs.
      await expect(db._sql.describe('SELECT nope FROM t', 'tidemark')).rejects.toMatchObject({
        details: { mysqlErrno: 1054 },
      });
      await expect(db._sql.describe('SELECT * FROM nope', 'tidemark')).rejects.toMatchObject({
        details: { mysqlErrno: 1146 },
      });
    } finally {
      await db.close();
    }
  });
});
