import * as path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { open, type Database } from '../../src/index.js';
import { LocalFileService } from '../../src/fileservice/local.js';
import { ObjectStoreFileService } from '../../src/fileservice/s3.js';
import { collect } from '../helpers/db.js';
import { codeOf } from '../helpers/errors.js';
import { CREDENTIALS, useMoto } from '../helpers/moto.js';
import { tempDir } from '../helpers/tmp.js';

const motoServer = useMoto();

const SPEC = { columns: { id: 'int64', v: 'int32' }, primaryKey: 'id' } as const;

async function ids(db: Database): Promise<number[]> {
  return (await collect(db.scan('t', { columns: ['id'] }))).map((r) => r['id'] as number);
}

/** The objectStore options of a new, empty bucket on the test's moto_server (prefix 'p'). */
async function newBucket(): Promise<
  { endpoint: string; bucket: string; prefix: string } & typeof CREDENTIALS
> {
  return {
    endpoint: motoServer().endpoint,
    bucket: await motoServer().bucket(),
    prefix: 'p',
    ...CREDENTIALS,
  };
}

async function objectKeys(bucket: string): Promise<string[]> {
  const r = await motoServer().client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'p/obj/' }));
  return (r.Contents ?? []).map((c) => c.Key!).sort();
}

describe('read replicas', () => {
  it('serve the newest published checkpoint, refuse writes, and move on as checkpoints appear', async () => {
    const { dir, cleanup } = tempDir('tidemark-replica-');
    const objectStore = await newBucket();
    const w = await open(path.join(dir, 'w'), { objectStore, checkpoint: { intervalMs: 0 } });
    let r: Database | undefined;
    try {
      await w.createTable('t', SPEC);
      await w.insert(
        't',
        Array.from({ length: 1000 }, (_, id) => ({ id, v: 1 })),
      );
      await w.checkpoint();
      await w.insert('t', { id: 5000, v: 1 }); // not in a checkpoint: not on the replica
      r = await open(path.join(dir, 'r'), { objectStore, readOnly: true, refreshMs: 60_000 });
      expect((await ids(r)).length).toBe(1000);
      expect(await r.get('t', 5000)).toBeUndefined();
      // Writes are refused, clearly.
      expect(await codeOf(r.insert('t', { id: 2000, v: 1 }))).toBe('READ_ONLY');
      expect(await codeOf(r.upsert('t', { id: 1, v: 2 }))).toBe('READ_ONLY');
      expect(await codeOf(r.delete('t', 1))).toBe('READ_ONLY');
      expect(await codeOf(r.createTable('u', SPEC))).toBe('READ_ONLY');
      expect(await codeOf(r.dropTable('t'))).toBe('READ_ONLY');
      expect(await codeOf(r.flush())).toBe('READ_ONLY');
      expect(await codeOf(r.checkpoint())).toBe('READ_ONLY');
      expect(await codeOf(r.transaction(async (tx) => tx.insert('t', { id: 3000, v: 1 })))).toBe('READ_ONLY');
      expect((await ids(r)).length).toBe(1000);
      // The writer checkpoints; the replica moves on its next look.
      await w.createTable('u', SPEC);
      await w.insert('u', { id: 1, v: 1 });
      await w.delete('t', 0);
      await w.checkpoint();
      expect(await r.refresh()).toBe(true);
      expect(await r.refresh()).toBe(false);
      expect((await ids(r)).length).toBe(1000); // 0 gone, 5000 in
      expect(await r.get('t', 5000)).toEqual({ id: 5000, v: 1 });
      expect(await r.get('t', 0)).toBeUndefined();
      expect(r.tables().sort()).toEqual(['t', 'u']);
      // A snapshot held on the replica keeps it where it is; released, the replica moves.
      const snap = r.snapshot();
      await w.insert('t', { id: 6000, v: 1 });
      await w.checkpoint();
      expect(await r.refresh()).toBe(false);
      expect(r.stats().replica!.postponed).toBeGreaterThan(0);
      expect(await snap.get('t', 6000)).toBeUndefined();
      snap.release();
      expect(await r.refresh()).toBe(true);
      expect(await r.get('t', 6000)).toEqual({ id: 6000, v: 1 });
      expect(r.stats().replica!.refreshes).toBe(2);
    } finally {
      await r?.close();
      await w.close();
      cleanup();
    }
  }, 60_000);

  it('follow on their own every refreshMs', async () => {
    const { dir, cleanup } = tempDir('tidemark-replica-');
    const objectStore = await newBucket();
    const w = await open(path.join(dir, 'w'), { objectStore, checkpoint: { intervalMs: 0 } });
    const r = await open(path.join(dir, 'r'), { objectStore, readOnly: true, refreshMs: 100 });
    try {
      expect(r.tables()).toEqual([]);
      await w.createTable('t', SPEC);
      await w.insert('t', { id: 1, v: 1 });
      await w.checkpoint();
      const until = Date.now() + 10_000;
      while (!r.tables().includes('t') && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
      expect(await r.get('t', 1)).toEqual({ id: 1, v: 1 });
    } finally {
      await r.close();
      await w.close();
      cleanup();
    }
  }, 30_000);

  it("keep reading what the writer's GC deleted, for the grace period; then it is gone", async () => {
    const { dir, cleanup } = tempDir('tidemark-replica-');
    const bucket = await motoServer().bucket();
    const objectStore = {
      endpoint: motoServer().endpoint,
      bucket,
      prefix: 'p',
      ...CREDENTIALS,
      gcGraceMs: 1500,
    };
    const fs = new ObjectStoreFileService(new LocalFileService(path.join(dir, 'w')), objectStore);
    const w = await open(path.join(dir, 'w'), {
      fileService: fs,
      checkpoint: { intervalMs: 0, incrementalsPerGlobal: 1 },
      storage: { mergeMinObjects: 0 },
    });
    const r = await open(path.join(dir, 'r'), { objectStore, readOnly: true, refreshMs: 60_000 });
    try {
      await w.createTable('t', SPEC);
      for (let k = 0; k < 3; k++) {
        await w.insert(
          't',
          Array.from({ length: 300 }, (_, i) => ({ id: k * 300 + i, v: k })),
        );
        await w.flush();
      }
      await w.checkpoint();
      await r.refresh();
      const before = await objectKeys(bucket);
      expect(before.length).toBe(3);
      // The replica holds the old state (a snapshot) while the writer merges and checkpoints twice:
      // the three objects are deleted for the writer...
      const snap = r.snapshot();
      await w.compact();
      await w.checkpoint();
      await w.checkpoint({ global: true });
      expect(fs.counters.collected).toBe(0);
      // ...but still in the bucket, and the replica reads them.
      expect((await objectKeys(bucket)).filter((k) => before.includes(k))).toEqual(before);
      r._dropCache();
      expect((await collect(snap.scan('t'))).length).toBe(900);
      snap.release();
      // After the grace period the writer's sweep removes them.
      await new Promise((res) => setTimeout(res, 1600));
      await fs.sweep();
      expect((await objectKeys(bucket)).filter((k) => before.includes(k))).toEqual([]);
      expect(fs.counters.collected).toBeGreaterThanOrEqual(3);
      // The replica moves to the merged state and reads it.
      expect(await r.refresh()).toBe(true);
      expect((await ids(r)).length).toBe(900);
    } finally {
      await r.close();
      await w.close();
      cleanup();
    }
  }, 60_000);

  it("serve SQL from the writer's SQL catalog, refuse SQL writes, and see new tables and views after a move", async () => {
    const { dir, cleanup } = tempDir('tidemark-replica-sql-');
    const objectStore = await newBucket();
    const w = await open(path.join(dir, 'w'), { objectStore, checkpoint: { intervalMs: 0 } });
    let r: Database | undefined;
    try {
      await w.query('CREATE TABLE a (x INT, s VARCHAR(5))'); // a hidden row id
      await w.query("INSERT INTO a VALUES (1, 'p'), (2, 'q')");
      await w.checkpoint();
      r = await open(path.join(dir, 'r'), { objectStore, readOnly: true, refreshMs: 60_000 });
      expect(await codeOf(r.query('CREATE TABLE b (y INT)'))).toBe('READ_ONLY');
      expect(await r.query('SELECT * FROM a ORDER BY x')).toEqual({
        columns: ['x', 's'],
        rows: [
          [1, 'p'],
          [2, 'q'],
        ],
        affectedRows: 0,
      });
      expect(await codeOf(r.query("INSERT INTO a VALUES (3, 'r')"))).toBe('READ_ONLY');
      // New SQL tables and views on the writer: the replica's catalog follows its move.
      await w.query('CREATE TABLE b (y INT, z INT, PRIMARY KEY (y, z))');
      await w.query('INSERT INTO b VALUES (1, 1), (1, 2)');
      await w.query('CREATE VIEW v AS SELECT count(*) AS n FROM b');
      await w.checkpoint();
      expect(await r.refresh()).toBe(true);
      expect((await r.query('SELECT * FROM b ORDER BY z')).columns).toEqual(['y', 'z']);
      expect((await r.query('SELECT n FROM v')).rows).toEqual([[2]]);
    } finally {
      await r?.close();
      await w.close();
      cleanup();
    }
  }, 60_000);
});
