/**
 * The leak soak's checks at quiescence: pools, file handles, files and live instances of the
 * engine's classes against what the database should hold; each throws a Failure naming the holders.
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { Checkpointer } from '../checkpoint/checkpointer.js';
import { inspect } from '../db/inspect.js';
import { Database } from '../api/database.js';
import { Storage } from '../storage/storage.js';
import { PooledBuffer, Reservation } from '../mem/buffer.js';
import { ObjectReader } from '../objectio/reader.js';
import { ObjectLayer } from '../table/object_layer.js';
import { TableScan } from '../table/scan.js';
import { MemLayer, Table } from '../table/table.js';
import { MemTable } from '../table/memtable.js';
import { Transaction } from '../txn/transaction.js';
import { Wal } from '../wal/wal.js';
import { quietly, settle } from './process_watch.js';
import { retainingPaths, takeSnapshot } from './retainers.js';
import { Failure, indent } from './verdict.js';

/** Live instances of one of the engine's classes, and how many the database should hold. */
export interface ClassCount {
  name: string;
  expected: number;
  live: number;
}

/** Memtables flushed, background work done, the block cache emptied, the heap settled. */
export async function quiesce(db: Database): Promise<void> {
  await db.flush();
  await db._idle();
  db._dropCache();
  await settle();
}

/**
 * Buffers a subsystem keeps for its whole life once first needed (so present or not depending on
 * what ran since the last open): at most one each, left out of the comparison.
 */
const STANDING = new Set(['wal.batch']);

/** Bytes and handles per pool, standing buffers left out. */
export function poolSnapshot(db: Database): Record<string, { bytes: number; handles: number }> {
  const standing = new Map<string, { bytes: number; handles: number }>();
  for (const h of db._holders().pools) {
    if (!STANDING.has(h.owner) || h.count > 1) continue;
    const e = standing.get(h.scope) ?? { bytes: 0, handles: 0 };
    e.bytes += h.bytes;
    e.handles += h.count;
    standing.set(h.scope, e);
  }
  const out: Record<string, { bytes: number; handles: number }> = {};
  for (const [name, p] of Object.entries(db.stats().memory.pools)) {
    const st = standing.get(name) ?? { bytes: 0, handles: 0 };
    out[name] = { bytes: p.bytes - st.bytes, handles: p.handles - st.handles };
  }
  return out;
}

export function checkPools(
  db: Database,
  baseline: Record<string, { bytes: number; handles: number }>,
  context: string,
): void {
  const census = db._census();
  const problems: string[] = [];
  for (const [name, p] of Object.entries(poolSnapshot(db))) {
    let want = baseline[name] ?? { bytes: 0, handles: 0 };
    // The block cache was just emptied; the filter pool holds the open objects' bloom filters.
    if (name === 'cache') want = { bytes: 0, handles: 0 };
    if (name === 'meta') want = { bytes: census.bloomBytes, handles: census.readers };
    if (p.bytes === want.bytes && p.handles === want.handles) continue;
    const holders = db
      ._holders()
      .pools.filter((h) => h.scope === name)
      .map(
        (h) =>
          `    ${h.owner}: ${h.count} live, ${h.bytes} bytes${h.stack !== undefined ? `\n      allocated at:\n${indent(h.stack, 8)}` : ''}`,
      );
    if (name === 'cache') {
      const c = db.stats().storage.cache;
      holders.push(`    block cache: ${c.entries} entries, ${c.pinned} pinned, ${c.bytes} bytes`);
    }
    problems.push(
      `pool '${name}' holds ${p.bytes} bytes in ${p.handles} handle(s), expected ${want.bytes} in ${want.handles}:\n${holders.join('\n')}`,
    );
  }
  if (problems.length > 0)
    throw new Failure(`${context}: memory not back to its baseline at quiescence:\n${problems.join('\n')}`);
}

/** Open handles other than cached object files, by kind. */
export function nonObjectHandles(db: Database): Map<string, number> {
  const m = new Map<string, number>();
  for (const f of db._holders().files) if (f.kind !== 'object') m.set(f.kind, (m.get(f.kind) ?? 0) + 1);
  return m;
}

/** Open file descriptors of this process that point into `dir` (Linux: /proc/self/fd). */
function fdsUnder(dir: string): string[] | undefined {
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  const out: string[] = [];
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir + path.sep)) out.push(path.relative(dir, target));
    } catch {
      // the fd of readdir itself, closed meanwhile
    }
  }
  return out.sort();
}

export function checkHandles(
  db: Database,
  baseline: Map<string, number>,
  realDir: string,
  context: string,
): void {
  const files = db._holders().files;
  const live = new Set(db.files().map((f) => f.path));
  const problems: string[] = [];
  const now = nonObjectHandles(db);
  for (const kind of new Set([...baseline.keys(), ...now.keys()])) {
    if ((now.get(kind) ?? 0) === (baseline.get(kind) ?? 0)) continue;
    const extra = files.filter((f) => f.kind === kind);
    problems.push(
      `${now.get(kind) ?? 0} open '${kind}' handle(s), expected ${baseline.get(kind) ?? 0}:\n${extra
        .map((f) => `    ${f.path} (${f.mode}), opened at:\n${indent(f.stack, 6)}`)
        .join('\n')}`,
    );
  }
  for (const f of files)
    if (f.kind === 'object' && !live.has(f.path))
      problems.push(
        `an open handle on ${f.path}, which is not a live object file; opened at:\n${indent(f.stack, 6)}`,
      );
  // The operating system's view: every fd into the directory is one the registry knows.
  const fds = fdsUnder(realDir);
  if (fds !== undefined) {
    const registered = files.map((f) => f.path).sort();
    if (fds.length !== registered.length || fds.some((p, i) => p !== registered[i]))
      problems.push(
        `/proc/self/fd has [${fds.join(', ')}] open in the directory; the registry [${registered.join(', ')}]`,
      );
  }
  if (problems.length > 0)
    throw new Failure(`${context}: file handles not back to their baseline:\n${problems.join('\n')}`);
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ['', 'wal', 'obj', 'ckp']) {
    let names: string[];
    try {
      names = readdirSync(path.join(dir, sub));
    } catch {
      continue;
    }
    for (const n of names) {
      const rel = sub === '' ? n : `${sub}/${n}`;
      if (statSync(path.join(dir, rel)).isFile()) out.push(rel);
    }
  }
  return out.sort();
}

/**
 * The directory equal to the registry, no orphan object or checkpoint file (read by `inspect`,
 * independently of the open database), at most `bound` files in ckp/; returns how many it holds.
 */
export async function checkFiles(db: Database, dir: string, bound: number, context: string): Promise<number> {
  const disk = filesUnder(dir);
  const registry = db.files().map((f) => f.path);
  const problems: string[] = [];
  if (disk.join('\n') !== registry.join('\n')) {
    const a = new Set(disk);
    const b = new Set(registry);
    problems.push(
      `the directory and the registry differ: on disk only [${disk.filter((f) => !b.has(f)).join(', ')}], in the registry only [${registry.filter((f) => !a.has(f)).join(', ')}]`,
    );
  }
  // Read independently of the open database: every file is named by a retained meta file or the WAL.
  const r = await inspect(dir);
  if (r.objects.orphans.length > 0) problems.push(`orphan object files: ${r.objects.orphans.join(', ')}`);
  if (r.orphanCheckpointFiles.length > 0)
    problems.push(`checkpoint files no retained meta file names: ${r.orphanCheckpointFiles.join(', ')}`);
  const ckpFiles = disk.filter((f) => f.startsWith('ckp/'));
  const ckp = ckpFiles.length;
  if (ckp > bound) problems.push(`${ckp} files in ckp/, above the bound of ${bound}: ${ckpFiles.join(', ')}`);
  if (problems.length > 0) throw new Failure(`${context}: files:\n  ${problems.join('\n  ')}`);
  return ckp;
}

// Constructors (some private): v8.queryObjects only needs the prototype chain.
const CLASSES: [string, { prototype: object }][] = [
  ['Database', Database],
  ['Storage', Storage],
  ['Checkpointer', Checkpointer],
  ['Wal', Wal],
  ['Table', Table],
  ['MemLayer', MemLayer],
  ['MemTable', MemTable],
  ['ObjectLayer', ObjectLayer],
  ['ObjectReader', ObjectReader],
  ['Transaction', Transaction],
  ['TableScan', TableScan],
  ['PooledBuffer', PooledBuffer],
  ['Reservation', Reservation],
];

export async function checkClasses(db: Database, context: string): Promise<ClassCount[]> {
  const c = db._census();
  // At quiescence the live buffers are the open objects' bloom filters and the standing ones; the
  // memtable pool holds reservations only (write sets, recent-commit indexes).
  const holders = db._holders().pools;
  const standing = holders.filter((h) => STANDING.has(h.owner)).reduce((n, h) => n + h.count, 0);
  const reservations = db.stats().memory.pools['memtable']!.handles;
  const expected: Record<string, number> = {
    Database: 1,
    Storage: 1,
    Checkpointer: 1,
    Wal: 1,
    Table: c.tables,
    MemLayer: c.memLayers,
    MemTable: c.memLayers,
    ObjectLayer: c.objectLayers,
    ObjectReader: c.readers,
    Transaction: 0,
    TableScan: 0,
    PooledBuffer: c.readers + standing,
    Reservation: reservations,
  };
  const out: ClassCount[] = [];
  const problems: string[] = [];
  for (const [name, ctor] of CLASSES) {
    const live = quietly(() => v8.queryObjects(ctor as never, { format: 'count' }));
    out.push({ name, expected: expected[name]!, live });
    if (live !== expected[name])
      problems.push(`${live} ${name} instance(s) live, expected ${expected[name]}`);
  }
  if (problems.length > 0) {
    problems.push(`the database holds ${JSON.stringify(c)}, ${standing} standing buffer(s)`);
    // Name the holders: the retaining paths of the classes with more instances than expected.
    const snapshot = await takeSnapshot();
    const paths = out
      .filter((c) => c.live > c.expected)
      .slice(0, 3)
      .flatMap((c) => retainingPaths(snapshot, c.name, c.expected + 2));
    throw new Failure(
      `${context}: v8.queryObjects: ${problems.join('; ')}\nretained by (shortest strong paths from the GC roots):\n${paths.map((p) => indent(p, 2)).join('\n')}`,
    );
  }
  return out;
}
