import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, test, vi } from 'vitest';
import { check } from '../../src/db/check.js';
import { main } from '../../src/cli/program.js';
import { open } from '../../src/index.js';
import { ACCOUNTS } from '../helpers/db.js';
import { tempDir } from '../helpers/tmp.js';

afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

const rows = (from: number, n: number) =>
  Array.from({ length: n }, (_, k) => ({ id: from + k, owner: `owner-${from + k}`, balance: from + k }));

/** A database with a checkpoint chain, objects, retired objects and WAL records after the checkpoint. */
async function sample(): Promise<{ dir: string; cleanup: () => void }> {
  const t = tempDir('tidemark-check-');
  const db = await open(t.dir, { checkpoint: { intervalMs: 0, onClose: false } });
  await db.createTable('a', ACCOUNTS);
  await db.insert('a', rows(0, 500));
  await db.flush();
  await db.insert('a', rows(500, 500));
  await db.checkpoint();
  await db.compact();
  await db.insert('a', rows(1000, 50)); // in the WAL only
  await db.close();
  return t;
}

/** Every file under dir with its bytes. */
function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(path.relative(dir, p), readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

const only = (dir: string, sub: string, re: RegExp) =>
  readdirSync(path.join(dir, sub))
    .filter((n) => re.test(n))
    .sort()
    .map((n) => path.join(dir, sub, n));

function flip(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] = b[at]! ^ 0x10;
  writeFileSync(file, b);
}

async function run(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((out += String(s)), true));
  const code = await main(['node', 'tidemark', ...args]);
  vi.restoreAllMocks();
  process.exitCode = undefined;
  return { code, out };
}

test('tidemark check: a clean directory exits 0, and nothing in it changes', async () => {
  const t = await sample();
  try {
    const before = files(t.dir);
    const r = await run('check', t.dir);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/clean/);
    const json = await run('check', t.dir, '--json');
    const report = JSON.parse(json.out) as Awaited<ReturnType<typeof check>>;
    expect(report.clean).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.verified.objects).toBeGreaterThan(0);
    expect(report.verified.walRecords).toBeGreaterThan(0);
    expect(report.verified.checkpointFiles).toBeGreaterThan(0);
    expect(report.verified.chunks).toBeGreaterThan(0);
    expect(files(t.dir)).toEqual(before);
  } finally {
    t.cleanup();
  }
});

test.each([
  [
    'a flipped bit in an object',
    (dir: string) => {
      const f = only(dir, 'obj', /\.obj$/).at(-1)!;
      flip(f, 100);
      return f;
    },
  ],
  [
    'a flipped bit in a WAL record',
    (dir: string) => {
      const f = only(dir, 'wal', /\.wal$/).at(-1)!;
      flip(f, 40);
      return f;
    },
  ],
  [
    'a flipped bit in the newest checkpoint meta file',
    (dir: string) => {
      const f = only(dir, 'ckp', /^meta-/).at(-1)!;
      flip(f, 20);
      return f;
    },
  ],
  [
    'a truncated checkpoint data file',
    (dir: string) => {
      const f = only(dir, 'ckp', /\.ckd$/).at(-1)!;
      writeFileSync(f, readFileSync(f).subarray(0, 10));
      return f;
    },
  ],
  [
    'an object the checkpoint names deleted',
    (dir: string) => {
      const f = only(dir, 'obj', /\.obj$/)[0]!;
      rmSync(f);
      return f;
    },
  ],
  [
    'an orphan object',
    (dir: string) => {
      const f = path.join(dir, 'obj', '0000000000000fff.obj');
      writeFileSync(f, readFileSync(only(dir, 'obj', /\.obj$/)[0]!));
      return f;
    },
  ],
])('tidemark check: %s is a problem naming the file (exit 1)', async (_name, damage) => {
  const t = await sample();
  try {
    const file = path.relative(t.dir, damage(t.dir));
    const r = await run('check', t.dir);
    expect(r.code, r.out).toBe(1);
    const report = await check(t.dir);
    expect(report.clean).toBe(false);
    expect(report.problems.join('\n')).toContain(file);
  } finally {
    t.cleanup();
  }
});

test('tidemark check on a directory that is not there: exit 1 with NOT_FOUND', async () => {
  const r = await run('check', '/nonexistent/tidemark-check');
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/NOT_FOUND/);
});
