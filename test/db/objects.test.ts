import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { FaultFileService } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import type { FileService } from '../../src/fileservice/types.js';
import type { Database, Transaction } from '../../src/index.js';
import { objectPath } from '../../src/objectio/format.js';
import { ACCOUNTS, collect, memDb } from '../helpers/db.js';
import { codeOf } from '../helpers/errors.js';

/** An in-memory file service whose reads of object files take `delay.ms` milliseconds. */
function slowObjectReads(delay: { ms: number }): FileService {
  const mem = new MemoryFileService();
  const wait = () => new Promise((r) => setTimeout(r, delay.ms));
  return new Proxy(mem, {
    get(target, prop, receiver) {
      if (prop === 'open') {
        return async (...args: Parameters<FileService['open']>) => {
          const h = await target.open(...args);
          if (!args[0].startsWith('obj/')) return h;
          return new Proxy(h, {
            get(t, p) {
              if (p === 'read')
                return async (...a: Parameters<typeof h.read>) => {
                  if (delay.ms > 0) await wait();
                  return t.read(...a);
                };
              const v: unknown = Reflect.get(t, p);
              return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
            },
          });
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Begin a transaction and keep it open until `end` is called. */
async function hold(db: Database): Promise<{ tx: Transaction; end: () => Promise<void> }> {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  let ready!: (tx: Transaction) => void;
  const got = new Promise<Transaction>((r) => (ready = r));
  const result = db.transaction(async (tx) => {
    ready(tx);
    await done;
  });
  const tx = await got;
  return {
    tx,
    end: async () => {
      finish();
      await result;
    },
  };
}

async function sumBalance(db: Database): Promise<number> {
  let sum = 0;
  for await (const b of db.scanBatches('a', { columns: ['balance'] }))
    for (const v of b.columns['balance'] as Float64Array) sum += v;
  return sum;
}

const rows = (from: number, n: number) =>
  Array.from({ length: n }, (_, k) => ({
    id: from + k,
    owner: `owner-${(from + k) % 37}`,
    balance: (from + k) % 100,
  }));

describe('columnar objects', () => {
  test('memtables frozen faster than they flush all reach objects, and flush() returns', async () => {
    // Several freezes while one flush job waits in the queue: each must still be flushed.
    const { db } = await memDb({ storage: { memtableRowsMax: 50, mergeMinObjects: 0 } });
    await db.createTable('a', ACCOUNTS);
    for (let k = 0; k < 40; k++) await db.insert('a', rows(k * 50, 50));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('flush() did not return')), 10_000);
    });
    await Promise.race([db.flush(), timeout]);
    clearTimeout(timer);
    const s = db.stats();
    expect(s.storage.frozenMemtables).toBe(0);
    expect(s.storage.flushes).toBe(40);
    expect((await collect(db.scan('a'))).length).toBe(2000);
    await db.close();
  });

  test('flushed rows read back through get, scan and scanBatches; updates and deletes on top; restart', async () => {
    const fs = new MemoryFileService();
    const { db, reopen } = await memDb({ storage: { rowGroupRows: 100 } }, fs);
    await db.createTable('a', ACCOUNTS);
    for (let i = 0; i < 2000; i += 250) await db.insert('a', rows(i, 250));
    const before = db.stats().memory.pools['memtable']!.bytes;
    await db.flush();
    const s = db.stats();
    expect(s.storage.flushes).toBe(1);
    expect(s.files.objects).toBe(1);
    expect(s.memory.pools['memtable']!.bytes).toBeLessThan(before / 4); // the memtable's memory went back
    expect(await db.get('a', 1234)).toEqual({
      id: 1234,
      owner: `owner-${1234 % 37}`,
      balance: 34,
      active: null,
    });
    expect(await db.get('a', 5000)).toBeUndefined();
    await db.update('a', 10, { balance: 1000 });
    await db.delete('a', 11);
    await db.insert('a', { id: -1, owner: 'new', balance: 7 });
    const scanned = await collect(db.scan('a', { gte: 9, lt: 13, columns: ['id', 'balance'] }));
    expect(scanned).toEqual([
      { id: 9, balance: 9 },
      { id: 10, balance: 1000 },
      { id: 12, balance: 12 },
    ]);
    const expectedSum = 20 * 4950 - 10 + 1000 - 11 + 7;
    expect(await sumBalance(db)).toBe(expectedSum);
    await db.flush();
    expect(db.stats().files.objects).toBe(3); // a data object, then a data and a tombstone object
    expect(await sumBalance(db)).toBe(expectedSum);
    await db.close();
    const again = await reopen();
    expect(again.stats().files.objects).toBe(3);
    expect(await sumBalance(again)).toBe(expectedSum);
    expect(await again.get('a', 11)).toBeUndefined();
    expect((await collect(again.scan('a', { columns: ['id'] }))).length).toBe(2000);
    await again.close();
  });

  test('compaction merges layers into one, drops what no reader needs, and deletes the old files', async () => {
    const fs = new MemoryFileService();
    const { db, reopen } = await memDb({ storage: { rowGroupRows: 64, mergeMinObjects: 0 } }, fs);
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', rows(0, 500));
    await db.flush();
    for (let i = 0; i < 500; i += 2) await db.update('a', i, { balance: -i });
    await db.flush();
    for (let i = 0; i < 500; i += 5) await db.delete('a', i);
    await db.flush();
    const expected = await collect(db.scan('a'));
    // A data object, another for the updates, a tombstone object for the deletes.
    expect(db.stats().files.objects).toBe(3);
    const filesBefore = await fs.list('obj');
    await db.compact();
    expect(db.stats().storage.merges).toBe(1);
    expect(await collect(db.scan('a'))).toEqual(expected);
    // Deletes and superseded versions are gone: one data object with exactly the live rows.
    expect(db.stats().files.objects).toBe(1);
    await new Promise((r) => setTimeout(r, 10));
    const filesAfter = await fs.list('obj');
    expect(filesAfter).toHaveLength(1);
    expect(filesBefore).not.toContain(filesAfter[0]);
    await db.close();
    const again = await reopen();
    expect(await collect(again.scan('a'))).toEqual(expected);
    await again.close();
  });

  test('a snapshot keeps seeing its versions through flushes and merges', async () => {
    const { db } = await memDb({ storage: { rowGroupRows: 64, mergeMinObjects: 0 } });
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', rows(0, 300));
    await db.flush();
    const reader = await hold(db);
    const snapshot = await collect(reader.tx.scan('a'));
    for (let i = 0; i < 300; i += 3) await db.update('a', i, { owner: 'changed' });
    for (let i = 1; i < 300; i += 3) await db.delete('a', i);
    await db.flush();
    await db.compact();
    // The reader's snapshot predates those changes: its versions were kept.
    expect(await collect(reader.tx.scan('a'))).toEqual(snapshot);
    expect(await reader.tx.get('a', 1)).toEqual(snapshot[1]);
    expect(await reader.tx.get('a', 3)).toEqual(snapshot[3]);
    await reader.end();
    // Once it is gone, a new compaction drops them.
    await db.insert('a', { id: 1000, owner: 'x', balance: 0 });
    await db.compact();
    expect((await collect(db.scan('a'))).length).toBe(201);
    await db.close();
  });

  test('an abandoned scan releases its pins; a retired layer lives until its last reader is done', async () => {
    const { db } = await memDb({ storage: { rowGroupRows: 64, mergeMinObjects: 0 } });
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', rows(0, 1000));
    await db.flush();
    await db.insert('a', rows(1000, 1000));
    await db.flush();
    let n = 0;
    const it = db.scan('a');
    for await (const _ of it) {
      n++;
      if (n === 100) {
        // Merging under an open scan: the scan still reads the old layers.
        await db.compact();
      }
      if (n === 150) break;
    }
    expect(db.stats().storage.cache.pinned).toBe(0);
    expect(db.stats().transactions.active).toBe(0);

    await db.close(); // every pool at zero: the pins and the retired layers were released
  });

  test('a corrupted column chunk is CORRUPTION naming the object, never wrong data', async () => {
    const fs = new MemoryFileService();
    const { db } = await memDb({ storage: { rowGroupRows: 100 } }, fs);
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', rows(0, 1000));
    await db.flush();
    const [name] = await fs.list('obj');
    const path = `obj/${name!}`;
    // Flip a byte in the middle of the file (a column chunk).
    const h = await fs.open(path, 'readwrite', 'object');
    const size = await h.size();
    const b = new Uint8Array(1);
    await h.read(b, Math.floor(size / 3));
    b[0]! ^= 0x55;
    await h.write(b, Math.floor(size / 3));
    await h.close();
    // Some read now hits the bad chunk; none returns wrong data.
    const err = await collect(db.scanBatches('a')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CORRUPTION', message: expect.stringContaining(path) });
    await db.insert('a', { id: 5000, owner: 'still', balance: 1 }); // the database goes on
    expect(await db.get('a', 5000)).toMatchObject({ owner: 'still' });
    await db.close();
  });

  test('object files no table names (a crash in a flush) are removed at open', async () => {
    const fs = new MemoryFileService();
    const { db, reopen } = await memDb({}, fs);
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', rows(0, 100));
    await db.flush();
    await db.close();
    const orphan = objectPath(999);
    const h = await fs.open(orphan, 'create-new', 'object');
    await h.write(new Uint8Array(100), 0);
    await h.close();
    const t = await fs.open('obj/00000000000003e8.obj.1-2.tmp', 'create-new', 'object');
    await t.close();
    const again = await reopen();
    expect(await fs.list('obj')).toHaveLength(1);
    expect((await collect(again.scan('a'))).length).toBe(100);
    // New objects never reuse the orphan's id.
    await again.insert('a', rows(100, 10));
    await again.flush();
    expect((await fs.list('obj')).some((n) => parseInt(n.slice(0, 16), 16) > 999)).toBe(true);
    await again.close();
  });

  test('a full disk fails flushes and merges: flush() and compact() fail with IO, commits go on, nothing is lost, the work is retried once space returns', async () => {
    const mem = new MemoryFileService();
    const fs = new FaultFileService(mem);
    const { db, reopen } = await memDb({ storage: { mergeMinObjects: 0 } }, fs);
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', rows(0, 500));
    const until = async (what: () => boolean) => {
      for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(what()).toBe(true);
    };
    // Object writes fail with ENOSPC; the WAL (on another path) still works.
    fs.addRule({ op: 'write', nth: 2, errno: 'ENOSPC', path: /^obj\//, sticky: true });
    const flushed = codeOf(db.flush());
    await until(() => db.stats().storage.flushFailures >= 2);
    await db.insert('a', rows(500, 500)); // commits go on
    expect(await db.get('a', 250)).toMatchObject({ id: 250 });
    expect(await mem.list('obj')).toEqual([]); // each failed attempt deleted what it wrote
    expect(await flushed).toBe('IO');
    fs.clearRules();
    await db.flush();
    expect(db.stats().storage.objects).toBe(2);
    // The same for a merge.
    fs.addRule({ op: 'write', nth: 2, errno: 'ENOSPC', path: /^obj\//, sticky: true });
    const compacted = codeOf(db.compact());
    await until(() => db.stats().storage.mergeFailures >= 2);
    expect(await mem.list('obj')).toHaveLength(2);
    expect(await compacted).toBe('IO');
    fs.clearRules();
    await db.compact();
    expect(db.stats().storage.objects).toBe(1);
    expect((await collect(db.scan('a'))).map((r) => r['id'])).toEqual(rows(0, 1000).map((r) => r.id));
    await db.close();
    const again = await reopen();
    expect((await collect(again.scan('a'))).length).toBe(1000);
    expect(await mem.list('obj')).toHaveLength(1);
    await again.close();
  });

  test('after flushes, merges and reads, at quiescence, the pools are back to their baseline', async () => {
    const { db } = await memDb({ storage: { rowGroupRows: 64, mergeMinObjects: 0 } });
    await db.createTable('a', ACCOUNTS);
    const pools = () => db.stats().memory.pools;
    const baseline = pools();
    const cacheStats = () => db.stats().storage.cache;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) {
        await db.insert('a', rows(round * 4000 + i * 1000, 1000));
        await db.delete('a', round * 4000 + i * 1000);
        await db.flush();
      }
      await db.compact();
      expect(await db.get('a', round * 4000 + 1)).toMatchObject({ id: round * 4000 + 1 });
      expect((await collect(db.scan('a'))).length).toBe((round + 1) * 4000 - (round + 1) * 4);
      for await (const b of db.scanBatches('a', { columns: ['balance'] })) if (b.length > 0) break;
      const now = pools();
      // Everything a flush, merge or read takes is given back: the io and merge pools are empty,
      // the memtables hold what they held with no data, and the cache pins nothing.
      for (const pool of ['io', 'merge', 'memtable', 'wal', 'replay']) {
        expect({ pool, bytes: now[pool]!.bytes, handles: now[pool]!.handles }).toEqual({
          pool,
          bytes: baseline[pool]!.bytes,
          handles: baseline[pool]!.handles,
        });
      }
      expect(cacheStats().pinned).toBe(0);
      // What the cache holds is its entries' buffers, and the meta pool the open objects' filters.
      expect(now['cache']!.bytes).toBe(cacheStats().bytes);
      expect(now['meta']!.handles).toBe(db.stats().storage.objects);
    }
    await db.close();
  });

  test('read-ahead in flight when a scan is abandoned, its layer merged away, or the database closed: nothing leaks', async () => {
    // Object reads take 20 ms while scanning, so the read-ahead of the next row group is in flight.
    const delay = { ms: 0 };
    const { db } = await memDb({ storage: { rowGroupRows: 64, mergeMinObjects: 0 } }, slowObjectReads(delay));
    await db.createTable('a', ACCOUNTS);
    for (let i = 0; i < 4; i++) {
      await db.insert('a', rows(i * 500, 500));
      await db.flush();
    }
    let n = 0;
    delay.ms = 20;
    for await (const _ of db.scan('a')) if (++n === 200) break; // the fourth group is being read ahead
    delay.ms = 0;
    await db.compact(); // the layers being read ahead are merged away and freed
    await new Promise((r) => setTimeout(r, 50));
    expect(db.stats().memory.pools['io']!.bytes).toBe(0);
    expect(db.stats().storage.cache.prefetches).toBeGreaterThan(0);
    n = 0;
    delay.ms = 20;
    for await (const _ of db.scan('a')) if (++n === 200) break;
    await db.close(); // with a read-ahead still in flight: close waits for it, then every pool is at zero
  });

  test('borrowed batches: the same values as copies, views of cached chunks, released as the loop moves on', async () => {
    const { db } = await memDb({ storage: { rowGroupRows: 100 } });
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', rows(0, 1000));
    await db.flush();
    await db.insert('a', rows(1000, 50)); // in a memtable: copied even when borrowing
    const copies: number[] = [];
    for await (const b of db.scanBatches('a', { columns: ['balance'], batchRows: 100 }))
      copies.push(...(b.columns['balance'] as Float64Array));
    const borrowed: number[] = [];
    let views = 0;
    for await (const b of db.scanBatches('a', {
      columns: ['balance', 'active'],
      batchRows: 100,
      borrow: true,
    })) {
      const v = b.columns['balance'] as Float64Array;
      if (v.buffer.byteLength > v.byteLength) {
        views++;
        // A view: its chunk stays pinned while the batch is in hand.
        expect(db.stats().storage.cache.pinned).toBeGreaterThan(0);
      }
      borrowed.push(...v);
    }
    expect(borrowed).toEqual(copies);
    expect(borrowed.length).toBe(1050);
    expect(views).toBeGreaterThanOrEqual(10);
    expect(db.stats().storage.cache.pinned).toBe(0);
    expect(() => db.scanBatches('a', { borrow: 'yes' } as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    await db.close();
  });

  test('dropping a table deletes its objects once no reader holds them', async () => {
    const fs = new MemoryFileService();
    const { db } = await memDb({}, fs);
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', rows(0, 100));
    await db.flush();
    expect(await fs.list('obj')).toHaveLength(1);
    await db.dropTable('a');
    await new Promise((r) => setTimeout(r, 10));
    expect(await fs.list('obj')).toEqual([]);
    await db.close();
  });
});

describe('more data than memory', () => {
  test('ten times the memory limit loads and reads back, with the pools never above the limit', async () => {
    const limit = 16 * 1024 * 1024;
    const { db, reopen } = await memDb({
      memory: { limitBytes: limit, leakDetection: 'simple' },
      storage: { memtableBytesMax: 2 * 1024 * 1024 },
    });
    await db.createTable('a', ACCOUNTS);
    // Owner strings: slices of random text, so that they do not compress away.
    const random = randomBytes(1 << 20).toString('base64');
    const owner = (id: number) =>
      `${random.slice((id * 7919) % (random.length - 400), ((id * 7919) % (random.length - 400)) + 400)}${id}`;
    const total = 420_000; // about 180 MB of rows through the engine
    let expectedSum = 0;
    for (let i = 0; i < total; i += 2000) {
      await db.insert(
        'a',
        Array.from({ length: 2000 }, (_, k) => {
          expectedSum += (i + k) % 1000;
          return { id: i + k, owner: owner(i + k), balance: (i + k) % 1000 };
        }),
      );
    }
    const s = db.stats();
    expect(s.memory.highWaterBytes).toBeLessThanOrEqual(limit);
    expect(s.storage.flushes).toBeGreaterThan(10);
    expect(s.storage.objectBytes).toBeGreaterThan(limit); // on disk, more than memory holds
    expect(await sumBalance(db)).toBe(expectedSum);
    for (const id of [0, 1, 123_456, 419_999]) expect((await db.get('a', id))!['owner']).toBe(owner(id));
    let count = 0;
    for await (const r of db.scan('a', { gte: 200_000, lt: 200_500, columns: ['id'] })) {
      expect(r['id']).toBe(200_000 + count);
      count++;
    }
    expect(count).toBe(500);
    expect(db.stats().memory.highWaterBytes).toBeLessThanOrEqual(limit);
    await db.close();
    const again = await reopen({ memory: { limitBytes: limit, leakDetection: 'simple' } });
    expect(await sumBalance(again)).toBe(expectedSum);
    await again.close();
  }, 120_000);
});
