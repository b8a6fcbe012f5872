import { describe, expect, test } from 'vitest';
import { TableSchema } from '../../src/schema/schema.js';
import { Decimal } from '../../src/util/decimal.js';
import { collect, memDb } from '../helpers/db.js';

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const SAFE = 2 ** 53 - 1;

/** The int64 values at every boundary: ±2^53 ± 1, ±2^63, and small ones. */
const INT64_EDGES: (number | bigint)[] = [
  I64_MIN,
  I64_MIN + 1n,
  -(2n ** 53n) - 1n,
  -(2n ** 53n),
  -SAFE,
  -SAFE + 1,
  -1,
  0,
  1,
  SAFE - 1,
  SAFE,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 62n + 12345n,
  I64_MAX - 1n,
  I64_MAX,
];

const UINT64_EDGES: (number | bigint)[] = [
  0,
  1,
  SAFE,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 2n,
  2n ** 64n - 1n,
];

/** How the API returns an integer: a number when safe, a bigint otherwise. */
function canon(v: number | bigint): number | bigint {
  return typeof v === 'bigint' && v >= -BigInt(SAFE) && v <= BigInt(SAFE) ? Number(v) : v;
}

const DEC_SPEC = {
  columns: {
    id: 'int64',
    u: { type: 'uint64', nullable: true },
    price: { type: 'decimal', precision: 15, scale: 2, nullable: true },
    huge: { type: 'decimal', precision: 65, scale: 30, nullable: true },
  },
  primaryKey: 'id',
} as const;

const HUGE_MAX = `${'9'.repeat(35)}.${'9'.repeat(30)}`;

describe('64-bit integers and decimals through the engine', () => {
  test('int64 keys at every boundary: memtable, WAL replay, object after flush, merge, ordered scans', async () => {
    const { db, reopen } = await memDb({ checkpoint: { onClose: false, intervalMs: 0 } });
    await db.createTable('t', DEC_SPEC);
    const rows = INT64_EDGES.map((id, i) => ({
      id,
      u: UINT64_EDGES[i % UINT64_EDGES.length]!,
      price: null,
      huge: null,
    }));
    // Inserted in a shuffled order: the key order must be numeric across numbers and bigints.
    for (const r of [...rows].reverse()) await db.insert('t', r);
    const want = rows.map((r) => ({ ...r, id: canon(r.id), u: canon(r.u) }));
    const check = async (d: typeof db, what: string) => {
      expect(await collect(d.scan('t')), what).toEqual(want);
      expect(await collect(d.scan('t', { reverse: true })), what).toEqual([...want].reverse());
      for (const r of want) expect(await d.get('t', r.id), `${what}: get ${r.id}`).toEqual(r);
      // A range across the safe boundary.
      const range = await collect(d.scan('t', { gte: SAFE, lt: 2n ** 62n + 12346n }));
      expect(
        range.map((r) => r['id']),
        what,
      ).toEqual([SAFE, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n + 12345n]);
      const batches = await collect(d.scanBatches('t', { columns: ['id', 'u'] }));
      expect(
        batches.flatMap((b) => Array.from(b.columns['id'] as ArrayLike<unknown>)),
        what,
      ).toEqual(want.map((r) => r.id));
      expect(
        batches.flatMap((b) => Array.from(b.columns['u'] as ArrayLike<unknown>)),
        what,
      ).toEqual(want.map((r) => r.u));
    };
    await check(db, 'memtable');
    await db.close();
    const again = await reopen();
    await check(again, 'replayed from the WAL');
    await again.flush();
    await check(again, 'object after flush');
    // A second object with updates, then a merge of both.
    await again.update('t', I64_MAX, { u: 2n ** 64n - 1n });
    await again.update('t', I64_MAX, { u: UINT64_EDGES[INT64_EDGES.length - 1 - UINT64_EDGES.length]! });
    await again.delete('t', 2n ** 53n + 1n);
    await again.insert('t', { id: 2n ** 53n + 1n, u: 2n ** 63n, price: null, huge: null });
    const idx = want.findIndex((r) => r.id === 2n ** 53n + 1n);
    want[idx] = { ...want[idx]!, u: 2n ** 63n };
    const last = want.length - 1;
    want[last] = { ...want[last]!, u: canon(UINT64_EDGES[INT64_EDGES.length - 1 - UINT64_EDGES.length]!) };
    await again.flush();
    await check(again, 'two objects');
    await again.compact('t');
    await check(again, 'merged');
    await again.checkpoint({ global: true });
    await again.close();
    const third = await reopen();
    await check(third, 'reopened from a checkpoint after the merge');
    await third.close();
    // safeIntegers: every 64-bit integer as a bigint, in rows and in batches.
    const big = await reopen({ safeIntegers: true });
    expect(await big.get('t', 1)).toEqual({
      id: 1n,
      u: BigInt(want.find((r) => r.id === 1)!.u),
      price: null,
      huge: null,
    });
    const ids = (await collect(big.scan('t'))).map((r) => r['id']);
    expect(ids).toEqual(want.map((r) => BigInt(r.id)));
    const [b] = await collect(big.scanBatches('t', { columns: ['id'] }));
    expect(Array.from(b!.columns['id'] as ArrayLike<unknown>)).toEqual(want.map((r) => BigInt(r.id)));
    await big.close();
  });

  test('numbers that are not safe integers are refused, never rounded; ranges are checked', async () => {
    const { db } = await memDb();
    await db.createTable('t', DEC_SPEC);
    const bad = async (row: Record<string, unknown>, code: string) =>
      expect(db.insert('t', { id: 1, ...row })).rejects.toMatchObject({ code });
    await bad({ id: 2 ** 53 }, 'INVALID_ARGUMENT');
    await bad({ id: 1.5 }, 'SCHEMA');
    await bad({ id: 2n ** 63n }, 'INVALID_ARGUMENT');
    await bad({ id: I64_MIN - 1n }, 'INVALID_ARGUMENT');
    await bad({ u: -1 }, 'INVALID_ARGUMENT');
    await bad({ u: 2n ** 64n }, 'INVALID_ARGUMENT');
    await bad({ price: '10000000000000.00' }, 'INVALID_ARGUMENT'); // 14 integer digits in DECIMAL(15, 2)
    await bad({ price: 'abc' }, 'SCHEMA');
    await bad({ price: Infinity }, 'SCHEMA');
    await bad({ huge: `1${HUGE_MAX}` }, 'INVALID_ARGUMENT');
    await expect(db.get('t', 2 ** 60)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      db.createTable('d', {
        columns: { k: 'int32', d: { type: 'decimal', precision: 66 } },
        primaryKey: 'k',
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      db.createTable('d', {
        columns: { k: 'int32', d: { type: 'decimal', precision: 5, scale: 6 } },
        primaryKey: 'k',
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // The database stays usable, nothing was written.
    expect(await collect(db.scan('t'))).toEqual([]);
    await db.close();
  });

  test('decimals are exact: text with the column scale, rounding half away from zero, 65 digits', async () => {
    const { db, reopen } = await memDb({ checkpoint: { onClose: false, intervalMs: 0 } });
    await db.createTable('t', DEC_SPEC);
    const cases: [unknown, unknown, string | null, string | null][] = [
      // given price, given huge, price as read, huge as read
      ['0.10', '0', '0.10', `0.${'0'.repeat(30)}`],
      [0.2, '-0', '0.20', `0.${'0'.repeat(30)}`],
      ['0.005', HUGE_MAX, '0.01', HUGE_MAX],
      ['-0.005', `-${HUGE_MAX}`, '-0.01', `-${HUGE_MAX}`],
      ['0.0049999', '1e-30', '0.00', `0.${'0'.repeat(29)}1`],
      ['-0.00', '5e-31', '0.00', `0.${'0'.repeat(29)}1`],
      ['9999999999999.99', '-5e-31', '9999999999999.99', `-0.${'0'.repeat(29)}1`],
      [
        '-9999999999999.99',
        '123456789012345678901234567890.5',
        '-9999999999999.99',
        '123456789012345678901234567890.500000000000000000000000000000',
      ],
      [new Decimal(12345n, 3), 12n, '12.35', `12.${'0'.repeat(30)}`],
      [null, null, null, null],
    ];
    const want = cases.map(([, , p, h], i) => ({ id: i, u: null, price: p, huge: h }));
    await db.insert(
      't',
      cases.map(([p, h], i) => ({ id: i, u: null, price: p, huge: h })),
    );
    const check = async (d: typeof db, what: string) => {
      expect(await collect(d.scan('t')), what).toEqual(want);
      const [b] = await collect(d.scanBatches('t', { columns: ['price'], decimals: 'scaled' }));
      // Scaled integers (a null is 0 there, flagged in the null map).
      expect(Array.from(b!.columns['price'] as ArrayLike<unknown>), what).toEqual(
        want.map((r) => (r.price === null ? 0 : Number(r.price.replace('.', '')))),
      );
      expect(Array.from(b!.nulls!['price']!), what).toEqual(want.map((r) => (r.price === null ? 1 : 0)));
    };
    await check(db, 'memtable');
    await db.close();
    const again = await reopen();
    await check(again, 'replayed');
    await again.flush();
    await check(again, 'object');
    await again.compact('t');
    await check(again, 'merged');
    await again.close();
  });

  test('decimal primary keys keep numeric order, narrow and wide', async () => {
    const { db } = await memDb();
    await db.createTable('n', {
      columns: { k: { type: 'decimal', precision: 10, scale: 3 }, v: 'int32' },
      primaryKey: 'k',
    });
    await db.createTable('w', {
      columns: { k: { type: 'decimal', precision: 40, scale: 5 }, v: 'int32' },
      primaryKey: 'k',
    });
    const keys = ['-9999999.999', '-1.5', '-0.001', '0', '0.001', '2', '10.25', '9999999.999'];
    const wide = [
      '-99999999999999999999999999999999999.99999',
      '-1',
      '-0.00001',
      '0',
      '3.5',
      `${'9'.repeat(35)}.99999`,
    ];
    for (const [i, k] of [...keys].reverse().entries()) await db.insert('n', { k, v: i });
    for (const [i, k] of [...wide].reverse().entries()) await db.insert('w', { k, v: i });
    const norm = (k: string, s: number) => new Decimal(Decimal.parse(k)!.rescale(s).u, s).toString();
    for (const flush of [false, true]) {
      if (flush) await db.flush();
      expect((await collect(db.scan('n'))).map((r) => r['k'])).toEqual(keys.map((k) => norm(k, 3)));
      expect((await collect(db.scan('w'))).map((r) => r['k'])).toEqual(wide.map((k) => norm(k, 5)));
      expect(await db.get('w', '3.50000')).toEqual({ k: '3.50000', v: 1 });
      expect(await db.get('n', -1.5)).toEqual({ k: '-1.500', v: 6 });
      expect((await collect(db.scan('n', { gte: '-0.001', lt: '2' }))).map((r) => r['k'])).toEqual([
        '-0.001',
        '0.000',
        '0.001',
      ]);
    }
    await db.close();
  });
});

describe('a number given for a decimal column', () => {
  test('takes the fast path only where it gives what the text of the number gives (20,000 values)', () => {
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (const [p, s] of [
      [15, 2],
      [18, 6],
      [10, 0],
      [18, 18],
    ] as const) {
      const schema = TableSchema.fromSpec('d', {
        columns: { k: 'int32', d: { type: 'decimal', precision: p, scale: s } },
        primaryKey: 'k',
      });
      const col = schema.column('d');
      for (let i = 0; i < 5000; i++) {
        // Decimal texts of up to s + 2 digits (ties and values needing rounding), and raw doubles.
        const digits = Math.floor(rand() * (s + 3));
        const v =
          i % 3 === 0
            ? (rand() - 0.5) * 10 ** Math.floor(rand() * (p - s))
            : Number(((rand() - 0.5) * 10 ** Math.floor(rand() * (p - s))).toFixed(digits));
        const slow = Decimal.fromNumber(v)!.rescale(s);
        let want: unknown;
        try {
          const safe =
            slow.u <= BigInt(Number.MAX_SAFE_INTEGER) && slow.u >= -BigInt(Number.MAX_SAFE_INTEGER);
          want = slow.intDigits > p - s ? 'out of range' : safe ? Number(slow.u) : slow.u;
        } catch {
          want = 'out of range';
        }
        let got: unknown;
        try {
          got = schema.normalizeValue(col, v);
        } catch {
          got = 'out of range';
        }
        expect(got, `${v} as DECIMAL(${p}, ${s})`).toEqual(want);
      }
    }
  });
});

test('decimal keys: a value between two keys is no key, a bound past the range is past every key', async () => {
  const { db } = await memDb();
  await db.createTable('n', {
    columns: { k: { type: 'decimal', precision: 10, scale: 2 }, v: 'int32' },
    primaryKey: 'k',
  });
  await db.insert('n', [
    { k: '1.55', v: 1 },
    { k: '1.56', v: 2 },
    { k: '2', v: 3 },
    { k: '-1.55', v: 4 },
  ]);
  const keys = async (o: Record<string, unknown>) => (await collect(db.scan('n', o))).map((r) => r['k']);
  expect(await db.get('n', '1.554')).toBeUndefined();
  expect(await db.get('n', '1.550')).toEqual({ k: '1.55', v: 1 });
  expect(await keys({ gte: '1.554' })).toEqual(['1.56', '2.00']);
  expect(await keys({ lt: '1.559' })).toEqual(['-1.55', '1.55']);
  expect(await keys({ gte: '-1.554', lt: '1e20' })).toEqual(['-1.55', '1.55', '1.56', '2.00']);
  expect(await keys({ gte: '-1.556', lt: '1.55' })).toEqual(['-1.55']);
  expect(await keys({ gte: '-1e20', lt: '-1.549' })).toEqual(['-1.55']);
  expect(await keys({ gte: '-1.549' })).toEqual(['1.55', '1.56', '2.00']);
  await db.flush();
  expect(await keys({ gte: '1.554', lt: '1e20' })).toEqual(['1.56', '2.00']);
  expect(await db.get('n', '1.554')).toBeUndefined();
  await db.close();
});
