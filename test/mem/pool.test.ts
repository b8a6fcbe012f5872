import { describe, expect, test } from 'vitest';
import { LeakError, TidemarkError } from '../../src/errors.js';
import { MemoryManager, POOL_NAMES } from '../../src/mem/manager.js';
import type { LeakReport } from '../../src/mem/leak_detector.js';
import { codeOf, codeOfSync as code } from '../helpers/errors.js';
import { gcUntil } from '../helpers/gc.js';

describe('accounting', () => {
  test('every subsystem has its pool and counts exactly', () => {
    const m = new MemoryManager({ limitBytes: 1 << 20, leakDetection: 'disabled' });
    expect(Object.keys(m.stats().pools).sort()).toEqual([...POOL_NAMES].sort());
    const wal = m.pool('wal');
    const a = wal.allocateSync(100, 'wal.record');
    const b = wal.allocateSync(5000, 'wal.record');
    const c = m.pool('memtable').allocateSync(64, 'block');
    // Size classes: 100 -> 128, 5000 -> 8192, 64 -> 64.
    expect(a.capacity).toBe(128);
    expect(b.capacity).toBe(8192);
    expect(a.bytes.length).toBe(100);
    let s = m.stats();
    expect(s.pools.wal).toMatchObject({ bytes: 128 + 8192, handles: 2, allocations: 2, frees: 0 });
    expect(s.pools.memtable).toMatchObject({ bytes: 64, handles: 1 });
    expect(s.bytes).toBe(128 + 8192 + 64);
    a.release();
    b.release();
    c.release();
    s = m.stats();
    expect(s.bytes).toBe(0);
    expect(s.highWaterBytes).toBe(128 + 8192 + 64);
    expect(s.pools.wal).toMatchObject({
      bytes: 0,
      handles: 0,
      allocations: 2,
      frees: 2,
      highWaterBytes: 128 + 8192,
    });
    m.close();
  });

  test('small buffers share slabs and freed slots are reused', () => {
    const m = new MemoryManager({ leakDetection: 'disabled' });
    const p = m.pool('io');
    const a = p.allocateSync(200, 'x');
    const b = p.allocateSync(200, 'x');
    expect(a.arrayBuffer).toBe(b.arrayBuffer); // one slab chunk, two slots
    expect(a.byteOffset).not.toBe(b.byteOffset);
    const offset = b.byteOffset;
    b.release();
    const c = p.allocateSync(256, 'x');
    expect(c.byteOffset).toBe(offset);
    a.release();
    c.release();
    // A large buffer gets its own ArrayBuffer, rounded to 4 KiB.
    const big = p.allocateSync(300_000, 'x');
    expect(big.capacity).toBe(300_000 + (4096 - (300_000 % 4096)));
    expect(big.arrayBuffer.byteLength).toBe(big.capacity);
    big.release();
    expect(m.stats().bytes).toBe(0);
    m.close();
  });

  test('retained free memory is bounded: empty chunks are dropped', () => {
    const m = new MemoryManager({ leakDetection: 'disabled' });
    const p = m.pool('io');
    const held = Array.from({ length: 2000 }, () => p.allocateSync(1024, 'x'));
    for (const h of held) h.release();
    // At most one empty chunk of the 1 KiB class stays.
    expect(m.stats().retainedFreeBytes).toBeLessThanOrEqual(64 * 1024);
    m.close();
  });

  test('typed views alias pooled memory', () => {
    const m = new MemoryManager({ leakDetection: 'disabled' });
    const h = m.pool('memtable').allocateSync(8 * 16, 'col');
    const f = h.float64();
    f[3] = 2.5;
    expect(h.dataView().getFloat64(24, true)).toBe(2.5);
    expect(h.int32(0, 4).length).toBe(4);
    expect(code(() => h.float64(4))).toBe('INVALID_ARGUMENT'); // misaligned
    expect(code(() => h.float64(0, 17))).toBe('INVALID_ARGUMENT'); // too long
    h.release();
    m.close();
  });

  test('reservations account memory without a buffer and can be resized', () => {
    const m = new MemoryManager({ limitBytes: 10_000, leakDetection: 'disabled' });
    const r = m.pool('memtable').reserveSync(4000, 'index');
    r.resize(9000);
    expect(m.stats().pools.memtable!.bytes).toBe(9000);
    expect(code(() => r.resize(20_000))).toBe('MEMORY_LIMIT');
    r.resize(100);
    expect(m.stats().bytes).toBe(100);
    r.release();
    expect(code(() => r.release())).toBe('REFCOUNT');
    m.close();
  });

  test('hand-over moves a buffer and its accounting between subsystems', () => {
    const m = new MemoryManager({ leakDetection: 'paranoid' });
    const h = m.pool('checkpoint').allocateSync(1000, 'ckp.read');
    h.handOver(m.pool('cache'), 'cache.block');
    let s = m.stats();
    expect(s.pools.checkpoint).toMatchObject({ bytes: 0, handles: 0 });
    expect(s.pools.cache).toMatchObject({ bytes: 1024, handles: 1 });
    expect(h.pool).toBe('cache');
    expect(h.owner).toBe('cache.block');
    // The checkpoint pool can close clean: the buffer is no longer its to release.
    m.pool('checkpoint').close();
    h.release();
    s = m.stats();
    expect(s.pools.cache).toMatchObject({ bytes: 0, handles: 0, frees: 1 });
    m.close();
  });

  test('bad sizes and options are INVALID_ARGUMENT', () => {
    expect(code(() => new MemoryManager({ limitBytes: -1 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => new MemoryManager({ limitBytes: 1.5 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => new MemoryManager({ leakDetection: 'loud' as never }))).toBe('INVALID_ARGUMENT');
    expect(code(() => new MemoryManager({ samplingInterval: 0 }))).toBe('INVALID_ARGUMENT');
    const m = new MemoryManager({ leakDetection: 'disabled' });
    expect(code(() => m.pool('nope'))).toBe('INVALID_ARGUMENT');
    expect(code(() => m.pool('io').allocateSync(-1, 'x'))).toBe('INVALID_ARGUMENT');
    expect(code(() => m.pool('io').allocateSync(Number.NaN, 'x'))).toBe('INVALID_ARGUMENT');
    m.close();
    expect(code(() => m.pool('io').allocateSync(1, 'x'))).toBe('CLOSED');
  });
});

describe('owners', () => {
  test('an owner tag is forgotten once nothing of it is live (tags may carry a query text each)', () => {
    const m = new MemoryManager({ limitBytes: 1 << 20, leakDetection: 'disabled' });
    const q = m.pool('query');
    const owners = () => (q as unknown as { owners: Map<string, unknown> }).owners.size;
    const kept = q.reserveSync(10, 'query: kept');
    for (let i = 0; i < 1000; i++) q.reserveSync(100, `query: SELECT ${i}`).release();
    for (let i = 0; i < 100; i++) q.allocateSync(100, `query: buffer ${i}`).release();
    const moved = m.pool('io').allocateSync(64, 'io.read');
    moved.handOver(q, 'query: handed');
    expect(owners()).toBe(2);
    expect(
      q
        .ownerStats()
        .map((o) => o.owner)
        .sort(),
    ).toEqual(['query: handed', 'query: kept']);
    expect(m.pool('io').ownerStats()).toEqual([]);
    kept.release();
    moved.release();
    expect(owners()).toBe(0);
    expect(q.stats()).toMatchObject({ bytes: 0, handles: 0 });
  });
});

describe('the limit', () => {
  test('is never exceeded: an allocation past it waits, then gets the memory when freed', async () => {
    const m = new MemoryManager({ limitBytes: 4096, leakDetection: 'disabled' });
    const p = m.pool('memtable');
    const a = p.allocateSync(4096, 'a');
    expect(p.tryAllocate(64, 'b')).toBeUndefined();
    expect(code(() => p.allocateSync(64, 'b'))).toBe('MEMORY_LIMIT');
    let got = false;
    const waiting = p.allocate(2048, 'b', { timeoutMs: 5000 }).then((h) => {
      got = true;
      return h;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBe(false);
    expect(m.stats().waiters).toBe(1);
    expect(m.stats().bytes).toBe(4096);
    a.release();
    const b = await waiting;
    expect(got).toBe(true);
    expect(m.stats().bytes).toBe(2048);
    expect(m.stats().highWaterBytes).toBeLessThanOrEqual(4096);
    b.release();
    m.close();
  });

  test('a waiter fails with MEMORY_LIMIT after its timeout, and leaves nothing behind', async () => {
    const m = new MemoryManager({ limitBytes: 4096, leakDetection: 'disabled' });
    const p = m.pool('memtable');
    const a = p.allocateSync(4096, 'a');
    const started = Date.now();
    expect(await codeOf(p.allocate(1024, 'b', { timeoutMs: 50 }))).toBe('MEMORY_LIMIT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(m.stats().waiters).toBe(0);
    // A request that can never fit fails at once instead of waiting.
    expect(await codeOf(p.allocate(8192, 'huge', { timeoutMs: 60_000 }))).toBe('MEMORY_LIMIT');
    a.release();
    m.close();
  });

  test('waiters are served first come, first served, and an abort removes one', async () => {
    const m = new MemoryManager({ limitBytes: 4096, leakDetection: 'disabled' });
    const p = m.pool('io');
    const a = p.allocateSync(4096, 'a');
    const order: string[] = [];
    const ac = new AbortController();
    const w1 = p.allocate(4096, 'w1').then((h) => (order.push('w1'), h));
    const w2 = p.allocate(64, 'w2', { signal: ac.signal });
    const w3 = p.allocate(64, 'w3').then((h) => (order.push('w3'), h));
    ac.abort(new Error('gave up'));
    await expect(w2).rejects.toThrow('gave up');
    a.release();
    const h1 = await w1;
    expect(order).toEqual(['w1']); // w3 may not overtake w1 although it would have fitted
    h1.release();
    const h3 = await w3;
    expect(order).toEqual(['w1', 'w3']);
    h3.release();
    m.close();
  });

  test('a pool share caps one subsystem without blocking the others', async () => {
    const m = new MemoryManager({
      limitBytes: 1 << 20,
      leakDetection: 'disabled',
      poolMaxBytes: { cache: 8192 },
    });
    const c = m.pool('cache').allocateSync(8192, 'blk');
    expect(m.pool('cache').tryAllocate(64, 'blk')).toBeUndefined();
    const other = m.pool('wal').allocateSync(64 * 1024, 'rec');
    other.release();
    c.release();
    m.close();
  });

  test('close fails pending waiters with CLOSED', async () => {
    const m = new MemoryManager({ limitBytes: 4096, leakDetection: 'disabled' });
    const a = m.pool('io').allocateSync(4096, 'a');
    const w = m.pool('io').allocate(64, 'b');
    expect(() => m.close()).toThrow(LeakError);
    expect(await codeOf(w)).toBe('CLOSED');
    a.release();
  });
});

describe('the system refusing memory', () => {
  // The manager charges a pool before the ArrayBuffer exists; a RangeError from `new ArrayBuffer`
  // (the process out of address space or over V8's limit) must give the charge back.
  const expectNothingCharged = (m: MemoryManager): void => {
    expect(m.stats()).toMatchObject({ bytes: 0, bufferBytes: 0 });
    expect(m.stats().pools.io).toMatchObject({ bytes: 0, handles: 0 });
  };

  test('a large buffer V8 cannot allocate: MEMORY_LIMIT, nothing left charged', async () => {
    const m = new MemoryManager({ limitBytes: 2 ** 45, leakDetection: 'paranoid' });
    const pool = m.pool('io');
    expect(code(() => pool.allocateSync(2 ** 40, 'io.huge'))).toBe('MEMORY_LIMIT');
    // Not "no room under the limit" (undefined): the limit had room, the system did not.
    expect(code(() => pool.tryAllocate(2 ** 40, 'io.huge'))).toBe('MEMORY_LIMIT');
    expect(await codeOf(pool.allocate(2 ** 40, 'io.huge'))).toBe('MEMORY_LIMIT');
    expectNothingCharged(m);
    pool.allocateSync(100, 'io.small').release();
    m.close();
  });

  test('a slab chunk V8 cannot allocate: MEMORY_LIMIT, nothing left charged', () => {
    const m = new MemoryManager({ leakDetection: 'disabled' });
    const pool = m.pool('io');
    const Real = globalThis.ArrayBuffer;
    globalThis.ArrayBuffer = class extends Real {
      constructor(n: number) {
        if (n >= 4096) throw new RangeError('Array buffer allocation failed');
        super(n);
      }
    } as ArrayBufferConstructor;
    try {
      expect(code(() => pool.allocateSync(100, 'io.small'))).toBe('MEMORY_LIMIT');
    } finally {
      globalThis.ArrayBuffer = Real;
    }
    expectNothingCharged(m);
    pool.allocateSync(100, 'io.small').release();
    m.close();
  });
});

describe('misuse', () => {
  test('a second release throws REFCOUNT and says where the buffer was allocated', () => {
    const m = new MemoryManager({ leakDetection: 'paranoid' });
    const h = m.pool('checkpoint').allocateSync(10, 'ckp.meta');
    h.retain();
    expect(h.release()).toBe(false);
    expect(h.release()).toBe(true);
    let err: unknown;
    try {
      h.release();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('REFCOUNT');
    const msg = (err as Error).message;
    expect(msg).toContain('released again');
    expect(msg).toContain('ckp.meta');
    expect(msg).toMatch(/allocated at:\n.*pool\.test\.ts/);
    expect(msg).toMatch(/finally released at:\n.*pool\.test\.ts/);
    // The accounting was not disturbed by the bad call.
    expect(m.stats().pools.checkpoint).toMatchObject({ bytes: 0, handles: 0 });
    m.close();
  });

  test('a second release is caught at every level, even untracked', () => {
    const m = new MemoryManager({ leakDetection: 'disabled' });
    const h = m.pool('wal').allocateSync(10, 'wal.record');
    h.release();
    expect(code(() => h.release())).toBe('REFCOUNT');
    expect(code(() => h.retain())).toBe('REFCOUNT');
    m.close();
  });

  test('in the debug levels a use after the final release throws and the memory is poisoned', () => {
    for (const level of ['advanced', 'paranoid'] as const) {
      const m = new MemoryManager({ leakDetection: level, samplingInterval: 1 });
      const h = m.pool('replay').allocateSync(16, 'replay.batch');
      const stale = h.bytes;
      stale.fill(7);
      h.release();
      let err: unknown;
      try {
        void h.bytes;
      } catch (e) {
        err = e;
      }
      expect((err as TidemarkError).code).toBe('REFCOUNT');
      expect((err as Error).message).toMatch(
        /used after its final release[\s\S]*allocated at:\n.*pool\.test\.ts/,
      );
      expect(code(() => h.float64())).toBe('REFCOUNT');
      expect(stale[0]).toBe(0xde);
      m.close();
    }
  });
});

/** Allocate and drop handles in a function of its own, so no reference stays on the test's stack. */
function plantLeaks(m: MemoryManager, pool: string, owner: string, n: number, touch = false): void {
  for (let i = 0; i < n; i++) {
    const h = m.pool(pool).allocateSync(100, owner);
    if (touch) h.touch('planted: read by the test').retain().release();
  }
}

describe('leak detection levels', () => {
  test('disabled: counting only, the GC reports nothing, close names the holder by owner', async () => {
    const m = new MemoryManager({ leakDetection: 'disabled' });
    const reports: LeakReport[] = [];
    m.onLeak((r) => reports.push(r));
    plantLeaks(m, 'checkpoint', 'ckp.planted', 3);
    await gcUntil(() => false, 5);
    expect(reports).toEqual([]);
    let err: unknown;
    try {
      m.close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LeakError);
    const le = err as LeakError;
    expect(le.code).toBe('LEAK');
    expect(le.holders).toEqual([{ scope: 'checkpoint', owner: 'ckp.planted', count: 3, bytes: 384 }]);
    expect(le.message).toContain('checkpoint ckp.planted: 3 live, 384 bytes');
  });

  test('simple: about 1 in 128 handles is tracked; a collected one is reported with its stack', async () => {
    const m = new MemoryManager({ leakDetection: 'simple' });
    const reports: LeakReport[] = [];
    m.onLeak((r) => reports.push(r));
    plantLeaks(m, 'replay', 'replay.planted', 2048);
    expect(await gcUntil(() => reports.length >= 4)).toBe(true);
    // 2048 / 128 = 16 expected; the sampling is random, so allow a wide band.
    expect(reports.length).toBeGreaterThanOrEqual(4);
    expect(reports.length).toBeLessThanOrEqual(48);
    expect(reports[0]).toMatchObject({ pool: 'replay', owner: 'replay.planted', bytes: 128, records: [] });
    expect(reports[0]!.stack).toMatch(/plantLeaks.*pool\.test\.ts/);
    // Only the first report of a site is new; the rest repeat it.
    expect(reports.filter((r) => !r.repeated).length).toBe(1);
    const s = m.stats().pools.replay!;
    expect(s.leaksDetected).toBe(reports.length);
    // Accounting is corrected for the reported ones, and never recycled (quarantined).
    expect(s.handles).toBe(2048 - reports.length);
    expect(m.stats().quarantinedBytes).toBe(128 * reports.length);
    expect(() => m.close()).toThrow(LeakError);
  });

  test('simple with a sampling interval of 1 catches a single planted leak deterministically', async () => {
    const m = new MemoryManager({ leakDetection: 'simple', samplingInterval: 1 });
    const reports: LeakReport[] = [];
    m.onLeak((r) => reports.push(r));
    plantLeaks(m, 'checkpoint', 'ckp.buffer', 1);
    expect(await gcUntil(() => reports.length === 1)).toBe(true);
    expect(reports[0]!.stack).toContain('plantLeaks');
    expect(m.stats().pools.checkpoint).toMatchObject({ handles: 0, bytes: 0, leaksDetected: 1 });
    m.close(); // the leak was reported and the accounting corrected: nothing live remains
  });

  test('advanced: sampled, with the last access records', async () => {
    const m = new MemoryManager({ leakDetection: 'advanced', samplingInterval: 1 });
    const reports: LeakReport[] = [];
    m.onLeak((r) => reports.push(r));
    plantLeaks(m, 'merge', 'merge.planted', 1, true);
    expect(await gcUntil(() => reports.length === 1)).toBe(true);
    const r = reports[0]!;
    expect(r.stack).toContain('plantLeaks');
    expect(r.records.length).toBe(3);
    expect(r.records[0]).toMatch(/^planted: read by the test\n.*plantLeaks/);
    expect(r.records[1]).toMatch(/^retain/);
    expect(r.records[2]).toMatch(/^release/);
    m.close();
  });

  test('advanced keeps a bounded number of access records', () => {
    const m = new MemoryManager({ leakDetection: 'advanced', samplingInterval: 1 });
    const h = m.pool('io').allocateSync(10, 'io.buf');
    for (let i = 0; i < 1000; i++) h.touch(`access ${i}`);
    let err: LeakError | undefined;
    try {
      m.close();
    } catch (e) {
      err = e as LeakError;
    }
    const records = err!.holders[0]!.records!;
    expect(records.length).toBeLessThanOrEqual(9);
    // The newest access is always kept; dropped ones are counted.
    expect(records.some((r) => r.startsWith('access 999'))).toBe(true);
    expect(records[records.length - 1]).toMatch(/older access records dropped/);
    h.release();
  });

  test('paranoid: every handle tracked; close lists each holder with its allocation stack', () => {
    const m = new MemoryManager({ leakDetection: 'paranoid' });
    const kept = [
      m.pool('checkpoint').allocateSync(100, 'ckp.data'),
      m.pool('checkpoint').allocateSync(100, 'ckp.data'),
    ];
    const other = m.pool('wal').allocateSync(10, 'wal.record');
    let err: LeakError | undefined;
    try {
      m.close();
    } catch (e) {
      err = e as LeakError;
    }
    expect(err).toBeInstanceOf(LeakError);
    // Two allocations from two lines: two sites of 128 bytes each.
    const ckpHolders = err!.holders.filter((h) => h.scope === 'checkpoint');
    expect(ckpHolders.map((h) => [h.owner, h.count, h.bytes])).toEqual([
      ['ckp.data', 1, 128],
      ['ckp.data', 1, 128],
    ]);
    for (const h of err!.holders) expect(h.stack).toMatch(/pool\.test\.ts/);
    expect(err!.message).toContain('allocated at:');
    for (const h of kept) h.release();
    other.release();
  });

  test('a pool closed with live handles raises LEAK naming each holder', () => {
    const m = new MemoryManager({ leakDetection: 'paranoid' });
    const h = m.pool('checkpoint').allocateSync(10, 'ckp.meta');
    expect(() => m.pool('checkpoint').close()).toThrow(
      /memory pool checkpoint[\s\S]*ckp\.meta: 1 live, 64 bytes[\s\S]*allocated at/,
    );
    h.release();
  });
});

/**
 * Handles owned by the object that allocated them, the engine's common pattern (a class that takes
 * its buffer in its constructor or a method and keeps it in a field). Each planted owner is dropped
 * unreleased: the detector must see every tracked one collected, whatever held the allocation site.
 */
type Pool = ReturnType<MemoryManager['pool']>;
class OwnsFromConstructor {
  readonly buf;
  constructor(pool: Pool) {
    this.buf = pool.allocateSync(100, 'own.constructor');
  }
}
class OwnsFromMethod {
  buf: unknown;
  take(pool: Pool): this {
    this.buf = pool.allocateSync(100, 'own.method');
    return this;
  }
}
let fieldPool: Pool | undefined;
class OwnsFromFieldInitializer {
  readonly buf = fieldPool!.allocateSync(100, 'own.field');
}
function ownsFromClosure(pool: Pool): () => unknown {
  const buf = pool.allocateSync(100, 'own.closure');
  const self = { buf, read: () => self.buf };
  return self.read;
}
class OwnsAndTouches {
  readonly buf;
  constructor(pool: Pool) {
    this.buf = pool.allocateSync(100, 'own.touched');
    this.buf.touch('read by its owner').retain().release();
  }
}

const OWNER_PATTERNS: [string, (p: Pool) => unknown][] = [
  ['constructor', (p) => new OwnsFromConstructor(p)],
  ['method', (p) => new OwnsFromMethod().take(p)],
  [
    'field initializer',
    (p) => {
      fieldPool = p;
      return new OwnsFromFieldInitializer();
    },
  ],
  ['closure', (p) => ownsFromClosure(p)],
  ['constructor with access records', (p) => new OwnsAndTouches(p)],
];

function plantOwned(m: MemoryManager, make: (p: Pool) => unknown, n: number): void {
  const pool = m.pool('merge');
  for (let i = 0; i < n; i++) make(pool);
}

describe('leak detection sees handles owned by the object that allocated them', () => {
  for (const level of ['simple', 'advanced', 'paranoid'] as const) {
    for (const [pattern, make] of OWNER_PATTERNS) {
      test(`${level}: allocated in a ${pattern}`, async () => {
        const m = new MemoryManager({ leakDetection: level, samplingInterval: 1 });
        const reports: LeakReport[] = [];
        m.onLeak((r) => reports.push(r));
        const n = 50;
        plantOwned(m, make, n);
        expect(await gcUntil(() => reports.length === n)).toBe(true);
        expect(reports.length).toBe(n);
        // Every report names its allocation site: the owner's code, in this file.
        for (const r of reports) expect(r.stack).toMatch(/pool\.test\.ts/);
        expect(m.stats().pools.merge).toMatchObject({ handles: 0, bytes: 0, leaksDetected: n });
        m.close();
      });
    }
  }
});
