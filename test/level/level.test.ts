import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/random.js';
import { open } from '../../src/index.js';
import { TidemarkLevel } from '../../src/level/index.js';
import { spawnTs, waitForLine } from '../helpers/child.js';
import { codeOfSync } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

/** A seeded PRNG: a function giving floats in [0, 1). */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

async function openError(db: TidemarkLevel): Promise<{ code: unknown; cause: unknown }> {
  try {
    await db.open();
  } catch (e) {
    const err = e as { code: unknown; cause?: { code?: unknown } };
    return { code: err.code, cause: err.cause?.code };
  }
  return { code: undefined, cause: undefined };
}

describe('TidemarkLevel', () => {
  it('keeps what it was given across a reopen, in a table of its own', async () => {
    const { dir, cleanup } = tempDir('tidemark-level-');
    try {
      const loc = path.join(dir, 'db');
      expect(await openError(new TidemarkLevel(loc, { createIfMissing: false }))).toEqual({
        code: 'LEVEL_DATABASE_NOT_OPEN',
        cause: 'NOT_FOUND',
      });
      expect(existsSync(loc)).toBe(false);
      const db = new TidemarkLevel<string, string>(loc);
      await db.put('a', '1');
      await db.batch([
        { type: 'put', key: 'b', value: '2' },
        { type: 'put', key: 'c', value: '3' },
        { type: 'del', key: 'a' },
      ]);
      // A second instance on the same directory is refused while the first has it; the first goes on.
      expect(await openError(new TidemarkLevel(loc))).toEqual({
        code: 'LEVEL_DATABASE_NOT_OPEN',
        cause: 'LOCKED',
      });
      await db.put('d', '4');
      await db.close();
      expect(await openError(new TidemarkLevel(loc, { errorIfExists: true }))).toEqual({
        code: 'LEVEL_DATABASE_NOT_OPEN',
        cause: 'INVALID_ARGUMENT',
      });
      const again = new TidemarkLevel<string, string>(loc, { createIfMissing: false });
      expect(await again.iterator().all()).toEqual([
        ['b', '2'],
        ['c', '3'],
        ['d', '4'],
      ]);
      expect(again.tidemark.tables()).toEqual(['level']);
      await again.close();
      // The entries are an ordinary tidemark table: bytes keys and values.
      const tdb = await open(loc);
      const rows = [];
      for await (const r of tdb.scan('level')) rows.push(r);
      expect(rows.map((r) => Buffer.from(r['key'] as Uint8Array).toString())).toEqual(['b', 'c', 'd']);
      await tdb.createTable('other', { columns: { id: 'int64' }, primaryKey: 'id' });
      await tdb.close();
      expect(await openError(new TidemarkLevel(loc, { table: 'other' }))).toEqual({
        code: 'LEVEL_DATABASE_NOT_OPEN',
        cause: 'SCHEMA',
      });
      const second = new TidemarkLevel<string, string>(loc, { table: 'second' });
      await second.put('x', 'y');
      expect(await second.keys().all()).toEqual(['x']);
      await second.close();
    } finally {
      cleanup();
    }
  });

  it('refuses bad arguments with INVALID_ARGUMENT, and oversized values without losing anything', async () => {
    expect(codeOfSync(() => new TidemarkLevel(''))).toBe('INVALID_ARGUMENT');
    expect(codeOfSync(() => new TidemarkLevel(42 as unknown as string))).toBe('INVALID_ARGUMENT');
    expect(codeOfSync(() => new TidemarkLevel('x', { table: '' }))).toBe('INVALID_ARGUMENT');
    const { dir, cleanup } = tempDir('tidemark-level-');
    try {
      const db = new TidemarkLevel<string, Buffer>(path.join(dir, 'db'), { valueEncoding: 'buffer' });
      await db.put('k', Buffer.from('v'));
      await expect(db.put('big', Buffer.alloc(16 * 1024 * 1024 + 1))).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect((await db.get('k'))!.toString()).toBe('v');
      expect(await db.get('big')).toBeUndefined();
      await db.close();
    } finally {
      cleanup();
    }
  });

  it('iterates forward and in reverse, with ranges and seeks, exactly as a sorted model', async () => {
    const { dir, cleanup } = tempDir('tidemark-level-');
    try {
      const db = new TidemarkLevel<string, string>(path.join(dir, 'db'), {
        // Small memtables and row groups: reads cross many objects and windows.
        tidemark: { storage: { memtableBytesMax: 128 * 1024, rowGroupRows: 64, mergeMinObjects: 0 } },
      });
      const r = rng(3);
      const model = new Map<string, string>();
      const key = () => `key-${Math.floor(r() * 5000).toString(36)}`;
      for (let round = 0; round < 10; round++) {
        const ops: ({ type: 'put'; key: string; value: string } | { type: 'del'; key: string })[] = [];
        for (let i = 0; i < 400; i++) {
          const k = key();
          if (r() < 0.2) {
            ops.push({ type: 'del', key: k });
            model.delete(k);
          } else {
            ops.push({ type: 'put', key: k, value: `${round}-${i}` });
            model.set(k, `${round}-${i}`);
          }
        }
        await db.batch(ops);
        if (round % 2 === 1) await db.tidemark.flush();
      }
      expect(db.tidemark.stats().storage.objects).toBeGreaterThan(3);
      const sorted = [...model.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      expect(await db.keys().all()).toEqual(sorted);
      expect(await db.keys({ reverse: true }).all()).toEqual([...sorted].reverse());
      for (let k = 0; k < 30; k++) {
        const a = key();
        const b = key();
        const [lo, hi] = a < b ? [a, b] : [b, a];
        const want = sorted.filter((x) => x > lo && x <= hi);
        expect(await db.iterator({ gt: lo, lte: hi, reverse: true, limit: 20 }).all()).toEqual(
          [...want]
            .reverse()
            .slice(0, 20)
            .map((x) => [x, model.get(x)]),
        );
        // Seek: forward to the first key >= target, in reverse to the last key <= target.
        const it = db.keys({ reverse: k % 2 === 0 });
        const target = key();
        it.seek(target);
        const got = await it.nextv(5);
        await it.close();
        const expected =
          k % 2 === 0
            ? sorted
                .filter((x) => x <= target)
                .reverse()
                .slice(0, 5)
            : sorted.filter((x) => x >= target).slice(0, 5);
        expect(got).toEqual(expected);
      }
      await db.close();
    } finally {
      cleanup();
    }
  });

  it('iterators and snapshots release what they pin: the pools go back to their baseline', async () => {
    const { dir, cleanup } = tempDir('tidemark-level-');
    try {
      const db = new TidemarkLevel<string, string>(path.join(dir, 'db'), {
        tidemark: { memory: { leakDetection: 'paranoid' }, storage: { rowGroupRows: 64 } },
      });
      await db.open();
      await db.batch(
        Array.from({ length: 2000 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: 'v' })),
      );
      await db.tidemark.flush();
      const pools = () => {
        const p = db.tidemark.stats().memory.pools;
        return { cache: p['cache']!.handles, memtable: p['memtable']!.handles };
      };
      const quiet = async () => {
        await db.tidemark._idle();
        db.tidemark._dropCache();
      };
      await quiet();
      const baseline = pools();
      const live = db.tidemark.stats().transactions.active;
      // Closed midway, read to the end, reversed and sought, on a snapshot: all closed.
      const a = db.iterator();
      await a.nextv(10);
      const b = db.keys({ reverse: true });
      b.seek('k5');
      await b.all();
      const snap = db.snapshot();
      await db.getMany(['k1', 'k2'], { snapshot: snap });
      const c = db.values({ snapshot: snap });
      await c.next();
      expect(db.tidemark.stats().transactions.active).toBeGreaterThan(live);
      await a.close();
      await c.close();
      await snap.close();
      await quiet();
      expect(pools()).toEqual(baseline);
      expect(db.tidemark.stats().transactions.active).toBe(live);
      // Left open: close() closes them (and would reject with LEAK if anything stayed pinned).
      const d = db.iterator({ reverse: true });
      await d.next();
      db.snapshot();
      await db.close();
    } finally {
      cleanup();
    }
  });

  it('loses no acknowledged put or batch when the process is killed, and no batch is half there', async () => {
    const { dir, cleanup } = tempDir('tidemark-level-kill-');
    try {
      const loc = path.join(dir, 'db');
      for (let round = 0; round < 3; round++) {
        const child = spawnTs('test/level/kill_child.ts', [loc]);
        await waitForLine(child, /^open$/);
        const acked: number[] = [];
        child.stdout!.on('data', (d: Buffer) => {
          for (const m of d.toString().matchAll(/acked (\d+)/g)) acked.push(Number(m[1]));
        });
        await new Promise((res) => setTimeout(res, 300 + round * 200));
        const exited = new Promise((res) => child.on('exit', res));
        child.kill('SIGKILL');
        await exited;
        const db = new TidemarkLevel<string, string>(loc);
        const all = new Map(await db.iterator().all());
        for (const i of acked) {
          const k = `k${String(i).padStart(8, '0')}`;
          expect(all.get(k), k).toBe(`v${i}`);
        }
        // A batch wrote both of its keys or neither.
        for (const [k, v] of all) if (k.endsWith('-pair')) expect(all.get(k.slice(0, -5))).toBe(v);
        for (const [k] of all) {
          const i = Number(k.slice(1, 9));
          if (i % 5 === 4 && !k.endsWith('-pair')) expect(all.has(`${k}-pair`), k).toBe(true);
        }
        expect(acked.length).toBeGreaterThan(50);
        await db.clear();
        await db.close();
      }
    } finally {
      cleanup();
    }
  }, 60_000);
});
