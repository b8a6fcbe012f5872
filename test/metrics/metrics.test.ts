import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect, test } from 'vitest';
import { Metrics } from '../../src/metrics/metrics.js';
import { ACCOUNTS, memDb } from '../helpers/db.js';
import { ROOT } from '../helpers/child.js';
import { parseProm, sample } from '../helpers/prom.js';

/** Every metric the issues name (and SQL's), and what kind it is. */
const REQUIRED: [string, string][] = [
  ['tidemark_memory_pool_bytes', 'gauge'],
  ['tidemark_memory_pool_high_water_bytes', 'gauge'],
  ['tidemark_memory_pool_handles', 'gauge'],
  ['tidemark_memory_limit_bytes', 'gauge'],
  ['tidemark_memory_array_buffers_bytes', 'gauge'],
  ['tidemark_memory_untracked_bytes', 'gauge'],
  ['tidemark_leaks_detected_total', 'counter'],
  ['tidemark_open_files', 'gauge'],
  ['tidemark_wal_bytes', 'gauge'],
  ['tidemark_wal_segments', 'gauge'],
  ['tidemark_wal_pinned_bytes', 'gauge'],
  ['tidemark_indexes', 'gauge'],
  ['tidemark_index_builds', 'gauge'],
  ['tidemark_index_memtable_bytes', 'gauge'],
  ['tidemark_checkpoint_total', 'counter'],
  ['tidemark_checkpoint_duration_seconds', 'histogram'],
  ['tidemark_checkpoint_lag_seconds', 'gauge'],
  ['tidemark_checkpoint_escalations_total', 'counter'],
  ['tidemark_gc_deleted_files_total', 'counter'],
  ['tidemark_commit_duration_seconds', 'histogram'],
  ['tidemark_transactions_total', 'counter'],
  ['tidemark_flush_total', 'counter'],
  ['tidemark_merge_total', 'counter'],
  ['tidemark_sql_statements_total', 'counter'],
  ['tidemark_sql_zone_skipped_groups_total', 'counter'],
  ['tidemark_sql_index_reads_total', 'counter'],
];

const rows = (from: number, n: number) =>
  Array.from({ length: n }, (_, k) => ({ id: from + k, owner: 'o', balance: from + k }));

test('after a workload every metric is there, with help text and sensible values', async () => {
  const { db } = await memDb({
    checkpoint: { intervalMs: 0, onClose: false },
    storage: { memtableRowsMax: 100, mergeMinObjects: 2 },
  });
  const metrics = new Metrics(db);
  try {
    await db.createTable('a', ACCOUNTS);
    let writes = 0;
    for (let i = 0; i < 10; i++, writes++) await db.insert('a', rows(i * 50, 50));
    await db.transaction(async (tx) => tx.get('a', 3)); // read only
    // A conflict: two transactions update the same row.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = db.transaction(async (tx) => {
      await tx.update('a', 1, { balance: 10 });
      await gate;
    });
    const second = db.transaction(async (tx) => tx.update('a', 1, { balance: 20 }));
    await second;
    writes++;
    release();
    await expect(first).rejects.toMatchObject({ code: 'CONFLICT' });
    await db.checkpoint();
    await db.insert('a', rows(1000, 10));
    writes++;
    await db.compact();
    await db.checkpoint({ global: true });
    const text = await metrics.text();
    const f = parseProm(text);
    for (const [name, type] of REQUIRED) {
      const fam = f.get(name);
      expect(fam, `${name} is missing`).toBeDefined();
      expect(fam!.type, name).toBe(type);
      expect(fam!.help.length, `${name} has no help text`).toBeGreaterThan(10);
      expect(fam!.samples.length, `${name} has no samples`).toBeGreaterThan(0);
    }
    const s = db.stats();
    for (const pool of Object.keys(s.memory.pools)) {
      expect(sample(f, 'tidemark_memory_pool_bytes', { pool }), pool).toBe(s.memory.pools[pool]!.bytes);
      expect(sample(f, 'tidemark_memory_pool_high_water_bytes', { pool })).toBeGreaterThanOrEqual(
        s.memory.pools[pool]!.bytes,
      );
    }
    expect(sample(f, 'tidemark_memory_pool_high_water_bytes', { pool: 'wal' })).toBeGreaterThan(0);
    expect(sample(f, 'tidemark_memory_limit_bytes')).toBe(s.memory.limitBytes);
    expect(sample(f, 'tidemark_memory_array_buffers_bytes')).toBeGreaterThan(0);
    const rss = sample(f, 'process_resident_memory_bytes')!;
    expect(sample(f, 'tidemark_memory_untracked_bytes')).toBeGreaterThan(0);
    expect(sample(f, 'tidemark_memory_untracked_bytes')).toBeLessThan(rss);
    expect(sample(f, 'tidemark_leaks_detected_total', { pool: 'checkpoint' })).toBe(0);
    expect(sample(f, 'tidemark_open_files', { kind: 'wal' })).toBeGreaterThanOrEqual(1);
    expect(sample(f, 'tidemark_open_files', { kind: 'lock' })).toBe(1);
    expect(sample(f, 'tidemark_wal_bytes')).toBe(s.wal.bytes);
    expect(sample(f, 'tidemark_wal_segments')).toBe(s.wal.segments);
    expect(sample(f, 'tidemark_indexes')).toBe(s.indexes.count);
    expect(sample(f, 'tidemark_wal_pinned_bytes')).toBe(s.wal.pinnedBytes);
    // One event per step: the global checkpoint's incremental step is counted as an incremental.
    expect(sample(f, 'tidemark_checkpoint_total', { kind: 'incremental', result: 'ok' })).toBe(
      s.checkpoints.incremental,
    );
    expect(s.checkpoints.incremental).toBe(2);
    expect(sample(f, 'tidemark_checkpoint_total', { kind: 'global', result: 'ok' })).toBe(1);
    expect(sample(f, 'tidemark_checkpoint_total', { kind: 'global', result: 'failed' })).toBe(0);
    expect(sample(f, 'tidemark_checkpoint_duration_seconds_count', { kind: 'global' })).toBe(1);
    expect(sample(f, 'tidemark_checkpoint_duration_seconds_sum', { kind: 'global' })).toBeGreaterThan(0);
    expect(sample(f, 'tidemark_checkpoint_lag_seconds')).toBe(0); // nothing changed since
    expect(sample(f, 'tidemark_checkpoint_escalations_total')).toBe(0);
    expect(sample(f, 'tidemark_gc_deleted_files_total', { kind: 'object' })).toBeGreaterThan(0);
    // Every commit with writes was timed, the one that failed on its conflict too (the table's
    // creation is DDL, not counted).
    expect(sample(f, 'tidemark_commit_duration_seconds_count')).toBe(writes + 1);
    expect(sample(f, 'tidemark_commit_duration_seconds_bucket', { le: '+Inf' })).toBe(writes + 1);
    expect(sample(f, 'tidemark_commit_duration_seconds_sum')).toBeGreaterThan(0);
    expect(sample(f, 'tidemark_transactions_total', { result: 'committed' })).toBe(writes);
    expect(sample(f, 'tidemark_transactions_total', { result: 'read_only' })).toBe(1);
    expect(sample(f, 'tidemark_transactions_total', { result: 'conflict' })).toBe(1);
    expect(sample(f, 'tidemark_flush_total')).toBe(s.storage.flushes);
    expect(s.storage.flushes).toBeGreaterThan(0);
    expect(sample(f, 'tidemark_merge_total')).toBeGreaterThan(0);
    // prom-client's default process metrics are there too.
    expect(sample(f, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(f.has('nodejs_heap_size_used_bytes')).toBe(true);
    // Counters follow the stats by deltas: a second scrape adds only what happened since.
    await db.insert('a', rows(5000, 1));
    const again = parseProm(await metrics.text());
    expect(sample(again, 'tidemark_transactions_total', { result: 'committed' })).toBe(writes + 1);
    expect(sample(again, 'tidemark_flush_total')).toBe(s.storage.flushes);
  } finally {
    metrics.close();
    await db.close();
  }
});

test('docs/metrics.md lists every tidemark metric, and nothing that is not one', async () => {
  const { db } = await memDb();
  const metrics = new Metrics(db, { defaultMetrics: false });
  try {
    const names = [...parseProm(await metrics.text()).keys()].filter((n) => n.startsWith('tidemark_'));
    expect(names.sort()).toEqual(REQUIRED.map(([n]) => n).sort());
    const doc = readFileSync(path.join(ROOT, 'docs/metrics.md'), 'utf8');
    for (const n of names) expect(doc, `docs/metrics.md does not list ${n}`).toContain(`\`${n}\``);
    const listed = [...doc.matchAll(/`(tidemark_\w+)`/g)].map((m) => m[1]!);
    for (const n of listed)
      expect(names, `docs/metrics.md lists ${n}`).toContain(n.replace(/_(bucket|sum|count)$/, ''));
  } finally {
    metrics.close();
    await db.close();
  }
});

test('with a registry of your own, close removes only what it registered', async () => {
  const { Registry, Gauge } = await import('prom-client');
  const registry = new Registry();
  new Gauge({ name: 'my_app_gauge', help: 'mine', registers: [registry] }).set(7);
  const { db } = await memDb();
  const metrics = new Metrics(db, { registry, defaultMetrics: false });
  try {
    expect(await registry.metrics()).toContain('tidemark_wal_bytes');
    metrics.close();
    const left = await registry.metrics();
    expect(left).toContain('my_app_gauge 7');
    expect(left).not.toContain('tidemark_');
  } finally {
    await db.close();
  }
});

test('SQL statements and zone-map skips are counted', async () => {
  const { db } = await memDb({ storage: { rowGroupRows: 64 } });
  const metrics = new Metrics(db);
  try {
    await db.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
    await db.query(
      `INSERT INTO t VALUES ${Array.from({ length: 640 }, (_, i) => `(${i}, ${i})`).join(', ')}`,
    );
    await db.flush();
    await db.query('SELECT count(*) FROM t WHERE v >= 600');
    await db.query('SELECT v FROM t WHERE id = ?', [3]);
    await expect(db.query('SELECT nope FROM t')).rejects.toMatchObject({ code: 'SCHEMA' });
    const f = parseProm(await metrics.text());
    const s = db.stats().sql;
    expect(s.statements).toBe(5);
    expect(s.failed).toBe(1);
    expect(sample(f, 'tidemark_sql_statements_total', { result: 'ok' })).toBe(4);
    expect(sample(f, 'tidemark_sql_statements_total', { result: 'failed' })).toBe(1);
    expect(s.zoneSkippedGroups).toBeGreaterThanOrEqual(9);
    expect(sample(f, 'tidemark_sql_zone_skipped_groups_total')).toBe(s.zoneSkippedGroups);
  } finally {
    metrics.close();
    await db.close();
  }
});
