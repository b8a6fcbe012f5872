import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { TidemarkError } from '../../src/errors.js';
import { LeakError } from '../../src/errors.js';
import { LocalFileService } from '../../src/fileservice/local.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { FaultFileService } from '../../src/fileservice/fault.js';
import type { FileService } from '../../src/fileservice/types.js';
import { readFileInto } from '../../src/fileservice/util.js';
import { MemoryManager } from '../../src/mem/manager.js';
import { codeOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function local(): LocalFileService {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return new LocalFileService(t.dir);
}

const kinds: [string, () => FileService][] = [
  ['local', local],
  ['memory', () => new MemoryFileService()],
  ['fault wrapper (no faults)', () => new FaultFileService(new MemoryFileService())],
];

describe.each(kinds)('%s file service', (_name, make) => {
  test('read, write, append, datasync, stat, list, rename, delete', async () => {
    const fs = make();
    await fs.mkdir('wal');
    const h = await fs.open('wal/1.wal', 'create', 'wal');
    await h.write(enc('hello '), 0);
    await h.write(enc('world'), 6);
    await h.datasync();
    expect(await h.size()).toBe(11);
    const buf = new Uint8Array(32);
    expect(await h.read(buf, 0)).toBe(11);
    expect(dec(buf.subarray(0, 11))).toBe('hello world');
    expect(await h.read(buf, 11)).toBe(0);
    await h.truncate(5);
    expect(await h.size()).toBe(5);
    await h.close();
    expect(await fs.list('wal')).toEqual(['1.wal']);
    expect(await fs.list('missing')).toEqual([]);
    expect(await fs.stat('wal/1.wal')).toEqual({ size: 5, isDirectory: false });
    expect(await fs.stat('wal')).toMatchObject({ isDirectory: true });
    expect(await fs.stat('nope')).toBeUndefined();
    await fs.rename('wal/1.wal', 'wal/2.wal');
    await fs.syncDir('wal');
    expect(await fs.list('wal')).toEqual(['2.wal']);
    expect(await fs.delete('wal/2.wal')).toBe(true);
    expect(await fs.delete('wal/2.wal')).toBe(false);
    await fs.close();
  });

  test('open modes: read needs the file, create-new refuses an existing one', async () => {
    const fs = make();
    const e1 = await codeOf(fs.open('absent', 'read', 'other'));
    expect(e1).toBe('IO');
    const h = await fs.open('f', 'create-new', 'other');
    await h.close();
    try {
      await fs.open('f', 'create-new', 'other');
      expect.unreachable();
    } catch (e) {
      expect((e as TidemarkError).code).toBe('IO');
      expect((e as TidemarkError).details?.['errno']).toBe('EEXIST');
    }
    const r = await fs.open('f', 'read', 'other');
    expect(await codeOf(r.write(enc('x'), 0))).toBe('IO');
    await r.close();
    expect(await codeOf(r.read(new Uint8Array(1), 0))).toBe('CLOSED');
    await fs.close();
  });

  test('writeFileAtomic replaces the whole file and leaves no temporary behind', async () => {
    const fs = make();
    await fs.mkdir('ckp');
    await fs.writeFileAtomic('ckp/meta', [enc('one')], 'checkpoint');
    await fs.writeFileAtomic('ckp/meta', [enc('two '), enc('parts')], 'checkpoint');
    expect(await fs.list('ckp')).toEqual(['meta']);
    const m = new MemoryManager({ leakDetection: 'paranoid' });
    const b = await readFileInto(fs, 'ckp/meta', 'checkpoint', m.pool('checkpoint'), 'test.read');
    expect(dec(b.bytes)).toBe('two parts');
    b.release();
    m.close();
    await fs.close();
  });

  test('paths outside the database directory are INVALID_ARGUMENT', async () => {
    const fs = make();
    for (const p of [
      '../escape',
      '/etc/passwd',
      'a/../../b',
      'a//b',
      './a',
      'a\\b',
      'a\u0000b',
      'x'.repeat(300),
    ]) {
      expect(await codeOf(fs.open(p, 'create', 'other')), p).toBe('INVALID_ARGUMENT');
      expect(await codeOf(fs.delete(p)), p).toBe('INVALID_ARGUMENT');
      expect(await codeOf(fs.rename('ok', p)), p).toBe('INVALID_ARGUMENT');
    }
    expect(await codeOf(fs.list('..'))).toBe('INVALID_ARGUMENT');
    await fs.close();
  });

  test('every open handle is registered by kind; a leaked one is named with where it was opened', async () => {
    const fs = make();
    await fs.mkdir('obj');
    const a = await fs.open('obj/7.obj', 'create', 'object');
    const b = await fs.open('wal.x', 'create', 'wal');
    expect(fs.handles.counts()).toMatchObject({ object: 1, wal: 1, checkpoint: 0 });
    await b.close();
    let err: unknown;
    try {
      await fs.close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LeakError);
    const le = err as LeakError;
    expect(le.code).toBe('LEAK');
    expect(le.holders).toHaveLength(1);
    expect(le.holders[0]).toMatchObject({ scope: 'file:object', owner: 'obj/7.obj', count: 1 });
    expect(le.holders[0]!.stack).toMatch(/fileservice\.test\.ts/);
    expect(le.message).toContain('obj/7.obj');
    await a.close();
    await fs.close();
  });

  test('a second lock on the same directory is LOCKED until the first is released', async () => {
    const fs = make();
    const l1 = await fs.lock();
    expect(await codeOf(fs.lock())).toBe('LOCKED');
    await l1.release();
    const l2 = await fs.lock();
    await l2.release();
    await fs.close();
  });
});

describe('local file service', () => {
  test('the lock is also held against another LocalFileService on the same directory', async () => {
    const fs = local();
    const other = new LocalFileService(fs.root);
    const l = await fs.lock();
    expect(existsSync(path.join(fs.root, 'LOCK'))).toBe(true);
    expect(readFileSync(path.join(fs.root, 'LOCK'), 'utf8')).toContain(`pid=${process.pid}`);
    expect(await codeOf(other.lock())).toBe('LOCKED');
    await l.release();
    const l2 = await other.lock();
    await l2.release();
  });

  test('open handles are visible in /proc/self/fd and gone after close', async () => {
    const fs = local();
    const count = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(fs.root);
        } catch {
          return false;
        }
      }).length;
    const h = await fs.open('x', 'create', 'other');
    expect(count()).toBe(1);
    await h.close();
    expect(count()).toBe(0);
    await fs.close();
  });

  test('pidfile locking: a live holder blocks, a dead holder does not', async () => {
    const fs = new LocalFileService(local().root, { lockMethod: 'pidfile' });
    const other = new LocalFileService(fs.root, { lockMethod: 'pidfile' });
    const l = await fs.lock();
    expect(await codeOf(other.lock())).toBe('LOCKED');
    await l.release();
    // A LOCK left by a process that no longer runs is stale.
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(fs.root, 'LOCK'), 'pid=999999999\n');
    const l2 = await other.lock();
    expect(readFileSync(path.join(fs.root, 'LOCK'), 'utf8')).toContain(`pid=${process.pid}`);
    await l2.release();
  });
});
