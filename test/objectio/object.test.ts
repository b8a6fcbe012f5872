import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { keyCompare, TableSchema, type Key } from '../../src/schema/schema.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { MemoryManager } from '../../src/mem/manager.js';
import { bloomAdd, bloomBytes, bloomMayContain } from '../../src/objectio/bloom.js';
import { BlockCache } from '../../src/objectio/cache.js';
import {
  decodeColumn,
  Encoding,
  encodeColumn,
  encodedBound,
  type Allocator,
  type Decoded,
} from '../../src/objectio/encoding.js';
import { ObjectFiles } from '../../src/objectio/files.js';
import { objectPath } from '../../src/objectio/format.js';
import { ObjectReader } from '../../src/objectio/reader.js';
import { ObjectWriter } from '../../src/objectio/writer.js';
import { ByteWriter } from '../../src/util/bytes.js';

const plain: Allocator = {
  f64: (n) => new Float64Array(n),
  i64: (n) => new BigInt64Array(n),
  i32: (n) => new Int32Array(n),
  u8: (n) => new Uint8Array(n),
  u32: (n) => new Uint32Array(n),
};

function roundTrip(col: Decoded): { back: Decoded; encoding: number; bytes: number } {
  const buf = new Uint8Array(encodedBound(col));
  const w = new ByteWriter(buf);
  const encoding = encodeColumn(col, w);
  const back = decodeColumn(buf.subarray(0, w.pos), col.physical, plain, 'test');
  return { back, encoding, bytes: w.pos };
}

function varColumn(values: string[]): Decoded {
  const bytes = values.map((v) => Buffer.from(v, 'utf8'));
  const offsets = new Uint32Array(values.length + 1);
  for (let i = 0; i < values.length; i++) offsets[i + 1] = offsets[i]! + bytes[i]!.length;
  return { n: values.length, physical: 'var', offsets, data: new Uint8Array(Buffer.concat(bytes)) };
}

describe('column codecs', () => {
  test('integers pick CONST, FOR or DELTA and round-trip exactly', () => {
    const seq = Float64Array.from({ length: 1000 }, (_, i) => 1_000_000_000_000 + i * 3);
    const r = roundTrip({ n: 1000, physical: 'f64', f64: seq });
    expect(r.encoding).toBe(Encoding.DELTA);
    expect(r.back.f64).toEqual(seq);
    expect(r.bytes).toBeLessThan(1000); // 8000 raw
    const small = Float64Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000);
    expect(roundTrip({ n: 1000, physical: 'f64', f64: small }).encoding).toBe(Encoding.FOR);
    expect(roundTrip({ n: 5, physical: 'f64', f64: new Float64Array(5).fill(42) }).encoding).toBe(
      Encoding.CONST,
    );
    const floats = Float64Array.from({ length: 100 }, (_, i) => i / 3);
    const f = roundTrip({ n: 100, physical: 'f64', f64: floats });
    expect(f.encoding).toBe(Encoding.RAW);
    expect(f.back.f64).toEqual(floats);
  });

  test('decimals (prices, measurements) pick DECIMAL and round-trip bit for bit', () => {
    const prices = Float64Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 100_000) / 100);
    const p = roundTrip({ n: 1000, physical: 'f64', f64: prices });
    expect(p.encoding).toBe(Encoding.DECIMAL);
    expect(p.back.f64).toEqual(prices);
    expect(p.bytes).toBeLessThan(8000 / 3);
    const tenths = Float64Array.from({ length: 100 }, (_, i) => -5 + i * 0.1); // 0.1 steps, inexact sums
    const t = roundTrip({ n: 100, physical: 'f64', f64: tenths });
    expect(Array.from(t.back.f64!)).toEqual(Array.from(tenths));
    // Not decimals: -0, 1/3, a value needing 7 places, values too wide for 32-bit integers.
    for (const odd of [-0, 1 / 3, 0.1234567, 1e300]) {
      const a = Float64Array.from({ length: 50 }, (_, i) => (i === 20 ? odd : i / 4));
      const r = roundTrip({ n: 50, physical: 'f64', f64: a });
      expect(r.encoding).toBe(Encoding.RAW);
      expect(Object.is(r.back.f64![20], odd)).toBe(true);
    }
  });

  test('strings pick a dictionary when it pays, deflate when that pays', () => {
    const few = Array.from({ length: 1000 }, (_, i) => `colour-${i % 5}`);
    const d = roundTrip(varColumn(few));
    expect(d.encoding).toBe(Encoding.DICT);
    expect(Buffer.from(d.back.data!).toString()).toBe(few.join(''));
    const repetitive = Array.from({ length: 1000 }, (_, i) => `the same long prefix again and again ${i}`);
    expect(roundTrip(varColumn(repetitive)).encoding).toBe(Encoding.DEFLATE);
  });

  test('any column round-trips (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc
            .array(fc.double(), { minLength: 1, maxLength: 300 })
            .map((a): Decoded => ({ n: a.length, physical: 'f64', f64: Float64Array.from(a) })),
          fc
            .tuple(
              fc.array(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), { minLength: 1, maxLength: 300 }),
              fc.integer({ min: 0, max: 8 }),
            )
            .map(([a, k]): Decoded => ({
              n: a.length,
              physical: 'f64',
              f64: Float64Array.from(a, (x) => x / 10 ** k),
            })),
          fc
            .array(fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), { minLength: 1, maxLength: 300 })
            .map((a): Decoded => ({ n: a.length, physical: 'f64', f64: Float64Array.from(a) })),
          fc
            .array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: 1, maxLength: 300 })
            .map((a): Decoded => ({ n: a.length, physical: 'i32', i32: Int32Array.from(a) })),
          fc
            .array(fc.integer({ min: 0, max: 1 }), { minLength: 1, maxLength: 300 })
            .map((a): Decoded => ({ n: a.length, physical: 'u8', u8: Uint8Array.from(a) })),
          fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 300 }).map((a) => varColumn(a)),
        ),
        fc.boolean(),
        (col, withNulls) => {
          if (withNulls) col.nulls = Uint8Array.from({ length: col.n }, (_, i) => (i % 3 === 0 ? 1 : 0));
          const { back } = roundTrip(col);
          expect(back.n).toBe(col.n);
          // Bit for bit (toEqual would take -0 for 0).
          if (col.f64) expect(Buffer.from(back.f64!.buffer)).toEqual(Buffer.from(col.f64.buffer));
          if (col.i32) expect(back.i32).toEqual(col.i32);
          if (col.u8) expect(back.u8).toEqual(col.u8);
          if (col.offsets) {
            expect(back.offsets).toEqual(col.offsets);
            expect(back.data).toEqual(col.data);
          }
          if (withNulls) expect(back.nulls).toEqual(col.nulls);
        },
      ),
      { numRuns: 600 },
    );
  });
});

const schema = TableSchema.fromSpec('t', {
  columns: { id: 'int64', name: 'string', v: { type: 'float64', nullable: true }, ok: 'bool' },
  primaryKey: 'id',
});

async function writeObject(fs: MemoryFileService, memory: MemoryManager, rows: number, groupRows = 1000) {
  const w = await ObjectWriter.create({
    fs,
    id: 7,
    kind: 'data',
    tableId: 1,
    schema,
    compare: keyCompare('int64'),
    pool: memory.pool('io'),
    expectedKeys: rows,
  });
  for (let start = 0; start < rows; start += groupRows) {
    const n = Math.min(groupRows, rows - start);
    const keys = Array.from({ length: n }, (_, i) => (start + i) * 2);
    await w.addRowGroup(
      [
        { n, physical: 'f64', f64: Float64Array.from(keys) },
        varColumn(keys.map((k) => `name-${k % 17}`)),
        {
          n,
          physical: 'f64',
          f64: Float64Array.from(keys, (k) => k / 4),
          nulls: Uint8Array.from(keys, (k) => (k % 10 === 0 ? 1 : 0)),
        },
        { n, physical: 'u8', u8: Uint8Array.from(keys, (k) => (k % 4 === 0 ? 1 : 0)) },
        { n, physical: 'f64', f64: new Float64Array(n).fill(5000) },
      ],
      keys,
    );
  }
  return w.finish();
}

describe('object files', () => {
  test('written, then read back through the block cache; zone maps, bloom filter; pools back to zero', async () => {
    const fs = new MemoryFileService();
    await fs.mkdir('obj');
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    const meta = await writeObject(fs, memory, 3500);
    expect(meta).toMatchObject({
      rows: 3500,
      minKey: 0,
      maxKey: 6998,
      minTs: 5000,
      maxTs: 5000,
      singleVersion: true,
    });
    expect(meta.rowGroups.map((g) => g.rows)).toEqual([1000, 1000, 1000, 500]);
    // Keys 2000..3998 (even), v = key / 4, null where key % 10 === 0: min skips the null 500.
    expect(meta.rowGroups[1]!.chunks[2]).toMatchObject({ min: 500.5, max: 999.5, nulls: 200 });
    const files = new ObjectFiles(fs);
    const cache = new BlockCache(memory.pool('cache'), 1 << 20);
    const r = await ObjectReader.open({
      id: 7,
      files,
      cache,
      io: memory.pool('io'),
      metaPool: memory.pool('cache'),
    });
    const cmp = keyCompare('int64');
    expect(r.mayContain(2000, cmp)).toBe(true);
    let falsePositives = 0;
    for (let k = 1; k < 7000; k += 2) if (r.mayContain(k, cmp)) falsePositives++;
    expect(falsePositives).toBeLessThan(3500 * 0.03);
    expect(r.mayContain(-2, cmp)).toBe(false);
    expect(r.groupFrom(2500, cmp)).toBe(1);
    const pin = await r.pinChunk(1, 1);
    const d = pin.decoded;
    expect(Buffer.from(d.data!.subarray(d.offsets![0], d.offsets![1])).toString()).toBe(`name-${2000 % 17}`);
    const again = await r.pinChunk(1, 1);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, pinned: 1 });
    pin.release();
    again.release();
    expect(() => pin.release()).toThrow(/twice/);
    r.dropFromCache();
    r.close();
    cache.close();
    await files.close();
    memory.close();
    await fs.close();
  });

  test('a flipped byte in a chunk is CORRUPTION naming the object, never wrong data', async () => {
    const fs = new MemoryFileService();
    await fs.mkdir('obj');
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    const meta = await writeObject(fs, memory, 1200);
    const chunk = meta.rowGroups[0]!.chunks[2]!;
    const h = await fs.open(objectPath(7), 'readwrite', 'object');
    const b = new Uint8Array(1);
    await h.read(b, chunk.offset + 20);
    b[0]! ^= 0x10;
    await h.write(b, chunk.offset + 20);
    await h.close();
    const files = new ObjectFiles(fs);
    const cache = new BlockCache(memory.pool('cache'), 1 << 20);
    const r = await ObjectReader.open({
      id: 7,
      files,
      cache,
      io: memory.pool('io'),
      metaPool: memory.pool('cache'),
    });
    await expect(r.pinChunk(0, 2)).rejects.toMatchObject({
      code: 'CORRUPTION',
      details: { file: objectPath(7), rowGroup: 0, column: 2 },
    });
    // Other chunks are fine.
    (await r.pinChunk(0, 0)).release();
    r.dropFromCache();
    r.close();
    cache.close();
    await files.close();
    memory.close(); // the failed read released its buffers
  });

  test('a flipped bit in the bloom filter is CORRUPTION at open (a damaged filter could hide keys)', async () => {
    const fs = new MemoryFileService();
    await fs.mkdir('obj');
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    const meta = await writeObject(fs, memory, 1200);
    const h = await fs.open(objectPath(7), 'readwrite', 'object');
    const b = new Uint8Array(1);
    await h.read(b, meta.bloomOffset + 3);
    b[0]! ^= 0x01;
    await h.write(b, meta.bloomOffset + 3);
    await h.close();
    const files = new ObjectFiles(fs);
    const cache = new BlockCache(memory.pool('cache'), 1 << 20);
    await expect(
      ObjectReader.open({ id: 7, files, cache, io: memory.pool('io'), metaPool: memory.pool('cache') }),
    ).rejects.toMatchObject({
      code: 'CORRUPTION',
      message: expect.stringContaining('bloom filter') as unknown,
    });
    cache.close();
    await files.close();
    memory.close();
  });

  test('a truncated object is CORRUPTION at open', async () => {
    const fs = new MemoryFileService();
    await fs.mkdir('obj');
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    const meta = await writeObject(fs, memory, 500);
    const h = await fs.open(objectPath(7), 'readwrite', 'object');
    await h.truncate(meta.fileBytes - 5);
    await h.close();
    const files = new ObjectFiles(fs);
    const cache = new BlockCache(memory.pool('cache'), 1 << 20);
    await expect(
      ObjectReader.open({ id: 7, files, cache, io: memory.pool('io'), metaPool: memory.pool('cache') }),
    ).rejects.toMatchObject({
      code: 'CORRUPTION',
      message: expect.stringContaining(objectPath(7)),
    });
    await files.close();
    memory.close();
  });

  test('rows out of order are refused, and an aborted writer leaves no file', async () => {
    const fs = new MemoryFileService();
    await fs.mkdir('obj');
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    const w = await ObjectWriter.create({
      fs,
      id: 9,
      kind: 'tombstone',
      tableId: 1,
      schema,
      compare: keyCompare('int64'),
      pool: memory.pool('io'),
      expectedKeys: 2,
    });
    const col = (a: number[]): Decoded => ({ n: a.length, physical: 'f64', f64: Float64Array.from(a) });
    await expect(w.addRowGroup([col([5, 3]), col([1, 1])], [5, 3])).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await w.abort();
    expect(await fs.list('obj')).toEqual([]);
    memory.close();
  });
});

describe('bloom filter', () => {
  test('no false negatives; about 1% false positives for numbers, strings and bytes', () => {
    const n = 50_000;
    for (const make of [
      (i: number): Key => i * 3,
      (i: number): Key => `user-${i * 3}`,
      (i: number): Key => Uint8Array.from(Buffer.from(`k${i * 3}`)),
    ]) {
      const bits = new Uint8Array(bloomBytes(n));
      for (let i = 0; i < n; i++) bloomAdd(bits, make(i));
      for (let i = 0; i < n; i++) expect(bloomMayContain(bits, make(i))).toBe(true);
      let fp = 0;
      for (let i = 0; i < n; i++) {
        const k = make(i);
        const other =
          typeof k === 'number'
            ? k + 1
            : typeof k === 'string'
              ? `${k}x`
              : Uint8Array.from([...(k as Uint8Array), 1]);
        if (bloomMayContain(bits, other)) fp++;
      }
      expect(fp / n).toBeLessThan(0.02);
    }
    // -0 and 0 are one key.
    const bits = new Uint8Array(bloomBytes(1));
    bloomAdd(bits, 0);
    expect(bloomMayContain(bits, -0)).toBe(true);
  });
});

describe('block cache', () => {
  /** A loader of an n-value float64 chunk whose values are all `v`, counting its calls. */
  function loader(v: number, n = 1000) {
    const calls = { count: 0 };
    const load = async (alloc: Allocator): Promise<Decoded> => {
      calls.count++;
      await Promise.resolve();
      const f64 = alloc.f64(n).fill(v);
      return { n, physical: 'f64', f64 };
    };
    return { load, calls };
  }

  test('evicts unpinned chunks oldest first within its capacity, a used one gets a second chance, a pinned one stays', async () => {
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    // Each 1000-value chunk takes an 8 KiB size class: room for three.
    const cache = new BlockCache(memory.pool('cache'), 3 * 8192);
    const entries = [0, 1, 2, 3, 4].map((i) => cache.entry(`chunk ${i}`));
    const pinned = await cache.pin(entries[0]!, loader(0).load); // held throughout
    for (const i of [1, 2]) (await cache.pin(entries[i]!, loader(i).load)).release();
    expect(cache.stats()).toMatchObject({ entries: 3, misses: 3, evictions: 0 });
    // A hit on 1 marks it used: loading 3 evicts 2 (1 gets its second chance; 0 is pinned).
    cache.tryPin(entries[1]!)!.release();
    (await cache.pin(entries[3]!, loader(3).load)).release();
    expect(entries[2]!.gone).toBe(true);
    expect(entries[1]!.gone).toBe(false);
    expect(cache.tryPin(entries[2]!)).toBeUndefined();
    // Its second chance moved 1 behind 3: loading 4 evicts 3, then (with no new hit) 1 would be next.
    (await cache.pin(entries[4]!, loader(4).load)).release();
    expect(entries[3]!.gone).toBe(true);
    expect(entries[1]!.gone).toBe(false);
    (await cache.pin(cache.entry('chunk 5'), loader(5).load)).release();
    expect(entries[1]!.gone).toBe(true);
    expect(entries[0]!.gone).toBe(false);
    expect(pinned.decoded.f64![999]).toBe(0);
    expect(cache.stats()).toMatchObject({ evictions: 3, pinned: 1 });
    expect(memory.pool('cache').stats().bytes).toBeLessThanOrEqual(3 * 8192);
    pinned.release();
    cache.close();
    expect(memory.pool('cache').stats().bytes).toBe(0);
    memory.close();
  });

  test('concurrent pins of one chunk share one load; a failed load leaves nothing and the next pin retries', async () => {
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    const cache = new BlockCache(memory.pool('cache'), 1 << 20);
    const e = cache.entry('chunk');
    const { load, calls } = loader(7);
    const pins = await Promise.all([cache.pin(e, load), cache.pin(e, load), cache.pin(e, load)]);
    expect(calls.count).toBe(1);
    expect(cache.stats()).toMatchObject({ misses: 1, pinned: 1 });
    for (const p of pins) p.release();
    const bad = cache.entry('bad chunk');
    const failing = async (alloc: Allocator): Promise<Decoded> => {
      alloc.f64(100);
      await Promise.resolve();
      throw new Error('disk on fire');
    };
    await expect(Promise.all([cache.pin(bad, failing), cache.pin(bad, failing)])).rejects.toThrow(
      'disk on fire',
    );
    expect(bad.gone).toBe(true);
    await expect(cache.pin(bad, load)).rejects.toMatchObject({ code: 'REFCOUNT' }); // a gone entry is not reused
    const fresh = cache.entry('bad chunk');
    (await cache.pin(fresh, load)).release();
    cache.close();
    expect(memory.pool('cache').stats()).toMatchObject({ bytes: 0, handles: 0 });
    memory.close();
  });
});
