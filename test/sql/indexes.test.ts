import { describe, expect, it } from 'vitest';
import { open, TidemarkError, type Database } from '../../src/index.js';
import { memDb } from '../helpers/db.js';
import { codeOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

type Queryable = { query(sql: string, p?: unknown[]): Promise<{ rows: unknown[][]; affectedRows: number }> };

const rows = async (db: Queryable, sql: string, p: unknown[] = []) => (await db.query(sql, p)).rows;
const plan = async (db: Queryable, sql: string, p: unknown[] = []) =>
  (await rows(db, `EXPLAIN ${sql}`, p)).map((r) => String(r[0])).join('\n');
/** SHOW INDEX as [Key_name, Non_unique, Seq_in_index, Column_name, Collation] rows. */
const keys = async (db: Queryable, table: string) =>
  (await rows(db, `SHOW INDEX FROM ${table}`)).map((r) => [r[2], r[1], r[3], r[4], r[5]]);
const errno = async (p: Promise<unknown>): Promise<unknown> => {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return e instanceof TidemarkError ? e.details?.['mysqlErrno'] : String(e);
  }
};

/** A table of n rows: id, a unique email, a city of 50, a number n of 997 (every 97th NULL). */
async function cities(db: Database, n: number): Promise<void> {
  await db.query(
    'CREATE TABLE g (id INT PRIMARY KEY, email VARCHAR(64) UNIQUE, city VARCHAR(20), n INT, KEY (city, n), KEY kn (n))',
  );
  for (let s = 0; s < n; s += 2000) {
    const vals: string[] = [];
    for (let i = s; i < Math.min(n, s + 2000); i++)
      vals.push(`(${i}, 'u${i}@x', 'c${i % 50}', ${i % 97 === 0 ? 'NULL' : i % 997})`);
    await db.query(`INSERT INTO g VALUES ${vals.join(', ')}`);
  }
}

/** The ids of cities(count) whose row passes `keep(id, n)`, as result rows. */
function ids(count: number, keep: (id: number, n: number | null) => boolean): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < count; i++) if (keep(i, i % 97 === 0 ? null : i % 997)) out.push([i]);
  return out;
}

describe('SQL indexes: DDL', () => {
  it('CREATE TABLE builds its UNIQUE, INDEX and KEY clauses and column UNIQUEs as engine indexes, named as MySQL names them', async () => {
    const { db } = await memDb();
    try {
      await db.query(`CREATE TABLE t (id INT PRIMARY KEY, a INT UNIQUE, b VARCHAR(9), c INT,
        UNIQUE (a), UNIQUE KEY ub (b, c), INDEX (c), KEY (b), CONSTRAINT cu UNIQUE INDEX (c, a), KEY k2 (a DESC, b))`);
      expect(await keys(db, 't')).toEqual([
        ['PRIMARY', 0, 1, 'id', 'A'],
        ['a', 0, 1, 'a', 'A'],
        ['a_2', 0, 1, 'a', 'A'],
        ['ub', 0, 1, 'b', 'A'],
        ['ub', 0, 2, 'c', 'A'],
        ['cu', 0, 1, 'c', 'A'],
        ['cu', 0, 2, 'a', 'A'],
        ['c', 1, 1, 'c', 'A'],
        ['b', 1, 1, 'b', 'A'],
        ['k2', 1, 1, 'a', 'D'],
        ['k2', 1, 2, 'b', 'A'],
      ]);
      expect(db.describeTable('t').indexes.map((i) => i.name)).toEqual([
        'a',
        'a_2',
        'ub',
        'c',
        'b',
        'cu',
        'k2',
      ]);
      // SHOW INDEX's columns are MariaDB's.
      expect((await db.query('SHOW KEYS FROM t')).columns).toEqual([
        'Table',
        'Non_unique',
        'Key_name',
        'Seq_in_index',
        'Column_name',
        'Collation',
        'Cardinality',
        'Sub_part',
        'Packed',
        'Null',
        'Index_type',
        'Comment',
        'Index_comment',
        'Ignored',
      ]);
      expect((await rows(db, 'SHOW INDEXES FROM t'))[1]).toEqual([
        't',
        0,
        'a',
        1,
        'a',
        'A',
        0,
        null,
        null,
        'YES',
        'BTREE',
        '',
        '',
        'NO',
      ]);
      expect(await rows(db, 'DESCRIBE t')).toEqual([
        ['id', 'int', 'NO', 'PRI', null, ''],
        ['a', 'int', 'YES', 'UNI', null, ''],
        ['b', 'varchar(9)', 'YES', 'MUL', null, ''],
        ['c', 'int', 'YES', 'MUL', null, ''],
      ]);
      // SHOW CREATE TABLE gives the keys, and its text makes the same table again.
      const create = String((await rows(db, 'SHOW CREATE TABLE t'))[0]![1]);
      expect(create).toContain('UNIQUE KEY ub (b, c)');
      expect(create).toContain('KEY k2 (a DESC, b)');
      await db.query(create.replace('CREATE TABLE t ', 'CREATE TABLE t2 '));
      expect((await keys(db, 't2')).map((k) => k.slice(0, 4))).toEqual(
        (await keys(db, 't')).map((k) => k.slice(0, 4)),
      );
    } finally {
      await db.close();
    }
  });

  it('CREATE [UNIQUE] INDEX, ALTER TABLE ADD/DROP/RENAME, DROP INDEX: built and dropped in the engine, errors as MySQL numbers them', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(9), c INT)');
      await db.query(
        "INSERT INTO t VALUES (1, 1, 'x', 1), (2, 2, 'x', 1), (3, NULL, NULL, 2), (4, NULL, NULL, 3)",
      );
      await db.query('CREATE UNIQUE INDEX ua ON t (a)');
      await db.query('CREATE INDEX ib USING BTREE ON t (b) COMMENT "plain"');
      await db.query('ALTER TABLE t ADD INDEX ic (c), ADD UNIQUE KEY (b, a)');
      await db.query('ALTER TABLE t ADD CONSTRAINT UNIQUE (id, c)');
      await db.query('ALTER TABLE t ADD CONSTRAINT named UNIQUE (c, id)');
      await db.query('ALTER TABLE t ADD KEY (a, c)');
      expect((await keys(db, 't')).filter((k) => k[2] === 1).map((k) => [k[0], k[1]])).toEqual([
        ['PRIMARY', 0],
        ['ua', 0],
        ['b', 0],
        ['id', 0],
        ['named', 0],
        ['ib', 1],
        ['ic', 1],
        ['a', 1],
      ]);
      // Rows that break UNIQUE: 1062, and no index is left behind.
      expect(await errno(db.query('CREATE UNIQUE INDEX ub ON t (b)'))).toBe(1062);
      expect(await errno(db.query('ALTER TABLE t ADD UNIQUE ux (c), ADD INDEX iy (a)'))).toBe(1062);
      expect(db.describeTable('t').indexes.map((i) => i.name)).not.toContain('ub');
      expect(db.describeTable('t').indexes.map((i) => i.name)).not.toContain('iy');
      // Names and columns checked as MySQL checks them.
      expect(await errno(db.query('CREATE INDEX ua ON t (c)'))).toBe(1061);
      expect(await errno(db.query('CREATE INDEX UA ON t (c)'))).toBe(1061);
      expect(await errno(db.query('CREATE INDEX x ON t (nope)'))).toBe(1072);
      expect(await errno(db.query('CREATE INDEX x ON t (a, A)'))).toBe(1060);
      expect(await errno(db.query('ALTER TABLE t ADD INDEX `PRIMARY` (a)'))).toBe(1280);
      expect(await errno(db.query('DROP INDEX nope ON t'))).toBe(1091);
      expect(await errno(db.query('ALTER TABLE t DROP KEY nope'))).toBe(1091);
      expect(await errno(db.query('ALTER TABLE t RENAME INDEX nope TO x'))).toBe(1176);
      expect(await errno(db.query('CREATE INDEX x ON nope (a)'))).toBe(1146);
      expect(await codeOf(db.query('ALTER TABLE t ADD COLUMN d INT'))).toBe('INVALID_ARGUMENT');
      expect(await codeOf(db.query('ALTER TABLE t DROP PRIMARY KEY'))).toBe('INVALID_ARGUMENT');
      // A prefix indexes whole values (which answers the same lookups; UNIQUE is then over the
      // values, weaker than MySQL's prefix).
      await db.query('CREATE INDEX bp ON t (b(3))');
      await db.query('CREATE UNIQUE INDEX up ON t (id, b(3))');
      await db.query('DROP INDEX up ON t');
      // Drops, renames (the catalog's name only), and SQLite's DROP INDEX without ON.
      await db.query('ALTER TABLE t DROP INDEX ic, RENAME INDEX ib TO ib2');
      await db.query('DROP INDEX named ON t');
      await db.query('DROP INDEX bp');
      await db.query('ALTER TABLE t ENGINE = InnoDB');
      const left = (await keys(db, 't')).filter((k) => k[2] === 1).map((k) => k[0]);
      expect(left).toEqual(['PRIMARY', 'ua', 'b', 'id', 'ib2', 'a']);
      expect(
        db
          .describeTable('t')
          .indexes.map((i) => i.name)
          .sort(),
      ).toEqual(['a', 'b', 'ib', 'id', 'ua']);
      await db.query("SET tidemark_indexes = 'prefer'");
      expect(await plan(db, "SELECT id FROM t WHERE b = 'x'")).toMatch(/using (ib2|b) /);
      // Dropping the table drops its indexes.
      await db.query('DROP TABLE t');
      await db.query('CREATE TABLE t (id INT PRIMARY KEY, a INT)');
      await db.query('CREATE INDEX ua ON t (a)');
    } finally {
      await db.close();
    }
  });

  it('maps SQL names the engine does not take to engine names, keeps them across a restart', async () => {
    const { dir, cleanup } = tempDir('tidemark-idx-');
    try {
      let db = await open(dir);
      await db.query(
        'CREATE TABLE t (id INT PRIMARY KEY, a INT, bc INT, KEY `my key` (a), UNIQUE `9 lives` (bc))',
      );
      await db.query('CREATE INDEX `ünïcode-ß` ON t (a, id)');
      await db.query(`CREATE INDEX ${'x'.repeat(64)} ON t (id)`);
      expect(await errno(db.query(`CREATE INDEX ${'x'.repeat(65)} ON t (id)`))).toBe(1059);
      const names = db.describeTable('t').indexes.map((i) => i.name);
      for (const n of names) expect(n).toMatch(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/);
      expect(names).toContain('x'.repeat(64));
      await db.query('INSERT INTO t VALUES (1, 5, 6), (2, 5, 7)');
      expect(await errno(db.query('INSERT INTO t VALUES (3, 5, 7)'))).toBe(1062);
      await db.close();
      db = await open(dir);
      expect((await keys(db, 't')).map((k) => k[0])).toEqual([
        'PRIMARY',
        '9 lives',
        'my key',
        'ünïcode-ß',
        'ünïcode-ß',
        'x'.repeat(64),
      ]);
      await db.query("SET tidemark_indexes = 'prefer'");
      expect(await plan(db, 'SELECT id FROM t WHERE bc = 6')).toMatch(/index lookup t using 9 lives/);
      expect(await rows(db, 'SELECT id FROM t WHERE bc = 6')).toEqual([[1]]);
      await db.query('DROP INDEX `ünïcode-ß` ON t');
      expect((await keys(db, 't')).map((k) => k[0])).not.toContain('ünïcode-ß');
      await db.close();
    } finally {
      cleanup();
    }
  });

  it('builds the indexes an old catalog lists (made before the engine had indexes) when SQL first reads it', async () => {
    const { dir, cleanup } = tempDir('tidemark-idx-');
    try {
      let db = await open(dir);
      // The catalog rows as SQL wrote them before: UNIQUE sets on the table row, index rows
      // without an engine name, and the tables without indexes.
      const col = (name: string, sqlType: string, type: string, nullable: boolean) => ({
        name,
        sqlType,
        type,
        nullable,
      });
      await db.createTable('t', {
        columns: {
          id: 'int32',
          email: { type: 'string', nullable: true },
          n: { type: 'int32', nullable: true },
        },
        primaryKey: 'id',
      });
      await db.createTable('d', {
        columns: { id: 'int32', u: { type: 'int32', nullable: true } },
        primaryKey: 'id',
      });
      await db.createTable('__tidemark_sql', {
        columns: { name: 'string', def: 'string' },
        primaryKey: 'name',
      });
      const tcols = [
        col('id', 'INT', 'int32', false),
        col('email', 'VARCHAR', 'string', true),
        col('n', 'INT', 'int32', true),
      ];
      await db.insert('__tidemark_sql', [
        {
          name: 'table:t',
          def: JSON.stringify({
            kind: 'table',
            name: 't',
            columns: tcols,
            primaryKey: ['id'],
            keyColumn: 'id',
            unique: [['email'], ['n', 'email']],
          }),
        },
        {
          name: 'index:t:tn',
          def: JSON.stringify({ kind: 'index', name: 'tn', table: 't', columns: ['n'], unique: false }),
        },
        {
          name: 'index:t:un',
          def: JSON.stringify({
            kind: 'index',
            name: 'un',
            table: 't',
            columns: ['n', 'email'],
            unique: true,
          }),
        },
        {
          name: 'table:d',
          def: JSON.stringify({
            kind: 'table',
            name: 'd',
            columns: [col('id', 'INT', 'int32', false), col('u', 'INT', 'int32', true)],
            primaryKey: ['id'],
            keyColumn: 'id',
            unique: [['u']],
          }),
        },
      ]);
      await db.insert('t', [
        { id: 1, email: 'a', n: 1 },
        { id: 2, email: 'b', n: 2 },
      ]);
      // Two rows the old scans let through (concurrent writers): d's UNIQUE (u) cannot be built.
      await db.insert('d', [
        { id: 1, u: 5 },
        { id: 2, u: 5 },
      ]);
      await db.close();
      db = await open(dir);
      expect(await keys(db, 't')).toEqual([
        ['PRIMARY', 0, 1, 'id', 'A'],
        ['un', 0, 1, 'n', 'A'],
        ['un', 0, 2, 'email', 'A'],
        ['email', 0, 1, 'email', 'A'],
        ['tn', 1, 1, 'n', 'A'],
      ]);
      expect(await errno(db.query("INSERT INTO t VALUES (3, 'a', 9)"))).toBe(1062);
      await db.query("SET tidemark_indexes = 'prefer'");
      expect(await plan(db, 'SELECT id FROM t WHERE n = 2')).toMatch(/using (tn|un)/);
      // d: writes refused (saying why) until the duplicates go; reads and DELETE go on.
      const e = await db.query('INSERT INTO d VALUES (3, 6)').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TidemarkError);
      expect((e as TidemarkError).code).toBe('DUPLICATE_KEY');
      expect((e as TidemarkError).message).toMatch(/could not be built/);
      expect(await rows(db, 'SELECT id FROM d ORDER BY id')).toEqual([[1], [2]]);
      await db.query('DELETE FROM d WHERE id = 2');
      await db.query('INSERT INTO d VALUES (3, 6)');
      expect(await errno(db.query('INSERT INTO d VALUES (4, 6)'))).toBe(1062);
      expect((await keys(db, 'd')).map((k) => k[0])).toEqual(['PRIMARY', 'u']);
      await db.close();
    } finally {
      cleanup();
    }
  });

  it('tables made through the API list their indexes under the engine names, usable from SQL', async () => {
    const { db } = await memDb();
    try {
      await db.createTable('users', {
        columns: { id: 'int64', email: 'string', city: 'string' },
        primaryKey: 'id',
        indexes: [
          { name: 'users_email', columns: ['email'], unique: true },
          { name: 'users_city', columns: ['city'] },
        ],
      });
      await db.insert('users', [
        { id: 1, email: 'a@x', city: 'Oslo' },
        { id: 2, email: 'b@x', city: 'Oslo' },
      ]);
      expect((await keys(db, 'users')).map((k) => k[0])).toEqual(['PRIMARY', 'users_email', 'users_city']);
      await db.query("SET tidemark_indexes = 'prefer'");
      expect(await plan(db, "SELECT id FROM users WHERE email = 'b@x'")).toMatch(
        /index lookup users using users_email/,
      );
      expect(await rows(db, "SELECT id FROM users WHERE city = 'Oslo' ORDER BY id")).toEqual([[1], [2]]);
      await db.query('DROP INDEX users_city ON users');
      expect(db.describeTable('users').indexes.map((i) => i.name)).toEqual(['users_email']);
    } finally {
      await db.close();
    }
  });
});

describe('SQL indexes: UNIQUE semantics', () => {
  it('INSERT, INSERT IGNORE, ON DUPLICATE KEY UPDATE and REPLACE with a UNIQUE secondary key', async () => {
    const { db } = await memDb();
    try {
      await db.query(
        'CREATE TABLE g (id INT PRIMARY KEY, email VARCHAR(64) UNIQUE, city VARCHAR(20), n INT)',
      );
      await db.query(
        "INSERT INTO g VALUES (1, 'a', 'x', 1), (2, 'b', 'y', 2), (3, NULL, 'z', 3), (4, NULL, 'w', 4)",
      );
      // NULLs never collide; a UNIQUE index's NULLs are a range, not a lookup.
      await db.query("INSERT INTO g VALUES (5, NULL, 'v', 5)");
      await db.query("SET tidemark_indexes = 'prefer'");
      expect(await rows(db, 'SELECT id FROM g WHERE email <=> NULL ORDER BY id')).toEqual([[3], [4], [5]]);
      expect(await rows(db, 'SELECT id FROM g WHERE email IS NULL AND id > 3 ORDER BY id')).toEqual([
        [4],
        [5],
      ]);
      expect(await plan(db, 'SELECT id FROM g WHERE email <=> NULL')).toMatch(
        /index range scan g using email/,
      );
      await db.query("SET tidemark_indexes = 'cost'");
      const e = await db.query("INSERT INTO g VALUES (6, 'a', 'q', 6)").catch((x: unknown) => x);
      expect((e as TidemarkError).code).toBe('DUPLICATE_KEY');
      expect((e as TidemarkError).details?.['mysqlErrno']).toBe(1062);
      expect((e as TidemarkError).message).toMatch(/for key 'email'/);
      // A statement's rows collide with each other too; the statement changes nothing.
      expect(await errno(db.query("INSERT INTO g VALUES (7, 'c', 'q', 7), (8, 'c', 'q', 8)"))).toBe(1062);
      expect(await rows(db, 'SELECT count(*) FROM g')).toEqual([[5]]);
      // IGNORE: colliding rows (by key or by email, with the table or earlier rows) left out.
      let r = await db.query(
        "INSERT IGNORE INTO g VALUES (1, 'new', 'q', 0), (6, 'a', 'q', 0), (7, 'c', 'q', 7), (8, 'c', 'q', 8), (9, NULL, 'q', 9)",
      );
      expect(r.affectedRows).toBe(2);
      expect(await rows(db, 'SELECT id FROM g WHERE id >= 6 ORDER BY id')).toEqual([[7], [9]]);
      // ON DUPLICATE KEY UPDATE: the row holding the email is updated (VALUES() is the new row's).
      r = await db.query(
        "INSERT INTO g VALUES (10, 'b', 'new', 10) ON DUPLICATE KEY UPDATE n = n + 100, city = VALUES(city)",
      );
      expect(r.affectedRows).toBe(2);
      expect(await rows(db, "SELECT id, city, n FROM g WHERE email = 'b'")).toEqual([[2, 'new', 102]]);
      // Unchanged: 0; no collision: inserted, 1; assignments left to right.
      expect(
        (await db.query("INSERT INTO g VALUES (11, 'b', 'new', 0) ON DUPLICATE KEY UPDATE city = 'new'"))
          .affectedRows,
      ).toBe(0);
      expect(
        (await db.query("INSERT INTO g VALUES (12, 'd', 'r', 12) ON DUPLICATE KEY UPDATE n = 0"))
          .affectedRows,
      ).toBe(1);
      await db.query(
        "INSERT INTO g VALUES (13, 'd', 'r', 5) ON DUPLICATE KEY UPDATE n = VALUES(n) * 2, city = n",
      );
      expect(await rows(db, "SELECT id, city, n FROM g WHERE email = 'd'")).toEqual([[12, '10', 10]]);
      // The update may not make a new collision; nor change the key onto another's.
      expect(
        await errno(db.query("INSERT INTO g VALUES (14, 'd', 'r', 5) ON DUPLICATE KEY UPDATE email = 'a'")),
      ).toBe(1062);
      await db.query("INSERT INTO g VALUES (1, 'zz', 'r', 5) ON DUPLICATE KEY UPDATE id = 100");
      expect(await rows(db, "SELECT id FROM g WHERE email = 'a'")).toEqual([[100]]);
      // REPLACE: every row it collides with (by key, by email) deleted, then inserted.
      r = await db.query("REPLACE INTO g VALUES (2, 'd', 'rep', 0)");
      expect(r.affectedRows).toBe(3);
      expect(
        await rows(db, "SELECT id, email FROM g WHERE id IN (2, 12) OR email IN ('b', 'd') ORDER BY id"),
      ).toEqual([[2, 'd']]);
      expect(
        (await db.query("REPLACE INTO g VALUES (20, 'e', 'r', 0), (21, 'e', 'r', 1)")).affectedRows,
      ).toBe(3);
      expect(await rows(db, "SELECT id FROM g WHERE email = 'e'")).toEqual([[21]]);
      // UPDATE onto a taken email: 1062, nothing changed.
      expect(await errno(db.query("UPDATE g SET email = 'e' WHERE id = 2"))).toBe(1062);
      expect(await rows(db, 'SELECT email FROM g WHERE id = 2')).toEqual([['d']]);
    } finally {
      await db.close();
    }
  });

  it('UNIQUE over a DECIMAL column and a table without a primary key', async () => {
    const { db } = await memDb();
    try {
      await db.query(
        'CREATE TABLE m (amount DECIMAL(10,2) UNIQUE, wide DECIMAL(30,10), label VARCHAR(5), UNIQUE (wide))',
      );
      await db.query("INSERT INTO m VALUES (1.50, -0.05, 'a'), (2, 1, 'b')");
      expect(await errno(db.query("INSERT INTO m VALUES (1.5, 7, 'c')"))).toBe(1062);
      expect(
        (await db.query("INSERT IGNORE INTO m VALUES (1.5, 7, 'c'), (3, -0.05, 'd'), (4, 4, 'e')"))
          .affectedRows,
      ).toBe(1);
      expect((await db.query("REPLACE INTO m VALUES (1.50, 1, 'r')")).affectedRows).toBe(3);
      expect(await rows(db, 'SELECT label FROM m ORDER BY amount')).toEqual([['r'], ['e']]);
      for (const mode of ['prefer', 'cost', 'off']) {
        await db.query(`SET tidemark_indexes = '${mode}'`);
        expect(await rows(db, 'SELECT label FROM m WHERE amount = 1.5')).toEqual([['r']]);
        expect(await rows(db, 'SELECT label FROM m WHERE wide = 4')).toEqual([['e']]);
        expect(await rows(db, 'SELECT label FROM m WHERE wide = 4.0000000000')).toEqual([['e']]);
      }
    } finally {
      await db.close();
    }
  });

  it('a UNIQUE violation by a concurrent transaction: one of two fails with 1062', async () => {
    const { db } = await memDb();
    try {
      await db.query('CREATE TABLE u (id INT PRIMARY KEY, e VARCHAR(9) UNIQUE)');
      const a = db.session();
      const b = db.session();
      await a.query('BEGIN');
      await b.query('BEGIN');
      await a.query("INSERT INTO u VALUES (1, 'same')");
      await b.query("INSERT INTO u VALUES (2, 'same')");
      await a.query('COMMIT');
      expect(await errno(b.query('COMMIT'))).toBe(1062);
      expect(await rows(db, 'SELECT id FROM u')).toEqual([[1]]);
      a.end();
      b.end();
    } finally {
      await db.close();
    }
  });
});

describe('SQL indexes: the planner', () => {
  it('reads through an index for =, IN, ranges and BETWEEN on a leftmost prefix, by cost (EXPLAIN)', async () => {
    const { db } = await memDb();
    try {
      await cities(db, 5000);
      expect(await plan(db, "SELECT id FROM g WHERE city = 'c7'")).toBe(
        [
          'project id',
          '  index range scan g using city (id, city)',
          "    index city = 'c7'",
          "    filter city = 'c7'",
        ].join('\n'),
      );
      expect(await plan(db, "SELECT id FROM g WHERE email = 'u7@x'")).toMatch(/index lookup g using email/);
      expect(await plan(db, 'SELECT id FROM g WHERE email = ?', ['u7@x'])).toMatch(
        /index lookup g using email/,
      );
      expect(await plan(db, 'SELECT id FROM g WHERE n BETWEEN 3 AND 4')).toMatch(
        /index range scan g using kn[\s\S]*index n BETWEEN 3 AND 4/,
      );
      expect(await plan(db, 'SELECT id FROM g WHERE n IN (3, 5, 7.5)')).toMatch(
        /index range scan g using kn/,
      );
      expect(await plan(db, "SELECT id FROM g WHERE city = 'c7' AND n < 10")).toMatch(
        /using city[\s\S]*index city = 'c7'[\s\S]*index n < 10/,
      );
      // Not selective: the whole table costs less than the index.
      expect(await plan(db, 'SELECT id FROM g WHERE n > 3')).toMatch(/full scan g/);
      // The primary key's point read comes first.
      expect(await plan(db, 'SELECT id FROM g WHERE id = 5 AND n = 3')).toMatch(/point read g/);
      // No row can pass: nothing is read.
      expect(await plan(db, 'SELECT id FROM g WHERE n = 2.5')).toMatch(/empty scan g/);
      expect(await plan(db, "SELECT id FROM g WHERE city = 'c7' AND city = 'c8'")).toMatch(/empty scan g/);
      // A string column compared with a number compares as numbers: no index.
      expect(await plan(db, 'SELECT id FROM g WHERE city = 7')).toMatch(/full scan g/);
      // Off for the session: never an index.
      await db.query("SET tidemark_indexes = 'off'");
      expect(await plan(db, "SELECT id FROM g WHERE email = 'u7@x'")).toMatch(/full scan g/);
      await db.query("SET tidemark_indexes = 'cost'");
      // The answers, and the counters.
      const before = db.stats().sql;
      expect(await rows(db, "SELECT id FROM g WHERE city = 'c7' AND n < 10 ORDER BY id")).toEqual(
        ids(5000, (i, n) => i % 50 === 7 && n !== null && n < 10),
      );
      expect(await rows(db, 'SELECT count(*) FROM g WHERE n IN (3, 5, 7.5)')).toEqual([
        [ids(5000, (_, n) => n === 3 || n === 5).length],
      ]);
      expect(await rows(db, 'SELECT id, email FROM g WHERE email = ?', ['u9@x'])).toEqual([[9, 'u9@x']]);
      expect(await rows(db, 'SELECT count(*) FROM g WHERE n IS NULL')).toEqual([
        [ids(5000, (_, n) => n === null).length],
      ]);
      const after = db.stats().sql;
      expect(after.indexScans! - (before.indexScans ?? 0)).toBeGreaterThanOrEqual(2);
      expect(after.indexLookups! - (before.indexLookups ?? 0)).toBeGreaterThanOrEqual(1);
    } finally {
      await db.close();
    }
  });

  it('ORDER BY ... LIMIT in index order, forward and backward; MIN and MAX from an end of an index', async () => {
    const { db } = await memDb();
    try {
      await cities(db, 5000);
      expect(await plan(db, 'SELECT id, n FROM g ORDER BY n LIMIT 3')).toBe(
        [
          'limit 3',
          '  project id, n',
          '    index range scan g using kn (id, n)',
          '      in index order',
        ].join('\n'),
      );
      expect(await rows(db, 'SELECT id, n FROM g ORDER BY n LIMIT 3')).toEqual([
        [0, null],
        [97, null],
        [194, null],
      ]);
      expect(await plan(db, 'SELECT id, n FROM g ORDER BY n DESC LIMIT 3')).toMatch(
        /in index order, descending/,
      );
      expect(await rows(db, 'SELECT id, n FROM g ORDER BY n DESC, id DESC LIMIT 3')).toEqual([
        [4984, 996],
        [3987, 996],
        [2990, 996],
      ]);
      expect(await plan(db, "SELECT id, n FROM g WHERE city = 'c7' ORDER BY n DESC LIMIT 3")).toMatch(
        /using city[\s\S]*in index order, descending/,
      );
      expect(
        await rows(db, "SELECT id, n FROM g WHERE city = 'c7' ORDER BY city, n LIMIT 3 OFFSET 2"),
      ).toEqual([
        [1007, 10],
        [2007, 13],
        [4007, 19],
      ]);
      expect(await plan(db, 'SELECT id FROM g ORDER BY id DESC LIMIT 2')).toMatch(
        /full scan g[\s\S]*in key order, descending/,
      );
      expect(await rows(db, 'SELECT id FROM g ORDER BY id DESC LIMIT 2')).toEqual([[4999], [4998]]);
      // Not in an index's order: sorted.
      expect(await plan(db, 'SELECT id FROM g ORDER BY email DESC, n LIMIT 2')).toMatch(
        /full scan g[\s\S]*sorted by email DESC, n/,
      );
      expect(await plan(db, 'SELECT id FROM g ORDER BY n + 1 LIMIT 2')).toMatch(/^limit 2\n\s+sort /);
      expect(await plan(db, 'SELECT MIN(n) FROM g')).toMatch(
        /limit 1\n\s+index range scan g using kn[\s\S]*in index order/,
      );
      expect(await rows(db, 'SELECT MIN(n), MAX(n) FROM g')).toEqual([[0, 996]]);
      expect(await rows(db, 'SELECT MIN(n) FROM g')).toEqual([[0]]);
      expect(await rows(db, "SELECT MAX(n) + 1, MAX(n) FROM g WHERE city = 'c3'")).toEqual([[966, 965]]);
      expect(await rows(db, "SELECT MAX(n) FROM g WHERE city = 'nowhere'")).toEqual([[null]]);
      expect(await rows(db, 'SELECT MAX(n) FROM g WHERE n IS NULL')).toEqual([[null]]);
      expect(await rows(db, 'SELECT MIN(id) FROM g WHERE id > 10')).toEqual([[11]]);
    } finally {
      await db.close();
    }
  });

  it('index nested-loop joins when the inner side is indexed on the join key (inner and LEFT)', async () => {
    const { db } = await memDb();
    try {
      await cities(db, 5000);
      await db.query('CREATE TABLE s (id INT PRIMARY KEY, k INT, name VARCHAR(10))');
      await db.query("INSERT INTO s VALUES (1, 7, 'a'), (2, 996, 'b'), (3, NULL, 'c'), (4, 123456, 'd')");
      expect(await plan(db, 'SELECT s.name, g.id FROM s JOIN g ON g.n = s.k')).toBe(
        [
          'project s.name, g.id',
          '  index nested loop join on g.n = s.k where g.n = s.k',
          '    full scan s (id, k, name)',
          '    index lookup g using kn (id, n)',
        ].join('\n'),
      );
      expect(await rows(db, 'SELECT s.name, g.id FROM s JOIN g ON g.n = s.k ORDER BY g.id')).toEqual([
        ['a', 7],
        ['b', 996],
        ['a', 1004],
        ['b', 1993],
        ['a', 2001],
        ['b', 2990],
        ['a', 2998],
        ['b', 3987],
        ['a', 3995],
        ['b', 4984],
        ['a', 4992],
      ]);
      expect(await plan(db, 'SELECT s.name, g.email FROM s JOIN g ON g.id = s.k')).toMatch(
        /point read g key id/,
      );
      expect(
        await rows(db, "SELECT s.name, g.email FROM s JOIN g ON g.email = CONCAT('u', s.k, '@x') ORDER BY 1"),
      ).toEqual([
        ['a', 'u7@x'],
        ['b', 'u996@x'],
      ]);
      const left =
        "SELECT s.name, g.id FROM s LEFT JOIN g ON g.n = s.k AND g.city <> 'c7' ORDER BY s.name, g.id";
      expect(await plan(db, left)).toMatch(/left index nested loop join[\s\S]*filter g.city <> 'c7'/);
      expect(await rows(db, left)).toEqual([
        ['a', 1004],
        ['a', 2001],
        ['a', 2998],
        ['a', 3995],
        ['a', 4992],
        ['b', 996],
        ['b', 1993],
        ['b', 2990],
        ['b', 3987],
        ['b', 4984],
        ['c', null],
        ['d', null],
      ]);
      // Indexes off: the same answers by hash joins.
      await db.query("SET tidemark_indexes = 'off'");
      expect((await rows(db, left)).length).toBe(12);
      // A large outer side: lookups give way to a hash join (same answer).
      await db.query("SET tidemark_indexes = 'cost'");
      expect(await rows(db, 'SELECT count(*) FROM g a JOIN g b ON a.n = b.id')).toEqual([[4948]]);
    } finally {
      await db.close();
    }
  });

  it('bounds follow SQL comparisons across types (an index gives what a scan gives)', async () => {
    const { db } = await memDb();
    try {
      await db.query(`CREATE TABLE v (id INT PRIMARY KEY, i INT, b BIGINT, d DECIMAL(10,2), f DOUBLE, s VARCHAR(9), t DATETIME, w DECIMAL(40,10),
        KEY (i), KEY (b), KEY (d), KEY (f), KEY (s), KEY (t), KEY (w), KEY (i, s))`);
      await db.query(`INSERT INTO v VALUES
        (1, 1, 9007199254740993, 0.10, 0.1, 'a', '2024-01-02 10:00:00', 0.1),
        (2, 2, 9007199254740992, 1.50, 1.5, 'ab', '2024-01-02 10:00:00.5', 1.5),
        (3, -2, -9223372036854775808, -2.50, -2.5, 'B', '1999-12-31', -2.5),
        (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (5, 3, 9223372036854775807, 99999999.99, 1e300, '10', '2038-01-19 03:14:07', 123456789012345678901234567890.1234567891),
        (6, 0, 0, 0, -0.0, '', '1970-01-01', 0)`);
      const conds = [
        'i = 2.5',
        'i > 1.5',
        'i <= 1.5',
        "i = '2'",
        "i > '1.5x'",
        'i = 2e0',
        'i IN (1, 2.0, 3.5, NULL)',
        'i <=> NULL',
        'i BETWEEN 0.5 AND 2',
        'b = 9007199254740993',
        'b = 9007199254740992e0',
        'b > 9007199254740992',
        'b < -9.3e18',
        "b = '9007199254740993'",
        'b >= 9.3e18',
        'd = 0.1',
        'd = 0.1e0',
        'd = 1.5e0',
        'd > 0.1e0',
        "d = '1.5'",
        'd < 0.05',
        'd BETWEEN 0 AND 1.5',
        'd = 99999999.99',
        'f = 0.1',
        'f = 0.1e0',
        'f = 0',
        'f < 0',
        'f > 1e299',
        "f = '1.5'",
        'f = 9007199254740993',
        "s = 'a'",
        "s >= 'a'",
        "s < 'b'",
        's = 10',
        "s BETWEEN 'a' AND 'b'",
        's BETWEEN 1 AND 20',
        "s IN ('a', 'B', 10)",
        "s > ''",
        's IS NULL',
        "t = '2024-01-02 10:00:00'",
        "t > '2024-01-02'",
        't < 20000101',
        "t BETWEEN '2024-01-01' AND '2024-01-03'",
        't <= 0',
        'w = 0.1',
        'w = 0.1e0',
        'w > 123456789012345678901234567890',
        'w = 123456789012345678901234567890.1234567891',
        "i = 2 AND s = 'ab'",
        "i IN (1, 2) AND s > 'a'",
        'i = 1 AND s IS NOT NULL',
        'i IS NULL AND s IS NULL',
      ];
      const answers = new Map<string, unknown[][]>();
      await db.query("SET tidemark_indexes = 'off'");
      for (const c of conds) answers.set(c, await rows(db, `SELECT id FROM v WHERE ${c} ORDER BY id`));
      for (const mode of ['prefer', 'cost']) {
        await db.query(`SET tidemark_indexes = '${mode}'`);
        for (const c of conds)
          expect([c, await rows(db, `SELECT id FROM v WHERE ${c} ORDER BY id`)]).toEqual([c, answers.get(c)]);
      }
      // Spot checks of the answers themselves.
      expect(answers.get('i = 2.5')).toEqual([]);
      expect(answers.get('b = 9007199254740993')).toEqual([[1]]);
      expect(answers.get('d = 0.1e0')).toEqual([[1]]);
      expect(answers.get('s BETWEEN 1 AND 20')).toEqual([[5]]);
      // ORDER BY each column in index order gives what the sort gives.
      for (const col of ['i', 'b', 'd', 'f', 's', 't', 'w']) {
        await db.query("SET tidemark_indexes = 'off'");
        const want = await rows(db, `SELECT ${col}, id FROM v ORDER BY ${col} DESC, id DESC LIMIT 4`);
        await db.query("SET tidemark_indexes = 'prefer'");
        expect(await plan(db, `SELECT ${col}, id FROM v ORDER BY ${col} DESC, id DESC LIMIT 4`)).toMatch(
          /in index order, descending/,
        );
        expect(await rows(db, `SELECT ${col}, id FROM v ORDER BY ${col} DESC, id DESC LIMIT 4`)).toEqual(
          want,
        );
      }
    } finally {
      await db.close();
    }
  });

  it("a transaction's own writes are seen through the indexes; UPDATE and DELETE find their rows through them", async () => {
    const { db } = await memDb();
    try {
      await cities(db, 3000);
      await db.query("SET tidemark_indexes = 'prefer'");
      await db.query('BEGIN');
      await db.query("INSERT INTO g VALUES (10000, 'new@x', 'c7', 5)");
      await db.query("UPDATE g SET city = 'moved' WHERE email = 'u7@x'");
      expect(await rows(db, "SELECT id FROM g WHERE city = 'c7' AND n = 5")).toEqual([[10000]]);
      expect(await rows(db, "SELECT id FROM g WHERE city = 'moved'")).toEqual([[7]]);
      expect(await rows(db, "SELECT id FROM g WHERE email = 'new@x'")).toEqual([[10000]]);
      const gone = ids(3000, (i, n) => i % 50 === 8 && n !== null && n < 100).length;
      expect(gone).toBeGreaterThan(0);
      expect((await db.query("DELETE FROM g WHERE city = 'c8' AND n < 100")).affectedRows).toBe(gone);
      expect(await rows(db, "SELECT count(*) FROM g WHERE city = 'c8'")).toEqual([[60 - gone]]);
      await db.query('ROLLBACK');
      expect(await rows(db, "SELECT count(*) FROM g WHERE city = 'c8'")).toEqual([[60]]);
      expect(await rows(db, "SELECT id FROM g WHERE email = 'new@x'")).toEqual([]);
      // A plan cached before an index was made uses it after; one dropped is not read.
      await db.query('CREATE TABLE p (id INT PRIMARY KEY, x INT)');
      await db.query('INSERT INTO p VALUES (1, 1), (2, 2)');
      const q = 'SELECT id FROM p WHERE x = ?';
      expect(await rows(db, q, [2])).toEqual([[2]]);
      await db.query('CREATE INDEX px ON p (x)');
      expect(await plan(db, q, [2])).toMatch(/using px/);
      expect(await rows(db, q, [2])).toEqual([[2]]);
      await db.query('DROP INDEX px ON p');
      expect(await rows(db, q, [2])).toEqual([[2]]);
    } finally {
      await db.close();
    }
  });
});
