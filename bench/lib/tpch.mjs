// TPC-H's lineitem for Q1 and Q6, generated deterministically with dbgen's distributions for the
// columns those queries read: orders with 1-7 lines, order dates uniform over 1992-01-01 to
// 1998-08-02, ship dates 1-121 days later, receipt dates 1-30 days after shipping, quantities
// 1-50, prices from a part's retail price, discounts 0-0.10, taxes 0-0.08, return flag R/A for
// lines received by 1995-06-17 (else N), line status F for lines shipped by then (else O).
// One surrogate key per line (orderkey * 8 + linenumber): Q1 and Q6 read no key.
import { rng } from './data.mjs';

const DAY = 86_400_000;
const START = Date.UTC(1992, 0, 1);
const END = Date.UTC(1998, 7, 2);
const CURRENT = Date.UTC(1995, 5, 17);

export const Q1 = `SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price,
  sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
  avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc, count(*) AS count_order
FROM lineitem WHERE l_shipdate <= DATE '1998-09-02'
GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus`;

export const Q6 = `SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24`;

/** SQLite has no dates: they are 'YYYY-MM-DD' text there, which compares the same way. */
export const Q1_SQLITE = Q1.replace("DATE '1998-09-02'", "'1998-09-02'");
export const Q6_SQLITE = Q6.replace("DATE '1994-01-01'", "'1994-01-01'").replace(
  "DATE '1995-01-01'",
  "'1995-01-01'",
);

export const CREATE = `CREATE TABLE lineitem (l_id BIGINT PRIMARY KEY, l_quantity DECIMAL(15,2) NOT NULL, l_extendedprice DECIMAL(15,2) NOT NULL,
  l_discount DECIMAL(15,2) NOT NULL, l_tax DECIMAL(15,2) NOT NULL, l_returnflag VARCHAR(1) NOT NULL, l_linestatus VARCHAR(1) NOT NULL,
  l_shipdate DATE NOT NULL)`;

/** Lines in chunks of about `chunk`: { id, quantity, price, discount, tax, returnflag, linestatus, shipdate (ms) }. */
export function* lineitems(lines, chunk = 10_000) {
  const r = rng(7);
  let out = [];
  let made = 0;
  for (let order = 1; made < lines; order++) {
    const orderdate = START + Math.floor(r() * ((END - START) / DAY)) * DAY;
    const n = 1 + Math.floor(r() * 7);
    for (let line = 1; line <= n && made < lines; line++, made++) {
      const quantity = 1 + Math.floor(r() * 50);
      const retail = 900 + Math.floor(r() * 1100) + Math.floor(r() * 100) / 100;
      const shipdate = orderdate + (1 + Math.floor(r() * 121)) * DAY;
      const receipt = shipdate + (1 + Math.floor(r() * 30)) * DAY;
      out.push({
        id: order * 8 + line,
        quantity,
        price: Math.round(quantity * retail * 100) / 100,
        discount: Math.floor(r() * 11) / 100,
        tax: Math.floor(r() * 9) / 100,
        returnflag: receipt <= CURRENT ? (r() < 0.5 ? 'R' : 'A') : 'N',
        linestatus: shipdate > CURRENT ? 'O' : 'F',
        shipdate,
      });
      if (out.length >= chunk) {
        yield out;
        out = [];
      }
    }
  }
  if (out.length > 0) yield out;
}

export const dateText = (ms) => new Date(ms).toISOString().slice(0, 10);
