// The engine without SQL: a copy of src/ with src/sql deleted (and everything above the engine:
// the public facade, tools, servers) compiles, and the compiled engine opens a database, commits,
// checkpoints, reopens and reads. Proof that the engine depends on nothing above it, beyond the
// import rule of layers.test.ts.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { LAYERS } from './graph.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('the engine compiles and runs with src/sql deleted', { timeout: 180_000 }, () => {
  // Under node_modules so that the compiled copy resolves the root's packages.
  const work = path.join(ROOT, 'node_modules', '.cache', `tidemark-engine-only-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  try {
    cpSync(path.join(ROOT, 'src'), path.join(work, 'src'), { recursive: true });
    // Everything at or above SQL goes.
    for (const [name, layer] of Object.entries(LAYERS))
      if (layer >= LAYERS.sql!) rmSync(path.join(work, 'src', name), { recursive: true, force: true });
    writeFileSync(
      path.join(work, 'tsconfig.json'),
      JSON.stringify({
        extends: path.join(ROOT, 'tsconfig.json'),
        compilerOptions: {
          rootDir: 'src',
          outDir: 'dist',
          noEmit: false,
          declaration: false,
          sourceMap: false,
          declarationMap: false,
        },
        include: ['src'],
      }),
    );
    execFileSync(
      process.execPath,
      [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', work],
      {
        stdio: 'pipe',
      },
    );
    const dir = path.join(work, 'db-dir');
    mkdirSync(dir);
    const script = `
      import { Engine } from './dist/db/engine.js';
      const dir = ${JSON.stringify(dir)};
      let db = await Engine.open(dir, { checkpoint: { intervalMs: 0 } });
      await db.createTable('t', { columns: { id: 'int64', v: 'string' }, primaryKey: 'id' });
      await db.transaction(async (tx) => { await tx.insert('t', [{ id: 1, v: 'a' }, { id: 2, v: 'b' }]); });
      let refused = '';
      await db.transaction(async (tx) => { await tx.query('SELECT 1').catch((e) => { refused = e.code; }); });
      await db.flush();
      await db.checkpoint({ global: true });
      await db.insert('t', { id: 3, v: 'c' });
      await db.close();
      db = await Engine.open(dir, { checkpoint: { intervalMs: 0 } });
      const rows = [];
      for await (const r of db.scan('t')) rows.push(r);
      await db.close();
      console.log(JSON.stringify({ rows, refused }));
    `;
    writeFileSync(path.join(work, 'run.mjs'), script);
    const out = execFileSync(process.execPath, [path.join(work, 'run.mjs')], { cwd: work, encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({
      rows: [
        { id: 1, v: 'a' },
        { id: 2, v: 'b' },
        { id: 3, v: 'c' },
      ],
      refused: 'INVALID_ARGUMENT',
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
