import { expect, test } from 'vitest';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { open, TidemarkError, type Database } from '../../src/index.js';
import { runTs } from '../helpers/child.js';
import { ACCOUNTS, memDb } from '../helpers/db.js';
import { codeOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * Bad input, case by case: each gets a TidemarkError with the expected code, where it is first
 * seen, and leaves the database usable with nothing acknowledged lost.
 */
type Case = [name: string, code: string, run: (db: Database) => unknown];

const big = 'x'.repeat(16 * 1024 * 1024 + 1);
const cases: Case[] = [
  // Values
  ['wrong type: string into int64', 'SCHEMA', (db) => db.insert('a', { id: 'one', owner: 'x', balance: 0 })],
  ['wrong type: number into string', 'SCHEMA', (db) => db.insert('a', { id: 1, owner: 5, balance: 0 })],
  ['wrong type: fraction into int64', 'SCHEMA', (db) => db.insert('a', { id: 1.5, owner: 'x', balance: 0 })],
  [
    'wrong type: string into bool',
    'SCHEMA',
    (db) => db.insert('a', { id: 1, owner: 'x', balance: 0, active: 'yes' }),
  ],
  [
    'wrong type: Date into float64',
    'SCHEMA',
    (db) => db.insert('a', { id: 1, owner: 'x', balance: new Date() }),
  ],
  [
    'unknown column in a row',
    'SCHEMA',
    (db) => db.insert('a', { id: 1, owner: 'x', balance: 0, colour: 'red' }),
  ],
  ['unknown column in an update', 'SCHEMA', (db) => db.update('a', 100, { colour: 'red' })],
  ['unknown column in scan columns', 'SCHEMA', (db) => db.scan('a', { columns: ['id', 'nope'] })],
  ['unknown column in get columns', 'SCHEMA', (db) => db.get('a', 100, { columns: ['nope'] })],
  ['missing primary key', 'SCHEMA', (db) => db.insert('a', { owner: 'x', balance: 0 })],
  ['null in a non-null column', 'SCHEMA', (db) => db.insert('a', { id: 1, owner: null, balance: 0 })],
  ['missing non-null column', 'SCHEMA', (db) => db.insert('a', { id: 1, owner: 'x' })],
  ['null in an update of a non-null column', 'SCHEMA', (db) => db.update('a', 100, { balance: null })],
  ['row that is not an object', 'SCHEMA', (db) => db.insert('a', 42 as never)],
  ['row that is an array', 'SCHEMA', (db) => db.insert('a', [[1, 'x', 0]] as never)],
  ['NaN as a key', 'INVALID_ARGUMENT', (db) => db.get('a', Number.NaN)],
  ['Infinity as a key', 'INVALID_ARGUMENT', (db) => db.delete('a', Infinity)],
  ['NaN as a key in a row', 'INVALID_ARGUMENT', (db) => db.insert('f', { k: Number.NaN })],
  ['-Infinity as a float key', 'INVALID_ARGUMENT', (db) => db.get('f', -Infinity)],
  ['key of the wrong type', 'SCHEMA', (db) => db.get('a', 'abc')],
  ['null key', 'SCHEMA', (db) => db.get('a', null)],
  [
    'int64 beyond the safe range',
    'INVALID_ARGUMENT',
    (db) => db.insert('a', { id: 2 ** 60, owner: 'x', balance: 0 }),
  ],
  [
    'bigint beyond the int64 range',
    'INVALID_ARGUMENT',
    (db) => db.insert('a', { id: 2n ** 63n, owner: 'x', balance: 0 }),
  ],
  ['int32 out of range', 'INVALID_ARGUMENT', (db) => db.insert('i', { k: 2 ** 31 })],
  [
    'oversized string (over 16 MiB)',
    'INVALID_ARGUMENT',
    (db) => db.insert('a', { id: 1, owner: big, balance: 0 }),
  ],
  ['oversized key string', 'INVALID_ARGUMENT', (db) => db.insert('s', { k: 'k'.repeat(5000) })],
  [
    'lone surrogate in a string',
    'INVALID_ARGUMENT',
    (db) => db.insert('a', { id: 1, owner: '\ud800', balance: 0 }),
  ],
  ['update changing the primary key', 'INVALID_ARGUMENT', (db) => db.update('a', 100, { id: 101 })],
  ['update with a non-object patch', 'SCHEMA', (db) => db.update('a', 100, 'x' as never)],
  ['duplicate key', 'DUPLICATE_KEY', (db) => db.insert('a', { id: 100, owner: 'dup', balance: 0 })],
  // Tables
  ['unknown table', 'NOT_FOUND', (db) => db.get('missing', 1)],
  [
    'unknown table in a transaction',
    'NOT_FOUND',
    (db) => db.transaction((tx) => tx.insert('missing', { id: 1 })),
  ],
  ['drop of an unknown table', 'NOT_FOUND', (db) => db.dropTable('missing')],
  ['table name that is not a string', 'INVALID_ARGUMENT', (db) => db.get(7 as never, 1)],
  ['create of an existing table', 'INVALID_ARGUMENT', (db) => db.createTable('a', ACCOUNTS)],
  ['table name with a path separator', 'INVALID_ARGUMENT', (db) => db.createTable('a/b', ACCOUNTS)],
  ['table name with ..', 'INVALID_ARGUMENT', (db) => db.createTable('..', ACCOUNTS)],
  ['empty table name', 'INVALID_ARGUMENT', (db) => db.createTable('', ACCOUNTS)],
  ['very long table name', 'INVALID_ARGUMENT', (db) => db.createTable('t'.repeat(65), ACCOUNTS)],
  ['table name with a control character', 'INVALID_ARGUMENT', (db) => db.createTable('a\u0001b', ACCOUNTS)],
  [
    'column name with a space',
    'INVALID_ARGUMENT',
    (db) => db.createTable('c', { columns: { 'a b': 'int32' }, primaryKey: 'a b' }),
  ],
  [
    'unknown column type',
    'INVALID_ARGUMENT',
    (db) => db.createTable('c', { columns: { a: 'decimal128' as never }, primaryKey: 'a' }),
  ],
  [
    'primary key not a column',
    'INVALID_ARGUMENT',
    (db) => db.createTable('c', { columns: { a: 'int32' }, primaryKey: 'b' }),
  ],
  [
    'nullable primary key',
    'INVALID_ARGUMENT',
    (db) => db.createTable('c', { columns: { a: { type: 'int32', nullable: true } }, primaryKey: 'a' }),
  ],
  ['no columns', 'INVALID_ARGUMENT', (db) => db.createTable('c', { columns: {}, primaryKey: 'a' })],
  ['spec that is not an object', 'INVALID_ARGUMENT', (db) => db.createTable('c', null as never)],
  // Options of calls
  ['negative scan limit', 'INVALID_ARGUMENT', (db) => db.scan('a', { limit: -1 })],
  ['fractional scan limit', 'INVALID_ARGUMENT', (db) => db.scan('a', { limit: 1.5 })],
  ['batchRows of 0', 'INVALID_ARGUMENT', (db) => db.scanBatches('a', { batchRows: 0 })],
  ['columns that is not an array', 'INVALID_ARGUMENT', (db) => db.scan('a', { columns: 'id' as never })],
  ['scan bound of the wrong type', 'SCHEMA', (db) => db.scan('a', { gte: 'x' })],
  ['transaction without a function', 'INVALID_ARGUMENT', (db) => db.transaction(undefined as never)],
];

async function codeOfCall(fn: () => unknown): Promise<string> {
  try {
    const r = fn();
    // Scans are lazy iterables: a bad call must throw when made, not on first use.
    if (r instanceof Promise) await r;
    return 'no error';
  } catch (e) {
    return e instanceof TidemarkError ? e.code : `not a TidemarkError: ${String(e)}`;
  }
}

test(`${cases.length} cases of bad input each give their code and leave the database usable`, async () => {
  expect(cases.length).toBeGreaterThanOrEqual(30);
  const { db } = await memDb();
  await db.createTable('a', ACCOUNTS);
  await db.createTable('f', { columns: { k: 'float64' }, primaryKey: 'k' });
  await db.createTable('i', { columns: { k: 'int32' }, primaryKey: 'k' });
  await db.createTable('s', { columns: { k: 'string' }, primaryKey: 'k' });
  await db.insert('a', { id: 100, owner: 'kept', balance: 1 });
  let id = 1000;
  for (const [name, code, run] of cases) {
    expect(await codeOfCall(() => run(db)), name).toBe(code);
    // Still usable, nothing acknowledged lost.
    await db.insert('a', { id: ++id, owner: 'after', balance: 0 });
    expect(await db.get('a', id), name).toBeDefined();
    expect(await db.get('a', 100), name).toMatchObject({ owner: 'kept' });
  }
  expect(db.stats().transactions.active).toBe(0);
  await db.close();
});

test('every call after close gives CLOSED; options of the wrong type or range are INVALID_ARGUMENT', async () => {
  const fs = new MemoryFileService();
  const { db } = await memDb({}, fs);
  await db.createTable('a', ACCOUNTS);
  await db.close();
  const calls: [string, () => unknown][] = [
    ['get', () => db.get('a', 1)],
    ['insert', () => db.insert('a', { id: 1, owner: 'x', balance: 0 })],
    ['upsert', () => db.upsert('a', { id: 1, owner: 'x', balance: 0 })],
    ['update', () => db.update('a', 1, { balance: 1 })],
    ['delete', () => db.delete('a', 1)],
    ['scan', () => db.scan('a')],
    ['scanBatches', () => db.scanBatches('a')],
    ['transaction', () => db.transaction(async () => 1)],
    ['createTable', () => db.createTable('b', ACCOUNTS)],
    ['dropTable', () => db.dropTable('a')],
    ['tables', () => db.tables()],
    ['stats', () => db.stats()],
  ];
  for (const [name, call] of calls) expect(await codeOfCall(call), name).toBe('CLOSED');
  const bad: [string, unknown][] = [
    ['memory.limitBytes', { memory: { limitBytes: -5 } }],
    ['memory.limitBytes type', { memory: { limitBytes: '1GB' } }],
    ['memory.leakDetection', { memory: { leakDetection: 'loud' } }],
    ['wal.sync', { wal: { sync: 'always' } }],
    ['wal.segmentBytes', { wal: { segmentBytes: 10 } }],
    ['checkpoint.intervalMs', { checkpoint: { intervalMs: -1 } }],
    ['checkpoint.walBytesMax', { checkpoint: { walBytesMax: 'big' } }],
    ['transaction.timeoutMs', { transaction: { timeoutMs: 0 } }],
    ['unknown option', { speed: 'fast' }],
    ['unknown nested option', { memory: { limit: 1 } }],
    ['options not an object', 'fast'],
    ['clock that is not a function', { clock: 5 }],
    ['storage.memtableRowsMax', { storage: { memtableRowsMax: 0 } }],
    ['checkpoint.onClose', { checkpoint: { onClose: 'yes' } }],
  ];
  for (const [name, o] of bad)
    expect(await codeOfCall(() => open('x', { ...(o as object), fileService: fs })), name).toBe(
      'INVALID_ARGUMENT',
    );
  expect(await codeOfCall(() => open('x', 'fast' as never)), 'string options').toBe('INVALID_ARGUMENT');
  expect(await codeOfCall(() => open('')), 'empty dir').toBe('INVALID_ARGUMENT');
  // None of these took the directory: it opens.
  const again = await open('x', { fileService: fs });
  expect(again.tables()).toEqual(['a']);
  await again.close();
});

test('close during an open transaction: the transaction gets CLOSED, its writes are not committed', async () => {
  const fs = new MemoryFileService();
  const { db, reopen } = await memDb({}, fs);
  await db.createTable('a', ACCOUNTS);
  let proceed!: () => void;
  const gate = new Promise<void>((r) => (proceed = r));
  const running = db.transaction(async (tx) => {
    await tx.insert('a', { id: 1, owner: 'x', balance: 0 });
    await gate;
    await tx.insert('a', { id: 2, owner: 'y', balance: 0 });
  });
  await new Promise((r) => setTimeout(r, 5));
  await db.close();
  proceed();
  expect((await running.catch((e: unknown) => e)) as { code: string }).toMatchObject({ code: 'CLOSED' });
  const again = await reopen();
  expect(await again.get('a', 1)).toBeUndefined();
  await again.close();
});

test('the same directory opened twice, in this process and from another: LOCKED, and the first stays usable', async () => {
  const t = tempDir();
  try {
    const db = await open(t.dir);
    await db.createTable('a', ACCOUNTS);
    expect(await codeOf(open(t.dir))).toBe('LOCKED');
    const child = await runTs('test/fixtures/open_child.ts', [t.dir]);
    expect(child.stdout.trim()).toBe('LOCKED');
    await db.insert('a', { id: 1, owner: 'x', balance: 0 });
    expect(await db.get('a', 1)).toMatchObject({ owner: 'x' });
    await db.close();
    // Once it is closed, the other process can open it.
    expect((await runTs('test/fixtures/open_child.ts', [t.dir])).stdout.trim()).toBe('opened');
  } finally {
    t.cleanup();
  }
});
