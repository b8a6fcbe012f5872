import { FaultFileService, type FaultOp } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import type { FileKind } from '../../src/fileservice/kinds.js';
import { open, TidemarkError, type Database, type OpenOptions } from '../../src/index.js';
import { checkIndexes } from '../helpers/index_check.js';

/**
 * The fault sweep, as SQLite tests I/O errors: for each workload, a clean run counts its I/O
 * operations of each kind; then one run per N fails the Nth operation of that kind (EIO; writes
 * also ENOSPC), for every N up to the count (or every `stride`-th). After every faulted run:
 * - every call settled (none hangs past HANG_MS), resolving or rejecting with a TidemarkError
 *   coded IO or CORRUPTION (or, once the log has failed, IO for what follows);
 * - `close()` proved nothing is held (a LEAK is a failure; an IO from its checkpoint is not);
 * - a reopen without faults finds exactly the acknowledged data: every acknowledged write, and of
 *   the failed ones, any (a failed commit may or may not have reached the log).
 * Each workload starts from the same files (a snapshot of a database prepared without faults).
 */

export const SWEEP_OPS: readonly FaultOp[] = [
  'open',
  'read',
  'write',
  'datasync',
  'rename',
  'delete',
  'list',
  'stat',
  'syncDir',
];

const HANG_MS = Number(process.env['TIDEMARK_HANG_MS'] ?? 15_000);

const OPTIONS: OpenOptions = {
  // A small block cache: scans evict and reload chunks (read-ahead included).
  memory: {
    leakDetection: (process.env['SWEEP_LEAKS'] as 'paranoid' | undefined) ?? 'disabled',
    cacheBytes: 64 << 10,
  },
  checkpoint: { intervalMs: 0, incrementalsPerGlobal: 2, onClose: false },
  storage: { memtableRowsMax: 40, mergeMinObjects: 0, rowGroupRows: 16 },
  wal: { segmentBytes: 16 * 1024 },
};

const T_SPEC = { columns: { id: 'int32', v: 'string', n: 'float64' }, primaryKey: 'id' } as const;
const U_SPEC = { columns: { id: 'int32', g: 'int32' }, primaryKey: 'id' } as const;

type Value = string | null; // a row's v, or null: absent

/**
 * What a reopened database may hold per key: the acknowledged state, or a failed write's (a failed
 * commit is never visible before the reopen, but its record may have reached the log).
 */
export class Model {
  readonly allowed = new Map<number, Set<Value>>();
  /** What the open database shows: acknowledged writes only. */
  private readonly visible = new Map<number, Value>();

  acked(id: number, v: Value): void {
    this.allowed.set(id, new Set([v]));
    this.visible.set(id, v);
  }

  failed(id: number, v: Value): void {
    const s = this.allowed.get(id) ?? new Set<Value>([null]);
    s.add(v);
    this.allowed.set(id, s);
  }

  /** An UPDATE or DELETE by condition: it changes (and logs) only rows the database shows. */
  conditional(id: number, v: Value, ok: boolean): void {
    if ((this.visible.get(id) ?? null) === null) return;
    if (ok) this.acked(id, v);
    else this.failed(id, v);
  }

  /** How `got` (id to v, as a reopened database shows it) differs from what may be there. */
  mismatches(got: ReadonlyMap<number, string>): string[] {
    const out: string[] = [];
    for (const [id, allowed] of this.allowed) {
      const v = got.get(id) ?? null;
      if (!allowed.has(v)) out.push(`row ${id} is ${v}; allowed ${[...allowed].join('|')}`);
    }
    for (const id of got.keys()) if (!this.allowed.has(id)) out.push(`row ${id} was never written`);
    return out;
  }

  /** The one state every key is known to be in (for checking reads during the workload). */
  certain(): Map<number, string> | undefined {
    const out = new Map<number, string>();
    for (const [id, s] of this.allowed) {
      if (s.size !== 1) return undefined;
      const v = [...s][0]!;
      if (v !== null) out.set(id, v);
    }
    return out;
  }
}

export interface SweepContext {
  db: Database;
  model: Model;
  /** Await a call: true if it succeeded; a rejection that is not IO/CORRUPTION is a problem. */
  step<T>(what: string, p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false }>;
  problem(text: string): void;
  /** A result that must be the clean run's (recorded by it, compared in faulted runs). */
  same(what: string, value: unknown): void;
}

export interface Workload {
  name: string;
  /** Prepare the files the workload starts from (no faults), and the model of what they hold. */
  prepare: 'empty' | 'loaded' | 'unreplayed';
  run(ctx: SweepContext): Promise<void>;
}

// ---- the workloads ----

const rowOf = (id: number, tag: string) => ({ id, v: `${tag}${id}`, n: id / 2 });

async function insertRows(ctx: SweepContext, ids: number[], tag: string): Promise<void> {
  const r = await ctx.step(
    'insert',
    ctx.db.insert(
      't',
      ids.map((id) => rowOf(id, tag)),
    ),
  );
  for (const id of ids) (r.ok ? ctx.model.acked : ctx.model.failed).call(ctx.model, id, `${tag}${id}`);
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

async function checkRows(
  ctx: SweepContext,
  what: string,
  rows: { id: number; v: string }[],
  reverse = false,
) {
  const want = ctx.model.certain();
  if (want === undefined) return; // a failed write left a key in doubt: nothing exact to compare
  const ids = [...want.keys()].sort((a, b) => a - b);
  if (reverse) ids.reverse();
  const got = rows.map((r) => `${r.id}=${r.v}`).join(',');
  const exp = ids.map((id) => `${id}=${want.get(id)!}`).join(',');
  if (got !== exp) ctx.problem(`${what} returned ${got.slice(0, 200)}, expected ${exp.slice(0, 200)}`);
}

/** Deleted by the load: keys in two objects, tombstones in the second. */
const LOAD_DELETED = new Set([...range(10, 5), ...range(150, 10)]);

/**
 * Loaded: rows 0..399 in two flushed objects (row groups of 16: many chunks, a small block cache
 * evicting them) and the memtable, with deletes (tombstones over the first object) and an update.
 */
async function load(db: Database, model: Model): Promise<void> {
  await db.createTable('t', T_SPEC);
  await db.createTable('u', U_SPEC);
  await db.insert(
    't',
    range(0, 200).map((id) => rowOf(id, 'a')),
  );
  await db.flush();
  await db.insert(
    't',
    range(200, 150).map((id) => rowOf(id, 'a')),
  );
  for (const id of LOAD_DELETED) await db.delete('t', id);
  await db.flush();
  await db.insert(
    't',
    range(350, 50).map((id) => rowOf(id, 'a')),
  );
  await db.update('t', 3, { v: 'b3' });
  // A UNIQUE index over v, built over the flushed objects and the memtable.
  await db.createIndex('t', 't_v', ['v'], { unique: true });
  await db.insert(
    'u',
    range(0, 30).map((id) => ({ id, g: id % 4 })),
  );
  for (const id of range(0, 400)) model.acked(id, LOAD_DELETED.has(id) ? null : id === 3 ? 'b3' : `a${id}`);
}

export const WORKLOADS: Workload[] = [
  {
    name: 'API and SQL writes, flush, compact, incremental and global checkpoints',
    prepare: 'empty',
    async run(ctx) {
      const { db } = ctx;
      if (!(await ctx.step('create t', db.createTable('t', T_SPEC))).ok) return;
      await insertRows(ctx, range(0, 30), 'a');
      await ctx.step('flush', db.flush());
      await insertRows(ctx, range(30, 30), 'a');
      const upd = await ctx.step('sql update', db.query("UPDATE t SET v = CONCAT('s', id) WHERE id < 10"));
      for (const id of range(0, 10)) ctx.model.conditional(id, `s${id}`, upd.ok);
      const del = await ctx.step('delete', db.delete('t', 40));
      ctx.model.conditional(40, null, del.ok);
      await ctx.step('compact', db.compact());
      await ctx.step('checkpoint', db.checkpoint());
      const ins = await ctx.step(
        'sql insert',
        db.query("INSERT INTO t VALUES (100, 'q100', 1), (101, 'q101', 2)"),
      );
      for (const id of [100, 101])
        (ins.ok ? ctx.model.acked : ctx.model.failed).call(ctx.model, id, `q${id}`);
      const sdel = await ctx.step('sql delete', db.query('DELETE FROM t WHERE id BETWEEN 50 AND 54'));
      for (const id of range(50, 5)) ctx.model.conditional(id, null, sdel.ok);
      await ctx.step('global checkpoint', db.checkpoint({ global: true }));
      await insertRows(ctx, range(200, 5), 'z');
    },
  },
  {
    name: 'recovery at open (WAL to replay, checkpoint files to load), then a get',
    prepare: 'unreplayed',
    async run(ctx) {
      const r = await ctx.step('get', ctx.db.get('t', 59));
      if (r.ok && (r.value as { v?: string } | undefined)?.v !== 'a59')
        ctx.problem(`get 59 returned ${JSON.stringify(r.value)}`);
    },
  },
  {
    name: 'scans forward, reverse and ranged; scanBatches copied and borrowed; gets',
    prepare: 'loaded',
    async run(ctx) {
      const { db } = ctx;
      const fwd = await ctx.step('scan', collect(db.scan('t', { columns: ['id', 'v'] })));
      if (fwd.ok) await checkRows(ctx, 'scan', fwd.value as { id: number; v: string }[]);
      const rev = await ctx.step(
        'reverse scan',
        collect(db.scan('t', { columns: ['id', 'v'], reverse: true })),
      );
      if (rev.ok) await checkRows(ctx, 'reverse scan', rev.value as { id: number; v: string }[], true);
      const ranged = await ctx.step(
        'ranged scan',
        collect(db.scan('t', { gte: 140, lt: 190, columns: ['id'] })),
      );
      const live = [...(ctx.model.certain()?.keys() ?? [])];
      const inRange = live.filter((id) => id >= 140 && id < 190).length;
      if (ranged.ok && (ranged.value as unknown[]).length !== inRange)
        ctx.problem(`ranged scan: ${(ranged.value as unknown[]).length} rows, not ${inRange}`);
      for (const borrow of [false, true]) {
        const b = await ctx.step(
          `scanBatches${borrow ? ' borrowed' : ''}`,
          (async () => {
            let n = 0;
            for await (const batch of db.scanBatches('t', { columns: ['id', 'n'], batchRows: 16, borrow }))
              n += batch.length;
            return n;
          })(),
        );
        if (b.ok && b.value !== live.length)
          ctx.problem(`scanBatches${borrow ? ' borrowed' : ''}: ${b.value} rows, not ${live.length}`);
      }
      for (const id of [0, 3, 12, 155, 199, 260, 380]) {
        const g = await ctx.step('get', db.get('t', id));
        const want = LOAD_DELETED.has(id) ? undefined : id === 3 ? 'b3' : `a${id}`;
        if (g.ok && (g.value as { v?: string } | undefined)?.v !== want)
          ctx.problem(`get ${id}: ${JSON.stringify(g.value)}`);
      }
    },
  },
  {
    name: 'an index built online, reads through indexes (eq, range, reverse, getBy), writes that keep them',
    prepare: 'loaded',
    async run(ctx) {
      const { db } = ctx;
      const built = await ctx.step('create index', db.createIndex('t', 't_n', ['n']));
      const eq = await ctx.step(
        'index eq',
        collect(db.scan('t', { index: 't_v', eq: ['a150'], columns: ['id'] })),
      );
      if (eq.ok) ctx.same('index eq', eq.value);
      const ranged = await ctx.step(
        'index range',
        collect(db.scan('t', { index: 't_v', gte: ['a2'], lt: ['a3'], columns: ['id', 'v'] })),
      );
      if (ranged.ok) ctx.same('index range', ranged.value);
      const rev = await ctx.step(
        'reverse index scan',
        collect(db.scan('t', { index: 't_v', reverse: true, limit: 60, columns: ['id'] })),
      );
      if (rev.ok) ctx.same('reverse index scan', rev.value);
      const one = await ctx.step('getBy', db.getBy('t', 't_v', ['b3']));
      if (one.ok && (one.value as { id?: number } | undefined)?.id !== 3)
        ctx.problem(`getBy b3: ${JSON.stringify(one.value)}`);
      await insertRows(ctx, range(500, 10), 'c');
      const upd = await ctx.step('update', db.update('t', 5, { v: 'u5' }));
      ctx.model.conditional(5, 'u5', upd.ok);
      if (built.ok) {
        const byN = await ctx.step(
          'scan by n',
          collect(db.scan('t', { index: 't_n', columns: ['id'], limit: 40 })),
        );
        if (byN.ok) ctx.same('scan by n', byN.value);
      }
      await ctx.step('checkpoint', db.checkpoint());
    },
  },
  {
    name: 'a SQL SELECT with a join and a GROUP BY',
    prepare: 'loaded',
    async run(ctx) {
      const r = await ctx.step(
        'select',
        ctx.db.query(
          'SELECT u.g, COUNT(*) AS c, SUM(t.n) AS s FROM t JOIN u ON t.id = u.id GROUP BY u.g ORDER BY u.g',
        ),
      );
      if (r.ok) ctx.same('select', r.value.rows);
    },
  },
];

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

// ---- running ----

const kindOfPath = (p: string): FileKind =>
  p.startsWith('wal/')
    ? 'wal'
    : p.startsWith('obj/')
      ? 'object'
      : p.startsWith('ckp/')
        ? 'checkpoint'
        : 'lock';

/** A fresh in-memory file service holding `files`. */
async function restore(files: ReadonlyMap<string, Uint8Array>): Promise<MemoryFileService> {
  const fs = new MemoryFileService();
  for (const [path, bytes] of files) {
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    if (dir !== '') await fs.mkdir(dir);
    await fs.writeFileAtomic(path, [bytes], kindOfPath(path));
  }
  return fs;
}

export interface Prepared {
  files: ReadonlyMap<string, Uint8Array>;
  model: () => Model;
  /** Results of the clean run, by what they are (SweepContext.same). */
  results: Map<string, string>;
}

export async function prepare(kind: Workload['prepare']): Promise<Prepared> {
  const fs = new MemoryFileService();
  const model = new Model();
  if (kind !== 'empty') {
    const db = await open('sweep', { ...OPTIONS, fileService: fs });
    await load(db, model);
    if (kind === 'unreplayed') {
      // A checkpoint, then more commits only in the log: the open loads the one and replays the other.
      await db.checkpoint();
      await db.insert(
        't',
        range(430, 5).map((id) => rowOf(id, 'a')),
      );
      await db.delete('t', 20);
      for (const id of range(430, 5)) model.acked(id, `a${id}`);
      model.acked(20, null);
    }
    await db.close();
  }
  const files = fs.snapshot();
  const acked = [...model.allowed].map(([id, s]) => [id, [...s][0]!] as const);
  return {
    files,
    results: new Map(),
    model: () => {
      const m = new Model();
      for (const [id, v] of acked) m.acked(id, v);
      return m;
    },
  };
}

export interface RunResult {
  problems: string[];
  counts: Map<FaultOp, number>;
  injected: number;
  rejections: Map<string, number>;
}

/** One run of `w` from `prep`, with `rule` (or none: the counting run), then the checks. */
export async function runOnce(
  w: Workload,
  prep: Prepared,
  rule: { op: FaultOp; nth: number; errno: 'EIO' | 'ENOSPC' } | undefined,
): Promise<RunResult> {
  const mem = await restore(prep.files);
  const fs = new FaultFileService(mem, { rules: rule === undefined ? [] : [rule] });
  const model = prep.model();
  const problems: string[] = [];
  const rejections = new Map<string, number>();
  const where = rule === undefined ? 'clean run' : `${rule.op} #${rule.nth} ${rule.errno}`;
  const settle = async <T>(what: string, p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> => {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<'hang'>((r) => (timer = setTimeout(() => r('hang'), HANG_MS)));
    try {
      const v = await Promise.race([p, hang]);
      if (v === 'hang') {
        problems.push(`${where}: ${what} did not settle in ${HANG_MS} ms`);
        return { ok: false };
      }
      return { ok: true, value: v as T };
    } catch (e) {
      const code = e instanceof TidemarkError ? e.code : undefined;
      rejections.set(`${what} ${code ?? 'non-TidemarkError'}`, (rejections.get(`${what} ${code}`) ?? 0) + 1);
      if (code !== 'IO' && code !== 'CORRUPTION')
        problems.push(`${where}: ${what} rejected with ${String(e)}`);
      return { ok: false };
    } finally {
      clearTimeout(timer);
    }
  };
  const opened = await settle('open', open('sweep', { ...OPTIONS, fileService: fs }));
  if (opened.ok) {
    const db = opened.value;
    await w.run({
      db,
      model,
      step: settle,
      problem: (t) => problems.push(`${where}: ${t}`),
      same: (what, value) => {
        const text = JSON.stringify(value);
        if (rule === undefined) prep.results.set(what, text);
        else if (prep.results.has(what) && prep.results.get(what) !== text)
          problems.push(
            `${where}: ${what} returned ${text.slice(0, 200)}, not ${prep.results.get(what)!.slice(0, 200)}`,
          );
      },
    });
    const closed = await settle('close', db.close());
    void closed;
  }
  if (fs.handles.list().length > 0)
    problems.push(
      `${where}: file handles left open: ${fs.handles
        .list()
        .map((h) => h.path)
        .join(', ')}`,
    );
  // Reopen without faults: exactly the acknowledged data.
  if (problems.length === 0) {
    let db: Database | undefined;
    try {
      db = await open('sweep', { ...OPTIONS, fileService: mem });
      const rows = db.tables().includes('t') ? await collect(db.scan('t', { columns: ['id', 'v'] })) : [];
      const got = new Map(rows.map((r) => [r.id as number, r.v as string]));
      for (const m of model.mismatches(got)) problems.push(`${where}: after reopen, ${m}`);
      // The indexes agree with their tables.
      for (const m of await checkIndexes(db)) problems.push(`${where}: after reopen, ${m}`);
    } catch (e) {
      problems.push(`${where}: reopen without faults failed: ${String(e)}`);
    } finally {
      await db?.close().catch((e: unknown) => problems.push(`${where}: close after reopen: ${String(e)}`));
    }
  }
  return { problems, counts: fs.counts, injected: fs.injected.length, rejections };
}

export interface SweepStats {
  workload: string;
  runs: number;
  faultsInjected: number;
  counts: Partial<Record<FaultOp, number>>;
  problems: string[];
}

/** The whole sweep of one workload: every op kind, every N (every `stride`-th), EIO and for writes ENOSPC. */
export async function sweep(w: Workload, stride: number, maxProblems = 5): Promise<SweepStats> {
  const prep = await prepare(w.prepare);
  const clean = await runOnce(w, prep, undefined);
  const stats: SweepStats = {
    workload: w.name,
    runs: 0,
    faultsInjected: 0,
    counts: {},
    problems: [...clean.problems],
  };
  for (const op of SWEEP_OPS) {
    const count = clean.counts.get(op) ?? 0;
    stats.counts[op] = count;
    for (const errno of op === 'write' ? (['EIO', 'ENOSPC'] as const) : (['EIO'] as const)) {
      // Every stride-th N, the last one included (stride 1: every N).
      const ns: number[] = [];
      for (let n = 1; n <= count; n += stride) ns.push(n);
      if (count > 0 && ns[ns.length - 1] !== count) ns.push(count);
      for (const n of ns) {
        const r = await runOnce(w, prep, { op, nth: n, errno });
        stats.runs++;
        stats.faultsInjected += r.injected;
        stats.problems.push(...r.problems);
        if (stats.problems.length >= maxProblems) return stats;
      }
    }
  }
  return stats;
}

// ---- cancellation: iterators abandoned at every step ----

export const ITERATORS: { name: string; iterate: (db: Database) => AsyncIterable<unknown> }[] = [
  { name: 'scan', iterate: (db) => db.scan('t', { columns: ['id', 'v'] }) },
  { name: 'reverse scan', iterate: (db) => db.scan('t', { columns: ['id', 'v'], reverse: true }) },
  { name: 'ranged scan', iterate: (db) => db.scan('t', { gte: 140, lt: 190 }) },
  {
    name: 'scanBatches copied',
    iterate: (db) => db.scanBatches('t', { columns: ['id', 'n'], batchRows: 4 }),
  },
  {
    name: 'scanBatches borrowed',
    iterate: (db) => db.scanBatches('t', { columns: ['id', 'n'], batchRows: 4, borrow: true }),
  },
  { name: 'index scan', iterate: (db) => db.scan('t', { index: 't_v', columns: ['id', 'v'] }) },
  { name: 'reverse index scan', iterate: (db) => db.scan('t', { index: 't_v', reverse: true }) },
];

/**
 * Every iterator abandoned after k items, for every k up to `bound` (a `break` out of the loop:
 * its return()), then the database closed: close() proves nothing is held. Problems found.
 */
export async function abandonSweep(bound: number, stride = 1): Promise<{ runs: number; problems: string[] }> {
  const prep = await prepare('loaded');
  const problems: string[] = [];
  let runs = 0;
  for (const it of ITERATORS) {
    for (let k = 0; k <= bound; k += stride) {
      const fs = await restore(prep.files);
      const db = await open('sweep', { ...OPTIONS, fileService: fs });
      let seen = 0;
      try {
        for await (const _ of it.iterate(db)) {
          if (seen++ === k) break;
        }
      } catch (e) {
        problems.push(`${it.name} abandoned after ${k}: ${String(e)}`);
      }
      try {
        await db.close();
      } catch (e) {
        problems.push(`${it.name} abandoned after ${k}: close: ${String(e)}`);
      }
      runs++;
      if (problems.length >= 5) return { runs, problems };
    }
  }
  return { runs, problems };
}
