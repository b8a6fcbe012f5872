// SQL (issue "SQL"): TPC-H Q1 and Q6 over generated lineitem data, and point selects by key through
// SQL, for tidemark, better-sqlite3 and DuckDB, each engine in a process of its own.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonLines } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

for (const engine of ['tidemark', 'sqlite', 'duckdb']) {
  await runJsonLines(path.join(here, '..', 'sql_child.mjs'), [engine, ...(quick ? ['--quick'] : [])], (r) =>
    process.stdout.write(JSON.stringify(r) + '\n'),
  );
}
