// The storage layer's hold on what it works with: a memtable being flushed, and object files whose
// layers are gone while a checkpoint still names them.
import { afterEach, describe, expect, test } from 'vitest';
import { open } from '../../src/api/database.js';
import { tempDir } from '../helpers/tmp.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function dir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

const spec = { columns: { id: 'int64', v: 'string' }, primaryKey: 'id' } as const;
const rows = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: from + i, v: `v${from + i}` }));

describe('storage', () => {
  test('a table dropped while its memtable is being flushed: the flush settles cleanly, nothing leaks', async () => {
    const db = await open(dir(), { checkpoint: { intervalMs: 0 }, storage: { mergeMinObjects: 0 } });
    for (let round = 0; round < 5; round++) {
      const name = `t${round}`;
      await db.createTable(name, spec);
      await db.insert(name, rows(0, 20_000));
      const flushing = db.flush(name);
      // Give the flush a turn or a few to be under way, then drop the table under it.
      for (let i = 0; i < round; i++) await new Promise((r) => setImmediate(r));
      await db.dropTable(name);
      await expect(flushing).resolves.toBeUndefined();
    }
    await db._idle();
    expect(db.stats().storage).toMatchObject({ flushFailures: 0, objects: 0 });
    await db.createTable('after', spec);
    await db.insert('after', rows(0, 10));
    expect(await db.get('after', 3)).toEqual({ id: 3, v: 'v3' });
    await db.close();
  });

  test('object files a checkpoint still names, once their layers are merged away, hold no open handle', async () => {
    const db = await open(dir(), { checkpoint: { intervalMs: 0 }, storage: { mergeMinObjects: 0 } });
    await db.createTable('t', spec);
    for (let i = 0; i < 4; i++) {
      await db.insert('t', rows(i * 1000, 1000));
      await db.flush('t');
    }
    await db.checkpoint(); // names the four layers' files
    let n = 0;
    for await (const _ of db.scan('t')) n++;
    expect(n).toBe(4000);
    expect(db.stats().files.byKind.object).toBe(4);
    await db.compact('t');
    await db._idle();
    for await (const _ of db.scan('t')) n++;
    // The four retired files stay on disk (the checkpoint names them) but none is open.
    expect(db.stats().storage.objects).toBe(1);
    expect(db.stats().storage.files.held.checkpoint).toBe(4);
    expect(db.stats().files.byKind.object).toBe(1);
    await db.close();
  });
});
