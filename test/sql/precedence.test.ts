import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/index.js';
import { memDb } from '../helpers/db.js';

/**
 * Operator precedence of MySQL's logical operators, enumerated: chains of AND and OR without
 * parentheses between predicates built from comparison, BETWEEN, IN, LIKE, IS and NOT, on
 * every combination of NULL, 0, 1 and 2 in three columns. The expected value of each chain comes
 * from an evaluator in this file that groups it by the precedence table of MySQL's manual ("Operator
 * Precedence": NOT above AND, above OR; left-associative) and applies three-valued
 * logic; the engine must return exactly the rows where it is true (WHERE) and the same value per row
 * (select list).
 */

type V = number | null;
type Row = { k: number; a: V; b: V; c: V };

const VALUES: V[] = [null, 0, 1, 2];
const ROWS: Row[] = [];
for (const a of VALUES)
  for (const b of VALUES) for (const c of VALUES) ROWS.push({ k: ROWS.length, a, b, c });

/** A predicate: its SQL and its value on a row (1, 0 or null). */
interface Atom {
  sql: string;
  ev(r: Row): V;
}

const truth = (v: V): V => (v === null ? null : v !== 0 ? 1 : 0);
const cmp = (x: V, y: V, f: (x: number, y: number) => boolean): V =>
  x === null || y === null ? null : f(x, y) ? 1 : 0;
const not = (v: V): V => (v === null ? null : v === 0 ? 1 : 0);
/** x IN (list): 1 if found, else null if the list has a null or x is null, else 0. */
const inList = (x: V, list: V[]): V => {
  if (x === null) return null;
  if (list.includes(x)) return 1;
  return list.includes(null) ? null : 0;
};

const ATOMS: Atom[] = [
  { sql: 'a', ev: (r) => r.a },
  { sql: 'b', ev: (r) => r.b },
  { sql: 'a = b', ev: (r) => cmp(r.a, r.b, (x, y) => x === y) },
  { sql: 'b < c', ev: (r) => cmp(r.b, r.c, (x, y) => x < y) },
  { sql: 'a <> c', ev: (r) => cmp(r.a, r.c, (x, y) => x !== y) },
  { sql: 'c IS NULL', ev: (r) => (r.c === null ? 1 : 0) },
  { sql: 'b IS NOT NULL', ev: (r) => (r.b !== null ? 1 : 0) },
  {
    sql: 'c BETWEEN a AND b',
    ev: (r) => {
      const lo = cmp(r.c, r.a, (x, y) => x >= y);
      const hi = cmp(r.c, r.b, (x, y) => x <= y);
      if (lo === 0 || hi === 0) return 0;
      return lo === null || hi === null ? null : 1;
    },
  },
  { sql: 'a NOT BETWEEN 1 AND 2', ev: (r) => (r.a === null ? null : r.a >= 1 && r.a <= 2 ? 0 : 1) },
  { sql: 'b IN (1, NULL)', ev: (r) => inList(r.b, [1, null]) },
  { sql: 'c NOT IN (0, 2)', ev: (r) => not(inList(r.c, [0, 2])) },
  { sql: "a LIKE '1%'", ev: (r) => (r.a === null ? null : String(r.a).startsWith('1') ? 1 : 0) },
  { sql: 'NOT b', ev: (r) => not(r.b) },
  { sql: 'NOT a = c', ev: (r) => not(cmp(r.a, r.c, (x, y) => x === y)) },
];

/** MySQL's logical operators: binding rank (higher binds tighter) and three-valued meaning. */
const OPS: Record<string, { rank: number; ev(x: V, y: V): V }> = {
  OR: { rank: 1, ev: or },
  AND: { rank: 3, ev: and },
};

function or(x: V, y: V): V {
  const a = truth(x);
  const b = truth(y);
  if (a === 1 || b === 1) return 1;
  return a === null || b === null ? null : 0;
}

function and(x: V, y: V): V {
  const a = truth(x);
  const b = truth(y);
  if (a === 0 || b === 0) return 0;
  return a === null || b === null ? null : 1;
}

/** The value of `atoms[0] ops[0] atoms[1] ...` grouped by rank, left-associative. */
function evalChain(atoms: Atom[], ops: string[], r: Row): V {
  let i = 0;
  const climb = (min: number): V => {
    let left = atoms[i]!.ev(r);
    while (i < ops.length && OPS[ops[i]!]!.rank >= min) {
      const op = OPS[ops[i]!]!;
      i++;
      left = op.ev(left, climb(op.rank + 1));
    }
    return left;
  };
  return climb(1);
}

/** A deterministic stream of numbers (the cases do not depend on the run). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Every sequence of `n` operators, each with `perSequence` atom choices. */
function chains(n: number, perSequence: number, seed: number): { atoms: Atom[]; ops: string[] }[] {
  const names = Object.keys(OPS);
  const rnd = lcg(seed);
  const out: { atoms: Atom[]; ops: string[] }[] = [];
  const seqs: string[][] = [[]];
  for (let k = 0; k < n; k++) {
    const next: string[][] = [];
    for (const s of seqs.splice(0)) for (const op of names) next.push([...s, op]);
    seqs.push(...next);
  }
  for (const ops of seqs) {
    for (let j = 0; j < perSequence; j++) {
      const atoms = Array.from({ length: n + 1 }, () => ATOMS[Math.floor(rnd() * ATOMS.length)]!);
      out.push({ atoms, ops });
    }
  }
  return out;
}

/** The first column of every row, or the error's message. */
async function keys(db: Database, sql: string): Promise<unknown[] | string> {
  try {
    return (await db.query(sql)).rows.map((x) => x[0]);
  } catch (e) {
    return `error ${(e as Error).message}`;
  }
}

function chainSql(c: { atoms: Atom[]; ops: string[] }): string {
  let s = c.atoms[0]!.sql;
  c.ops.forEach((op, i) => (s += ` ${op} ${c.atoms[i + 1]!.sql}`));
  return s;
}

describe('SQL: precedence of AND, OR and NOT among predicates', () => {
  let db: Database;
  beforeAll(async () => {
    db = (await memDb()).db;
    await db.query('CREATE TABLE t (k INT PRIMARY KEY, a INT, b INT, c INT)');
    for (const r of ROWS) await db.query('INSERT INTO t VALUES (?, ?, ?, ?)', [r.k, r.a, r.b, r.c]);
  });
  afterAll(async () => {
    await db.close();
  });

  const cases = [...chains(2, 40, 1), ...chains(3, 20, 2), ...chains(4, 10, 3)];

  it('the issue report: b = 1 OR c = 5 AND c = 6 is b = 1 OR (c = 5 AND c = 6)', async () => {
    const r = await db.query('SELECT k FROM t WHERE b = 1 OR c = 5 AND c = 6 ORDER BY k');
    expect(r.rows.map((x) => x[0])).toEqual(ROWS.filter((x) => x.b === 1).map((x) => x.k));
  });

  it(`${cases.length} chains: WHERE keeps exactly the rows where the chain is true`, async () => {
    const wrong: string[] = [];
    for (const c of cases) {
      const sql = chainSql(c);
      const want = ROWS.filter((r) => evalChain(c.atoms, c.ops, r) === 1).map((r) => r.k);
      const got = await keys(db, `SELECT k FROM t WHERE ${sql} ORDER BY k`);
      if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`WHERE ${sql}: ${String(got)}`);
    }
    expect(wrong).toEqual([]);
  });

  it(`${cases.length} chains: the select list gives the chain's value on every row`, async () => {
    const wrong: string[] = [];
    for (const c of cases) {
      const sql = chainSql(c);
      const want = ROWS.map((r) => evalChain(c.atoms, c.ops, r));
      const got = await keys(db, `SELECT ${sql} FROM t ORDER BY k`);
      if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`SELECT ${sql}: ${String(got)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('the cases tell groupings apart: most chains of mixed operators change value when grouped left to right', () => {
    // Were the engine to group by position, these chains would give other rows: the test above
    // cannot pass by accident.
    let telling = 0;
    let mixed = 0;
    for (const c of cases) {
      if (new Set(c.ops.map((o) => OPS[o]!.rank)).size < 2) continue;
      mixed++;
      const byPosition = (r: Row): V => {
        let v = c.atoms[0]!.ev(r);
        c.ops.forEach((op, i) => (v = OPS[op]!.ev(v, c.atoms[i + 1]!.ev(r))));
        return v;
      };
      if (ROWS.some((r) => byPosition(r) !== evalChain(c.atoms, c.ops, r))) telling++;
    }
    expect(mixed).toBeGreaterThan(200);
    expect(telling / mixed).toBeGreaterThan(0.5);
  });
});
