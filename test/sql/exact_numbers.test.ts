import { describe, expect, test } from 'vitest';
import { Decimal } from '../../src/index.js';
import { memDb } from '../helpers/db.js';

/** A result's values as text (Decimals print their scale; bigints their digits). */
async function texts(
  db: { query(sql: string): Promise<{ rows: unknown[][] }> },
  sql: string,
): Promise<string[][]> {
  const r = await db.query(sql);
  return r.rows.map((row) =>
    row.map((v) => (v === null ? 'NULL' : (v as string | number | bigint | Decimal).toString())),
  );
}

async function one(db: { query(sql: string): Promise<{ rows: unknown[][] }> }, sql: string): Promise<string> {
  return (await texts(db, sql))[0]![0]!;
}

describe('exact numbers in SQL: DECIMAL and the full BIGINT range', () => {
  test("the issue's examples: money sums exactly, 64-bit identifiers are kept", async () => {
    const { db, reopen } = await memDb({ checkpoint: { onClose: false, intervalMs: 0 } });
    let current = db;
    const db2 = () => current;
    await db.query('CREATE TABLE m2 (id BIGINT PRIMARY KEY, price DECIMAL(15,2), qty INT)');
    await db.query('INSERT INTO m2 VALUES (1234567890123456789, 0.10, 1), (9007199254740993, 0.20, 2)');
    for (const round of ['memtable', 'object', 'reopened']) {
      expect(await one(db2(), 'SELECT SUM(price) FROM m2'), round).toBe('0.30');
      expect(await one(db2(), 'SELECT SUM(price) = 0.30 FROM m2'), round).toBe('1');
      expect(await one(db2(), 'SELECT AVG(price) FROM m2'), round).toBe('0.150000');
      expect(await texts(db2(), 'SELECT id, price FROM m2 ORDER BY id'), round).toEqual([
        ['9007199254740993', '0.20'],
        ['1234567890123456789', '0.10'],
      ]);
      expect(await one(db2(), 'SELECT price FROM m2 WHERE id = 1234567890123456789'), round).toBe('0.10');
      expect(await one(db2(), 'SELECT id FROM m2 WHERE price < 0.15'), round).toBe('1234567890123456789');
      expect(await one(db2(), 'SELECT SUM(price * qty) FROM m2'), round).toBe('0.50');
      if (round === 'memtable') await current.flush();
      else if (round === 'object') {
        await current.close();
        current = await reopen();
      }
    }
    await current.close();
  });

  test('literals and arithmetic as MySQL types them', async () => {
    const { db } = await memDb();
    const cases: [string, string][] = [
      ['0.1 + 0.2 = 0.3', '1'],
      ['0.1 + 0.2', '0.3'],
      ['CAST(0.1 AS DECIMAL(10,2)) * 3', '0.30'],
      ['1/3', '0.3333'],
      ['2/3', '0.6667'],
      ['1.00/3', '0.333333'],
      ['7/2', '3.5000'],
      ['1.5 * 2', '3.0'],
      ['0.1 * 0.1', '0.01'],
      ['5.5 % 2', '1.5'],
      ['0.5 DIV 0.1', '5'],
      ['-0.00', '0.00'],
      ['ROUND(1.23, 5)', '1.23000'],
      ['ROUND(1.298, 1)', '1.3'],
      ['ROUND(-1.5)', '-2'],
      ['ROUND(2.5)', '3'],
      ['ROUND(-0.005, 2)', '-0.01'],
      ['TRUNCATE(1.239, 2)', '1.23'],
      ['TRUNCATE(-1.239, 2)', '-1.23'],
      ['ROUND(1234, -2)', '1200'],
      ['FLOOR(-1.5)', '-2'],
      ['CEIL(1.2)', '2'],
      ['ABS(-1.50)', '1.50'],
      ['CAST(1000 AS DECIMAL(3,1))', '99.9'],
      ["CAST('12.345' AS DECIMAL(10,2))", '12.35'],
      ['CAST(-1 AS UNSIGNED)', '18446744073709551615'],
      ['CAST(1.5 AS SIGNED)', '2'],
      ["CAST('9223372036854775807' AS SIGNED)", '9223372036854775807'],
      ['18446744073709551615', '18446744073709551615'],
      ['18446744073709551616', '18446744073709551616'],
      ['-9223372036854775808', '-9223372036854775808'],
      ['9223372036854775807 * -1', '-9223372036854775807'],
      ['9007199254740993 + 1', '9007199254740994'],
      ['9007199254740993 = 9007199254740992', '0'],
      ['1e0 / 4', '0.25'],
      ['0.5 + 1e0', '1.5'],
      ['~0', '18446744073709551615'],
      ['1 << 63', '9223372036854775808'],
      [
        '12345678901234567890123456789012345.123456789012345678901234567890 + 0',
        '12345678901234567890123456789012345.123456789012345678901234567890',
      ],
    ];
    for (const [expr, want] of cases) expect(await one(db, `SELECT ${expr}`), expr).toBe(want);
    for (const bad of [
      '9223372036854775807 + 1',
      '-9223372036854775808 - 1',
      '4294967296 * 4294967296',
      '18446744073709551615 + 1',
    ]) {
      await expect(db.query(`SELECT ${bad}`), bad).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        details: { mysqlErrno: 1690 },
      });
    }
    await db.close();
  });

  test('column ranges: BIGINT, BIGINT UNSIGNED, INT UNSIGNED, TINYINT, DECIMAL(p, s) are checked on writes', async () => {
    const { db } = await memDb();
    await db.query(
      'CREATE TABLE r (id INT PRIMARY KEY, b BIGINT, u BIGINT UNSIGNED, iu INT UNSIGNED, t TINYINT, d DECIMAL(5,2), w DECIMAL(65,30))',
    );
    await db.query(
      `INSERT INTO r VALUES (1, -9223372036854775808, 18446744073709551615, 4294967295, -128, 999.99, '${'9'.repeat(35)}.${'9'.repeat(30)}')`,
    );
    await db.query(
      "INSERT INTO r VALUES (2, 9223372036854775807, 0, 0, 127, -999.994, '-0.000000000000000000000000000001')",
    );
    expect(await texts(db, 'SELECT b, u, iu, t, d, w FROM r ORDER BY id')).toEqual([
      [
        '-9223372036854775808',
        '18446744073709551615',
        '4294967295',
        '-128',
        '999.99',
        `${'9'.repeat(35)}.${'9'.repeat(30)}`,
      ],
      ['9223372036854775807', '0', '0', '127', '-999.99', '-0.000000000000000000000000000001'],
    ]);
    const bad = [
      '(3, 9223372036854775808, 0, 0, 0, 0, 0)',
      '(3, 0, -1, 0, 0, 0, 0)',
      '(3, 0, 18446744073709551616, 0, 0, 0, 0)',
      '(3, 0, 0, 4294967296, 0, 0, 0)',
      '(3, 0, 0, 0, 128, 0, 0)',
      '(3, 0, 0, 0, 0, 1000, 0)',
      '(3, 0, 0, 0, 0, 999.995, 0)',
    ];
    for (const v of bad)
      await expect(db.query(`INSERT INTO r VALUES ${v}`), v).rejects.toMatchObject({
        details: { mysqlErrno: 1264 },
      });
    expect(await one(db, 'SELECT COUNT(*) FROM r')).toBe('2');
    // Sums past 2^53 and past 2^64 stay exact.
    expect(await one(db, 'SELECT SUM(u) + SUM(u) FROM r')).toBe('36893488147419103230');
    expect(await one(db, 'SELECT SUM(d), SUM(w) FROM r')).toBe('0.00');
    expect(await one(db, 'SELECT MAX(u) FROM r')).toBe('18446744073709551615');
    expect(await one(db, 'SELECT u FROM r WHERE u > 18446744073709551614')).toBe('18446744073709551615');
    await db.close();
  });

  test('DECIMAL keys and exact filters, grouping and ordering after flush and merge', async () => {
    const { db } = await memDb();
    await db.query('CREATE TABLE k (p DECIMAL(10,3) PRIMARY KEY, g DECIMAL(4,1), n BIGINT)');
    const rows: string[] = [];
    for (let i = 0; i < 300; i++) rows.push(`(${(i - 150) / 8}, ${(i % 7) / 2}, ${2n ** 60n + BigInt(i)})`);
    await db.query(`INSERT INTO k VALUES ${rows.join(', ')}`);
    const check = async (what: string) => {
      expect(await one(db, 'SELECT COUNT(*) FROM k WHERE p >= -1.125 AND p < 2.5'), what).toBe('29');
      expect(await one(db, 'SELECT SUM(p) FROM k'), what).toBe('-18.750');
      expect(
        await texts(db, 'SELECT g, COUNT(*), SUM(n) FROM k GROUP BY g ORDER BY g LIMIT 2'),
        what,
      ).toEqual([
        [
          '0.0',
          '43',
          String(
            43n * 2n ** 60n +
              [...Array(300).keys()].filter((i) => i % 7 === 0).reduce((a, b) => a + BigInt(b), 0n),
          ),
        ],
        [
          '0.5',
          '43',
          String(
            43n * 2n ** 60n +
              [...Array(300).keys()].filter((i) => i % 7 === 1).reduce((a, b) => a + BigInt(b), 0n),
          ),
        ],
      ]);
      expect(await one(db, 'SELECT p FROM k ORDER BY p DESC LIMIT 1'), what).toBe('18.625');
      expect(await one(db, 'SELECT n FROM k WHERE p = -0.125'), what).toBe(String(2n ** 60n + 149n));
    };
    await check('memtable');
    await db.flush();
    await db.query(`UPDATE k SET g = g + 0.5 WHERE p < 0`);
    await db.query(`UPDATE k SET g = g - 0.5 WHERE p < 0`);
    await db.compact();
    await check('merged');
    expect(Decimal.parse('1.50')!.toString()).toBe('1.50');
    await db.close();
  });
});

test('composite primary keys with BIGINTs past 2^53 and DECIMALs keep their order and uniqueness', async () => {
  const { db } = await memDb();
  await db.query('CREATE TABLE c (a BIGINT, b INT, PRIMARY KEY (a, b))');
  const big = [
    '-9223372036854775808',
    '-9007199254740993',
    '-9007199254740992',
    '-1',
    '0',
    '9007199254740991',
    '9007199254740992',
    '9007199254740993',
    '9007199254740994',
    '9223372036854775807',
  ];
  await db.query(
    `INSERT INTO c VALUES ${[...big]
      .reverse()
      .map((a) => `(${a}, 1)`)
      .join(', ')}`,
  );
  await expect(db.query('INSERT INTO c VALUES (9007199254740993, 1)')).rejects.toMatchObject({
    code: 'DUPLICATE_KEY',
  });
  expect((await texts(db, 'SELECT a FROM c')).map((r) => r[0])).toEqual(big);
  await db.query('CREATE TABLE d (a DECIMAL(40,20), b INT, PRIMARY KEY (a, b))');
  const decs = [
    '-1.00000000000000000001',
    '-1.00000000000000000000',
    '0.09999999999999999999',
    '0.10000000000000000000',
    '0.10000000000000000001',
    '0.10000000000000000555',
    '0.25000000000000000000',
    '12345678901234567890.12345678901234567890',
  ];
  await db.query(
    `INSERT INTO d VALUES ${[...decs]
      .reverse()
      .map((a) => `(${a}, 2)`)
      .join(', ')}`,
  );
  await expect(db.query('INSERT INTO d VALUES (0.1, 2)')).rejects.toMatchObject({ code: 'DUPLICATE_KEY' });
  expect((await texts(db, 'SELECT a FROM d')).map((r) => r[0])).toEqual(decs);
  expect(await one(db, 'SELECT b FROM d WHERE a = 0.10000000000000000001')).toBe('2');
  await db.close();
});

describe('exact numbers: found by review and by the differential campaign', () => {
  test('BIGINT keys past 2^53: point reads and ranges with doubles, bigints and parameters', async () => {
    const { db } = await memDb();
    await db.query('CREATE TABLE t (id BIGINT PRIMARY KEY, v INT)');
    await db.query(
      'INSERT INTO t VALUES (10000000000000000, 1), (20000000000000000, 2), (-9223372036854775808, 3), (5, 4), (1152921504606846976, 5)',
    );
    const vs = async (sql: string, p: unknown[] = []) =>
      (await db.query(sql, p)).rows.map((r) => String(r[0])).join(',');
    expect(await vs('SELECT v FROM t WHERE id = 1e16')).toBe('1');
    expect(await vs('SELECT v FROM t WHERE id >= 1e16 ORDER BY id')).toBe('1,2,5');
    expect(await vs('SELECT v FROM t WHERE id > 1e16 ORDER BY id')).toBe('2,5');
    expect(await vs('SELECT v FROM t WHERE id BETWEEN 1e16 AND 3e16 ORDER BY id')).toBe('1,2');
    expect(await vs('SELECT v FROM t WHERE id >= -1e19 ORDER BY id')).toBe('3,4,1,2,5');
    expect(await vs('SELECT v FROM t WHERE id < -1e16')).toBe('3');
    expect(await vs('SELECT v FROM t WHERE id = ?', [2 ** 60])).toBe('5');
    expect(await vs('SELECT v FROM t WHERE id = ?', [2n ** 60n])).toBe('5');
    expect(await vs('SELECT v FROM t WHERE id = 10000000000000000.5')).toBe('');
    expect((await db.query('UPDATE t SET v = 9 WHERE id >= 1e16')).affectedRows).toBe(3);
    await db.close();
  });

  test('a DOUBLE that holds a whole number stays a DOUBLE: point reads, groups, aggregates, joins', async () => {
    const { db } = await memDb();
    await db.query('CREATE TABLE t (id INT PRIMARY KEY, f DOUBLE)');
    await db.query('INSERT INTO t VALUES (1, 1), (2, 2)');
    const third = String(1 / 3);
    expect(await one(db, 'SELECT f / 3 FROM t WHERE id = 1')).toBe(third);
    expect((await texts(db, 'SELECT f / 3 FROM t GROUP BY f ORDER BY f')).map((r) => r[0])).toEqual([
      third,
      String(2 / 3),
    ]);
    expect(await one(db, 'SELECT MIN(f) / 3 FROM t')).toBe(third);
    expect(await one(db, 'SELECT SUM(f) / 3 FROM t')).toBe('1');
    expect(await one(db, 'SELECT AVG(DISTINCT f) FROM t')).toBe('1.5');
    expect(await one(db, 'SELECT b.f / 3 FROM t a, t b WHERE a.id = 2 AND b.id = 1')).toBe(third);
    expect(await one(db, 'SELECT b.f / 3 FROM t a LEFT JOIN t b ON b.id = a.id - 1 WHERE a.id = 2')).toBe(
      third,
    );
    expect(
      await one(db, 'SELECT x / 3 FROM (SELECT f AS x FROM t ORDER BY id LIMIT 5) s ORDER BY x LIMIT 1'),
    ).toBe(third);
    await db.close();
  });

  test('AUTO_INCREMENT past 2^53, DEFAULTs past 2^53, DECIMAL keys with UNIQUE columns', async () => {
    const { db, reopen } = await memDb({ checkpoint: { onClose: false, intervalMs: 0 } });
    await db.query('CREATE TABLE ai (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)');
    await db.query('INSERT INTO ai VALUES (9007199254740991, 1)');
    await db.query('INSERT INTO ai (v) VALUES (2), (3)');
    await db.query('INSERT INTO ai VALUES (9007199254741000, 4)');
    await db.query('INSERT INTO ai (v) VALUES (5)');
    expect((await texts(db, 'SELECT id FROM ai ORDER BY id')).map((r) => r[0])).toEqual([
      '9007199254740991',
      '9007199254740992',
      '9007199254740993',
      '9007199254741000',
      '9007199254741001',
    ]);
    await db.query(
      'CREATE TABLE df (id INT PRIMARY KEY, a BIGINT DEFAULT 9223372036854775807, d DECIMAL(10,2) DEFAULT 1.5)',
    );
    await db.query('INSERT INTO df (id) VALUES (1)');
    await db.query('CREATE TABLE k (d DECIMAL(10,2) PRIMARY KEY, x INT UNIQUE, y INT)');
    await db.query('INSERT INTO k VALUES (1.5, 1, 1), (2, 2, 2)');
    await db.query('UPDATE k SET y = 5 WHERE d = 1.5');
    await expect(db.query('UPDATE k SET x = 2 WHERE d = 1.5')).rejects.toMatchObject({
      code: 'DUPLICATE_KEY',
    });
    await db.close();
    const again = await reopen();
    expect(await texts(again, 'SELECT a, d FROM df')).toEqual([['9223372036854775807', '1.50']]);
    await again.query('INSERT INTO df (id) VALUES (2)');
    expect(await one(again, 'SELECT COUNT(*) FROM df WHERE a = 9223372036854775807')).toBe('2');
    const create = (await again.query('SHOW CREATE TABLE df')).rows[0]![1] as string;
    expect(create).toContain('DECIMAL(10,2)');
    expect((await texts(again, 'DESCRIBE k')).map((r) => r[1])).toEqual(['decimal(10,2)', 'int', 'int']);
    await again.query('CREATE TABLE u (id INT PRIMARY KEY, b BIGINT UNSIGNED)');
    expect((await again.query('SHOW CREATE TABLE u')).rows[0]![1] as string).toContain('BIGINT UNSIGNED');
    await again.close();
  });

  test('literals, HEX and BIGINT UNSIGNED arithmetic as MySQL types them', async () => {
    const { db } = await memDb();
    expect(await one(db, 'SELECT -9223372036854775809')).toBe('-9223372036854775809');
    expect(await one(db, 'SELECT -18446744073709551615')).toBe('-18446744073709551615');
    expect(await one(db, 'SELECT -9223372036854775808')).toBe('-9223372036854775808');
    expect(await one(db, 'SELECT HEX(1.5)')).toBe('2');
    expect(await one(db, 'SELECT HEX(255.0)')).toBe('FF');
    expect(await one(db, 'SELECT CONCAT((2 ^ -1) + 0e0, 1)')).toBe('1.8446744073709552e191');
    for (const bad of [
      '0 - (1 ^ 0)',
      'CAST(1 AS UNSIGNED) - 2',
      '~0 + 1',
      '-(~0)',
      '-(-9223372036854775808)',
    ]) {
      await expect(db.query(`SELECT ${bad}`), bad).rejects.toMatchObject({ details: { mysqlErrno: 1690 } });
    }
    expect(await one(db, 'SELECT (1 ^ 0) - 1')).toBe('0');
    expect(await one(db, 'SELECT 5 - (1 ^ 0)')).toBe('4');
    await db.close();
  });

  test('joins of DECIMAL with INT and of BIGINTs past 2^53 with numbers match by value', async () => {
    const { db } = await memDb();
    await db.query('CREATE TABLE a (id INT PRIMARY KEY, d DECIMAL(10,2), b BIGINT)');
    await db.query('CREATE TABLE b (id INT PRIMARY KEY, n INT, m BIGINT)');
    await db.query(
      'INSERT INTO a VALUES (1, 2.00, 9007199254740993), (2, 2.50, 3), (3, 3, 9007199254740992)',
    );
    await db.query('INSERT INTO b VALUES (1, 2, 9007199254740993), (2, 3, 9007199254740992), (3, 4, 3)');
    expect(await texts(db, 'SELECT a.id, b.id FROM a JOIN b ON a.d = b.n ORDER BY a.id')).toEqual([
      ['1', '1'],
      ['3', '2'],
    ]);
    expect(await texts(db, 'SELECT a.id, b.id FROM a JOIN b ON a.b = b.m ORDER BY a.id')).toEqual([
      ['1', '1'],
      ['2', '3'],
      ['3', '2'],
    ]);
    await db.close();
  });
});

test('sums of large exact values go through the kernels in chunks, exactly', async () => {
  const { db } = await memDb();
  await db.query('CREATE TABLE s (id INT PRIMARY KEY, v BIGINT, d DECIMAL(18,2), g INT)');
  const n = 10_000;
  const rows: string[] = [];
  for (let i = 0; i < n; i++) rows.push(`(${i}, ${2 ** 40 + i}, ${2 ** 40 + i}.25, ${i % 3})`);
  for (let i = 0; i < n; i += 2000)
    await db.query(`INSERT INTO s VALUES ${rows.slice(i, i + 2000).join(', ')}`);
  const tri = (BigInt(n) * BigInt(n - 1)) / 2n;
  const want = BigInt(n) * 2n ** 40n + tri;
  for (const round of ['memtable', 'object']) {
    expect(await one(db, 'SELECT SUM(v) FROM s'), round).toBe(String(want));
    expect(await one(db, 'SELECT SUM(d) FROM s'), round).toBe(
      `${want + BigInt(n) / 4n}.${n % 4 === 0 ? '00' : '??'}`,
    );
    const byGroup = await texts(db, 'SELECT g, SUM(v) FROM s GROUP BY g ORDER BY g');
    const sums = [0n, 0n, 0n];
    for (let i = 0; i < n; i++) sums[i % 3]! += 2n ** 40n + BigInt(i);
    expect(byGroup, round).toEqual(sums.map((s, g) => [String(g), String(s)]));
    await db.flush();
  }
  await db.close();
});

test('a string with an exponent past every range is out of range, never 0', async () => {
  const { db } = await memDb();
  await db.query('CREATE TABLE r (id INT PRIMARY KEY, b BIGINT, d DECIMAL(10,2))');
  for (const row of ["(1, '1e5000', 0)", "(1, 0, '1e5000')", "(1, 0, '-1e99999999999999999999')"])
    await expect(db.query(`INSERT INTO r VALUES ${row}`), row).rejects.toMatchObject({
      details: { mysqlErrno: 1264 },
    });
  await db.query("INSERT INTO r VALUES (1, 0, '1e-5000')");
  expect(await texts(db, 'SELECT b, d FROM r')).toEqual([['0', '0.00']]);
  expect(await one(db, "SELECT CAST('1e5000' AS DECIMAL(10,2))")).toBe('99999999.99');
  await db.close();
});
