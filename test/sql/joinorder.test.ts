import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/index.js';
import { memDb } from '../helpers/db.js';

/**
 * Join order, on a workload shaped like sqllogictest's select5: 64 tables t1..t64 (a1, b1, x1 ...
 * a64, b64, x64) of 10 rows each, and queries joining 3 to 8 of them (one 12) by chains and trees
 * of equalities (a3=b17 AND a17=b5 ...) with a constant filter or two, the FROM list shuffled. Every
 * result is checked against a backtracking nested-loop evaluation in this file (tables taken in the
 * order the conditions link them, each condition checked as soon as its tables are bound).
 *
 * Joined in FROM order, many of these queries first build a cross product of tables no condition
 * links yet (10^k rows for k such tables; 10^7 for the stars whose center is listed last): the
 * workload then takes minutes (planted, it hit the 60 s timeout). Ordered by cost it takes well
 * under a second, and the test's timeout holds it to seconds.
 */

type V = number | null;
interface TRow {
  a: V;
  b: V;
  x: string;
}

const TABLES = 64;
const ROWS = 10;

/** A deterministic stream of numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const int = (rnd: () => number, n: number): number => Math.floor(rnd() * n);

function shuffle<T>(rnd: () => number, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(rnd, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** DATA[i]: the rows of table t<i> (index 0 unused). a is 1..10 in some order, b 1..10 at random (a few NULL). */
const DATA: TRow[][] = (() => {
  const rnd = lcg(5);
  const out: TRow[][] = [[]];
  for (let t = 1; t <= TABLES; t++) {
    const as = shuffle(
      rnd,
      Array.from({ length: ROWS }, (_, i) => i + 1),
    );
    out.push(
      as.map((a, r) => ({
        a,
        b: rnd() < 0.05 ? null : 1 + int(rnd, ROWS),
        x: `table t${t} row ${r + 1}`,
      })),
    );
  }
  return out;
})();

/** `a3=b17`: column `col` of table `t`. */
type ColRef = { t: number; col: 'a' | 'b' };
const ref = (c: ColRef): string => `${c.col}${c.t}`;
const val = (r: TRow, c: ColRef): V => r[c.col];

interface Cond {
  sql: string;
  /** The tables it reads. */
  tables: number[];
  test(bound: Map<number, TRow>): boolean;
}

interface Query {
  sql: string;
  /** The tables in an order where each is linked to one before it (or starts a new component). */
  order: number[];
  conds: Cond[];
  select: number[];
}

function equality(l: ColRef, r: ColRef, rnd: () => number): Cond {
  const [p, q] = rnd() < 0.5 ? [l, r] : [r, l];
  return {
    sql: `${ref(p)}=${ref(q)}`,
    tables: [l.t, r.t],
    test: (b) => {
      const x = val(b.get(l.t)!, l);
      const y = val(b.get(r.t)!, r);
      return x !== null && y !== null && x === y;
    },
  };
}

function constantFilter(t: number, rnd: () => number): Cond {
  const c: ColRef = { t, col: rnd() < 0.5 ? 'a' : 'b' };
  const v = 1 + int(rnd, ROWS);
  switch (int(rnd, 4)) {
    case 0:
      return {
        sql: rnd() < 0.5 ? `${ref(c)}=${v}` : `${v}=${ref(c)}`,
        tables: [t],
        test: (b) => val(b.get(t)!, c) === v,
      };
    case 1:
      return {
        sql: `${ref(c)}<${v}`,
        tables: [t],
        test: (b) => {
          const x = val(b.get(t)!, c);
          return x !== null && x < v;
        },
      };
    case 2: {
      const w = 1 + int(rnd, ROWS);
      return {
        sql: `${ref(c)} IN (${v},${w})`,
        tables: [t],
        test: (b) => {
          const x = val(b.get(t)!, c);
          return x === v || x === w;
        },
      };
    }
    default: {
      const row = 1 + int(rnd, ROWS);
      return {
        sql: `x${t}<>'table t${t} row ${row}'`,
        tables: [t],
        test: (b) => b.get(t)!.x !== `table t${t} row ${row}`,
      };
    }
  }
}

/**
 * How the tables of a query are linked: a chain (select5's shape: a1=b2 AND a2=b3 ...), a star (every
 * table linked to the first), or a random tree (each table linked to a random one before it).
 */
type Shape = 'chain' | 'star' | 'tree';

/**
 * A query joining `n` distinct tables by equalities of the given shape (a or b on either side),
 * over `components` separate parts, with one or two constant filters per part, the FROM list and
 * the conditions shuffled. `centerLast`: a star's center (the one table the others are linked to,
 * and filtered) is listed last in FROM, and nothing else is filtered: the worst FROM order there is.
 */
function makeQuery(rnd: () => number, n: number, shape: Shape, components = 1, centerLast = false): Query {
  const chosen = shuffle(
    rnd,
    Array.from({ length: TABLES }, (_, i) => i + 1),
  ).slice(0, n);
  const conds: Cond[] = [];
  const starts = new Set([0]);
  for (let c = 1; c < components; c++) starts.add(Math.floor((c * n) / components));
  let componentStart = 0;
  for (let k = 0; k < n; k++) {
    if (starts.has(k)) {
      componentStart = k;
      conds.push(constantFilter(chosen[k]!, rnd));
      continue;
    }
    const parent =
      chosen[
        shape === 'chain'
          ? k - 1
          : shape === 'star'
            ? componentStart
            : componentStart + int(rnd, k - componentStart)
      ]!;
    const col = (): 'a' | 'b' => (rnd() < 0.5 ? 'a' : 'b');
    // a=b most of the time (as select5), now and then a=a or b=b.
    const pc = col();
    const cc = rnd() < 0.8 ? (pc === 'a' ? 'b' : 'a') : pc;
    conds.push(equality({ t: chosen[k]!, col: cc }, { t: parent, col: pc }, rnd));
    if (!centerLast && rnd() < 0.15) conds.push(constantFilter(chosen[k]!, rnd));
  }
  const select = shuffle(rnd, chosen).slice(0, 1 + int(rnd, Math.min(4, n)));
  const from = (centerLast ? [...shuffle(rnd, chosen.slice(1)), chosen[0]!] : shuffle(rnd, chosen))
    .map((t) => `t${t}`)
    .join(',');
  const where = shuffle(rnd, conds)
    .map((c) => c.sql)
    .join(' AND ');
  return {
    sql: `SELECT ${select.map((t) => `x${t}`).join(',')} FROM ${from} WHERE ${where}`,
    order: chosen,
    conds,
    select,
  };
}

/**
 * Every combination of rows of q's tables that meets its conditions, found by binding the tables one
 * at a time in q.order and checking each condition as soon as its tables are bound.
 */
function walk(q: Query, found: (bound: Map<number, TRow>) => void): void {
  const at = new Map(q.order.map((t, i) => [t, i]));
  /** The conditions to check when the k-th table is bound (the last of their tables). */
  const checks: Cond[][] = q.order.map(() => []);
  for (const c of q.conds) checks[Math.max(...c.tables.map((t) => at.get(t)!))]!.push(c);
  const bound = new Map<number, TRow>();
  const step = (k: number): void => {
    if (k === q.order.length) {
      found(bound);
      return;
    }
    const t = q.order[k]!;
    for (const r of DATA[t]!) {
      bound.set(t, r);
      if (checks[k]!.every((c) => c.test(bound))) step(k + 1);
    }
    bound.delete(t);
  };
  step(0);
}

/** The rows of `q` (its select list of x columns). */
function evaluate(q: Query): string[][] {
  const out: string[][] = [];
  walk(q, (bound) => out.push(q.select.map((t) => bound.get(t)!.x)));
  return out;
}

/** How many rows `q` gives (the evaluation of `evaluate`, counted). */
function count(q: Query): number {
  let n = 0;
  walk(q, () => n++);
  return n;
}

/**
 * The most rows a join in FROM order holds at one step: each prefix of the FROM list joined, with
 * the conditions on its tables (what a left-deep plan in written order builds before the rest):
 * the product of the rows of its linked parts.
 */
function fromOrderRows(q: Query): number {
  const from = /FROM (\S+) WHERE/
    .exec(q.sql)![1]!
    .split(',')
    .map((t) => Number(t.slice(1)));
  let most = 0;
  for (let k = 1; k <= from.length; k++) {
    const tables = from.slice(0, k);
    const conds = q.conds.filter((c) => c.tables.every((t) => tables.includes(t)));
    // The linked parts of the prefix (union-find over the conditions' tables).
    const up = new Map(tables.map((t) => [t, t]));
    const root = (t: number): number => (up.get(t) === t ? t : root(up.get(t)!));
    for (const c of conds) for (const t of c.tables) up.set(root(t), root(c.tables[0]!));
    let rows = 1;
    for (const r of new Set(tables.map(root))) {
      const part = tables.filter((t) => root(t) === r);
      const partConds = conds.filter((c) => part.includes(c.tables[0]!));
      // Counted in an order where each table is linked to one before it (as evaluate needs to be quick).
      const order = [part[0]!];
      while (order.length < part.length) {
        const next = part.find(
          (t) =>
            !order.includes(t) &&
            partConds.some((c) => c.tables.includes(t) && c.tables.some((u) => order.includes(u))),
        )!;
        order.push(next);
      }
      rows *= count({ sql: '', order, conds: partConds, select: [] });
    }
    most = Math.max(most, rows);
  }
  return most;
}

const bag = (rows: readonly (readonly unknown[])[]): string[] => rows.map((r) => JSON.stringify(r)).sort();

let db: Database;

beforeAll(async () => {
  db = (await memDb()).db;
  for (let t = 1; t <= TABLES; t++) {
    await db.query(`CREATE TABLE t${t} (a${t} INTEGER, b${t} INTEGER, x${t} VARCHAR(40))`);
    await db.query(
      `INSERT INTO t${t} VALUES ${DATA[t]!.map((r) => `(${r.a}, ${r.b ?? 'NULL'}, '${r.x}')`).join(', ')}`,
    );
  }
});
afterAll(() => db.close());

describe('SQL join order: a select5-like workload of 3- to 12-table joins, FROM lists shuffled', () => {
  const rnd = lcg(2024);
  const queries: Query[] = [];
  const SHAPES: Shape[] = ['chain', 'star', 'tree'];
  for (let i = 0; i < 200; i++) queries.push(makeQuery(rnd, 3 + (i % 6), SHAPES[Math.floor(i / 6) % 3]!));
  // Beyond the exhaustive search (greedy): a chain of 12 tables, and 10 in two separate trees.
  queries.push(makeQuery(rnd, 12, 'chain'));
  queries.push(makeQuery(rnd, 10, 'tree', 2));
  // Parts no condition links: a cross product, after each part is joined and filtered.
  for (let i = 0; i < 6; i++) queries.push(makeQuery(rnd, 4 + (i % 3), SHAPES[i % 3]!, 2));
  // The FROM orders select5's larger joins come to at random: 7 tables no condition links listed
  // before the one that links them (10^7 rows joined in FROM order).
  for (let i = 0; i < 8; i++) queries.push(makeQuery(rnd, 8, 'star', 1, true));

  it('the workload has results to check (not all empty), of every size, and is costly in FROM order', () => {
    const sizes = queries.map((q) => evaluate(q).length);
    expect(sizes.filter((s) => s > 0).length).toBeGreaterThan(queries.length / 3);
    expect(Math.max(...sizes)).toBeGreaterThan(5);
    for (let n = 3; n <= 8; n++) {
      expect(queries.some((q, i) => q.order.length === n && sizes[i]! > 0)).toBe(true);
    }
    // In FROM order, many join tables no condition links yet: a cross product of 10^k rows for k
    // such tables (see fromOrderRows), what made the workload take minutes.
    const crossRows = queries.map(fromOrderRows);
    expect(crossRows.filter((r) => r >= 1e6).length).toBeGreaterThanOrEqual(10);
    expect(crossRows.reduce((s, r) => s + r, 0)).toBeGreaterThan(8e7);
  });

  it(`${queries.length} queries give the rows a nested-loop evaluation gives, within the timeout`, async () => {
    const started = performance.now();
    const wrong: string[] = [];
    for (const q of queries) {
      const want = bag(evaluate(q));
      let got: string[] | string;
      try {
        got = bag((await db.query(q.sql)).rows);
      } catch (e) {
        got = `error ${(e as Error).message}`;
      }
      if (JSON.stringify(got) !== JSON.stringify(want))
        wrong.push(`${q.sql}\n  got ${JSON.stringify(got)}\n  want ${JSON.stringify(want)}`);
    }
    const elapsed = performance.now() - started;
    expect(wrong).toEqual([]);
    // In FROM order this took minutes; the timeout below fails it long before that.
    expect(elapsed).toBeLessThan(60_000);
  }, 60_000);
});

describe('SQL join order: EXPLAIN does not depend on the order of the FROM list', () => {
  const PERMUTATIONS = [
    ['t1', 't2', 't3'],
    ['t1', 't3', 't2'],
    ['t2', 't1', 't3'],
    ['t2', 't3', 't1'],
    ['t3', 't1', 't2'],
    ['t3', 't2', 't1'],
  ];
  const explain = async (sql: string): Promise<string[]> =>
    (await db.query(`EXPLAIN ${sql}`)).rows.map((r) => String(r[0]));

  it('a 3-table chain with a filter: the same join tree for every FROM order, hash joins only', async () => {
    const plans = await Promise.all(
      PERMUTATIONS.map((p) =>
        explain(`SELECT x1, x2, x3 FROM ${p.join(', ')} WHERE a1 = b2 AND a2 = b3 AND b1 = 5`),
      ),
    );
    for (const plan of plans) {
      expect(plan).toEqual(plans[0]);
      expect(plan.filter((l) => l.trim().startsWith('hash join on'))).toHaveLength(2);
      expect(plan.join('\n')).not.toMatch(/nested loop/);
    }
  });

  it('without a filter (ties between trees): every FROM order still joins only linked tables', async () => {
    for (const p of PERMUTATIONS) {
      const plan = await explain(`SELECT x1, x2, x3 FROM ${p.join(', ')} WHERE a1 = b2 AND a2 = b3`);
      expect(
        plan.filter((l) => l.trim().startsWith('hash join on')),
        p.join(','),
      ).toHaveLength(2);
      expect(plan.join('\n'), p.join(',')).not.toMatch(/nested loop/);
    }
    // With JOIN ... ON the same: the ON conditions link the tables, not the order they are written in.
    const plan = await explain('SELECT x1 FROM t1 JOIN t3 ON b3 = a2 JOIN t2 ON a1 = b2');
    expect(plan.join('\n')).not.toMatch(/nested loop/);
  });

  it('STRAIGHT_JOIN keeps the written order (a cross product where it is written)', async () => {
    const plan = await explain(
      'SELECT x1 FROM t1 STRAIGHT_JOIN t3 STRAIGHT_JOIN t2 WHERE a1 = b2 AND a2 = b3',
    );
    expect(plan.join('\n')).toMatch(/nested loop/);
  });
});
