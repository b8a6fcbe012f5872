// The secondary-index benchmark's table (issue "Secondary indexes and UNIQUE constraints"):
// g_t (id INT PRIMARY KEY, email VARCHAR(64) UNIQUE, city VARCHAR(20), n INT) with an index on city
// and one on n, the same for every engine. Row id (1..rows): email `u<id>@x.io` (unique), city one
// of rows/10 values (`city-<id mod rows/10>`: every city names exactly 10 rows at every size), n =
// id * 7919 mod rows (a permutation of 0..rows-1: every range of 100 values holds exactly 100 rows).
import { now } from './data.mjs';

export const CREATE_TABLE =
  'CREATE TABLE g_t (id INT PRIMARY KEY, email VARCHAR(64), city VARCHAR(20), n INT)';
/** SQLite: an INTEGER PRIMARY KEY is the rowid (the table is its B-tree), as InnoDB's clustered key. */
export const CREATE_TABLE_SQLITE =
  'CREATE TABLE g_t (id INTEGER PRIMARY KEY, email VARCHAR(64), city VARCHAR(20), n INT)';
/** Made after the load, as a bulk load would; the UNIQUE index is the issue's `email ... UNIQUE`. */
export const CREATE_INDEXES = [
  'CREATE UNIQUE INDEX g_email ON g_t (email)',
  'CREATE INDEX g_city ON g_t (city)',
  'CREATE INDEX g_n ON g_t (n)',
];

export const Q = {
  city: 'SELECT id FROM g_t WHERE city = ?',
  email: 'SELECT id FROM g_t WHERE email = ?',
  range: 'SELECT id, n FROM g_t WHERE n BETWEEN ? AND ? ORDER BY n',
  insert: 'INSERT INTO g_t (id, email, city, n) VALUES (?, ?, ?, ?)',
  /** After each insert run, not measured: the table is back to `rows` rows for the next one. */
  cleanup: 'DELETE FROM g_t WHERE id > ?',
};

/** The operations, in the order run, with what each row of the results calls them. */
export const OPS = [
  ['city', 'SELECT id FROM g_t WHERE city = ? (10 rows)'],
  ['email', 'SELECT id FROM g_t WHERE email = ? (the UNIQUE column, 1 row)'],
  ['range', 'SELECT id, n FROM g_t WHERE n BETWEEN ? AND ?+99 ORDER BY n (100 rows)'],
  ['insert1', 'INSERT of one row, autocommit'],
  ['insert64', 'INSERT of one row, autocommit'],
];

export const cities = (rows) => rows / 10;
export const email = (id) => `u${id}@x.io`;
export const city = (rows, id) => `city-${id % cities(rows)}`;
export const nOf = (rows, id) => (id * 7919) % rows;

/** Row `id` of a table of `rows` rows (ids past `rows` are the benchmark's inserts). */
export function gRow(rows, id) {
  return { id, email: email(id), city: city(rows, id), n: nOf(rows, id) };
}

/** The rows 1..rows in chunks of `chunk`. */
export function* gRows(rows, chunk = 10_000) {
  for (let b = 1; b <= rows; b += chunk) {
    const out = [];
    for (let id = b; id < b + chunk && id <= rows; id++) out.push(gRow(rows, id));
    yield out;
  }
}

/** The parameters of each lookup, drawn from `r` (a uniform PRNG), and the rows it must return. */
export const lookups = {
  city: (rows, r) => [[`city-${Math.floor(r() * cities(rows))}`], 10],
  email: (rows, r) => [[email(1 + Math.floor(r() * rows))], 1],
  range: (rows, r) => {
    const lo = Math.floor(r() * (rows - 99));
    return [[lo, lo + 99], 100];
  },
};

/**
 * Load a tidemark database of `rows` rows into `dir` in-process: the table through SQL, the rows
 * through db.insert in 10,000-row transactions, then the indexes through SQL, then db.flush() and
 * db.compact() (the data lives in objects). Resolves with the open database and the timings.
 */
export async function loadTidemark(dir, rows, options = {}) {
  const { open } = await import('../../dist/index.js');
  const db = await open(dir, { memory: { limitBytes: 2 * 1024 ** 3 }, ...options });
  const t0 = now();
  await db.query(CREATE_TABLE);
  for (const chunk of gRows(rows)) await db.insert('g_t', chunk);
  const t1 = now();
  for (const s of CREATE_INDEXES) await db.query(s);
  const t2 = now();
  await db.flush();
  await db.compact();
  return { db, loadMs: t1 - t0, indexMs: t2 - t1, settleMs: now() - t2 };
}
