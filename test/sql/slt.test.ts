import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkResult, formatValue, hashValues, parseSlt, resultLines, type QueryRecord } from './slt.js';
import { codeOfSync } from '../helpers/errors.js';

// A copy of the corpus (public domain) kept in the repository, so that a clone anywhere has it.
const CORPUS = path.resolve(import.meta.dirname, '..', 'fixtures', 'sqllogictest');

describe('the sqllogictest format', () => {
  it('reads records, conditions, thresholds and halts, for the mysql engine', () => {
    const text = [
      'hash-threshold 8',
      '',
      'statement ok',
      'CREATE TABLE t1(a INTEGER, b TEXT)',
      '',
      'skipif mysql',
      'statement ok',
      'CREATE INDEX i1 ON t1(a)',
      '',
      'onlyif sqlite',
      'statement error',
      'SELECT 1 IN ()',
      '',
      'onlyif mysql',
      'statement error',
      'SELECT * FROM nowhere',
      '',
      '# a comment',
      'query IT rowsort label-1',
      'SELECT a, b',
      '  FROM t1',
      '----',
      '1',
      'x',
      '',
      'query R nosort',
      'SELECT 1.5',
      '----',
      '12 values hashing to 0123456789abcdef0123456789abcdef',
      '',
      'query I valuesort',
      'SELECT 1',
      '',
      'onlyif sqlite',
      'halt',
      '',
      'statement ok',
      'INSERT INTO t1 VALUES(1, NULL)',
      '',
      'halt',
      '',
      'statement ok',
      'never reached',
    ].join('\r\n');
    const { records, skipped } = parseSlt(text);
    expect(skipped).toBe(3);
    expect(records.map((r) => r.kind)).toEqual([
      'hash-threshold',
      'statement',
      'statement',
      'query',
      'query',
      'query',
      'statement',
    ]);
    expect(records[2]).toEqual({
      kind: 'statement',
      line: 15,
      expect: 'error',
      sql: 'SELECT * FROM nowhere',
    });
    const q = records[3] as QueryRecord;
    expect(q).toMatchObject({
      types: ['I', 'T'],
      sort: 'rowsort',
      label: 'label-1',
      sql: 'SELECT a, b\n  FROM t1',
    });
    expect(q.expected).toEqual({ values: ['1', 'x'] });
    expect((records[4] as QueryRecord).expected).toEqual({
      count: 12,
      hash: '0123456789abcdef0123456789abcdef',
    });
    expect((records[5] as QueryRecord).expected).toBeUndefined();
    // The same file for sqlite: other records, and its halt.
    const forSqlite = parseSlt(text, 'sqlite');
    expect(forSqlite.records.map((r) => r.line)).toEqual([1, 3, 7, 11, 19, 26, 31]);
  });

  it('refuses what it cannot read, naming the line', () => {
    expect(codeOfSync(() => parseSlt('statement maybe\nSELECT 1\n', 'mysql', 'x.test'))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(() => parseSlt('query IX nosort\nSELECT 1\n', 'mysql', 'x.test')).toThrow(
      /x\.test:1: query types/,
    );
    expect(() => parseSlt('\n\nfrobnicate\n', 'mysql', 'x.test')).toThrow(/x\.test:3: unknown record/);
    expect(() => parseSlt('query I sideways\nSELECT 1\n')).toThrow(/unknown sort mode/);
  });

  it('reads the whole corpus', () => {
    const files = [
      'select1.test',
      'select2.test',
      'select3.test',
      ...readdirSync(path.join(CORPUS, 'evidence')).map((f) => `evidence/${f}`),
    ];
    let queries = 0;
    for (const f of files) {
      const { records } = parseSlt(readFileSync(path.join(CORPUS, f), 'utf8'), 'mysql', f);
      queries += records.filter((r) => r.kind === 'query').length;
      if (f.startsWith('select'))
        expect(records.filter((r) => r.kind === 'query').length, f).toBe(f === 'select3.test' ? 3320 : 1000);
    }
    expect(queries).toBeGreaterThan(5320);
  });

  it('formats values as the corpus prints them', () => {
    expect(formatValue(null, 'I')).toBe('NULL');
    expect(formatValue(undefined, 'T')).toBe('NULL');
    // I: truncated toward zero (MySQL's ODBC conversion), text by its leading number.
    expect(
      [7, -7, 2.9, -2.9, 0.5, -0.5, true, false, '12abc', 'abc', 123n].map((v) => formatValue(v, 'I')),
    ).toEqual(['7', '-7', '2', '-2', '0', '0', '1', '0', '12', '0', '123']);
    // R: three decimals.
    expect([1 / 3, -2, 2.0005, -0.0001, '1.5x'].map((v) => formatValue(v, 'R'))).toEqual([
      '0.333',
      '-2.000',
      '2.001',
      '0.000',
      '1.500',
    ]);
    // T: text, the empty string as (empty), anything outside printable ASCII as @.
    expect(['abc', '', 'tab\there', 'é', 12.5, true].map((v) => formatValue(v, 'T'))).toEqual([
      'abc',
      '(empty)',
      'tab@here',
      '@',
      '12.5',
      '1',
    ]);
  });

  it('sorts rows or values, and checks column counts', () => {
    const rows = [
      [2, 'b'],
      [10, 'a'],
      [1, null],
    ];
    expect(resultLines(rows, ['I', 'T'], 'nosort')).toEqual(['2', 'b', '10', 'a', '1', 'NULL']);
    // As text, the way the reference runner sorts: '10' < '2'.
    expect(resultLines(rows, ['I', 'T'], 'rowsort')).toEqual(['1', 'NULL', '10', 'a', '2', 'b']);
    expect(resultLines(rows, ['I', 'T'], 'valuesort')).toEqual(['1', '10', '2', 'NULL', 'a', 'b']);
    expect(() => resultLines(rows, ['I'], 'nosort')).toThrow(/2 columns, the test expects 1/);
  });

  it("hashes results exactly as the corpus does (select1's first queries, computed here from its inserts)", () => {
    const text = readFileSync(path.join(CORPUS, 'select1.test'), 'utf8');
    const { records } = parseSlt(text);
    const rows: Record<string, number>[] = [];
    for (const r of records) {
      if (r.kind !== 'statement') continue;
      const m = /^INSERT INTO t1\(([a-e,]+)\) VALUES\(([-\d,]+)\)$/.exec(r.sql);
      if (m === null) continue;
      const cols = m[1]!.split(',');
      const vals = m[2]!.split(',').map(Number);
      rows.push(Object.fromEntries(cols.map((c, k) => [c, vals[k]!])));
      if (rows.length === 30) break;
    }
    const queries = records.filter((r): r is QueryRecord => r.kind === 'query');
    // SELECT CASE WHEN c>(SELECT avg(c) FROM t1) THEN a*2 ELSE b*10 END FROM t1 ORDER BY 1
    const avg = rows.reduce((s, r) => s + r['c']!, 0) / rows.length;
    const q1 = rows.map((r) => [r['c']! > avg ? r['a']! * 2 : r['b']! * 10]).sort((x, y) => x[0]! - y[0]!);
    const l1 = resultLines(q1, queries[0]!.types, queries[0]!.sort);
    expect(checkResult(queries[0]!, l1)).toBeUndefined();
    // SELECT a+b*2+c*3+d*4+e*5, (a+b+c+d+e)/5 FROM t1 ORDER BY 1,2: a decimal quotient in MySQL,
    // truncated as the I column asks.
    const q2 = rows
      .map((r) => [
        r['a']! + r['b']! * 2 + r['c']! * 3 + r['d']! * 4 + r['e']! * 5,
        (r['a']! + r['b']! + r['c']! + r['d']! + r['e']!) / 5,
      ])
      .sort((x, y) => x[0]! - y[0]! || x[1]! - y[1]!);
    const l2 = resultLines(q2, queries[1]!.types, queries[1]!.sort);
    expect(checkResult(queries[1]!, l2)).toBeUndefined();
    expect(hashValues(l2)).toBe('808146289313018fce25f1a280bd8c30');
    // A wrong result is told apart.
    expect(checkResult(queries[1]!, l2.slice(1))).toMatch(
      /expected 60 values hashing to 8081.*, got 59 values/,
    );
  });
});
