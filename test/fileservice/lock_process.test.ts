import { once } from 'node:events';
import { afterEach, expect, test } from 'vitest';
import { LocalFileService } from '../../src/fileservice/local.js';
import { runTs, spawnTs, waitForLine } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

test('a second opener in another process gets LOCKED', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const fs = new LocalFileService(t.dir);
  const lock = await fs.lock();
  const r = await runTs('test/fixtures/lock_child.ts', [t.dir]);
  expect(r.stdout.trim()).toBe('LOCKED');
  await lock.release();
  const r2 = await runTs('test/fixtures/lock_child.ts', [t.dir]);
  expect(r2.stdout.trim()).toBe('locked');
  await fs.close();
});

test('a LOCK left by a process killed with SIGKILL does not block the next open', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const child = spawnTs('test/fixtures/lock_child.ts', [t.dir, 'hold']);
  await waitForLine(child, /^locked$/);
  const fs = new LocalFileService(t.dir);
  await expect(fs.lock()).rejects.toMatchObject({
    code: 'LOCKED',
    message: expect.stringContaining(`pid ${child.pid}`),
  });
  child.kill('SIGKILL');
  await once(child, 'exit');
  const lock = await fs.lock();
  await lock.release();
  await fs.close();
});
