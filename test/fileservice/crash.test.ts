import { describe, expect, test } from 'vitest';
import { TidemarkError } from '../../src/errors.js';
import { FaultFileService } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

/** A workload with synced and unsynced writes, creates and renames, then a crash with `seed`. */
async function scenario(seed: number): Promise<{ fs: MemoryFileService; files: Map<string, Uint8Array> }> {
  const fs = new MemoryFileService('scenario');
  await fs.mkdir('wal');
  await fs.syncDir('');
  const log = await fs.open('wal/1.wal', 'create', 'wal');
  await fs.syncDir('wal');
  await log.write(enc('durable-1|'), 0);
  await log.write(enc('durable-2|'), 10);
  await log.datasync();
  await log.write(enc('unsynced-3|'), 20);
  await log.write(enc('unsynced-4|'), 31);
  const fresh = await fs.open('wal/2.wal', 'create', 'wal'); // entry never synced
  await fresh.write(enc('data of an unsynced entry'), 0);
  await fresh.datasync();
  await fs.writeFileAtomic('meta', [enc('meta v1')], 'checkpoint');
  await fs.writeFileAtomic('meta', [enc('meta v2')], 'checkpoint');
  const tmp = await fs.open('meta.next', 'create', 'checkpoint');
  await tmp.write(enc('meta v3'), 0); // neither synced nor renamed
  fs.crash(seed);
  return { fs, files: fs.snapshot() };
}

describe('in-memory crash model', () => {
  test('an open under way when the crash comes fails, and leaves no handle for the next opener', async () => {
    const mem = new MemoryFileService();
    await mem.mkdir('d');
    const opening = mem.open('d/f', 'create-new', 'other');
    mem.crash(1); // before the open has registered its handle
    await expect(opening).rejects.toMatchObject({ code: 'IO' });
    expect(mem.handles.size).toBe(0);
    await mem.close(); // would name a leaked handle
  });

  test('the same seed drops unsynced data identically', async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const a = await scenario(seed);
      const b = await scenario(seed);
      expect([...a.files.entries()].map(([k, v]) => [k, dec(v)])).toEqual(
        [...b.files.entries()].map(([k, v]) => [k, dec(v)]),
      );
    }
  });

  test('synced data always survives; unsynced data survives only as an in-order prefix, maybe torn', async () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 200; seed++) {
      const { files } = await scenario(seed);
      const wal = dec(files.get('wal/1.wal'))!;
      const full = 'durable-1|durable-2|unsynced-3|unsynced-4|';
      expect(wal.startsWith('durable-1|durable-2|'), `seed ${seed}: ${wal}`).toBe(true);
      expect(full.startsWith(wal), `seed ${seed}: ${wal}`).toBe(true);
      // The atomic write: the old or the new version, never a mix, never missing.
      expect(['meta v1', 'meta v2']).toContain(dec(files.get('meta')));
      outcomes.add(`${wal.length}:${files.has('wal/2.wal')}:${dec(files.get('meta'))}`);
    }
    // Different seeds explore different outcomes: lost, kept, torn; entry kept or lost.
    expect(outcomes.size).toBeGreaterThan(10);
  });

  test('a file whose directory entry was never synced can vanish, whatever its data sync', async () => {
    let vanished = 0;
    let kept = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const { files } = await scenario(seed);
      if (files.has('wal/2.wal')) {
        kept++;
        expect(dec(files.get('wal/2.wal'))).toBe('data of an unsynced entry');
      } else vanished++;
    }
    expect(vanished).toBeGreaterThan(0);
    expect(kept).toBeGreaterThan(0);
  });

  test('handles from before a crash are dead, and the lock is released', async () => {
    const fs = new MemoryFileService();
    const lock = await fs.lock();
    const h = await fs.open('a', 'create', 'other');
    fs.crash(7);
    await expect(h.write(enc('x'), 0)).rejects.toMatchObject({
      code: 'IO',
      details: { simulatedCrash: true },
    });
    expect(fs.handles.size).toBe(0);
    await lock.release(); // a no-op: the crash released it
    const again = await fs.lock();
    await again.release();
    await fs.close();
  });

  test('an unsynced truncate may be undone by a crash; a synced one never is', async () => {
    const seen = new Set<string | undefined>();
    for (let seed = 1; seed <= 20; seed++) {
      for (const sync of [false, true]) {
        const fs = new MemoryFileService();
        const h = await fs.open('f', 'create', 'other');
        await fs.syncDir('');
        await h.write(enc('0123456789'), 0);
        await h.datasync();
        await h.truncate(4);
        if (sync) await h.datasync();
        fs.crash(seed);
        const content = dec(fs.snapshot().get('f'));
        if (sync) expect(content).toBe('0123');
        else seen.add(content);
      }
    }
    expect([...seen].sort()).toEqual(['0123', '0123456789']);
  });
});

describe('O_DSYNC handles', () => {
  test('a write through a sync handle is durable when it returns; one through a plain handle is not', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const fs = new MemoryFileService();
      const d = await fs.open('d', 'create', 'wal', { sync: true });
      const p = await fs.open('p', 'create', 'wal');
      await fs.syncDir('');
      await d.write(enc('durable'), 0);
      await p.write(enc('maybe'), 0);
      fs.crash(seed);
      const snap = fs.snapshot();
      expect(dec(snap.get('d'))).toBe('durable');
      expect(['', 'maybe', 'm', 'ma', 'may', 'mayb']).toContain(dec(snap.get('p')));
    }
  });

  test('a crash in the middle of a sync write can leave it torn, the same way for the same seed', async () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      const run = async () => {
        const mem = new MemoryFileService();
        const fs = new FaultFileService(mem, { seed, crashAtStep: 3 });
        const h = await fs.open('w', 'create', 'wal', { sync: true }); // step 1
        await fs.syncDir(''); // step 2
        await h.write(enc('0123456789'), 0).catch(() => undefined); // step 3: the crash
        return dec(mem.snapshot().get('w'));
      };
      const a = await run();
      expect(await run()).toBe(a);
      expect('0123456789'.startsWith(a!)).toBe(true);
      outcomes.add(a!);
    }
    expect(outcomes.has('')).toBe(true); // nothing landed
    expect([...outcomes].some((o) => o.length > 0 && o.length < 10)).toBe(true); // torn
  });
});

describe('fault-injecting wrapper', () => {
  test('fails the nth operation of a kind with EIO, once', async () => {
    const fs = new FaultFileService(new MemoryFileService(), {
      rules: [{ op: 'write', nth: 2, errno: 'EIO' }],
    });
    const h = await fs.open('f', 'create', 'other');
    await h.write(enc('a'), 0);
    const err = await h.write(enc('b'), 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('IO');
    expect((err as TidemarkError).details?.['errno']).toBe('EIO');
    await h.write(enc('c'), 1);
    expect(fs.injected).toHaveLength(1);
    await h.close();
    await fs.close();
  });

  test('a landed fault: the write reaches the file, then reports EIO; where an operation cannot land, it fails at once', async () => {
    const fs = new FaultFileService(new MemoryFileService(), {
      rules: [
        { op: 'write', nth: 1, errno: 'EIO', landed: true },
        { op: 'mkdir', nth: 1, errno: 'EIO', landed: true },
      ],
    });
    const h = await fs.open('f', 'create', 'other');
    await expect(h.write(enc('landed'), 0)).rejects.toMatchObject({ code: 'IO' });
    const buf = new Uint8Array(6);
    expect(await h.read(buf, 0)).toBe(6);
    expect(new TextDecoder().decode(buf)).toBe('landed');
    await expect(fs.mkdir('d')).rejects.toMatchObject({ code: 'IO' });
    expect(await fs.stat('d')).toBeUndefined();
    // Nothing left pending: later operations succeed.
    await h.write(enc('again'), 6);
    await h.datasync();
    await fs.mkdir('d');
    expect(fs.injected).toHaveLength(2);
    await h.close();
    await fs.close();
  });

  test('random faults: a seed fails the same operations again, at about the rate asked', async () => {
    const run = async (seed: number) => {
      const fs = new FaultFileService(new MemoryFileService(), {
        random: { seed, rate: 0.1, ops: ['write'] },
      });
      const h = await fs.open('f', 'create', 'other');
      const failed: number[] = [];
      for (let i = 0; i < 1000; i++) await h.write(enc('x'), i).catch(() => failed.push(i));
      await h.close();
      await fs.close();
      return failed;
    };
    const a = await run(5);
    expect(await run(5)).toEqual(a);
    expect(await run(6)).not.toEqual(a);
    expect(a.length).toBeGreaterThan(60);
    expect(a.length).toBeLessThan(140);
  });

  test('sticky ENOSPC on matching paths only', async () => {
    const fs = new FaultFileService(new MemoryFileService(), {
      rules: [{ op: 'write', nth: 1, errno: 'ENOSPC', path: /^obj\//, sticky: true }],
    });
    await fs.mkdir('obj');
    const w = await fs.open('w', 'create', 'wal');
    await w.write(enc('fine'), 0);
    const o = await fs.open('obj/1', 'create', 'object');
    for (let i = 0; i < 3; i++) {
      await expect(o.write(enc('x'), 0)).rejects.toMatchObject({ code: 'IO', details: { errno: 'ENOSPC' } });
    }
    await w.close();
    await o.close();
    await fs.close();
  });

  test('crash at a step: the step does not happen, nothing works afterwards, and the seed replays it', async () => {
    async function run(step: number, seed: number) {
      const mem = new MemoryFileService();
      const fs = new FaultFileService(mem, { crashAtStep: step, seed });
      const done: number[] = [];
      try {
        await fs.mkdir('d');
        done.push(1);
        await fs.syncDir('');
        done.push(2);
        const h = await fs.open('d/f', 'create', 'other');
        done.push(3);
        await h.write(enc('abc'), 0);
        done.push(4);
        await h.datasync();
        done.push(5);
        await h.write(enc('def'), 3);
        done.push(6);
        await fs.syncDir('d');
        done.push(7);
      } catch (e) {
        expect((e as TidemarkError).details?.['simulatedCrash']).toBe(true);
      }
      await expect(fs.list('')).rejects.toMatchObject({ code: 'IO' });
      return {
        done,
        files: [...mem.snapshot()].map(([k, v]) => [k, dec(v)]),
        log: fs.log,
        report: fs.report,
      };
    }
    for (let step = 1; step <= 7; step++) {
      const a = await run(step, 42);
      expect(a.done).toEqual([1, 2, 3, 4, 5, 6, 7].slice(0, step - 1));
      const b = await run(step, 42);
      expect(b.files).toEqual(a.files);
      expect(b.report).toEqual(a.report);
    }
    // After a crash before the directory sync of d, the synced data of d/f may still be lost with its entry.
    const late = await run(7, 42);
    expect(late.log.map((s) => s.op)).toEqual(['mkdir', 'syncDir', 'open', 'write', 'datasync', 'write']);
  });
});
