import fc from 'fast-check';
import { expect, test } from 'vitest';
import { TableSchema, type Key } from '../../src/schema/schema.js';
import { MemoryManager } from '../../src/mem/manager.js';
import { MemTable } from '../../src/table/memtable.js';
import { Table } from '../../src/table/table.js';
import { stage } from '../helpers/memtable.js';

const schema = TableSchema.fromSpec('t', {
  columns: { k: 'int32', v: 'float64', s: { type: 'string', nullable: true } },
  primaryKey: 'k',
});

/** Publish rows one transaction at a time, at increasing timestamps. */
async function load(mt: MemTable, batches: number[][]): Promise<number[]> {
  const tss: number[] = [];
  let ts = 100;
  for (const keys of batches) {
    const puts = keys.map((k) => [k, k / 2, k % 3 === 0 ? null : `s${k}`]);
    const s = await stage(mt, puts, keys, [], {});
    mt.publish(s, ts);
    tss.push(ts);
    ts += 10;
  }
  return tss;
}

function scan(
  mt: MemTable,
  from: Key | undefined,
  after: boolean,
  to: Key | undefined,
  ts: number,
  max: number,
) {
  const src = new Int32Array(max);
  const rows = new Int32Array(max);
  const out: { keys: Key[]; vs: unknown[] }[] = [];
  let f = from;
  let a = after;
  for (;;) {
    const r = mt.collectRows(f, a, to, ts, max, src, rows, undefined);
    const keys: Key[] = [];
    const vs: unknown[] = [];
    for (let i = 0; i < r.n; i++) {
      const row = r.rangeStart >= 0 ? r.rangeStart + i : rows[i]!;
      keys.push(mt.keyOfRow(row));
      vs.push(mt.rawValues(row)[1]);
    }
    // The columnar gathers agree with the row reads.
    if (r.n > 0) {
      const g = r.rangeStart >= 0 ? mt.gatherRange(1, r.rangeStart, r.n) : mt.gather(1, rows, r.n);
      expect([...(g.data as Float64Array)]).toEqual(vs);
      const gs = r.rangeStart >= 0 ? mt.gatherRange(2, r.rangeStart, r.n) : mt.gather(2, rows, r.n);
      expect(gs.data).toEqual(keys.map((k) => ((k as number) % 3 === 0 ? null : `s${k as number}`)));
    }
    out.push({ keys, vs });
    if (r.done) break;
    f = r.last;
    a = true;
  }
  return out.flatMap((c) => c.keys);
}

test('an append-ordered memtable scans as row ranges, and agrees with the index walk it replaces', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 12 }),
      fc.integer({ min: -10, max: 3000 }),
      fc.integer({ min: -10, max: 3000 }),
      fc.integer({ min: 1, max: 700 }),
      fc.nat(12),
      fc.boolean(),
      async (sizes, from, to, max, snapAt, after) => {
        const memory = new MemoryManager({ leakDetection: 'disabled' });
        const ordered = new MemTable(schema, memory.pool('memtable'));
        // Increasing keys with gaps: stays ordered.
        let k = 0;
        const batches = sizes.map((n) => Array.from({ length: n }, () => (k += 2)));
        const tss = await load(ordered, batches);
        const ts = tss[Math.min(snapAt, tss.length - 1)]!;
        const got = scan(ordered, from, after, to, ts, max);
        const visible = batches.slice(0, Math.min(snapAt, tss.length - 1) + 1).flat();
        expect(got).toEqual(visible.filter((x) => (after ? x > from : x >= from) && x < to));
        expect(scan(ordered, undefined, false, undefined, ts, max)).toEqual(visible);
        // An update breaks the order: the index walk must give the same visible set.
        const s = await stage(ordered, [[2, 99, null]], [2], [], {});
        ordered.publish(s, 1e9);
        expect(scan(ordered, from, after, to, ts, max)).toEqual(got);
        ordered.release();
        memory.close();
      },
    ),
    { numRuns: 200 },
  );
});

test('a memtable retired while a commit waits for memory to grow it: nothing leaks, the commit goes on', async () => {
  // The commit's ensureRoom waits for memory (a hog holds it); meanwhile the memtable is frozen
  // and retired (a flush published it). When memory comes, what the commit grows must be freed
  // with the memtable, not installed in a freed one.
  const m = new MemoryManager({ limitBytes: 1 << 20, leakDetection: 'paranoid', waitTimeoutMs: 10_000 });
  const pool = m.pool('memtable');
  const table = new Table(1, schema, 0, pool);
  const hog = pool.reserveSync((1 << 20) - pool.stats().bytes, 'test.hog');
  const puts = Array.from({ length: 100 }, (_, k) => [k, k, 'x'.repeat(100)]);
  const growing = table.ensureRoom(puts, 0, {});
  await new Promise((r) => setTimeout(r, 20));
  const old = table.freeze();
  table.frozen.splice(table.frozen.indexOf(old), 1);
  old.retire();
  hog.release();
  await growing;
  // The commit's next step stages into the new active memtable (the old one is gone).
  const s = table.tryStage(
    puts,
    puts.map((p) => p[0] as number),
    [],
  );
  expect(s === undefined || s.table === table).toBe(true);
  if (s !== undefined) table.abandon(s);
  table.release();
  m.close(); // LEAK if the grown blocks went into the retired memtable
});
