import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../../src/index.js';
import { collect } from '../helpers/db.js';
import { spawnTs, waitForLine } from '../helpers/child.js';
import { CREDENTIALS, useMoto } from '../helpers/moto.js';
import { tempDir } from '../helpers/tmp.js';

const motoServer = useMoto();

function output(child: ChildProcess): () => string {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return () => out;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/**
 * One writer per prefix, proven with processes: a second writer is refused while the first holds
 * the claim; a writer frozen past its lease is taken over, and when it wakes it can neither publish
 * a checkpoint nor acknowledge a commit.
 */
describe('one writer per object-storage prefix', () => {
  it('refuses a second writer while the first holds the prefix; the first goes on', async () => {
    const { dir, cleanup } = tempDir('tidemark-s3w-');
    const bucket = await motoServer().bucket();
    const a = spawnTs('test/objectstore/writer_child.ts', [
      path.join(dir, 'a'),
      motoServer().endpoint,
      bucket,
      'p',
      '5000',
    ]);
    const outA = output(a);
    try {
      await waitForLine(a, /^open$/, 30_000);
      const b = spawnTs('test/objectstore/writer_child.ts', [
        path.join(dir, 'b'),
        motoServer().endpoint,
        bucket,
        'p',
        '5000',
      ]);
      expect(await waitForLine(b, /^refused/, 30_000)).toBe('refused LOCKED');
      // In this process too, and on another prefix of the same bucket it is free.
      const objectStore = { endpoint: motoServer().endpoint, bucket, prefix: 'p', ...CREDENTIALS };
      await expect(open(path.join(dir, 'c'), { objectStore })).rejects.toMatchObject({ code: 'LOCKED' });
      const other = await open(path.join(dir, 'd'), { objectStore: { ...objectStore, prefix: 'q' } });
      await other.close();
      await waitForLine(a, /^ckp ok/, 30_000);
      expect(outA()).not.toMatch(/failed/);
    } finally {
      await kill(a);
      cleanup();
    }
  }, 90_000);

  it('takes over from a writer frozen past its lease, which then can publish nothing', async () => {
    const { dir, cleanup } = tempDir('tidemark-s3w-');
    const bucket = await motoServer().bucket();
    const leaseMs = 1500;
    const a = spawnTs('test/objectstore/writer_child.ts', [
      path.join(dir, 'a'),
      motoServer().endpoint,
      bucket,
      'p',
      String(leaseMs),
    ]);
    const outA = output(a);
    try {
      await waitForLine(a, /^ckp ok/, 30_000);
      a.kill('SIGSTOP');
      const frozenAt = outA().length;
      await new Promise((r) => setTimeout(r, leaseMs + 700));
      const objectStore = { endpoint: motoServer().endpoint, bucket, prefix: 'p', ...CREDENTIALS, leaseMs };
      const b = await open(path.join(dir, 'b'), { objectStore, checkpoint: { intervalMs: 0 } });
      // B starts from A's last published checkpoint (A's commits after it live in A's local WAL).
      const before = await collect(b.scan('t'));
      await b.upsert('t', { id: 5000, by: 'b' });
      await b.checkpoint();
      a.kill('SIGCONT');
      // A wakes: its next checkpoint cannot be published, and its commits are refused.
      const failed = await waitForLine(a, /^ckp failed/, 30_000);
      expect(failed).toMatch(/^ckp failed (LOCKED|IO)/);
      expect(outA().slice(frozenAt)).toMatch(/lost its claim/);
      expect(outA().slice(frozenAt)).not.toMatch(/^ckp ok/m);
      await waitForLine(a, /^commit failed/, 30_000);
      await kill(a);
      // What B published stands; nothing of A's after the takeover is visible.
      await b.close();
      const c = await open(path.join(dir, 'c'), { objectStore, checkpoint: { intervalMs: 0 } });
      const rows = await collect(c.scan('t'));
      expect(rows.find((r) => r['id'] === 5000)).toEqual({ id: 5000, by: 'b' });
      expect(rows.filter((r) => r['id'] !== 5000)).toEqual(before);
      await c.close();
    } finally {
      a.kill('SIGCONT');
      await kill(a);
      cleanup();
    }
  }, 90_000);
});
