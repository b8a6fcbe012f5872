import { existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { open, type OpenOptions } from '../../src/index.js';
import { LocalFileService } from '../../src/fileservice/local.js';
import { ObjectStoreFileService } from '../../src/fileservice/s3.js';
import type { ObjectStoreOptions } from '../../src/fileservice/s3_options.js';
import { TidemarkError } from '../../src/errors.js';
import { collect } from '../helpers/db.js';
import { codeOf } from '../helpers/errors.js';
import { CREDENTIALS, useMoto } from '../helpers/moto.js';
import { tempDir } from '../helpers/tmp.js';

const motoServer = useMoto();

const SPEC = { columns: { id: 'int64', name: 'string', v: 'float64' }, primaryKey: 'id' } as const;
const row = (i: number) => ({ id: i, name: `name-${i}`.padEnd(24, '.'), v: i / 4 });

async function store(extra: Partial<ObjectStoreOptions> = {}): Promise<ObjectStoreOptions> {
  return {
    endpoint: motoServer().endpoint,
    bucket: await motoServer().bucket(),
    prefix: 'db1',
    ...CREDENTIALS,
    ...extra,
  };
}

async function keys(bucket: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await motoServer().client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    for (const c of r.Contents ?? []) out.push(c.Key!);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out.sort();
}

const QUIET: OpenOptions = { checkpoint: { intervalMs: 0 }, memory: { leakDetection: 'paranoid' } };

describe('objects and checkpoints in object storage', () => {
  it('keeps objects and checkpoint files in the bucket, the WAL and LOCK local, and reopens from them', async () => {
    const { dir, cleanup } = tempDir('tidemark-s3-');
    try {
      const objectStore = await store();
      const db = await open(dir, { ...QUIET, objectStore });
      await db.createTable('t', SPEC);
      for (let i = 0; i < 20_000; i += 1000)
        await db.insert(
          't',
          Array.from({ length: 1000 }, (_, j) => row(i + j)),
        );
      await db.flush();
      await db.checkpoint();
      await db.insert('t', row(99_999)); // after the checkpoint: in the local WAL only
      await db.close();
      const remote = await keys(objectStore.bucket);
      expect(remote.some((k) => /^db1\/obj\/.+/.test(k))).toBe(true);
      expect(remote.some((k) => /^db1\/ckp\/meta-.+\.ckp$/.test(k))).toBe(true);
      expect(remote).toContain('db1/CLAIM');
      expect(existsSync(path.join(dir, 'wal'))).toBe(true);
      expect(existsSync(path.join(dir, 'obj'))).toBe(false);
      expect(existsSync(path.join(dir, 'ckp'))).toBe(false);
      // Reopen without the local cache: the checkpoint and objects from the bucket, the rest from the
      // local WAL.
      rmSync(path.join(dir, 'cache'), { recursive: true, force: true });
      const again = await open(dir, { ...QUIET, objectStore });
      const rows = await collect(again.scan('t'));
      expect(rows.length).toBe(20_001);
      expect(rows[12_345]).toEqual(row(12_345));
      expect(await again.get('t', 99_999)).toEqual(row(99_999));
      expect(again.stats().objectStore).toMatchObject({
        bucket: objectStore.bucket,
        prefix: 'db1/',
        fenced: false,
        failures: 0,
      });
      expect(again.stats().objectStore!.publishedSeq).toBeGreaterThan(0);
      expect(again.stats().objectStore!.downloads).toBeGreaterThan(0);
      await again.close();
    } finally {
      cleanup();
    }
  }, 60_000);

  it('uploads large objects in parts, and aborts what fails: nothing half-published', async () => {
    const { dir, cleanup } = tempDir('tidemark-s3-');
    try {
      const objectStore = await store({ partBytes: 5 * 1024 * 1024, attempts: 3 });
      let failParts = false;
      const fs = new ObjectStoreFileService(new LocalFileService(dir), objectStore, undefined, (op) => {
        if (failParts && op.startsWith('upload part 2')) {
          throw Object.assign(new Error('simulated 503'), {
            name: 'ServiceUnavailable',
            $metadata: { httpStatusCode: 503 },
          });
        }
      });
      const db = await open(dir, { ...QUIET, fileService: fs });
      await db.createTable('t', { columns: { id: 'int64', blob: 'bytes' }, primaryKey: 'id' });
      // Incompressible bytes, so that objects pass the part size.
      const blob = (i: number) => {
        const b = Buffer.alloc(2000);
        let x = (i * 2654435761) >>> 0 || 1;
        for (let k = 0; k < b.length; k++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          b[k] = x & 0xff;
        }
        return b;
      };
      for (let i = 0; i < 6000; i += 500)
        await db.insert(
          't',
          Array.from({ length: 500 }, (_, j) => ({ id: i + j, blob: blob(i + j) })),
        );
      await db.flush();
      expect(fs.counters.multipartUploads).toBeGreaterThanOrEqual(1);
      // Every second part fails every time: the flush fails with IO after the bounded retries.
      failParts = true;
      for (let i = 6000; i < 12_000; i += 500)
        await db.insert(
          't',
          Array.from({ length: 500 }, (_, j) => ({ id: i + j, blob: blob(i + j) })),
        );
      const objectsBefore = (await keys(objectStore.bucket, 'db1/obj/')).length;
      await expect(db.flush()).rejects.toMatchObject({ code: 'IO' });
      expect((await keys(objectStore.bucket, 'db1/obj/')).length).toBe(objectsBefore);
      const pending = await motoServer().client.send(
        new ListMultipartUploadsCommand({ Bucket: objectStore.bucket }),
      );
      expect(pending.Uploads ?? []).toEqual([]);
      expect(fs.counters.retries).toBeGreaterThan(0);
      // The store recovers: the flush goes through, every row is there.
      failParts = false;
      await db.flush();
      let n = 0;
      for await (const r of db.scan('t', { columns: ['id', 'blob'] })) {
        expect(Buffer.from(r['blob'] as Uint8Array).equals(blob(r['id'] as number))).toBe(true);
        n++;
      }
      expect(n).toBe(12_000);
      await db.close();
    } finally {
      cleanup();
    }
  }, 120_000);

  it('retries failures that pass (timeouts, 5xx, throttling) and fails with IO past the bound', async () => {
    const { dir, cleanup } = tempDir('tidemark-s3-');
    try {
      let failures = 0;
      const fs = new ObjectStoreFileService(
        new LocalFileService(dir),
        await store({ attempts: 4 }),
        undefined,
        (op) => {
          if (op === 'upload' && failures > 0) {
            failures--;
            throw Object.assign(new Error('slow down'), {
              name: 'SlowDown',
              $metadata: { httpStatusCode: 503 },
            });
          }
        },
      );
      const db = await open(dir, { ...QUIET, fileService: fs });
      await db.createTable('t', SPEC);
      await db.insert('t', [row(1), row(2)]);
      failures = 3; // three failures, then success: within four attempts
      await db.flush();
      expect(fs.counters.retries).toBe(3);
      await db.insert('t', row(3));
      failures = 100;
      const err = await db.flush().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TidemarkError);
      expect((err as TidemarkError).code).toBe('IO');
      expect((err as TidemarkError).message).toMatch(/after 4 attempts/);
      failures = 0;
      await db.flush();
      expect(await collect(db.scan('t'))).toEqual([row(1), row(2), row(3)]);
      await db.close();
    } finally {
      cleanup();
    }
  }, 60_000);

  it('never deletes or replaces checkpoint files another writer may have written: it takes other names', async () => {
    const { dir, cleanup } = tempDir('tidemark-s3-');
    try {
      const objectStore = await store();
      const db = await open(dir, { ...QUIET, objectStore });
      await db.createTable('t', SPEC);
      await db.insert('t', row(1));
      const first = await db.checkpoint();
      // What a writer that lost its claim could still have on the way: the next names, taken.
      const seq = (name: string) => Number.parseInt(/-([0-9a-f]{16})\./.exec(name)![1]!, 16);
      const next = (name: string) =>
        name.replace(/[0-9a-f]{16}/, (seq(name) + 1).toString(16).padStart(16, '0'));
      const dataName = first.files.find((f) => f.includes('incr-'))!;
      const metaName = first.files.find((f) => f.includes('meta-'))!;
      const zombie = [next(dataName), next(metaName)];
      for (const f of zombie)
        await motoServer().client.send(
          new PutObjectCommand({ Bucket: objectStore.bucket, Key: `db1/${f}`, Body: 'from another writer' }),
        );
      await db.insert('t', row(2));
      // The first attempt meets the taken names and fails; the next takes new ones.
      await db.checkpoint().catch(() => undefined);
      await db.insert('t', row(3));
      const done = await db.checkpoint();
      expect(done.files.some((f) => zombie.includes(f))).toBe(false);
      // The other writer's files are untouched.
      for (const f of zombie) {
        const got = await motoServer().client.send(
          new GetObjectCommand({ Bucket: objectStore.bucket, Key: `db1/${f}` }),
        );
        expect(await got.Body!.transformToString()).toBe('from another writer');
      }
      await db.close();
      const again = await open(dir, { ...QUIET, objectStore });
      expect(await collect(again.scan('t'))).toEqual([row(1), row(2), row(3)]);
      await again.close();
    } finally {
      cleanup();
    }
  }, 60_000);

  it('checks its options', async () => {
    for (const bad of [
      { bucket: '' },
      { bucket: 'b', partBytes: 1024 },
      { bucket: 'b', prefix: '/x' },
      { bucket: 'b', accessKeyId: 'a' },
      { bucket: 'b', color: 'red' },
      'bucket',
    ])
      expect(await codeOf(open('x', { objectStore: bad as never }))).toBe('INVALID_ARGUMENT');
  });
});
