// The core workloads: tidemark, better-sqlite3, lmdb and classic-level, each in a child process of its own.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonLines } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

for (const engine of ['tidemark', 'sqlite', 'lmdb', 'level']) {
  await runJsonLines(path.join(here, '..', 'child.mjs'), [engine, ...(quick ? ['--quick'] : [])], (r) =>
    process.stdout.write(JSON.stringify(r) + '\n'),
  );
}
