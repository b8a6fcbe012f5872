import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { accountFor, NATIVE, SHA2 } from '../../src/server/mysql/auth.js';
import { MysqlServer } from '../../src/server/mysql/server.js';
import { memDb } from '../helpers/db.js';

/**
 * The `mariadb` command-line client (Debian's mariadb-client; `npm test` and .ci/run install it
 * when missing) runs a SQL script against tidemark's MySQL server; its output is checked.
 */
function client(): string {
  for (const c of ['mariadb', 'mysql']) if (spawnSync('sh', ['-c', `command -v ${c}`]).status === 0) return c;
  throw new Error('no mariadb client: scripts/ensure-mariadb-client.sh installs it');
}

/** Run the client (in a child process: never synchronously, the server is in this process). */
function run(
  port: number,
  script: string,
  args: string[] = [],
  password = 'secret',
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(client(), [
    '-h',
    '127.0.0.1',
    '-P',
    String(port),
    '-u',
    'root',
    `--password=${password}`,
    '--protocol=TCP',
    ...args,
    'tidemark',
  ]);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(script);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

describe('the mariadb command-line client', () => {
  it.each([NATIVE, SHA2])(
    'runs a script through the server (%s offered)',
    async (plugin) => {
      const { db } = await memDb();
      const server = await MysqlServer.start(db, {
        port: 0,
        accounts: [accountFor('root', 'secret')],
        authPlugin: plugin as typeof SHA2,
      });
      try {
        const script = [
          'CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, s VARCHAR(10), d DOUBLE, at DATETIME);',
          "INSERT INTO t (s, d, at) VALUES ('a', 1.5, '2024-01-02 03:04:05'), (NULL, 2, NULL);",
          'SELECT * FROM t ORDER BY id;',
          'SELECT count(*) AS n, sum(d) AS total FROM t;',
          'SHOW TABLES;',
          'DESCRIBE t;',
          'SELECT nope FROM t;',
          'SELECT DATABASE(), @@version_comment;',
        ].join('\n');
        const r = await run(server.port, script, ['--force']);
        expect(r.code).toBe(0);
        expect(r.out).toBe(
          [
            'id\ts\td\tat',
            '1\ta\t1.5\t2024-01-02 03:04:05',
            '2\tNULL\t2\tNULL',
            'n\ttotal',
            '2\t3.5',
            'Tables_in_tidemark',
            't',
            'Field\tType\tNull\tKey\tDefault\tExtra',
            'id\tint\tNO\tPRI\tNULL\tauto_increment',
            's\tvarchar(10)\tYES\t\tNULL\t',
            'd\tdouble\tYES\t\tNULL\t',
            'at\tdatetime\tYES\t\tNULL\t',
            'DATABASE()\t@@version_comment',
            'tidemark\ttidemark',
            '',
          ].join('\n'),
        );
        expect(r.err).toMatch(/ERROR 1054 \(42S22\) at line 7: unknown column nope/);
        // A wrong password: refused with 1045, and the server goes on.
        const bad = await run(server.port, 'SELECT 1;', [], 'wrong');
        expect(bad.code).not.toBe(0);
        expect(bad.err).toMatch(/ERROR 1045 \(28000\)/);
        expect((await run(server.port, 'SELECT 1 + 1 AS two;')).out).toBe('two\n2\n');
      } finally {
        await server.close();
        await db.close();
      }
    },
    60_000,
  );

  it.each([NATIVE, SHA2])(
    'logs in to an account without a password (%s offered)',
    async (plugin) => {
      const { db } = await memDb();
      const server = await MysqlServer.start(db, {
        port: 0,
        accounts: [accountFor('root', '')],
        authPlugin: plugin as typeof SHA2,
      });
      try {
        // With caching_sha2_password the client sends no scramble and reads the OK at once (no
        // "fast authentication succeeded" before it, as MySQL answers).
        const r = await run(server.port, 'SELECT 1 + 1 AS two;', [], '');
        expect(r.err).toBe('');
        expect(r.out).toBe('two\n2\n');
        expect((await run(server.port, 'SELECT 1;', [], 'nonempty')).err).toMatch(/ERROR 1045 \(28000\)/);
      } finally {
        await server.close();
        await db.close();
      }
    },
    60_000,
  );
});
