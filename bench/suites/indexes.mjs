// Secondary indexes and UNIQUE (issue "Secondary indexes and UNIQUE constraints"): lookups by an
// indexed column and by a UNIQUE one, a range of 100 on an index, and one-row INSERTs from 1 and 64
// callers, at 10,000, 100,000 and 1,000,000 rows (--quick: 10,000 and 100,000), in-process against
// better-sqlite3 and through the MySQL protocol against MariaDB; then sysbench oltp_read_write
// itself against both servers. Every size and engine runs in processes of its own.
// BENCH_INDEXES_ROWS=10000,100000 chooses the sizes (for development runs).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonLines } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const sizes =
  process.env.BENCH_INDEXES_ROWS !== undefined
    ? process.env.BENCH_INDEXES_ROWS.split(',').map(Number)
    : quick
      ? [10_000, 100_000]
      : [10_000, 100_000, 1_000_000];
const flags = quick ? ['--quick'] : [];
const pass = (r) => process.stdout.write(JSON.stringify(r) + '\n');
const child = path.join(here, '..', 'indexes_child.mjs');

for (const rows of sizes) {
  if (!Number.isInteger(rows) || rows < 1000 || rows % 10 !== 0) throw new Error(`bad table size ${rows}`);
  for (const engine of ['tidemark', 'sqlite'])
    await runJsonLines(child, ['inproc', engine, String(rows), ...flags], pass);
  await runJsonLines(child, ['mysql', String(rows), ...flags], pass);
}
await runJsonLines(path.join(here, '..', 'sysbench_child.mjs'), flags, pass);
