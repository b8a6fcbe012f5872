import { afterEach, expect, test } from 'vitest';
import type { Database } from '../../src/index.js';
import { TidemarkServer } from '../../src/server/server.js';
import { ACCOUNTS, memDb } from '../helpers/db.js';
import { parseProm, sample } from '../helpers/prom.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(): Promise<{
  db: Database;
  server: TidemarkServer;
  get: (p: string) => Promise<Response>;
}> {
  const { db } = await memDb({ checkpoint: { intervalMs: 0 } });
  cleanups.push(() => db.close());
  const server = await TidemarkServer.start(db, { port: 0, defaultMetrics: false });
  cleanups.push(() => server.close());
  return { db, server, get: (p) => fetch(new URL(p, server.url)) };
}

test('serves /metrics, /api/stats, the dashboard and its chart library, on 127.0.0.1 by default', async () => {
  const { db, server, get } = await started();
  expect(server.address.address).toBe('127.0.0.1');
  await db.createTable('a', ACCOUNTS);
  await db.insert('a', [{ id: 1, owner: 'x', balance: 1 }]);
  await db.checkpoint();

  const metrics = await get('/metrics');
  expect(metrics.status).toBe(200);
  expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
  const f = parseProm(await metrics.text());
  expect(sample(f, 'tidemark_checkpoint_total', { kind: 'incremental', result: 'ok' })).toBe(1);
  expect(sample(f, 'tidemark_commit_duration_seconds_count')).toBe(1);

  const stats = (await (await get('/api/stats')).json()) as {
    stats: { tables: number };
    history: { t: number; pools: Record<string, number> }[];
    checkpoints: { kind: string; ok: boolean }[];
  };
  expect(stats.stats.tables).toBe(1);
  expect(stats.history.length).toBeGreaterThan(0);
  expect(Object.keys(stats.history[0]!.pools)).toContain('checkpoint');
  expect(stats.checkpoints).toMatchObject([{ kind: 'incremental', ok: true }]);

  const page = await get('/');
  expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  const html = await page.text();
  // Everything the page loads comes from this server.
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  expect(refs.length).toBeGreaterThan(3);
  for (const ref of refs.filter((r) => !r.startsWith('data:'))) {
    expect(ref, 'the page must load nothing from elsewhere').toMatch(/^\//);
    if (ref.startsWith('/debug/heap')) continue; // a link that samples for seconds (tested below)
    const r = await get(ref);
    expect(r.status, ref).toBe(200);
    expect((await r.arrayBuffer()).byteLength, ref).toBeGreaterThan(100);
  }
  const lib = await get('/vendor/uPlot.iife.min.js');
  expect(lib.headers.get('content-type')).toMatch(/javascript/);
  await lib.arrayBuffer();
});

test('/debug/leaks names live holders and open files; /debug/heap returns a sampled heap profile', async () => {
  const { db, get } = await started();
  await db.createTable('a', ACCOUNTS);
  const leaks = (await (await get('/debug/leaks')).json()) as {
    pools: { pool: string; bytes: number; holders: { owner: string; bytes: number }[] }[];
    files: { path: string; kind: string; openedAt: string }[];
  };
  // Every live byte of every pool is accounted to a holder.
  for (const p of leaks.pools)
    expect(
      p.holders.reduce((a, h) => a + h.bytes, 0),
      p.pool,
    ).toBe(p.bytes);
  expect(leaks.pools.flatMap((p) => p.holders.map((h) => h.owner))).toContain('txn.writes');
  expect(leaks.files.map((f) => f.kind)).toEqual(expect.arrayContaining(['lock', 'wal']));
  expect(leaks.files[0]!.openedAt).toMatch(/\bat /);

  const heap = await get('/debug/heap?seconds=0.2');
  expect(heap.status).toBe(200);
  expect(heap.headers.get('content-disposition')).toMatch(/heapprofile/);
  const profile = (await heap.json()) as {
    head: { callFrame: unknown; children: unknown[] };
    samples: unknown[];
  };
  expect(profile.head.callFrame).toBeDefined();
  expect(Array.isArray(profile.head.children)).toBe(true);
  expect((await get('/debug/heap?seconds=99')).status).toBe(400);
});

test('unknown pages are 404, other methods 405, and a port in use is a clear error', async () => {
  const { server, get } = await started();
  expect((await get('/nope')).status).toBe(404);
  expect((await fetch(new URL('/metrics', server.url), { method: 'POST' })).status).toBe(405);
  const { db: other } = await memDb();
  cleanups.push(() => other.close());
  await expect(
    TidemarkServer.start(other, { port: server.address.port, defaultMetrics: false }),
  ).rejects.toMatchObject({
    code: 'INVALID_ARGUMENT',
    message: expect.stringMatching(/cannot listen/),
  });
  await expect(TidemarkServer.start(other, { port: 70000 })).rejects.toMatchObject({
    code: 'INVALID_ARGUMENT',
  });
});

test('requests addressed to another host are refused (DNS rebinding); a closed database is 503', async () => {
  const { db, server, get } = await started();
  const { request } = await import('node:http');
  const status = (host: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: server.address.port, path: '/api/stats', headers: { Host: host } },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.end();
    });
  expect(await status('evil.example:7070')).toBe(403);
  // Bound by the name localhost, the same check holds.
  const { db: other } = await memDb();
  cleanups.push(() => other.close());
  const named = await TidemarkServer.start(other, { port: 0, host: 'localhost', defaultMetrics: false });
  cleanups.push(() => named.close());
  const rebound = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: named.address.address,
        port: named.address.port,
        path: '/api/stats',
        headers: { Host: 'evil.example' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode!);
      },
    );
    req.on('error', reject);
    req.end();
  });
  expect(rebound).toBe(403);
  expect(await status(`localhost:${server.address.port}`)).toBe(200);
  expect(await status(`127.0.0.1:${server.address.port}`)).toBe(200);
  await db.close();
  expect((await get('/metrics')).status).toBe(503);
  expect((await get('/api/stats')).status).toBe(503);
});

test('close ends a heap profile being taken', async () => {
  const { server, get } = await started();
  const pending = get('/debug/heap?seconds=25').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 200));
  const t = performance.now();
  await server.close();
  await pending;
  expect(performance.now() - t).toBeLessThan(5_000);
});
