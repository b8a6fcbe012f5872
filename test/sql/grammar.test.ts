import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decimal, TidemarkError, type Database } from '../../src/index.js';
import { memDb } from '../helpers/db.js';

/** JSON with bigints (exact integers past 2^53) as their digits and an n. */
const show = (x: unknown): string =>
  JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));

/**
 * MySQL's grammar, construct by construct, with every answer checked: against an evaluator or a
 * multiset oracle in this file where the cases are generated (chains of prefix operators, set
 * operations with their precedence, quantified and row comparisons, REGEXP, bit operators), against
 * answers written out (and confirmed with MySQL's manual and a MariaDB server) where they are not
 * (the columns USING and NATURAL joins show, versioned comments, where syntax errors point).
 */

type V = number | null;
/** A value as SQL gives it back: exact integers past 2^53 as bigints, DECIMALs as Decimals. */
type R = number | bigint | Decimal | null;

/** AVG of integers as MySQL gives it: a DECIMAL with 4 digits, rounded half away from zero. */
function avg4(total: number, n: number): Decimal {
  const num = BigInt(total) * 10000n;
  let q = num / BigInt(n);
  const r = num % BigInt(n);
  if (2n * (r < 0n ? -r : r) >= BigInt(n)) q += num < 0n ? -1n : 1n;
  return new Decimal(q, 4);
}
type Row = V[];

/** A deterministic stream of numbers in [0, 1) (the cases do not depend on the run). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

const sqlValue = (v: V): string => (v === null ? 'NULL' : String(v));

/** `INSERT INTO name VALUES ...` of rows. */
const insertSql = (name: string, rows: readonly Row[]): string =>
  `INSERT INTO ${name} VALUES ${rows.map((r) => `(${r.map(sqlValue).join(', ')})`).join(', ')}`;

/** Rows as a sorted list of their JSON (a multiset, to compare results whose order is not defined). */
const bag = (rows: readonly (readonly unknown[])[]): string[] => rows.map((r) => JSON.stringify(r)).sort();

/** The error a promise rejects with (fails the test when it fulfils). */
async function failure(p: Promise<unknown>): Promise<TidemarkError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TidemarkError) return e;
    throw e;
  }
  throw new Error('expected the statement to fail');
}

let db: Database;
const rows = async (sql: string): Promise<unknown[][]> => (await db.query(sql)).rows;
/** The rows, or the error's code and message (a case that fails lists what it got). */
const attempt = async (sql: string): Promise<unknown[][] | string> => {
  try {
    return await rows(sql);
  } catch (e) {
    return `error ${(e as Error).message}`;
  }
};

// ---- data ----

/** g: 40 rows of small values with many duplicates and NULLs. */
const G: { k: number; a: V; b: V }[] = (() => {
  const rnd = lcg(11);
  const vals: V[] = [null, 0, 1, 2, 3];
  return Array.from({ length: 40 }, (_, k) => ({ k, a: pick(rnd, vals), b: pick(rnd, vals) }));
})();

/** u: one row per operand value of the prefix-operator chains. */
const UNARY_VALUES: V[] = [null, 0, 1, 2, 21, -3];

/** Set-operation inputs s1..s4 (x, y): small, with duplicates and NULLs; s4 is empty. */
const SET_TABLES: Record<string, Row[]> = (() => {
  const rnd = lcg(5);
  const vals: V[] = [null, 0, 1, 2];
  const make = (n: number): Row[] => Array.from({ length: n }, () => [pick(rnd, vals), pick(rnd, vals)]);
  return { s1: make(7), s2: make(6), s3: make(8), s4: [] };
})();

/** Join inputs (the shapes of MySQL's manual's examples, with NULLs and duplicates). */
const J1: Row[] = [
  [1, 2],
  [1, 2],
  [null, 3],
  [2, null],
]; // (a, b)
const J2: Row[] = [
  [2, 10, 1],
  [3, 20, null],
  [null, 30, 2],
  [2, 40, 5],
]; // (b, c, a)
const J3: Row[] = [
  [10, 100],
  [30, 300],
  [50, 500],
]; // (c, d)
const J4: Row[] = [
  [1, 7],
  [2, 8],
  [5, 9],
]; // (a, e)

beforeAll(async () => {
  db = (await memDb()).db;
  await db.query('CREATE TABLE g (k INT PRIMARY KEY, a INT, b INT)');
  await db.query(
    insertSql(
      'g',
      G.map((r) => [r.k, r.a, r.b]),
    ),
  );
  await db.query('CREATE TABLE u (k INT PRIMARY KEY, a INT)');
  await db.query(
    insertSql(
      'u',
      UNARY_VALUES.map((v, k) => [k, v]),
    ),
  );
  for (const [name, rs] of Object.entries(SET_TABLES)) {
    await db.query(`CREATE TABLE ${name} (x INT, y INT)`);
    if (rs.length > 0) await db.query(insertSql(name, rs));
  }
  await db.query('CREATE TABLE j1 (a INT, b INT)');
  await db.query('CREATE TABLE j2 (b INT, c INT, a INT)');
  await db.query('CREATE TABLE j3 (c INT, d INT)');
  await db.query('CREATE TABLE j4 (a INT, e INT)');
  await db.query(insertSql('j1', J1));
  await db.query(insertSql('j2', J2));
  await db.query(insertSql('j3', J3));
  await db.query(insertSql('j4', J4));
});
afterAll(() => db.close());

// ---- SELECT modifiers and aggregates ----

describe('SQL grammar: SELECT ALL / DISTINCT / DISTINCTROW and aggregate modifiers', () => {
  const pairs = G.map((r) => [r.a, r.b]);
  const distinctPairs = [...new Set(pairs.map((p) => JSON.stringify(p)))].sort();

  it('SELECT ALL keeps every row; DISTINCT and DISTINCTROW keep one of each (NULLs equal)', async () => {
    expect(bag(await rows('SELECT ALL a, b FROM g'))).toEqual(bag(pairs));
    expect(bag(await rows('SELECT a, b FROM g'))).toEqual(bag(pairs));
    expect(bag(await rows('SELECT DISTINCT a, b FROM g'))).toEqual(distinctPairs);
    expect(bag(await rows('SELECT DISTINCTROW a, b FROM g'))).toEqual(distinctPairs);
    expect(bag(await rows('SELECT DISTINCT DISTINCTROW a, b FROM g'))).toEqual(distinctPairs);
    expect(bag(await rows('SELECT ALL ALL a, b FROM g'))).toEqual(bag(pairs));
    const as = [...new Set(G.map((r) => r.a))].sort((x, y) => (x ?? -1) - (y ?? -1));
    expect(await rows('SELECT DISTINCT a FROM g ORDER BY a')).toEqual(as.map((a) => [a]));
    // DISTINCT with a hint among the modifiers, in any order.
    expect(bag(await rows('SELECT SQL_NO_CACHE DISTINCT a, b FROM g'))).toEqual(distinctPairs);
  });

  it('SELECT ALL DISTINCT is refused as MySQL refuses it (1221), in either order', async () => {
    for (const sql of [
      'SELECT ALL DISTINCT a FROM g',
      'SELECT DISTINCT ALL a FROM g',
      'SELECT ALL DISTINCTROW 1',
    ]) {
      const e = await failure(db.query(sql));
      expect(e.code, sql).toBe('INVALID_ARGUMENT');
      expect(e.details?.mysqlErrno, sql).toBe(1221);
    }
  });

  it('COUNT/SUM/AVG/MIN/MAX with ALL and DISTINCT, and COUNT(DISTINCT a, b), whole table and grouped', async () => {
    const nn = (xs: V[]): number[] => xs.filter((x): x is number => x !== null);
    const sum = (xs: number[]): V => (xs.length === 0 ? null : xs.reduce((s, x) => s + x, 0));
    const uniq = (xs: number[]): number[] => [...new Set(xs)];
    const countPairs = (rs: typeof G): number =>
      new Set(rs.filter((r) => r.a !== null && r.b !== null).map((r) => `${r.a},${r.b}`)).size;
    const expectFor = (rs: typeof G): R[] => {
      const a = nn(rs.map((r) => r.a));
      const b = nn(rs.map((r) => r.b));
      return [
        a.length,
        sum(a),
        countPairs(rs),
        uniq(a).length,
        sum(uniq(a)),
        rs.length,
        b.length === 0 ? null : avg4(sum(b)!, b.length),
        a.length === 0 ? null : Math.min(...a),
        b.length === 0 ? null : Math.max(...uniq(b)),
        sum(uniq(b)),
      ];
    };
    const list =
      'COUNT(ALL a), SUM(ALL a), COUNT(DISTINCT a, b), COUNT(DISTINCT a), SUM(DISTINCT a), COUNT(*), ' +
      'AVG(ALL b), MIN(ALL a), MAX(DISTINCT b), SUM(DISTINCT b)';
    const whole = (await rows(`SELECT ${list} FROM g`))[0]!;
    expect(whole).toEqual(expectFor(G));
    // Grouped by b, which COUNT(DISTINCT a, b) reads too.
    const got = await rows(`SELECT b, ${list} FROM g GROUP BY b ORDER BY b`);
    const bs = [...new Set(G.map((r) => r.b))].sort((x, y) => (x ?? -1) - (y ?? -1));
    expect(got).toEqual(bs.map((b) => [b, ...expectFor(G.filter((r) => r.b === b))]));
    // Over no rows: COUNTs are 0, the rest NULL.
    expect((await rows(`SELECT ${list} FROM g WHERE k < 0`))[0]).toEqual([
      0,
      null,
      0,
      0,
      null,
      0,
      null,
      null,
      null,
      null,
    ]);
  });
});

// ---- chains of prefix operators ----

/** A value MySQL rejects (BIGINT out of range: - of a ~ result). */
class Unsafe extends Error {}

const TWO63 = 2n ** 63n;

/** MySQL's prefix operators over exact integers (BIGINT UNSIGNED results of ~ included). */
function prefix(op: string, v: bigint | null): bigint | null {
  if (v === null) return null;
  switch (op) {
    case '-':
      if (v >= TWO63) throw new Unsafe(); // MySQL: BIGINT value is out of range
      return -v;
    case '+':
      return v;
    case '~':
      return BigInt.asUintN(64, ~v);
    case '!':
    case 'NOT':
      return v === 0n ? 1n : 0n;
  }
  throw new Error(op);
}

/** `ops[0] ops[1] ... operand`: the operator nearest the operand applies first. */
function applyPrefixes(ops: readonly string[], v: bigint | null): bigint | null {
  let x = v;
  for (let i = ops.length - 1; i >= 0; i--) x = prefix(ops[i]!, x);
  return x;
}

/** As SQL gives an integer: a number while safe, a bigint past 2^53 (exact). */
const asNumber = (x: bigint | null): R =>
  x === null
    ? null
    : x >= -BigInt(Number.MAX_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(x)
      : x;

interface UnaryCase {
  sql: string;
  /** Value per row of u (by k), as MySQL gives it. */
  values: R[];
}

/**
 * Every chain of up to three of - + ~ ! (each operator spaced, or written together where the lexer
 * must split them), with zero to two NOTs in front, over column a; chains MySQL rejects are left
 * out. A ~ after another (~ ~ a, ~ + ~ a) needs all 64 bits of the first: as a double, ~1 is 2^64.
 */
function unaryCases(): UnaryCase[] {
  const SYM = ['-', '+', '~', '!'];
  const out: UnaryCase[] = [];
  const seqs: string[][] = [];
  const grow = (s: string[]) => {
    if (s.length > 0) seqs.push(s);
    if (s.length < 3) for (const op of SYM) grow([...s, op]);
  };
  grow([]);
  for (const nots of [0, 1, 2]) {
    for (const s of seqs) {
      const ops = [...Array<string>(nots).fill('NOT'), ...s];
      let values: R[];
      try {
        values = UNARY_VALUES.map((v) => asNumber(applyPrefixes(ops, v === null ? null : BigInt(v))));
      } catch (e) {
        if (e instanceof Unsafe) continue;
        throw e;
      }
      out.push({ sql: `${ops.join(' ')} a`, values });
      // Written together: "-+~a", "!-a" (not "--", a comment only when a space follows, tested apart).
      const tight = s.join('');
      if (!tight.includes('--') && nots === 0) out.push({ sql: `${tight}a`, values });
    }
  }
  return out;
}

describe('SQL grammar: chains of prefix operators (- + ~ ! NOT) against an evaluator', () => {
  const cases = unaryCases();

  it(`${cases.length} chains: the select list gives the chain's value, CASE WHEN and WHERE its truth`, async () => {
    expect(cases.length).toBeGreaterThan(200);
    const wrong: string[] = [];
    for (const c of cases) {
      const got = await attempt(
        `SELECT ${c.sql}, CASE WHEN ${c.sql} THEN 'y' ELSE 'n' END FROM u ORDER BY k`,
      );
      const want = c.values.map((v) => [v, v !== null && v !== 0 ? 'y' : 'n']);
      if (show(got) !== show(want)) wrong.push(`${c.sql}: ${show(got)}`);
      const kept = await attempt(`SELECT k FROM u WHERE ${c.sql} ORDER BY k`);
      const keep = c.values.flatMap((v, k) => (v !== null && v !== 0 ? [[k]] : []));
      if (JSON.stringify(kept) !== JSON.stringify(keep))
        wrong.push(`WHERE ${c.sql}: ${JSON.stringify(kept)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('chains over literals (folded as constants) give the same values', async () => {
    const wrong: string[] = [];
    for (const c of cases.filter((_, i) => i % 3 === 0)) {
      for (const [k, v] of UNARY_VALUES.entries()) {
        if (v === null || v < 0) continue; // a literal -3 is itself a prefix chain
        const sql = c.sql.replace(/a$/, ` ${v}`);
        const got = await attempt(`SELECT ${sql}, CASE WHEN ${sql} THEN 1 ELSE 0 END`);
        const want = [[c.values[k], c.values[k] !== null && c.values[k] !== 0 ? 1 : 0]];
        if (show(got) !== show(want)) wrong.push(`${sql}: ${JSON.stringify(got)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the examples: CASE WHEN + - 21, - - - a, NOT NOT a, 1--1 (no comment without a space)', async () => {
    expect(
      await rows("SELECT CASE WHEN + - 21 THEN 'yes' ELSE 'no' END, CASE WHEN - - 0 THEN 1 ELSE 2 END"),
    ).toEqual([['yes', 2]]);
    expect(await rows('SELECT - - - a, NOT NOT a, !!a, ~ - a FROM u WHERE k = 4')).toEqual([[-21, 1, 1, 20]]);
    expect(await rows('SELECT 1--1, 1 - -1, 1---1, 3 -- 2\n')).toEqual([[2, 2, 0, 3]]);
  });

  it('NOT binds looser than comparisons, - + ~ ! tighter: NOT - a = -1 is NOT ((-a) = -1)', async () => {
    const wrong: string[] = [];
    let telling = 0;
    let total = 0;
    for (const c of cases) {
      const m = /^((?:NOT )*)(.*)a$/.exec(c.sql)!;
      const nots = m[1]!.split(' ').filter((x) => x !== '');
      const inner = m[2]!.trim();
      if (inner === '') continue;
      for (const rhs of [-1, 0, 1]) {
        const sql = `${c.sql} = ${rhs}`;
        const innerOps = inner.includes(' ') ? inner.split(' ') : [...inner];
        const want: R[] = [];
        const other: V[] = [];
        for (const v of UNARY_VALUES) {
          const x = applyPrefixes(innerOps, v === null ? null : BigInt(v));
          const eq = x === null ? null : x === BigInt(rhs) ? 1n : 0n;
          want.push(asNumber(applyPrefixes(nots, eq)));
          // Were NOT to bind tighter than =: (NOT ... x) = rhs.
          const y = applyPrefixes(nots, x);
          other.push(y === null ? null : y === BigInt(rhs) ? 1 : 0);
        }
        if (nots.length > 0) {
          total++;
          if (JSON.stringify(want) !== JSON.stringify(other)) telling++;
        }
        const got = await attempt(`SELECT ${sql} FROM u ORDER BY k`);
        if (JSON.stringify(got) !== JSON.stringify(want.map((w) => [w])))
          wrong.push(`${sql}: ${JSON.stringify(got)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(telling / total).toBeGreaterThan(0.3);
  });

  it('NOT after another prefix operator is a syntax error, as in MySQL (- NOT a)', async () => {
    for (const sql of ['SELECT - NOT a FROM u', 'SELECT ~ NOT a FROM u', 'SELECT ! NOT a FROM u']) {
      expect((await failure(db.query(sql))).code, sql).toBe('SYNTAX');
    }
  });
});

// ---- set operations ----

interface SetOpForm {
  kind: 'UNION' | 'INTERSECT' | 'EXCEPT';
  all: boolean;
  sql: string;
}

const SET_OPS: SetOpForm[] = (['UNION', 'INTERSECT', 'EXCEPT'] as const).flatMap((kind) => [
  { kind, all: false, sql: kind },
  { kind, all: false, sql: `${kind} DISTINCT` },
  { kind, all: true, sql: `${kind} ALL` },
]);

const rowKey = (r: Row): string => JSON.stringify(r);

function distinctRows(rs: readonly Row[]): Row[] {
  const seen = new Set<string>();
  return rs.filter((r) => {
    const k = rowKey(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The multiset semantics of the SQL standard (and MySQL 8.0.31): rows equal when all columns are, NULLs too. */
function applySetOp(op: SetOpForm, l: readonly Row[], r: readonly Row[]): Row[] {
  if (op.kind === 'UNION') return op.all ? [...l, ...r] : distinctRows([...l, ...r]);
  const counts = new Map<string, number>();
  for (const x of r) counts.set(rowKey(x), (counts.get(rowKey(x)) ?? 0) + 1);
  const intersect = op.kind === 'INTERSECT';
  if (!op.all) return distinctRows(l.filter((x) => counts.has(rowKey(x)) === intersect));
  return l.filter((x) => {
    const n = counts.get(rowKey(x)) ?? 0;
    if (n > 0) counts.set(rowKey(x), n - 1);
    return n > 0 === intersect;
  });
}

/** MySQL's order: NULL first ascending, last descending. */
function sortRows(rs: readonly Row[], desc: readonly boolean[]): Row[] {
  return [...rs].sort((x, y) => {
    for (let i = 0; i < x.length; i++) {
      const a = x[i]!;
      const b = y[i]!;
      if (a === b) continue;
      const c = a === null ? -1 : b === null ? 1 : a - b;
      return desc[i] ? -c : c;
    }
    return 0;
  });
}

interface Branch {
  sql: string;
  rows: Row[];
}

/** The operands of the generated set operations: tables, TABLE, VALUES, filters, ordered and limited. */
function branches(): Branch[] {
  const t = SET_TABLES;
  const out: Branch[] = [];
  for (const name of ['s1', 's2', 's3']) {
    out.push({ sql: `SELECT x, y FROM ${name}`, rows: t[name]! });
  }
  out.push({ sql: 'SELECT y, x FROM s1', rows: t.s1!.map(([x, y]) => [y!, x!]) });
  out.push({ sql: 'TABLE s2', rows: t.s2! });
  out.push({ sql: 'SELECT x, y FROM s4', rows: [] });
  out.push({ sql: 'SELECT x, y FROM s3 WHERE x IS NOT NULL', rows: t.s3!.filter((r) => r[0] !== null) });
  out.push({
    sql: 'VALUES ROW(1, NULL), ROW(1, NULL), ROW(0, 2), ROW(NULL, NULL)',
    rows: [
      [1, null],
      [1, null],
      [0, 2],
      [null, null],
    ],
  });
  out.push({
    sql: '(SELECT x, y FROM s1 ORDER BY x DESC, y LIMIT 3)',
    rows: sortRows(t.s1!, [true, false]).slice(0, 3),
  });
  out.push({
    sql: '(SELECT x, y FROM s3 ORDER BY y, x LIMIT 2, 4)',
    rows: sortRows(
      t.s3!.map(([x, y]) => [y!, x!]),
      [false, false],
    )
      .slice(2, 6)
      .map(([y, x]) => [x!, y!]),
  });
  return out;
}

/** A set-operation expression: a branch, or op applied to two (the tree the parser must build). */
type SetExpr = { branch: Branch } | { op: SetOpForm; left: SetExpr; right: SetExpr; parens: boolean };

function evalSet(e: SetExpr): Row[] {
  if ('branch' in e) return e.branch.rows;
  return applySetOp(e.op, evalSet(e.left), evalSet(e.right));
}

function setSql(e: SetExpr): string {
  if ('branch' in e) return e.branch.sql;
  const s = `${setSql(e.left)} ${e.op.sql} ${setSql(e.right)}`;
  return e.parens ? `(${s})` : s;
}

const RANK = { UNION: 1, EXCEPT: 1, INTERSECT: 2 };

/** `b0 o1 b1 o2 b2 ...` unparenthesized, grouped as MySQL does: INTERSECT first, then left to right. */
function byPrecedence(bs: readonly Branch[], ops: readonly SetOpForm[]): SetExpr {
  let i = 0;
  const climb = (min: number): SetExpr => {
    let left: SetExpr = { branch: bs[i]! };
    while (i < ops.length && RANK[ops[i]!.kind] >= min) {
      const op = ops[i]!;
      i++;
      left = { op, left, right: climb(RANK[op.kind] + 1), parens: false };
    }
    return left;
  };
  return climb(1);
}

/** The same chain grouped left to right by position (what a parser without precedence builds). */
function byPosition(bs: readonly Branch[], ops: readonly SetOpForm[]): SetExpr {
  let e: SetExpr = { branch: bs[0]! };
  ops.forEach((op, k) => (e = { op, left: e, right: { branch: bs[k + 1]! }, parens: false }));
  return e;
}

interface SetCase {
  sql: string;
  want: Row[];
  /** Whether the order of the result is decided (an outer ORDER BY over every column). */
  ordered: boolean;
  /** For chains: whether grouping by position would give another result. */
  telling?: boolean;
  flat: boolean;
}

function setCases(): SetCase[] {
  const rnd = lcg(21);
  const bs = branches();
  const out: SetCase[] = [];
  const three = () => [pick(rnd, bs), pick(rnd, bs), pick(rnd, bs)];
  /** Sometimes an outer ORDER BY over both columns, with a LIMIT. */
  const finish = (sql: string, want: Row[], flat: boolean, telling?: boolean): SetCase => {
    const r = rnd();
    if (r < 0.25) {
      const desc = [rnd() < 0.5, rnd() < 0.5];
      const n = 1 + Math.floor(rnd() * 5);
      const order = `ORDER BY 1${desc[0] ? ' DESC' : ''}, 2${desc[1] ? ' DESC' : ''}`;
      return {
        sql: `${sql} ${order} LIMIT ${n}`,
        want: sortRows(want, desc).slice(0, n),
        ordered: true,
        flat,
        ...(telling !== undefined ? { telling } : {}),
      };
    }
    return { sql, want, ordered: false, flat, ...(telling !== undefined ? { telling } : {}) };
  };
  for (const o1 of SET_OPS) {
    for (const o2 of SET_OPS) {
      // Unparenthesized: precedence decides.
      let b = three();
      const prec = byPrecedence(b, [o1, o2]);
      const telling =
        JSON.stringify(bag(evalSet(prec))) !== JSON.stringify(bag(evalSet(byPosition(b, [o1, o2]))));
      out.push(finish(setSql(prec), evalSet(prec), true, telling));
      // Parenthesized either way.
      b = three();
      const left: SetExpr = {
        op: o2,
        left: { op: o1, left: { branch: b[0]! }, right: { branch: b[1]! }, parens: true },
        right: { branch: b[2]! },
        parens: false,
      };
      out.push(finish(setSql(left), evalSet(left), false));
      b = three();
      const right: SetExpr = {
        op: o1,
        left: { branch: b[0]! },
        right: { op: o2, left: { branch: b[1]! }, right: { branch: b[2]! }, parens: true },
        parens: false,
      };
      out.push(finish(setSql(right), evalSet(right), false));
    }
  }
  // Longer unparenthesized chains.
  for (let n = 0; n < 80; n++) {
    const ops = [pick(rnd, SET_OPS), pick(rnd, SET_OPS), pick(rnd, SET_OPS)];
    const b = [...three(), pick(rnd, bs)];
    const prec = byPrecedence(b, ops);
    const telling = JSON.stringify(bag(evalSet(prec))) !== JSON.stringify(bag(evalSet(byPosition(b, ops))));
    out.push(finish(setSql(prec), evalSet(prec), true, telling));
  }
  return out;
}

describe('SQL grammar: UNION / INTERSECT / EXCEPT [DISTINCT | ALL] against a multiset oracle', () => {
  const cases = setCases();

  it('the oracle agrees with the manual on small cases', () => {
    const A: Row[] = [[1], [1], [2], [null], [null]];
    const B: Row[] = [[1], [null], [3]];
    const op = (sql: string) => SET_OPS.find((o) => o.sql === sql)!;
    expect(applySetOp(op('UNION'), A, B)).toEqual([[1], [2], [null], [3]]);
    expect(applySetOp(op('UNION ALL'), A, B)).toHaveLength(8);
    expect(applySetOp(op('INTERSECT'), A, B)).toEqual([[1], [null]]);
    expect(applySetOp(op('INTERSECT ALL'), A, B)).toEqual([[1], [null]]);
    expect(applySetOp(op('EXCEPT'), A, B)).toEqual([[2]]);
    expect(applySetOp(op('EXCEPT ALL'), A, B)).toEqual([[1], [2], [null]]);
  });

  it(`${cases.length} expressions: every pair of operators, parenthesized both ways, and chains of three`, async () => {
    const wrong: string[] = [];
    for (const c of cases) {
      const got = await attempt(c.sql);
      const ok =
        typeof got !== 'string' &&
        (c.ordered
          ? JSON.stringify(got) === JSON.stringify(c.want)
          : JSON.stringify(bag(got)) === JSON.stringify(bag(c.want)));
      if (!ok) wrong.push(`${c.sql}\n  got ${JSON.stringify(got)}\n  want ${JSON.stringify(c.want)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('the cases tell groupings apart: many chains give another result when grouped by position', () => {
    const flat = cases.filter((c) => c.flat);
    const withIntersect = flat.filter((c) => / INTERSECT /.test(c.sql));
    expect(withIntersect.filter((c) => c.telling).length).toBeGreaterThan(30);
    expect(cases.filter((c) => c.ordered).length).toBeGreaterThan(40);
    // Not all results are empty or all alike.
    expect(new Set(cases.map((c) => JSON.stringify(bag(c.want)))).size).toBeGreaterThan(100);
  });

  it('precedence and associativity, written out', async () => {
    // INTERSECT binds tighter: 1 UNION (2 INTERSECT 2), not (1 UNION 2) INTERSECT 2.
    expect(bag(await rows('SELECT 1 UNION SELECT 2 INTERSECT SELECT 2'))).toEqual(bag([[1], [2]]));
    expect(await rows('(SELECT 1 UNION SELECT 2) INTERSECT SELECT 2')).toEqual([[2]]);
    // EXCEPT and UNION associate to the left.
    expect(await rows('SELECT 1 UNION SELECT 2 EXCEPT SELECT 1')).toEqual([[2]]);
    expect(await rows('SELECT 1 EXCEPT SELECT 1 UNION SELECT 1')).toEqual([[1]]);
    expect(await rows('SELECT 1 EXCEPT (SELECT 1 UNION SELECT 1)')).toEqual([]);
    // A DISTINCT union removes the duplicates an ALL union before it let through.
    expect(await rows('SELECT 1 UNION ALL SELECT 1 UNION SELECT 1')).toEqual([[1]]);
    expect(await rows('SELECT 1 UNION SELECT 1 UNION ALL SELECT 1')).toEqual([[1], [1]]);
  });

  it('branches with their own ORDER BY / LIMIT, an outer ORDER BY / LIMIT by position and by name', async () => {
    expect(
      await rows(
        '(SELECT x FROM s1 ORDER BY x DESC LIMIT 2) UNION ALL (SELECT x FROM s2 ORDER BY x LIMIT 1) ORDER BY x',
      ),
    ).toEqual(
      sortRows(
        [
          ...sortRows(
            SET_TABLES.s1!.map((r) => [r[0]!]),
            [true],
          ).slice(0, 2),
          ...sortRows(
            SET_TABLES.s2!.map((r) => [r[0]!]),
            [false],
          ).slice(0, 1),
        ],
        [false],
      ),
    );
    const all = distinctRows([...SET_TABLES.s1!, ...SET_TABLES.s2!]);
    expect(
      await rows('SELECT x, y FROM s1 UNION SELECT x, y FROM s2 ORDER BY y DESC, x LIMIT 3 OFFSET 1'),
    ).toEqual(
      sortRows(
        all.map(([x, y]) => [y!, x!]),
        [true, false],
      )
        .slice(1, 4)
        .map(([y, x]) => [x!, y!]),
    );
    // ORDER BY in the middle of a chain needs parentheses.
    expect((await failure(db.query('SELECT 1 UNION SELECT 2 ORDER BY 1 UNION SELECT 3'))).code).toBe(
      'SYNTAX',
    );
  });
});

// ---- WITH, VALUES, TABLE ----

describe('SQL grammar: WITH (several CTEs, one used twice), VALUES ROW(...), TABLE t', () => {
  it('several CTEs, each reading the ones before; a CTE used twice (a self-join); column lists', async () => {
    const got = await rows(
      `WITH lo AS (SELECT k, a FROM g WHERE a < 2),
            hi (k2, a2) AS (SELECT k, a FROM g WHERE a >= 2),
            both_ AS (SELECT lo.k, hi.k2 FROM lo JOIN hi ON lo.k + 1 = hi.k2)
       SELECT x.k, y.k, both_.k2 FROM lo AS x JOIN lo AS y ON x.k + 2 = y.k LEFT JOIN both_ ON both_.k = x.k
       ORDER BY x.k`,
    );
    const lo = G.filter((r) => r.a !== null && r.a < 2);
    const hi = G.filter((r) => r.a !== null && r.a >= 2);
    const want: unknown[][] = [];
    for (const x of lo)
      for (const y of lo)
        if (x.k + 2 === y.k) {
          const bs = lo.filter((l) => l.k === x.k && hi.some((h) => l.k + 1 === h.k));
          want.push([x.k, y.k, bs.length > 0 ? x.k + 1 : null]);
        }
    expect(want.length).toBeGreaterThan(3);
    expect(got).toEqual(want);
  });

  it('a CTE shadows a table; WITH inside a subquery and a derived table; a CTE in both branches of a UNION', async () => {
    expect(await rows('WITH g AS (SELECT 42 AS a) SELECT * FROM g')).toEqual([[42]]);
    const maxA = Math.max(...G.map((r) => r.a ?? -1));
    expect(await rows('SELECT (WITH c AS (SELECT MAX(a) AS m FROM g) SELECT m FROM c) AS x')).toEqual([
      [maxA],
    ]);
    expect(
      await rows('SELECT d.n FROM (WITH c AS (SELECT COUNT(*) AS n FROM g) SELECT n FROM c) AS d'),
    ).toEqual([[G.length]]);
    expect(await rows('WITH c AS (SELECT 7 AS v) SELECT v FROM c UNION ALL SELECT v + 1 FROM c')).toEqual([
      [7],
      [8],
    ]);
    expect((await failure(db.query('WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r'))).code).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('VALUES ROW(...): columns column_0.., ORDER BY/LIMIT, as a derived table with names, in a UNION', async () => {
    const r = await db.query("VALUES ROW(1, 'a'), ROW(NULL, 'b'), ROW(3, NULL)");
    expect(r.columns).toEqual(['column_0', 'column_1']);
    expect(r.rows).toEqual([
      [1, 'a'],
      [null, 'b'],
      [3, null],
    ]);
    expect(await rows('VALUES ROW(1, 2), ROW(3, 4), ROW(5, 0) ORDER BY column_1 DESC LIMIT 2')).toEqual([
      [3, 4],
      [1, 2],
    ]);
    const d = await db.query('SELECT q, p FROM (VALUES ROW(1, 2), ROW(3, 4)) AS v (p, q) WHERE q > 2');
    expect(d.columns).toEqual(['q', 'p']);
    expect(d.rows).toEqual([[4, 3]]);
    expect(await rows('SELECT 1, 2 UNION VALUES ROW(1, 2), ROW(5, 6)')).toEqual([
      [1, 2],
      [5, 6],
    ]);
    expect((await failure(db.query('VALUES ROW(1, 2), ROW(3)'))).details?.mysqlErrno).toBe(1222);
  });

  it('TABLE t: the whole table, with ORDER BY/LIMIT, in set operations', async () => {
    const all = G.map((r) => [r.k, r.a, r.b]);
    expect(bag(await rows('TABLE g'))).toEqual(bag(all));
    expect(await rows('TABLE g ORDER BY k DESC LIMIT 2')).toEqual(all.slice(-2).reverse());
    expect(bag(await rows('TABLE s1 UNION ALL TABLE s2'))).toEqual(
      bag([...SET_TABLES.s1!, ...SET_TABLES.s2!]),
    );
    expect(bag(await rows('TABLE s1 EXCEPT TABLE s1'))).toEqual([]);
  });
});

// ---- row constructors and quantified comparisons ----

/** MySQL's row comparison: = and <> are AND / OR over the pairs; < <= > >= decide at the first pair that differs (NULL there: NULL). */
function rowCompare(op: string, l: V[], r: V[]): V {
  if (op === '=' || op === '<>') {
    let sawNull = false;
    for (let i = 0; i < l.length; i++) {
      if (l[i] === null || r[i] === null) sawNull = true;
      else if (l[i] !== r[i]) return op === '=' ? 0 : 1;
    }
    return sawNull ? null : op === '=' ? 1 : 0;
  }
  if (op === '<=>') return l.every((x, i) => x === r[i]) ? 1 : 0;
  for (let i = 0; i < l.length; i++) {
    const a = l[i]!;
    const b = r[i]!;
    if (a === null || b === null) return null;
    if (a !== b) return (op === '<' || op === '<=' ? a < b : a > b) ? 1 : 0;
  }
  return op === '<=' || op === '>=' ? 1 : 0;
}

/** x IN (rows): 1 if some row is equal, else NULL if some comparison was NULL, else 0. */
function rowIn(l: V[], list: V[][]): V {
  let sawNull = false;
  for (const r of list) {
    const c = rowCompare('=', l, r);
    if (c === 1) return 1;
    if (c === null) sawNull = true;
  }
  return sawNull ? null : 0;
}

const not3 = (v: V): V => (v === null ? null : v === 0 ? 1 : 0);

/** Every (a, b) over NULL, 0, 1, 2: the rows of g are random, these are all of them. */
const PAIRS: V[][] = [null, 0, 1, 2].flatMap((a) => [null, 0, 1, 2].map((b) => [a, b]));

/** Subquery contents for the quantified comparisons: by group g of table q (group 3 has no rows). */
const Q_GROUPS: V[][] = [[1, 2], [1, null], [], [null], [2, 2, 3], [0]];

const cmp1 = (op: string, x: V, y: V): V => {
  if (x === null || y === null) return null;
  switch (op) {
    case '=':
      return x === y ? 1 : 0;
    case '<>':
    case '!=':
      return x !== y ? 1 : 0;
    case '<':
      return x < y ? 1 : 0;
    case '<=':
      return x <= y ? 1 : 0;
    case '>':
      return x > y ? 1 : 0;
    case '>=':
      return x >= y ? 1 : 0;
  }
  throw new Error(op);
};

/** x op ALL (s): true over no rows; false if some comparison is false; else NULL if one is NULL. */
function quantified(op: string, q: 'ALL' | 'ANY' | 'SOME', x: V, s: V[]): V {
  const cs = s.map((y) => cmp1(op, x, y));
  if (q === 'ALL') {
    if (cs.includes(0)) return 0;
    return cs.includes(null) ? null : 1;
  }
  if (cs.includes(1)) return 1;
  return cs.includes(null) ? null : 0;
}

describe('SQL grammar: row constructors and ALL / ANY / SOME comparisons', () => {
  beforeAll(async () => {
    await db.query('CREATE TABLE p (k INT PRIMARY KEY, a INT, b INT)');
    await db.query(
      insertSql(
        'p',
        PAIRS.map((ab, k) => [k, ...ab]),
      ),
    );
    await db.query('CREATE TABLE q (g INT, v INT)');
    await db.query(
      insertSql(
        'q',
        Q_GROUPS.flatMap((vs, g) => vs.map((v) => [g, v])),
      ),
    );
    await db.query('CREATE TABLE x (k INT PRIMARY KEY, v INT)');
    await db.query(
      insertSql(
        'x',
        [null, 0, 1, 2, 3, 4].map((v, k) => [k, v]),
      ),
    );
  });

  it('(a, b) op (c, d) for = <> != < <= > >= <=> against constants with NULLs, and ROW(...)', async () => {
    const rhs: V[][] = [
      [1, 2],
      [1, null],
      [null, 1],
      [0, 0],
      [2, 1],
    ];
    const wrong: string[] = [];
    for (const op of ['=', '<>', '!=', '<', '<=', '>', '>=', '<=>']) {
      for (const r of rhs) {
        for (const form of ['(a, b) OP (x, y)', 'ROW(a, b) OP ROW(x, y)', '(x, y) OP (a, b)']) {
          const [x, y] = r.map(sqlValue);
          const sql = form.replace('OP', op).replace('x', x!).replace('y', y!);
          const swapped = form.startsWith('(x');
          const want = PAIRS.map((l) => [
            swapped ? rowCompare(op === '!=' ? '<>' : op, r, l) : rowCompare(op === '!=' ? '<>' : op, l, r),
          ]);
          const got = await attempt(`SELECT ${sql} FROM p ORDER BY k`);
          if (show(got) !== show(want)) wrong.push(`${sql}: ${JSON.stringify(got)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('(a, b) [NOT] IN ((..), (..)) with NULLs; row comparisons in WHERE; arity mismatch is 1241', async () => {
    const lists: V[][][] = [
      [
        [1, 2],
        [3, 4],
      ],
      [
        [1, null],
        [2, 0],
      ],
      [[null, null]],
      [
        [0, 1],
        [1, 0],
        [2, 2],
      ],
    ];
    const wrong: string[] = [];
    for (const list of lists) {
      const text = list.map((r) => `(${r.map(sqlValue).join(', ')})`).join(', ');
      for (const not of [false, true]) {
        const sql = `(a, b) ${not ? 'NOT ' : ''}IN (${text})`;
        const want = PAIRS.map((l) => (not ? not3(rowIn(l, list)) : rowIn(l, list)));
        const got = await attempt(`SELECT ${sql} FROM p ORDER BY k`);
        if (JSON.stringify(got) !== JSON.stringify(want.map((w) => [w])))
          wrong.push(`${sql}: ${JSON.stringify(got)}`);
        const kept = await attempt(`SELECT k FROM p WHERE ${sql} ORDER BY k`);
        const keep = want.flatMap((w, k) => (w === 1 ? [[k]] : []));
        if (JSON.stringify(kept) !== JSON.stringify(keep))
          wrong.push(`WHERE ${sql}: ${JSON.stringify(kept)}`);
      }
    }
    expect(wrong).toEqual([]);
    for (const sql of ['SELECT (1, 2) = (1, 2, 3)', 'SELECT (1, 2) IN ((1, 2), (3))', 'SELECT (1, 2) = 1']) {
      expect((await failure(db.query(sql))).details?.mysqlErrno, sql).toBe(1241);
    }
  });

  it('x op ALL / ANY / SOME (subquery) for every operator, over empty, NULL-holding and plain sets', async () => {
    const wrong: string[] = [];
    const xs: V[] = [null, 0, 1, 2, 3, 4];
    for (const op of ['=', '<>', '!=', '<', '<=', '>', '>=']) {
      for (const quant of ['ALL', 'ANY', 'SOME'] as const) {
        for (const [g, set] of Q_GROUPS.entries()) {
          const sql = `v ${op} ${quant} (SELECT v FROM q WHERE g = ${g})`;
          const want = xs.map((x) => quantified(op, quant, x, set));
          const got = await attempt(`SELECT ${sql} FROM x ORDER BY k`);
          if (JSON.stringify(got) !== JSON.stringify(want.map((w) => [w])))
            wrong.push(`${sql}: ${JSON.stringify(got)}`);
          const kept = await attempt(`SELECT k FROM x WHERE ${sql} ORDER BY k`);
          const keep = want.flatMap((w, k) => (w === 1 ? [[k]] : []));
          if (JSON.stringify(kept) !== JSON.stringify(keep))
            wrong.push(`WHERE ${sql}: ${JSON.stringify(kept)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('MySQL semantics written out: ALL over no rows is true (even for NULL), ANY over no rows false', async () => {
    expect(
      await rows(
        'SELECT NULL > ALL (SELECT v FROM q WHERE g = 2), NULL = ANY (SELECT v FROM q WHERE g = 2), ' +
          '5 <> SOME (SELECT v FROM q WHERE g = 1), 3 > ALL (SELECT v FROM q WHERE g = 1), ' +
          '3 > ALL (SELECT v FROM q WHERE g = 0), 2 = ANY (SELECT v FROM q WHERE g = 3)',
      ),
    ).toEqual([[1, 0, 1, null, 1, null]]);
    // Correlated: each row of x against its own group (g = k).
    const got = await rows('SELECT k, v >= ALL (SELECT q.v FROM q WHERE q.g = x.k) FROM x ORDER BY k');
    expect(got).toEqual(
      [null, 0, 1, 2, 3, 4].map((v, k) => [k, quantified('>=', 'ALL', v, Q_GROUPS[k] ?? [])]),
    );
  });
});

// ---- joins ----

type Col = 'a' | 'b' | 'c' | 'd' | 'e';
type Rec = Record<Col, V>;
const NO_REC: Rec = { a: null, b: null, c: null, d: null, e: null };
const recs = (cols: Col[], rs: Row[]): Rec[] =>
  rs.map((r) => ({ ...NO_REC, ...Object.fromEntries(cols.map((c, i) => [c, r[i]!])) }));
const T1 = recs(['a', 'b'], J1);
const T2 = recs(['b', 'c', 'a'], J2);
const T3 = recs(['c', 'd'], J3);
const T4 = recs(['a', 'e'], J4);
/** SQL equality: NULL never matches. */
const eq = (x: V, y: V): boolean => x !== null && y !== null && x === y;
const NULLS = (_cols: Col[]): Rec => NO_REC;

/** `l LEFT JOIN r ON on` as records of two parts (r's part all NULL when nothing matched). */
function leftJoin<L, R>(l: L[], r: R[], on: (x: L, y: R) => boolean, nulls: R): [L, R][] {
  return l.flatMap((x) => {
    const m = r.filter((y) => on(x, y));
    return m.length > 0 ? m.map((y): [L, R] => [x, y]) : [[x, nulls]];
  });
}
const innerJoin = <L, R>(l: L[], r: R[], on: (x: L, y: R) => boolean): [L, R][] =>
  l.flatMap((x) => r.filter((y) => on(x, y)).map((y): [L, R] => [x, y]));

interface JoinCase {
  sql: string;
  columns: string[];
  rows: V[][];
}

/** Each with the columns MySQL shows (the manual's rules, confirmed on a MariaDB server) and rows from the joins above. */
const JOIN_CASES: JoinCase[] = [
  {
    sql: 'SELECT * FROM j1 RIGHT JOIN j2 ON j1.a = j2.a',
    columns: ['a', 'b', 'b', 'c', 'a'],
    rows: leftJoin(T2, T1, (y, x) => eq(x.a, y.a), NULLS(['a', 'b'])).map(([y, x]) => [
      x.a,
      x.b,
      y.b,
      y.c,
      y.a,
    ]),
  },
  {
    sql: 'SELECT * FROM j1 RIGHT OUTER JOIN j2 ON j1.a = j2.a AND j1.b > 1 WHERE j2.c < 40',
    columns: ['a', 'b', 'b', 'c', 'a'],
    rows: leftJoin(T2, T1, (y, x) => eq(x.a, y.a) && x.b !== null && x.b > 1, NULLS(['a', 'b']))
      .filter(([y]) => y.c !== null && y.c < 40)
      .map(([y, x]) => [x.a, x.b, y.b, y.c, y.a]),
  },
  {
    sql: 'SELECT j2.c FROM j1 RIGHT JOIN j2 ON j1.a = j2.a WHERE j1.a IS NULL',
    columns: ['c'],
    rows: T2.filter((y) => !T1.some((x) => eq(x.a, y.a))).map((y) => [y.c]),
  },
  {
    sql: 'SELECT * FROM j1 JOIN j2 USING (b)',
    columns: ['b', 'a', 'c', 'a'],
    rows: innerJoin(T1, T2, (x, y) => eq(x.b, y.b)).map(([x, y]) => [x.b, x.a, y.c, y.a]),
  },
  {
    // The merged columns in the first table's order, not the USING list's.
    sql: 'SELECT * FROM j1 JOIN j2 USING (b, a)',
    columns: ['a', 'b', 'c'],
    rows: innerJoin(T1, T2, (x, y) => eq(x.a, y.a) && eq(x.b, y.b)).map(([x, y]) => [x.a, x.b, y.c]),
  },
  {
    sql: 'SELECT * FROM j1 LEFT JOIN j2 USING (a)',
    columns: ['a', 'b', 'b', 'c'],
    rows: leftJoin(T1, T2, (x, y) => eq(x.a, y.a), NULLS(['b', 'c', 'a'])).map(([x, y]) => [
      x.a,
      x.b,
      y.b,
      y.c,
    ]),
  },
  {
    // A RIGHT JOIN's merged columns come from its right table, which comes first.
    sql: 'SELECT * FROM j1 RIGHT JOIN j2 USING (a)',
    columns: ['a', 'b', 'c', 'b'],
    rows: leftJoin(T2, T1, (y, x) => eq(x.a, y.a), NULLS(['a', 'b'])).map(([y, x]) => [y.a, y.b, y.c, x.b]),
  },
  {
    sql: 'SELECT * FROM j1 NATURAL JOIN j2',
    columns: ['a', 'b', 'c'],
    rows: innerJoin(T1, T2, (x, y) => eq(x.a, y.a) && eq(x.b, y.b)).map(([x, y]) => [x.a, x.b, y.c]),
  },
  {
    sql: 'SELECT * FROM j1 NATURAL LEFT JOIN j2',
    columns: ['a', 'b', 'c'],
    rows: leftJoin(T1, T2, (x, y) => eq(x.a, y.a) && eq(x.b, y.b), NULLS(['b', 'c', 'a'])).map(([x, y]) => [
      x.a,
      x.b,
      y.c,
    ]),
  },
  {
    sql: 'SELECT * FROM j1 NATURAL RIGHT JOIN j2',
    columns: ['b', 'a', 'c'],
    rows: leftJoin(T2, T1, (y, x) => eq(x.a, y.a) && eq(x.b, y.b), NULLS(['a', 'b'])).map(([y]) => [
      y.b,
      y.a,
      y.c,
    ]),
  },
  {
    sql: 'SELECT * FROM j2 NATURAL JOIN j1',
    columns: ['b', 'a', 'c'],
    rows: innerJoin(T2, T1, (y, x) => eq(x.a, y.a) && eq(x.b, y.b)).map(([y]) => [y.b, y.a, y.c]),
  },
  {
    // Nested: the left operand's columns (a, b, c) are the first table's.
    sql: 'SELECT * FROM j1 NATURAL JOIN j2 NATURAL JOIN j3',
    columns: ['c', 'a', 'b', 'd'],
    rows: innerJoin(
      innerJoin(T1, T2, (x, y) => eq(x.a, y.a) && eq(x.b, y.b)),
      T3,
      ([, y], z) => eq(y.c, z.c),
    ).map(([[x, y], z]) => [y.c, x.a, x.b, z.d]),
  },
  {
    sql: 'SELECT * FROM j1 JOIN j2 USING (a) RIGHT JOIN j3 USING (c)',
    columns: ['c', 'd', 'a', 'b', 'b'],
    rows: leftJoin(
      T3,
      innerJoin(T1, T2, (x, y) => eq(x.a, y.a)),
      (z, [, y]) => eq(y.c, z.c),
      [NULLS(['a', 'b']), NULLS(['b', 'c', 'a'])] as [Rec, Rec],
    ).map(([z, [x, y]]) => [z.c, z.d, x.a, x.b, y.b]),
  },
  {
    // The same column merged twice: j4.a joins the merged a of j1 and j2.
    sql: 'SELECT * FROM j1 JOIN j2 USING (a) JOIN j4 USING (a)',
    columns: ['a', 'b', 'b', 'c', 'e'],
    rows: innerJoin(
      innerJoin(T1, T2, (x, y) => eq(x.a, y.a)),
      T4,
      ([x], w) => eq(x.a, w.a),
    ).map(([[x, y], w]) => [x.a, x.b, y.b, y.c, w.e]),
  },
  {
    sql: 'SELECT * FROM j1 NATURAL JOIN j4 NATURAL LEFT JOIN j2',
    columns: ['a', 'b', 'e', 'c'],
    rows: leftJoin(
      innerJoin(T1, T4, (x, w) => eq(x.a, w.a)),
      T2,
      ([x], y) => eq(x.a, y.a) && eq(x.b, y.b),
      NULLS(['b', 'c', 'a']),
    ).map(([[x, w], y]) => [x.a, x.b, w.e, y.c]),
  },
  {
    // t.* is the table's own columns in its order, a merged column's own copy among them.
    sql: 'SELECT j2.*, j1.* FROM j1 RIGHT JOIN j2 USING (a)',
    columns: ['b', 'c', 'a', 'a', 'b'],
    rows: leftJoin(T2, T1, (y, x) => eq(x.a, y.a), NULLS(['a', 'b'])).map(([y, x]) => [
      y.b,
      y.c,
      y.a,
      x.a,
      x.b,
    ]),
  },
  {
    // Unqualified, a merged column is the coalesced one (a RIGHT JOIN's: the right table's).
    sql: 'SELECT a, j1.a, j2.a FROM j1 RIGHT JOIN j2 USING (a) WHERE a > 1',
    columns: ['a', 'a', 'a'],
    rows: leftJoin(T2, T1, (y, x) => eq(x.a, y.a), NULLS(['a', 'b']))
      .filter(([y]) => y.a !== null && y.a > 1)
      .map(([y, x]) => [y.a, x.a, y.a]),
  },
];

describe('SQL grammar: RIGHT JOIN, NATURAL JOIN, JOIN ... USING (rows, and columns in MySQL order)', () => {
  it.each(JOIN_CASES.map((c) => [c.sql, c] as const))('%s', async (_, c) => {
    const r = await db.query(c.sql);
    expect(r.columns).toEqual(c.columns);
    expect(bag(r.rows)).toEqual(bag(c.rows));
    expect(c.rows.length).toBeGreaterThan(0);
  });

  it('a USING column must be on both sides, once', async () => {
    expect((await failure(db.query('SELECT * FROM j1 JOIN j3 USING (a)'))).code).toBe('SCHEMA');
    expect(
      (await failure(db.query('SELECT * FROM (j1 JOIN j2 ON 1) JOIN j4 USING (a)'))).details?.mysqlErrno,
    ).toBe(1052);
  });
});

// ---- REGEXP / RLIKE and bit operators ----

describe('SQL grammar: REGEXP / RLIKE / NOT REGEXP, and the bit operators', () => {
  const STRINGS: (string | null)[] = ['abc', 'aXc', '', null, 'a.c', 'banana', 'x1y22', 'a+b'];
  const PATTERNS: (string | null)[] = [
    '^a',
    'c$',
    'a.c',
    'a[.]c',
    'b+',
    '^$',
    '(an){2}',
    '[0-9]{2}',
    'x|b',
    'a\\+b',
    '',
    null,
  ];

  it('every string against every pattern, as JavaScript finds it (patterns both dialects read alike)', async () => {
    await db.query('CREATE TABLE rx (k INT PRIMARY KEY, s VARCHAR(20), p VARCHAR(20))');
    const pairs = STRINGS.flatMap((s) => PATTERNS.map((p) => [s, p] as const));
    for (let k = 0; k < pairs.length; k++)
      await db.query('INSERT INTO rx VALUES (?, ?, ?)', [k, pairs[k]![0], pairs[k]![1]]);
    const want = pairs.map(([s, p]) => {
      const m = s === null || p === null ? null : new RegExp(p, 'u').test(s) ? 1 : 0;
      return [m, m, not3(m), not3(m)];
    });
    expect(
      await rows('SELECT s REGEXP p, s RLIKE p, s NOT REGEXP p, NOT s RLIKE p FROM rx ORDER BY k'),
    ).toEqual(want);
    // WHERE, and a constant pattern (compiled once).
    expect(await rows("SELECT k FROM rx WHERE s REGEXP '^a.c$' AND p = '^a' ORDER BY k")).toEqual(
      pairs.flatMap(([s, p], k) => (s !== null && /^a.c$/u.test(s) && p === '^a' ? [[k]] : [])),
    );
    // REGEXP binds as a comparison: 'abc' REGEXP 'b' = 1 is ('abc' REGEXP 'b') = 1.
    expect(await rows("SELECT 'abc' REGEXP 'b' = 1, 'abc' REGEXP 'x' = 0, NOT 'abc' REGEXP 'x'")).toEqual([
      [1, 1, 1],
    ]);
    expect((await failure(db.query("SELECT 'a' REGEXP '('"))).details?.mysqlErrno).toBe(3685);
  });

  it('| & ^ << >> ~ on non-negative values, against BigInt', async () => {
    const VALUES = [0, 1, 5, 6, 255, 256, 2 ** 31, 2 ** 32 + 3, 2 ** 52 + 1, Number.MAX_SAFE_INTEGER];
    const SHIFTS = [0, 1, 3, 31, 32, 52, 63, 64, 65];
    await db.query('CREATE TABLE bits_ (k INT PRIMARY KEY, x BIGINT, y BIGINT)');
    const pairs = VALUES.flatMap((x) => [...VALUES, ...SHIFTS].map((y) => [x, y] as const));
    for (let k = 0; k < pairs.length; k++)
      await db.query('INSERT INTO bits_ VALUES (?, ?, ?)', [k, ...pairs[k]!]);
    // Results past 2^53 come back exact, as bigints.
    const u64 = (v: bigint): number | bigint => {
      const x = BigInt.asUintN(64, v);
      return x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
    };
    const want = pairs.map(([x, y]) => {
      const a = BigInt(x);
      const b = BigInt(y);
      return [
        u64(a | b),
        u64(a & b),
        u64(a ^ b),
        b >= 64n ? 0 : u64(a << b),
        b >= 64n ? 0 : u64(a >> b),
        u64(~a),
        u64((a | b) & 0xffffn),
        // ^ binds tighter than >>, which binds tighter than &.
        u64(((a ^ b) >> 2n) & 255n),
      ];
    });
    const got = await rows(
      'SELECT x | y, x & y, x ^ y, x << y, x >> y, ~x, (x | y) & 65535, x ^ y >> 2 & 255 FROM bits_ ORDER BY k',
    );
    const wrong: string[] = [];
    got.forEach((g, k) => {
      if (show(g) !== show(want[k])) wrong.push(`${show(pairs[k])}: ${show(g)} want ${show(want[k])}`);
    });
    expect(wrong).toEqual([]);
    // Precedence among them (the manual's table): ~ first, then ^, then << >>, then &, then |.
    expect(
      await rows('SELECT 1 | 2 & 3, 1 << 2 & 4, 6 & 3 ^ 1, 2 << 1 + 1, ~1 & 3, 5 | ~0 >> 62, 4 >> 1 ^ 1'),
    ).toEqual([[3, 4, 2, 8, 2, 7, 4]]);
    // Steps past 2^53 keep their low bits for the next bit operator (a double would not).
    expect(
      await rows(
        'SELECT 7 & ~4, ~~a, ~a >> 11 & 1023, (1 << 63 | 1) & 3, ~(~a | 5), k & ~1 FROM u WHERE k = 4',
      ),
    ).toEqual([[3, 21, 1023, 1, 21 & ~5, 4]]);
  });
});

// ---- versioned comments and syntax errors ----

describe('SQL grammar: /*!NNNNN ... */ versioned comments', () => {
  it('their text is SQL when NNNNN is at most the server version (8.0.36), a comment otherwise', async () => {
    const r = await db.query(
      'SELECT /*!40101 1 + */ 2, 1 /*!80036 + 1 */, 1 /*!80037 + 1 */, /*! 5 + */ 1, 1 /*!99999 + 1 */',
    );
    expect(r.rows).toEqual([[3, 2, 1, 6, 1]]);
    // MySQL names a column by its text without the comment's markers.
    expect(r.columns).toEqual(['1 +  2', '1  + 1', '1', '5 +  1', '1']);
    // MariaDB's /*M!...*/ is a plain comment to MySQL; so are ordinary comments in every form.
    expect(await rows('SELECT 1 /*M!100100 + 1 */ /* + 1 */ # + 1\n + 2 -- + 1\n')).toEqual([[3]]);
  });

  it('whole statements and clauses as dump tools write them', async () => {
    await db.query('/*!40101 SET NAMES utf8mb4 */');
    expect(await rows('/*!40000 SELECT COUNT(*) FROM j1 */')).toEqual([[J1.length]]);
    expect(await rows('SELECT /*!40001 SQL_NO_CACHE */ a FROM j1 /*!50000 WHERE a = 2 */')).toEqual([[2]]);
    expect(await rows('SELECT a FROM j1 /*!90000 WHERE a = 2 */ ORDER BY a LIMIT 1')).toEqual([[null]]);
  });
});

/** `sql` with ‸ where the error must point: the text without it, and the line and column of ‸. */
function marked(sql: string): { text: string; line: number; column: number } {
  const at = sql.indexOf('‸');
  const before = sql.slice(0, at);
  const lines = before.split('\n');
  return { text: sql.replace('‸', ''), line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}

describe('SQL grammar: syntax errors are SYNTAX, with the line and column of the token at fault', () => {
  const CASES = [
    'SELECT a\nFROM j1\nWHERE a = ‸= 1',
    'SELECT 1\nUNION\n‸SELEC 2',
    'SELECT (1‸',
    "SELECT a FROM j1 WHERE b = ‸'abc",
    'SELECT - ‸NOT a FROM j1',
    'VALUES ‸(1, 2)',
    'SELECT 1 UNION SELECT 2 ORDER BY 1 ‸UNION SELECT 3',
    'SELECT 1 INTERSECT ALL ‸ALL SELECT 1',
    'WITH c AS ‸SELECT 1 SELECT * FROM c',
    'SELECT * FROM j1 NATURAL JOIN j2 ‸ON 1',
    'SELECT * FROM j1 LEFT JOIN j2 ‸WHERE 1',
    'SELECT * FROM j1 JOIN j2 USING ‸a',
    'SELECT (a, b) IN ((1, 2), ‸) FROM j1',
    'SELECT a > ALL ‸1 FROM j1',
    'SELECT COUNT(DISTINCT ‸) FROM j1',
    "SELECT 'a' REGEXP ‸",
    'SELECT 1 /*!40101 + */ +‸',
    'SELECT /*!40101 1 +\n  ‸FROM */ 2',
    'SELECT 1 /* a\n b */ +\n\t‸)',
    'SELECT a FROM j1 WHERE a IN (SELECT ‸) ',
    'SELECT 1 ‸~ 2',
    'TABLE ‸(j1)',
  ];

  it.each(CASES)('%j', async (sql) => {
    const m = marked(sql);
    const e = await failure(db.query(m.text));
    expect(e.code).toBe('SYNTAX');
    expect({ line: e.details?.line, column: e.details?.column }).toEqual({ line: m.line, column: m.column });
    expect(e.message).toContain(`line ${m.line}, column ${m.column}`);
  });
});
