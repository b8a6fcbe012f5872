import { PassThrough } from 'node:stream';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runShell, splitStatements } from '../../src/cli/sql.js';
import { open } from '../../src/index.js';
import { runTs } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

describe('tidemark sql and tidemark shell', () => {
  it('splits statements at ; outside strings and comments, keeping the unfinished rest', () => {
    expect(splitStatements("SELECT ';'; SELECT 2 -- a ; comment\n; SELECT /* ; */ 3; SELECT 'open")).toEqual({
      statements: ["SELECT ';'", 'SELECT 2 -- a ; comment', 'SELECT /* ; */ 3'],
      rest: " SELECT 'open",
    });
  });

  it('tidemark sql -e runs the statements and prints tables; an error exits 1 and names its code', async () => {
    const { dir, cleanup } = tempDir('tidemark-cli-sql-');
    try {
      const ok = await runTs('src/cli/main.ts', [
        'sql',
        dir,
        '-e',
        "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(9)); INSERT INTO t VALUES (1, 'a'), (22, NULL); SELECT * FROM t ORDER BY id",
      ]);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/Query OK, 2 rows affected/);
      expect(ok.stdout).toContain(
        [
          '+----+------+',
          '| id | s    |',
          '+----+------+',
          '|  1 | a    |',
          '| 22 | NULL |',
          '+----+------+',
        ].join('\n'),
      );
      expect(ok.stdout).toMatch(/2 rows in set \(\d+\.\d{3} sec\)/);
      const json = await runTs('src/cli/main.ts', [
        'sql',
        dir,
        '--mode',
        'json',
        '-e',
        'SELECT id FROM t WHERE id > 5',
      ]);
      expect(json.stdout.trim()).toBe('{"id":22}');
      const bad = await runTs('src/cli/main.ts', ['sql', dir, '-e', 'SELECT id FROM t WHERE']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/ERROR SYNTAX: syntax error at line 1, column 23/);
    } finally {
      cleanup();
    }
  }, 60_000);

  it('the shell takes statements over several lines, dot commands, and goes on after an error', async () => {
    const { dir, cleanup } = tempDir('tidemark-cli-shell-');
    try {
      const db = await open(dir);
      const input = new PassThrough();
      const output = new PassThrough();
      let out = '';
      output.on('data', (d: Buffer) => (out += d.toString()));
      const done = runShell(dir, { input, output, db, historyFile: path.join(dir, 'history') });
      input.end(
        [
          'CREATE TABLE t (id INT PRIMARY KEY,',
          "  s VARCHAR(5) DEFAULT 'x');",
          'INSERT INTO t (id) VALUES (1), (2);',
          'CREATE VIEW v AS SELECT count(*) AS n FROM t;',
          '.tables',
          '.schema t',
          'SELECT nope FROM t;',
          '.timer off',
          'SELECT * FROM v;',
          '.mode tsv',
          'SELECT id, s FROM t',
          'ORDER BY id DESC;',
          '.bogus',
          '',
        ].join('\n'),
      );
      const code = await done;
      await db.close();
      // A script with a failed statement exits 1 (as mysql < script does).
      expect(code).toBe(1);
      expect(out).toContain('t\nv (view)');
      expect(out).toContain(
        "CREATE TABLE t (\n  id INT NOT NULL,\n  s VARCHAR(5) DEFAULT 'x',\n  PRIMARY KEY (id)\n);",
      );
      expect(out).toMatch(/ERROR SCHEMA: unknown column nope/);
      expect(out).toContain('+---+\n| n |\n+---+\n| 2 |\n+---+\n1 row in set\n');
      expect(out).toContain('id\ts\n2\tx\n1\tx\n');
      expect(out).toMatch(/unknown command \.bogus/);
    } finally {
      cleanup();
    }
  });
});
