import { createHash } from 'node:crypto';
import { invalidArgument, TidemarkError } from '../../src/errors.js';

/**
 * The sqllogictest file format (SQLite's conformance corpus, sqlite.org/sqllogictest): the records
 * of a test file, and how a query's result is turned into the lines it is compared with. The
 * runner that executes records against tidemark's SQL builds on this.
 *
 * A record is a `statement ok|error` with one SQL statement, or a `query <types> <sort> [label]`
 * with its SQL, a `----` line and the expected values, one per line, or `N values hashing to
 * <md5>`. Records are separated by blank lines. `skipif <engine>` and `onlyif <engine>` lines guard
 * the record after them; `hash-threshold N` makes results of more than N values compare by hash;
 * `halt` ends the file (usually guarded).
 */

export type SortMode = 'nosort' | 'rowsort' | 'valuesort';
export type ColumnKind = 'I' | 'R' | 'T';

export interface StatementRecord {
  kind: 'statement';
  /** The 1-based line of the record's first line. */
  line: number;
  expect: 'ok' | 'error';
  sql: string;
}

export interface QueryRecord {
  kind: 'query';
  line: number;
  types: ColumnKind[];
  sort: SortMode;
  /** Queries with the same label must give the same result. */
  label: string | undefined;
  sql: string;
  /** The expected values, or their count and hash; undefined: the query must only run. */
  expected: { values: string[] } | { count: number; hash: string } | undefined;
}

export interface HashThresholdRecord {
  kind: 'hash-threshold';
  line: number;
  threshold: number;
}

export interface HaltRecord {
  kind: 'halt';
  line: number;
}

export type SltRecord = StatementRecord | QueryRecord | HashThresholdRecord | HaltRecord;

export interface ParsedFile {
  /** The records this engine runs, in order (a `halt` it honours ends the list). */
  records: SltRecord[];
  /** Records left out by skipif/onlyif. */
  skipped: number;
}

const HASH_LINE = /^(\d+) values hashing to ([0-9a-f]{32})$/;

/**
 * Parse a test file for the engine named `engine` (records guarded by `skipif engine`, or by
 * `onlyif` another engine, are left out). Lines may end in CRLF. INVALID_ARGUMENT, with the line,
 * on a record it cannot read.
 */
export function parseSlt(text: string, engine = 'mysql', file = 'test'): ParsedFile {
  const lines = text.split(/\r?\n/);
  const records: SltRecord[] = [];
  let skipped = 0;
  let i = 0;
  const bad = (msg: string, at: number) => invalidArgument(`${file}:${at + 1}: ${msg}`);
  while (i < lines.length) {
    let skip = false;
    // Conditions first, any number of them.
    for (;;) {
      const l = lines[i];
      if (l === undefined) break;
      const m = /^(skipif|onlyif)\s+(\S+)/.exec(l);
      if (m === null) break;
      if (m[1] === 'skipif' ? m[2] === engine : m[2] !== engine) skip = true;
      i++;
    }
    const head = lines[i];
    if (head === undefined) break;
    if (head.trim() === '' || head.startsWith('#')) {
      // A blank line or a comment (conditions before one guard nothing).
      i++;
      continue;
    }
    const words = head.trim().split(/\s+/);
    const line = i;
    i++;
    const body = (): string[] => {
      const out: string[] = [];
      while (i < lines.length && lines[i]!.trim() !== '' && lines[i] !== '----') out.push(lines[i++]!);
      return out;
    };
    let record: SltRecord;
    switch (words[0]) {
      case 'statement': {
        if (words[1] !== 'ok' && words[1] !== 'error')
          throw bad(`statement must be 'ok' or 'error': ${head}`, line);
        const sql = body();
        if (sql.length === 0) throw bad('statement without SQL', line);
        record = { kind: 'statement', line: line + 1, expect: words[1], sql: sql.join('\n') };
        break;
      }
      case 'query': {
        const types = words[1] ?? '';
        if (!/^[IRT]+$/.test(types)) throw bad(`query types must be I, R or T letters: ${head}`, line);
        const sortWord = words[2] ?? 'nosort';
        if (sortWord !== 'nosort' && sortWord !== 'rowsort' && sortWord !== 'valuesort')
          throw bad(`unknown sort mode ${sortWord}`, line);
        const sort: SortMode = sortWord;
        const sql = body();
        if (sql.length === 0) throw bad('query without SQL', line);
        let expected: QueryRecord['expected'];
        if (lines[i] === '----') {
          i++;
          const values: string[] = [];
          while (i < lines.length && lines[i]!.trim() !== '') values.push(lines[i++]!.trimEnd());
          const h = values.length === 1 ? HASH_LINE.exec(values[0]!) : null;
          expected = h !== null ? { count: Number(h[1]), hash: h[2]! } : { values };
        }
        record = {
          kind: 'query',
          line: line + 1,
          types: [...types] as ColumnKind[],
          sort,
          label: words[3],
          sql: sql.join('\n'),
          expected,
        };
        break;
      }
      case 'hash-threshold': {
        const n = Number(words[1]);
        if (!Number.isInteger(n) || n < 0) throw bad(`hash-threshold needs a count: ${head}`, line);
        record = { kind: 'hash-threshold', line: line + 1, threshold: n };
        break;
      }
      case 'halt':
        record = { kind: 'halt', line: line + 1 };
        break;
      default:
        throw bad(`unknown record: ${head}`, line);
    }
    if (skip) {
      skipped++;
      continue;
    }
    if (record.kind === 'halt') break;
    records.push(record);
  }
  return { records, skipped };
}

/**
 * One value as the corpus prints it: NULL as `NULL`; `I` as an integer (a number truncated toward
 * zero, as MySQL's ODBC driver converts); `R` with three decimals; `T` as text, the empty string as
 * `(empty)`, and characters outside printable ASCII as `@`. A value of the wrong kind is converted
 * the way a client asking for that kind would get it (text to a number as MySQL parses a leading
 * number; a number to text in its shortest form).
 */
export function formatValue(v: unknown, kind: ColumnKind): string {
  if (v === null || v === undefined) return 'NULL';
  switch (kind) {
    case 'I': {
      const n = toNumber(v);
      return Number.isFinite(n) ? (Math.trunc(n) === 0 ? '0' : String(Math.trunc(n))) : '0';
    }
    case 'R': {
      const n = toNumber(v);
      return Number.isFinite(n)
        ? (Object.is(n, -0) ? 0 : n).toFixed(3).replace(/^-(0\.000)$/, '$1')
        : '0.000';
    }
    case 'T': {
      const s =
        typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : textOf(v);
      if (s === '') return '(empty)';
      return s.replace(/[^\x20-\x7e]/g, '@');
    }
  }
}

function textOf(v: unknown): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

/** A value as a number: booleans as 1/0, text by its leading number (0 if none), as MySQL does. */
function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) return v.getTime();
  const s = typeof v === 'string' ? v : String(v);
  const m = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(s);
  return m === null ? 0 : Number(m[0]);
}

/**
 * The result of a query as the lines compared with the expected ones: every value formatted by
 * its column's kind, rows in order (`nosort`), rows sorted (`rowsort`: by their values as text,
 * column by column), or all values sorted (`valuesort`).
 */
export function resultLines(
  rows: readonly (readonly unknown[])[],
  types: readonly ColumnKind[],
  sort: SortMode,
): string[] {
  const formatted = rows.map((r) => {
    if (r.length !== types.length)
      throw invalidArgument(`the query gave ${r.length} columns, the test expects ${types.length}`);
    return r.map((v, j) => formatValue(v, types[j]!));
  });
  if (sort === 'rowsort')
    formatted.sort((a, b) => {
      for (let j = 0; j < a.length; j++) {
        const c = compareText(a[j]!, b[j]!);
        if (c !== 0) return c;
      }
      return 0;
    });
  const values = formatted.flat();
  if (sort === 'valuesort') values.sort(compareText);
  return values;
}

/** Byte order, as the reference runner's strcmp. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The md5 the corpus gives for a result: of every value followed by a newline. */
export function hashValues(values: readonly string[]): string {
  const h = createHash('md5');
  for (const v of values) h.update(`${v}\n`);
  return h.digest('hex');
}

/**
 * Whether a query's result lines match the record's expectation: the values as listed, or their
 * count and md5 (the corpus already wrote results past its hash threshold as hashes). Undefined if
 * they match; otherwise what differs.
 */
export function checkResult(record: QueryRecord, values: readonly string[]): string | undefined {
  const e = record.expected;
  if (e === undefined) return undefined;
  if ('hash' in e) {
    const got = hashValues(values);
    if (values.length === e.count && got === e.hash) return undefined;
    return `expected ${e.count} values hashing to ${e.hash}, got ${values.length} values hashing to ${got}`;
  }
  if (values.length === e.values.length && values.every((v, k) => v === e.values[k])) return undefined;
  const k = values.findIndex((v, j) => v !== e.values[j]);
  return `expected ${e.values.length} values, got ${values.length}${k >= 0 ? `; value ${k + 1}: expected ${JSON.stringify(e.values[k])}, got ${JSON.stringify(values[k])}` : ''}`;
}

/** What the runner needs: something that runs SQL. */
export interface SltTarget {
  query(sql: string): Promise<{ rows: unknown[][] }>;
}

export interface SltFailure {
  line: number;
  sql: string;
  message: string;
  /**
   * The record threw something that is not an engine error: not a TidemarkError (a TypeError, a
   * RangeError...), or a REFCOUNT or LEAK error, which the engine raises only on its own bugs. Such
   * a failure is a bug whatever the record expected, so no out-of-scope allowance may excuse it.
   */
  internal: boolean;
}

export interface SltOutcome {
  /** Records run (statements and queries). */
  run: number;
  passed: number;
  /** Records left out by skipif/onlyif. */
  skipped: number;
  failures: SltFailure[];
  /** Failures marked `internal`: a correct engine and runner have none. */
  internal: number;
}

/** Codes the engine raises only on a bug of its own (errors.ts): never an expected error. */
const BUG_CODES: ReadonlySet<string> = new Set(['REFCOUNT', 'LEAK']);

/** Whether a thrown value is an engine error a statement may be expected to raise. */
function isEngineError(e: unknown): e is TidemarkError {
  return e instanceof TidemarkError && !BUG_CODES.has(e.code);
}

function describeThrown(e: unknown): string {
  if (e instanceof TidemarkError) return `${e.code}: ${e.message}`;
  return `not a TidemarkError: ${String((e as Error | undefined)?.stack ?? e)}`;
}

/**
 * Run a sqllogictest file's records in order against `target`. A `statement error` passes only on a
 * TidemarkError (anything else thrown is a bug in the engine, not an expected error); a query passes
 * when its formatted, sorted values match, and when it gives the same values as every earlier query
 * of the same label. Whatever a record expected, a failure whose cause is not an engine error (see
 * isEngineError) is marked `internal`, and counted in `outcome.internal`.
 */
export async function runSlt(
  target: SltTarget,
  text: string,
  file = 'test',
  onProgress?: (done: number, total: number) => void,
): Promise<SltOutcome> {
  const parsed = parseSlt(text, 'mysql', file);
  const outcome: SltOutcome = { run: 0, passed: 0, skipped: parsed.skipped, failures: [], internal: 0 };
  const labels = new Map<string, string>();
  let done = 0;
  for (const r of parsed.records) {
    done++;
    if (onProgress !== undefined && done % 200 === 0) onProgress(done, parsed.records.length);
    // The corpus already wrote long results as hashes: the threshold changes nothing when checking.
    if (r.kind === 'hash-threshold') continue;
    if (r.kind === 'halt') break;
    outcome.run++;
    const fail = (message: string, internal = false) => {
      outcome.failures.push({ line: r.line, sql: r.sql, message, internal });
      if (internal) outcome.internal++;
    };
    const failThrown = (e: unknown) => fail(describeThrown(e), !isEngineError(e));
    if (r.kind === 'statement') {
      try {
        await target.query(r.sql);
        if (r.expect === 'ok') outcome.passed++;
        else fail('expected an error, the statement succeeded');
      } catch (e) {
        if (r.expect === 'error' && isEngineError(e)) outcome.passed++;
        else failThrown(e);
      }
      continue;
    }
    let rows: unknown[][];
    try {
      rows = (await target.query(r.sql)).rows;
    } catch (e) {
      failThrown(e);
      continue;
    }
    let values: string[];
    try {
      values = resultLines(rows, r.types, r.sort);
    } catch (e) {
      // A column count that differs from the record's is the engine's wrong answer (a TidemarkError);
      // anything else thrown while formatting is a bug (of the runner, or a value of no SQL type).
      failThrown(e);
      continue;
    }
    const problem = checkResult(r, values);
    if (problem !== undefined) {
      fail(problem);
      continue;
    }
    if (r.label !== undefined) {
      const h = hashValues(values);
      const before = labels.get(r.label);
      if (before !== undefined && before !== h) {
        fail(`label ${r.label}: a different result from an earlier query with the same label`);
        continue;
      }
      labels.set(r.label, h);
    }
    outcome.passed++;
  }
  return outcome;
}
