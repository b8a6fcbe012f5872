import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { open, type Database } from '../../src/index.js';
import { LocalFileService } from '../../src/fileservice/local.js';
import { ObjectStoreFileService } from '../../src/fileservice/s3.js';
import type { ObjectStoreOptions } from '../../src/fileservice/s3_options.js';
import { runModel } from '../db/model_harness.js';
import { CREDENTIALS, useMoto } from '../helpers/moto.js';
import { tempDir } from '../helpers/tmp.js';
import { killLoop } from '../torture/kill_loop.js';

/**
 * The model, crash and leak tests over object storage, at a smaller size: the model test's random
 * histories (restarts for crashes: a real process crash is the kill test's), SIGKILLs of a child
 * writing to the bucket, and open/write/read/close cycles that must leave nothing behind.
 */
const motoServer = useMoto();

const KILLS = Number(process.env['TIDEMARK_S3_KILLS'] ?? (process.env['TIDEMARK_LONG'] === '1' ? 200 : 15));

describe('object storage under the torture suites', () => {
  it('random transactions with flushes, merges, checkpoints and restarts agree with the model', async () => {
    const bucket = await motoServer().bucket();
    let run = 0;
    await runModel(
      async () => {
        const { dir, cleanup } = tempDir('tidemark-s3model-');
        const objectStore = {
          endpoint: motoServer().endpoint,
          bucket,
          prefix: `run-${++run}`,
          ...CREDENTIALS,
        };
        return {
          open: (options) => open(dir, { ...options, objectStore }),
          dispose: async () => cleanup(),
        };
      },
      process.env['TIDEMARK_LONG'] === '1' ? 200 : 12,
      40,
    );
  }, 300_000);

  it(`${KILLS} kills with SIGKILL of a writer to the bucket: every acknowledged commit survives`, async () => {
    const objectStore = {
      endpoint: motoServer().endpoint,
      bucket: await motoServer().bucket(),
      prefix: 'kill',
      ...CREDENTIALS,
    };
    const { acks, problems } = await killLoop(KILLS, objectStore);
    expect(problems).toEqual([]);
    expect(acks).toBeGreaterThan(KILLS * 5);
  }, 600_000);

  /** Timers, sockets and handles of the process, by type (what a leak would add to). */
  function resources(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
    return out;
  }

  function dirBytes(dir: string): number {
    let n = 0;
    for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
      if (e.isFile()) n += statSync(path.join(e.parentPath, e.name)).size;
    return n;
  }

  async function cycles(
    make: (dir: string, o: ObjectStoreOptions) => ObjectStoreFileService,
    n: number,
  ): Promise<{ before: Record<string, number>; after: Record<string, number>; cacheMax: number }> {
    const { dir, cleanup } = tempDir('tidemark-s3leak-');
    const objectStore = {
      endpoint: motoServer().endpoint,
      bucket: await motoServer().bucket(),
      prefix: 'leak',
      ...CREDENTIALS,
      cacheBytes: 64 * 1024,
      gcGraceMs: 0,
      leaseMs: 3000,
    };
    let cacheMax = 0;
    // Settle what the first use of the SDK creates once (agents, DNS caches) before the baseline.
    const warm = await open(dir, { fileService: make(dir, objectStore), checkpoint: { intervalMs: 0 } });
    await warm.createTable('t', { columns: { id: 'int64', v: 'string' }, primaryKey: 'id' });
    await warm.close();
    await new Promise((r) => setTimeout(r, 50));
    const before = resources();
    try {
      for (let c = 0; c < n; c++) {
        let db: Database | undefined = await open(dir, {
          fileService: make(dir, objectStore),
          memory: { leakDetection: 'paranoid' },
          checkpoint: { intervalMs: 0, incrementalsPerGlobal: 2 },
          storage: { memtableRowsMax: 300, rowGroupRows: 64, mergeMinObjects: 3 },
        });
        try {
          await db.upsert(
            't',
            Array.from({ length: 400 }, (_, i) => ({ id: (c * 97 + i) % 1500, v: `c${c}-${i}` })),
          );
          await db.flush();
          await db.checkpoint();
          if (c % 3 === 2) await db.compact();
          let k = 0;
          for await (const _ of db.scan('t', { reverse: c % 2 === 0 })) if (++k > 100) break;
          cacheMax = Math.max(cacheMax, dirBytes(path.join(dir, 'cache')));
          // close() proves every pool at zero and every handle closed (else LEAK).
          await db.close();
          db = undefined;
        } finally {
          await db?.close().catch(() => undefined);
        }
      }
      await new Promise((r) => setTimeout(r, 50));
      return { before, after: resources(), cacheMax };
    } finally {
      cleanup();
    }
  }

  it('open, write, read and close cycles on the bucket leave no timer, socket or handle behind', async () => {
    const make = (dir: string, o: ObjectStoreOptions) =>
      new ObjectStoreFileService(new LocalFileService(dir), o);
    const { before, after, cacheMax } = await cycles(make, 12);
    // Nothing more of any kind than before the cycles (something transient may have gone).
    for (const [kind, n] of Object.entries(after)) expect(n, kind).toBeLessThanOrEqual(before[kind] ?? 0);
    // The local read cache stays within its limit (plus the files open for reading at that moment).
    expect(cacheMax).toBeLessThan(4 * 1024 * 1024);
  }, 120_000);

  it('proven able to fail: a file service that leaves its renewal timer running is caught', async () => {
    const plantedTimers: NodeJS.Timeout[] = [];
    class Leaky extends ObjectStoreFileService {
      override async close(): Promise<void> {
        // The planted leak: a timer the service should have cleared.
        plantedTimers.push(setInterval(() => undefined, 60_000));
        await super.close();
      }
    }
    const make = (dir: string, o: ObjectStoreOptions) => new Leaky(new LocalFileService(dir), o);
    const { before, after } = await cycles(make, 3);
    expect(after['Timeout'] ?? 0).toBeGreaterThan(before['Timeout'] ?? 0);
    // (Clear what the planted leak left, so that the process can end.)
    for (const t of plantedTimers) clearInterval(t);
  }, 60_000);
});
