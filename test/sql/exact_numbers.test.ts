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
