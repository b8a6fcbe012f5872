import { describe, expect, test } from 'vitest';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { open, TidemarkError, type Database } from '../../src/index.js';
import { plantBug } from '../../src/util/plant.js';
import { createLogger } from '../../src/log.js';
import { fakeClock, Rng } from './workload.js';

/**
 * Corruption: bits flipped in, and truncation of, each kind of file (WAL segment, object, checkpoint
 * meta, checkpoint data) at random offsets, in a directory left by a clean close and in one left by
 * a crash. Every case ends in correct results or in a CORRUPTION error that names the damaged file:
 * never wrong data, never another kind of error, never a leak. A damaged newest meta file is stood
 * in for by the one before, and `stats().recovery.fellBack` names it.
 *
 * One exception is inherent: cutting the live log short after a crash is indistinguishable from the
 * torn tail of the crash itself (no record of the log's length survives a power loss), so there
 * recovery must show a consistent prefix of the history: every commit up to some point, nothing
 * after it, and at least everything the newest checkpoint holds.
 */

const KINDS = {
  wal: (p: string) => p.startsWith('wal/'),
  object: (p: string) => p.startsWith('obj/'),
  meta: (p: string) => /^ckp\/meta-.*\.ckp$/.test(p),
  data: (p: string) => /^ckp\/.*\.ckd$/.test(p),
} as const;
type Kind = keyof typeof KINDS;

const COMMITS = 360;
const ACCOUNTS = 8;
const OPTIONS = {
  checkpoint: { intervalMs: 0, incrementalsPerGlobal: 2 },
  storage: { memtableRowsMax: 40, mergeMinObjects: 3, rowGroupRows: 16 },
  wal: { segmentBytes: 16 * 1024 },
  log: createLogger(undefined),
} as const;

interface State {
  files: Map<string, Uint8Array>;
  /** Commits the newest checkpoint holds (a floor for what recovery shows). */
  checkpointed: number;
}

/** Commit i inserts row i and moves money between two accounts, in one transaction. */
async function commit(db: Database, i: number): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.insert('kv', { id: i, v: `value-${i}-${'x'.repeat(i % 37)}`, x: i * 1.5 });
    const a = i % ACCOUNTS;
    const b = (i + 3) % ACCOUNTS;
    const ra = await tx.get('bank', a);
    const rb = await tx.get('bank', b);
    await tx.update('bank', a, { balance: (ra!['balance'] as number) - 7 });
    await tx.update('bank', b, { balance: (rb!['balance'] as number) + 7 });
  });
}

/** The directory after COMMITS commits with flushes, merges and checkpoints, closed or crashed. */
async function build(how: 'clean' | 'crash'): Promise<State> {
  const mem = new MemoryFileService();
  const db = await open('c', {
    ...OPTIONS,
    checkpoint: { ...OPTIONS.checkpoint, onClose: how === 'clean' },
    fileService: mem,
    clock: fakeClock(),
  });
  await db.createTable('kv', {
    columns: { id: 'int64', v: 'string', x: 'float64' },
    primaryKey: 'id',
  });
  await db.createTable('bank', { columns: { id: 'int64', balance: 'float64' }, primaryKey: 'id' });
  await db.insert(
    'bank',
    Array.from({ length: ACCOUNTS }, (_, id) => ({ id, balance: 1000 })),
  );
  let checkpointed = 0;
  for (let i = 0; i < COMMITS; i++) {
    await commit(db, i);
    if ((i + 1) % 90 === 0 && i + 1 < COMMITS) {
      await db.checkpoint({ global: i + 1 === 180 });
      checkpointed = i + 1;
    }
  }
  if (how === 'clean') {
    await db.close();
    checkpointed = COMMITS;
  } else {
    mem.crash(1);
    await db.close().catch(() => undefined); // the process died: its handles are gone
  }
  return { files: mem.snapshot(), checkpointed };
}

/** A fresh in-memory directory holding `files`, all durable. */
async function restore(files: Map<string, Uint8Array>): Promise<MemoryFileService> {
  const mem = new MemoryFileService();
  const dirs = new Set<string>();
  for (const [path, bytes] of files) {
    const slash = path.lastIndexOf('/');
    if (slash > 0 && !dirs.has(path.slice(0, slash))) {
      dirs.add(path.slice(0, slash));
      await mem.mkdir(path.slice(0, slash));
    }
    const h = await mem.open(path, 'create-new', 'other');
    if (bytes.length > 0) await h.write(bytes, 0);
    await h.datasync();
    await h.close();
  }
  for (const d of dirs) await mem.syncDir(d);
  await mem.syncDir('');
  return mem;
}

type Verdict =
  | { outcome: 'correct'; fellBack: string[] }
  | { outcome: 'prefix'; commits: number }
  | { outcome: 'corruption'; message: string };

/** Open the damaged directory and read everything: what it showed, or what went wrong. */
async function examine(
  mem: MemoryFileService,
  damaged: string,
  state: State,
  /** A log cut short after a crash: the error may name the log record or object it left dangling. */
  cutLog: boolean,
): Promise<Verdict> {
  let db: Database;
  const named = (e: unknown) => {
    if (!(e instanceof TidemarkError) || e.code !== 'CORRUPTION')
      throw new Error(`expected CORRUPTION or correct results, got ${String(e)}`, { cause: e });
    const text = `${e.message} ${JSON.stringify(e.details ?? {})}`;
    if (!text.includes(damaged) && !(cutLog && /wal\/\d+\.wal/.test(text)))
      throw new Error(`CORRUPTION does not name ${damaged}: ${e.message}`);
    return { outcome: 'corruption' as const, message: e.message };
  };
  try {
    db = await open('c', { ...OPTIONS, memory: { leakDetection: 'paranoid' }, fileService: mem });
  } catch (e) {
    const v = named(e);
    await mem.close(); // nothing is left open after a failed open
    return v;
  }
  try {
    const rows = new Map<number, Record<string, unknown>>();
    for await (const r of db.scan('kv')) rows.set(r['id'] as number, r);
    const balances: number[] = [];
    for await (const r of db.scan('bank')) balances[r['id'] as number] = r['balance'] as number;
    // Point reads go through zone maps and bloom filters.
    for (const id of [0, 1, 89, 90, 179, 250, COMMITS - 1, COMMITS + 5]) {
      const got = await db.get('kv', id);
      if ((got === undefined) !== !rows.has(id)) throw new Error(`get(${id}) disagrees with the scan`);
    }
    const n = rows.size;
    // Commit i moves 7 from account i % 8 to account (i + 3) % 8.
    const want = Array.from({ length: ACCOUNTS }, () => 1000);
    for (let i = 0; i < n; i++) {
      want[i % ACCOUNTS]! -= 7;
      want[(i + 3) % ACCOUNTS]! += 7;
    }
    if (balances.length !== ACCOUNTS || want.some((x, i) => x !== balances[i]))
      throw new Error(
        `wrong data: after ${n} commits the bank holds ${JSON.stringify(balances)}, not ${JSON.stringify(want)}`,
      );
    for (let i = 0; i < n; i++) {
      const r = rows.get(i);
      if (r === undefined) throw new Error(`wrong data: ${n} rows but row ${i} is missing`);
      if (r['v'] !== `value-${i}-${'x'.repeat(i % 37)}` || r['x'] !== i * 1.5)
        throw new Error(`wrong data: row ${i} is ${JSON.stringify(r)}`);
    }
    if (n < state.checkpointed)
      throw new Error(`lost data: ${n} rows, the checkpoint held ${state.checkpointed}`);
    const fellBack = db.stats().recovery.fellBack;
    await db.close();
    return n === COMMITS ? { outcome: 'correct', fellBack } : { outcome: 'prefix', commits: n };
  } catch (e) {
    await db.close();
    return named(e);
  }
}

const tally = new Map<string, number>();

/** 24 cases of damage to files of `kind`: each must end in correct results or CORRUPTION naming it. */
async function damageAll(how: 'clean' | 'crash', s: State, kind: Kind, count = true): Promise<void> {
  const candidates = [...s.files.keys()].filter(KINDS[kind]);
  expect(candidates.length, `no ${kind} files`).toBeGreaterThan(0);
  const newestMeta = [...s.files.keys()].filter(KINDS.meta).sort().at(-1);
  const rng = new Rng(kind.length * 31 + (how === 'clean' ? 1 : 2));
  for (let c = 0; c < 24; c++) {
    const path = candidates[rng.int(candidates.length)]!;
    const original = s.files.get(path)!;
    const files = new Map(s.files);
    let damage: string;
    if (c % 2 === 0 && original.length > 0) {
      const bytes = original.slice();
      const at = rng.int(bytes.length);
      const bits = 1 + rng.int(3);
      for (let b = 0; b < bits; b++) bytes[at] = bytes[at]! ^ (1 << rng.int(8));
      if (bytes[at] === original[at]) bytes[at] = bytes[at]! ^ 0x80;
      files.set(path, bytes);
      damage = `bits flipped at ${at}`;
    } else {
      const at = rng.int(Math.max(1, original.length));
      files.set(path, original.slice(0, at));
      damage = `truncated to ${at} of ${original.length} bytes`;
    }
    const context = `${how}: ${path} ${damage}`;
    const cutLog = how === 'crash' && kind === 'wal' && damage.startsWith('truncated');
    const v = await examine(await restore(files), path, s, cutLog).catch((e: Error) => {
      throw new Error(`${context}: ${e.message}`, { cause: e });
    });
    // Only a log cut short after a crash may lose commits (see above).
    if (v.outcome === 'prefix') expect(cutLog, `${context}: lost commits`).toBe(true);
    if (v.outcome === 'correct' && kind === 'meta' && path === newestMeta)
      expect(v.fellBack, `${context}: opened without saying it fell back`).toEqual([path]);
    const key = `${how} ${kind} ${v.outcome}`;
    if (count) tally.set(key, (tally.get(key) ?? 0) + 1);
  }
}

const states = new Map<string, Promise<State>>();
const stateOf = (how: 'clean' | 'crash') => {
  let s = states.get(how);
  if (s === undefined) states.set(how, (s = build(how)));
  return s;
};

describe.each(['clean', 'crash'] as const)('corruption after a %s shutdown', (how) => {
  test.each(Object.keys(KINDS) as Kind[])(
    '%s files: bits flipped and truncation at random offsets end in correct results or CORRUPTION naming the file',
    async (kind) => damageAll(how, await stateOf(how), kind),
    120_000,
  );
});

test('proven able to fail: with chunk checksums unchecked, damaged objects give wrong data', async () => {
  const s = await stateOf('clean');
  plantBug('skip-chunk-crc');
  try {
    await expect(damageAll('clean', s, 'object', false)).rejects.toThrow(
      /wrong data|not a TidemarkError|expected CORRUPTION/,
    );
  } finally {
    plantBug(undefined);
  }
}, 120_000);

test('the cases reached both outcomes, and fallback to the previous checkpoint', () => {
  const t = Object.fromEntries([...tally].sort());
  console.log(`corruption outcomes: ${JSON.stringify(t)}`);
  const sum = (pred: (k: string) => boolean) =>
    [...tally].filter(([k]) => pred(k)).reduce((a, [, n]) => a + n, 0);
  expect(sum((k) => k.endsWith('corruption'))).toBeGreaterThan(20);
  expect(sum((k) => k.endsWith('correct'))).toBeGreaterThan(20);
  expect(sum((k) => k.includes(' meta correct'))).toBeGreaterThan(0); // fell back
  for (const kind of ['wal', 'object', 'data'])
    expect(
      sum((k) => k.includes(` ${kind} corruption`)),
      kind,
    ).toBeGreaterThan(0);
});
