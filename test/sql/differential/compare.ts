import { Decimal } from '../../../src/util/decimal.js';
import type { ColumnInfo } from './engines.js';

/**
 * Result comparison. Values are normalized first (Cell); rows compare as multisets, or in order when
 * the query's ORDER BY covers every output column (then the order is the query's answer).
 *
 * - integers exactly (MariaDB's BIGINT arrives as text: no rounding on the way). Past 2^53, where
 *   tidemark's numbers are doubles by design (docs/sql.md), to a double's precision;
 * - doubles to a relative tolerance: the two engines add in different orders;
 * - DECIMAL (MariaDB's type of AVG and of SUM of integers): tidemark's double within one unit of
 *   the column's last decimal (MariaDB rounds the exact value to `decimals` places);
 * - strings exactly (utf8mb4_bin);
 * - NULL as NULL.
 * A number on one side and a string that reads as the same number on the other (MySQL's CASE, IF,
 * COALESCE or UNION of mixed types is a string; tidemark keeps the number) counts as equal but is
 * counted as a type-only difference, so it stays visible without drowning real wrong answers.
 */

export type Cell =
  | null
  | { n: number; exact: bigint | undefined; decimals: number | undefined; kind: 'int' | 'double' | 'decimal' }
  | { s: string };

const SAFE = 2n ** 53n;

/** A value as MariaDB returned it, given its column's type. */
export function mariaCell(v: unknown, col: ColumnInfo | undefined): Cell {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) v = v.toString('utf8');
  const kind = col?.kind ?? 'other';
  if (kind === 'int') {
    const text = String(v);
    if (/^-?\d+$/.test(text)) return { n: Number(text), exact: BigInt(text), decimals: 0, kind: 'int' };
  }
  if (kind === 'decimal')
    return { n: Number(v), exact: undefined, decimals: col?.decimals ?? 0, kind: 'decimal' };
  if (kind === 'double' || typeof v === 'number')
    return { n: Number(v), exact: undefined, decimals: undefined, kind: 'double' };
  return { s: String(v) };
}

/** A value as tidemark returned it. */
export function tidemarkCell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number')
    return { n: v, exact: undefined, decimals: undefined, kind: Number.isInteger(v) ? 'int' : 'double' };
  if (typeof v === 'bigint') return { n: Number(v), exact: v, decimals: 0, kind: 'int' };
  if (v instanceof Decimal) {
    // Exact: an integral DECIMAL compares with an integer exactly (SUM of BIGINTs past 2^53).
    const exact = v.isInteger() ? v.u / 10n ** BigInt(v.s) : undefined;
    return { n: v.toNumber(), exact, decimals: v.s, kind: 'decimal' };
  }
  if (typeof v === 'boolean') return { n: v ? 1 : 0, exact: undefined, decimals: undefined, kind: 'int' };
  if (v instanceof Uint8Array) return { s: Buffer.from(v).toString('utf8') };
  if (v instanceof Date) return { s: v.toISOString() };
  if (typeof v === 'string') return { s: v };
  return { s: JSON.stringify(v) };
}

export type CellVerdict = 'eq' | 'typeOnly' | 'ne';

/** How MySQL writes a number as text: no spaces, no plus sign (' 3' is a string, not 3). */
const NUMERIC_TEXT = /^-?\d+(\.\d+)?(e[-+]?\d+)?$/i;

function closeDoubles(a: number, b: number): boolean {
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  // Relative, plus an absolute margin for sums whose terms cancel: SUM over 2^31 - 0.3 and
  // -2^31 - 0.3 added in another order (another engine's, or a TLP partition's) differs by 1e-7.
  return Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b)) + 1e-6;
}

function numbersEqual(
  ref: Exclude<Cell, null | { s: string }>,
  cell: Exclude<Cell, null | { s: string }>,
): boolean {
  const got = cell.n;
  if (ref.kind === 'int' && ref.exact !== undefined) {
    // Integers exactly, past 2^53 too (tidemark's are bigints there).
    if (cell.exact !== undefined) return cell.exact === ref.exact;
    const big = ref.exact > SAFE || ref.exact < -SAFE;
    if (!big) return Number.isInteger(got) && BigInt(got) === ref.exact;
    return Math.abs(got - ref.n) <= Math.abs(ref.n) * 2 ** -52;
  }
  if (ref.kind === 'decimal') {
    const unit = 10 ** -(ref.decimals ?? 0);
    return Math.abs(got - ref.n) <= unit * 1.0001 + Math.abs(ref.n) * 1e-12;
  }
  return closeDoubles(ref.n, got);
}

/**
 * Compare a reference cell (MariaDB's, or the first tidemark result for the single-engine oracles)
 * with a tidemark cell.
 */
export function compareCells(ref: Cell, got: Cell): CellVerdict {
  if (ref === null || got === null) return ref === got ? 'eq' : 'ne';
  if ('s' in ref && 's' in got) {
    if (ref.s === got.s) return 'eq';
    // A number made text by a string-typed column (AVG or SUM in a UNION with strings): MySQL
    // writes a DECIMAL with its scale ('10.000000000') and a DOUBLE past 1e15 with an exponent
    // ('-9.007199254740991e15'); tidemark, whose numbers carry no DECIMAL/DOUBLE type yet (issue
    // 23), writes the plain number. The same number in both texts is a type-only difference.
    if (NUMERIC_TEXT.test(ref.s) && NUMERIC_TEXT.test(got.s) && closeDoubles(Number(ref.s), Number(got.s)))
      return 'typeOnly';
    // Two DECIMAL texts of one value at different scales (MariaDB gives AVG in a set operation 9
    // digits, MySQL 4): equal rounded to the coarser scale.
    const a = /^-?\d+\.\d+$/.test(ref.s) ? Decimal.parse(ref.s) : undefined;
    const b = /^-?\d+\.\d+$/.test(got.s) ? Decimal.parse(got.s) : undefined;
    if (a !== undefined && b !== undefined) {
      const s = Math.min(a.s, b.s);
      if (a.rescale(s).u === b.rescale(s).u) return 'typeOnly';
    }
    return 'ne';
  }
  if ('n' in ref && 'n' in got) return numbersEqual(ref, got) ? 'eq' : 'ne';
  // One number, one string: equal in value only if the string reads as that number.
  const text = 's' in ref ? ref.s : (got as { s: string }).s;
  const num = 'n' in ref ? ref : (got as Exclude<Cell, null | { s: string }>);
  if (!NUMERIC_TEXT.test(text)) return 'ne';
  if (closeDoubles(Number(text), num.n)) return 'typeOnly';
  // A DECIMAL made text with another scale (MariaDB writes AVG in a set operation with 9 digits,
  // MySQL with 4): the same value to the coarser scale's rounding.
  if (num.kind === 'decimal' && num.decimals !== undefined) {
    const half = 10 ** -num.decimals / 2;
    if (Math.abs(Number(text) - num.n) <= half * 1.0001) return 'typeOnly';
  }
  return 'ne';
}

export interface RowsVerdict {
  equal: boolean;
  typeOnly: number;
  /** Why not equal, for the report. */
  detail: string | undefined;
}

/** A sort key such that equal cells (up to the tolerances) almost always get equal keys. */
function cellKey(c: Cell): string {
  if (c === null) return '0';
  if ('s' in c) return `2${c.s}`;
  if (c.exact !== undefined && (c.exact > SAFE || c.exact < -SAFE)) return `1${c.n.toPrecision(15)}`;
  return `1${Number(c.n.toPrecision(10))}`;
}

const rowKey = (r: readonly Cell[]): string => r.map(cellKey).join('\u0001');

function compareRow(ref: readonly Cell[], got: readonly Cell[]): CellVerdict {
  let out: CellVerdict = 'eq';
  for (let i = 0; i < ref.length; i++) {
    const v = compareCells(ref[i]!, got[i]!);
    if (v === 'ne') return 'ne';
    if (v === 'typeOnly') out = 'typeOnly';
  }
  return out;
}

export function showCell(c: Cell): string {
  if (c === null) return 'NULL';
  if ('s' in c) return JSON.stringify(c.s);
  return c.exact !== undefined ? String(c.exact) : String(c.n);
}

export const showRow = (r: readonly Cell[]): string => `(${r.map(showCell).join(', ')})`;

/** Multiset (or, with `ordered`, sequence) equality of two results. */
export function compareRows(ref: readonly Cell[][], got: readonly Cell[][], ordered: boolean): RowsVerdict {
  const w = (rows: readonly Cell[][]): number => rows[0]?.length ?? -1;
  if (ref.length > 0 && got.length > 0 && w(ref) !== w(got))
    return { equal: false, typeOnly: 0, detail: `${w(ref)} columns vs ${w(got)}` };
  if (ref.length !== got.length)
    return { equal: false, typeOnly: 0, detail: `${ref.length} rows vs ${got.length}` };
  let typeOnly = 0;
  if (ordered) {
    for (let i = 0; i < ref.length; i++) {
      const v = compareRow(ref[i]!, got[i]!);
      if (v === 'ne')
        return { equal: false, typeOnly, detail: `row ${i + 1}: ${showRow(ref[i]!)} vs ${showRow(got[i]!)}` };
      if (v === 'typeOnly') typeOnly++;
    }
    return { equal: true, typeOnly, detail: undefined };
  }
  // Sorted by a tolerant key, then row by row; where that fails (values straddling a rounding
  // boundary of the key, or a number against its text), a matching of the leftovers decides.
  const a = [...ref].sort((x, y) => (rowKey(x) < rowKey(y) ? -1 : rowKey(x) > rowKey(y) ? 1 : 0));
  const b = [...got].sort((x, y) => (rowKey(x) < rowKey(y) ? -1 : rowKey(x) > rowKey(y) ? 1 : 0));
  const leftA: Cell[][] = [];
  const leftB: Cell[][] = [];
  for (let i = 0; i < a.length; i++) {
    if (compareRow(a[i]!, b[i]!) === 'eq') continue;
    leftA.push(a[i]!);
    leftB.push(b[i]!);
  }
  if (leftA.length === 0) return { equal: true, typeOnly, detail: undefined };
  if (leftA.length > 3000) return { equal: false, typeOnly, detail: `${leftA.length} rows differ` };
  // Exact partners first, then partners equal in value only: a greedy matching that took a
  // type-only partner first could leave an exact pair unmatched.
  const used = new Uint8Array(leftB.length);
  const matched = new Uint8Array(leftA.length);
  for (let i = 0; i < leftA.length; i++) {
    for (let j = 0; j < leftB.length; j++) {
      if (used[j] === 0 && compareRow(leftA[i]!, leftB[j]!) === 'eq') {
        used[j] = 1;
        matched[i] = 1;
        break;
      }
    }
  }
  for (let i = 0; i < leftA.length; i++) {
    if (matched[i] === 1) continue;
    const r = leftA[i]!;
    let found = -1;
    for (let j = 0; j < leftB.length && found < 0; j++) {
      if (used[j] === 0 && compareRow(r, leftB[j]!) !== 'ne') found = j;
    }
    if (found < 0) {
      const extra = leftB.filter(
        (_, j) => used[j] === 0 && !leftA.some((x) => compareRow(x, leftB[j]!) !== 'ne'),
      );
      return {
        equal: false,
        typeOnly,
        detail: `missing ${showRow(r)}${extra.length > 0 ? `, unexpected ${showRow(extra[0]!)}` : ''}`,
      };
    }
    used[found] = 1;
    if (compareRow(r, leftB[found]!) === 'typeOnly') typeOnly++;
  }
  return { equal: true, typeOnly, detail: undefined };
}
