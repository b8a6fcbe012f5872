import fc from 'fast-check';
import { expect } from 'vitest';
import { TidemarkError, type Database, type Transaction } from '../../src/index.js';

/**
 * The model test's machinery (model.test.ts runs it on the in-memory file service, with simulated
 * crashes; test/objectstore/ on object storage): random operations over up to three concurrent
 * transactions, with restarts, run against the database and against a plain in-memory model of
 * snapshot isolation. Every result (rows read, errors, commit outcomes) must agree.
 */

/** Where a run's database lives: how to open it (again), and how to crash it, if it can be. */
export interface ModelBackend {
  open(options: typeof MODEL_OPTIONS): Promise<Database>;
  /** Simulate a machine crash (deterministic by seed); undefined: crashes become restarts. */
  crash?: (seed: number) => void;
  /** After the run. */
  dispose?: () => Promise<void>;
}

type Op =
  | { t: 'insert' | 'upsert' | 'update'; slot: number; key: number; v: number }
  | { t: 'delete' | 'get'; slot: number; key: number }
  | { t: 'scan'; slot: number; gte: number; lt: number }
  | { t: 'commit' | 'rollback'; slot: number }
  | { t: 'restart' | 'crash'; slot: number }
  | { t: 'flush' | 'compact'; slot: number }
  | { t: 'checkpoint' | 'global'; slot: number };

const KEYS = 5;
/** Tiny memtables and row groups: background flushes and merges happen between the operations. */
export const MODEL_OPTIONS = {
  memory: { leakDetection: 'paranoid' as const },
  storage: { memtableRowsMax: 4, rowGroupRows: 16, mergeMinObjects: 3 },
  // Checkpoints only when the test says (and at close): restarts replay the log after them.
  checkpoint: { intervalMs: 0, incrementalsPerGlobal: 2 },
};
// An operation on a slot without an open transaction begins one there first.
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constantFrom('insert' as const, 'upsert' as const, 'update' as const),
      slot: fc.nat(2),
      key: fc.nat(KEYS - 1),
      v: fc.integer({ min: -100, max: 100 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constantFrom('delete' as const, 'get' as const),
      slot: fc.nat(2),
      key: fc.nat(KEYS - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('scan' as const),
      slot: fc.nat(2),
      gte: fc.nat(KEYS),
      lt: fc.nat(KEYS),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('commit' as const), slot: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('rollback' as const), slot: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('restart' as const), slot: fc.constant(0) }) },
  // A crash: the process dies (nothing checkpointed at close); acknowledged commits must survive.
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crash' as const), slot: fc.nat(1000) }) },
  // Storage work interleaved with the transactions: reads must not notice where rows live.
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constantFrom('flush' as const, 'compact' as const), slot: fc.constant(0) }),
  },
  // Checkpoints too (incremental, or global), with transactions open across them.
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constantFrom('checkpoint' as const, 'global' as const),
      slot: fc.constant(0),
    }),
  },
);

interface Committed {
  value: Map<number, number>;
  /** Commit sequence of the newest version of each key (including deletes). */
  seq: Map<number, number>;
  clock: number;
}

class ModelTxn {
  readonly snap: Map<number, number>;
  readonly snapSeq: number;
  /** key -> value, or null for a delete; insert: the key was absent at the snapshot. */
  readonly writes = new Map<number, { v: number | null; insert: boolean }>();
  constructor(c: Committed) {
    this.snap = new Map(c.value);
    this.snapSeq = c.clock;
  }
  visible(k: number): number | undefined {
    const w = this.writes.get(k);
    if (w !== undefined) return w.v ?? undefined;
    return this.snap.get(k);
  }
}

type Outcome = { ok: unknown } | { err: string };

function modelApply(c: Committed, txns: (ModelTxn | undefined)[], op: Op): Outcome {
  if (op.t === 'restart' || op.t === 'crash') {
    txns.fill(undefined);
    return { ok: null };
  }
  if (op.t === 'flush' || op.t === 'compact' || op.t === 'checkpoint' || op.t === 'global')
    return { ok: null };
  if (op.t === 'commit' || op.t === 'rollback') {
    if (txns[op.slot] === undefined) return { ok: 'no txn' };
  } else txns[op.slot] ??= new ModelTxn(c);
  const tx = txns[op.slot]!;
  const newer = (k: number) => (c.seq.get(k) ?? 0) > tx.snapSeq;
  switch (op.t) {
    case 'get':
      return { ok: tx.visible(op.key) ?? null };
    case 'scan': {
      const out: [number, number][] = [];
      for (let k = op.gte; k < op.lt; k++) {
        const v = tx.visible(k);
        if (v !== undefined) out.push([k, v]);
      }
      return { ok: out };
    }
    case 'insert': {
      const own = tx.writes.get(op.key);
      if (own !== undefined) {
        if (own.v !== null) return { err: 'DUPLICATE_KEY' };
        tx.writes.set(op.key, { v: op.v, insert: own.insert });
        return { ok: 1 };
      }
      if (tx.snap.has(op.key) || c.value.has(op.key)) return { err: 'DUPLICATE_KEY' };
      tx.writes.set(op.key, { v: op.v, insert: true });
      return { ok: 1 };
    }
    case 'upsert':
      if (!tx.writes.has(op.key) && newer(op.key)) return { err: 'CONFLICT' };
      tx.writes.set(op.key, { v: op.v, insert: false });
      return { ok: 1 };
    case 'update': {
      const own = tx.writes.get(op.key);
      if (tx.visible(op.key) === undefined) return { ok: false };
      if (own === undefined && newer(op.key)) return { err: 'CONFLICT' };
      tx.writes.set(op.key, { v: op.v, insert: own?.insert ?? false });
      return { ok: true };
    }
    case 'delete': {
      const own = tx.writes.get(op.key);
      if (own !== undefined) {
        if (own.v === null) return { ok: false };
        if (own.insert) tx.writes.delete(op.key);
        else tx.writes.set(op.key, { v: null, insert: false });
        return { ok: true };
      }
      if (!tx.snap.has(op.key)) return { ok: false };
      if (newer(op.key)) return { err: 'CONFLICT' };
      tx.writes.set(op.key, { v: null, insert: false });
      return { ok: true };
    }
    case 'rollback':
      txns[op.slot] = undefined;
      return { ok: null };
    case 'commit': {
      txns[op.slot] = undefined;
      for (const [k, w] of tx.writes) {
        if (w.insert && c.value.has(k)) return { err: 'DUPLICATE_KEY' };
        if (newer(k)) return { err: 'CONFLICT' };
      }
      if (tx.writes.size === 0) return { ok: null };
      c.clock++;
      for (const [k, w] of tx.writes) {
        if (w.v === null) c.value.delete(k);
        else c.value.set(k, w.v);
        c.seq.set(k, c.clock);
      }
      return { ok: null };
    }
  }
}

/** A transaction of the real database kept open across steps. */
class Held {
  private finish!: (commit: boolean) => void;
  readonly result: Promise<unknown>;
  tx!: Transaction;
  constructor(db: Database, ready: () => void) {
    const decided = new Promise<boolean>((r) => (this.finish = r));
    this.result = db.transaction(async (tx) => {
      this.tx = tx;
      ready();
      if (!(await decided)) throw new Error('rollback');
    });
    this.result.catch(() => undefined);
  }
  static async begin(db: Database): Promise<Held> {
    let h!: Held;
    await new Promise<void>((r) => (h = new Held(db, r)));
    return h;
  }
  async end(commit: boolean): Promise<void> {
    this.finish(commit);
    await this.result;
  }
}

async function outcome(p: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: await p() };
  } catch (e) {
    if (e instanceof TidemarkError) return { err: e.code };
    if (e instanceof Error && e.message === 'rollback') return { ok: null };
    throw e;
  }
}

async function dbApply(
  state: { db: Database; backend: ModelBackend },
  held: (Held | undefined)[],
  op: Op,
): Promise<Outcome> {
  if (op.t === 'flush' || op.t === 'compact') {
    await (op.t === 'flush' ? state.db.flush() : state.db.compact());
    return { ok: null };
  }
  if (op.t === 'checkpoint' || op.t === 'global') {
    await state.db.checkpoint({ global: op.t === 'global' });
    return { ok: null };
  }
  if (op.t === 'restart') {
    await state.db.close();
    held.fill(undefined);
    state.db = await state.backend.open(MODEL_OPTIONS);
    return { ok: null };
  }
  if (op.t === 'crash') {
    if (state.backend.crash === undefined) {
      // No crash to simulate here: a restart without a checkpoint at close instead.
      await state.db.close();
    } else {
      state.backend.crash(op.slot);
      // The dead process's database: close what is left of it (its I/O fails now).
      await state.db.close().catch(() => undefined);
    }
    held.fill(undefined);
    state.db = await state.backend.open(MODEL_OPTIONS);
    return { ok: null };
  }
  if (op.t === 'commit' || op.t === 'rollback') {
    if (held[op.slot] === undefined) return { ok: 'no txn' };
  } else held[op.slot] ??= await Held.begin(state.db);
  const h = held[op.slot]!;
  const tx = h.tx;
  const rowV = (r: Record<string, unknown> | undefined) => (r === undefined ? null : (r['v'] as number));
  switch (op.t) {
    case 'get':
      return outcome(async () => rowV(await tx.get('t', op.key)));
    case 'scan':
      return outcome(async () => {
        const out: [number, number][] = [];
        if (op.lt <= op.gte) return out;
        for await (const r of tx.scan('t', { gte: op.gte, lt: op.lt }))
          out.push([r['k'] as number, r['v'] as number]);
        return out;
      });
    case 'insert':
      return outcome(() => tx.insert('t', { k: op.key, v: op.v }));
    case 'upsert':
      return outcome(() => tx.upsert('t', { k: op.key, v: op.v }));
    case 'update':
      return outcome(() => tx.update('t', op.key, { v: op.v }));
    case 'delete':
      return outcome(() => tx.delete('t', op.key));
    case 'rollback':
      held[op.slot] = undefined;
      return outcome(async () => (await h.end(false), null));
    case 'commit':
      held[op.slot] = undefined;
      return outcome(async () => (await h.end(true), null));
  }
}

/** Run the property: `numRuns` random histories, each on a fresh backend from `makeBackend`. */
export async function runModel(
  makeBackend: () => Promise<ModelBackend>,
  numRuns: number,
  maxLength = 80,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength, size: 'large' }), async (ops) => {
      const backend = await makeBackend();
      const state = { backend, db: await backend.open(MODEL_OPTIONS) };
      await state.db.createTable('t', { columns: { k: 'int32', v: 'int32' }, primaryKey: 'k' });
      const committed: Committed = { value: new Map(), seq: new Map(), clock: 0 };
      const mtx: (ModelTxn | undefined)[] = [undefined, undefined, undefined];
      const held: (Held | undefined)[] = [undefined, undefined, undefined];
      try {
        for (const [i, op] of ops.entries()) {
          const expected = modelApply(committed, mtx, op);
          const got = await dbApply(state, held, op);
          expect(got, `step ${i}: ${JSON.stringify(op)}`).toEqual(expected);
          // A failed operation inside a transaction leaves it usable; a failed commit ends it.
        }
        for (let s = 0; s < 3; s++) await outcome(async () => held[s]?.end(false));
        const final: [number, number][] = [];
        for await (const r of state.db.scan('t')) final.push([r['k'] as number, r['v'] as number]);
        expect(final).toEqual([...committed.value.entries()].sort((a, b) => a[0] - b[0]));
      } finally {
        await state.db.close();
        await backend.dispose?.();
      }
    }),
    { numRuns },
  );
}
