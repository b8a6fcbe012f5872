// abstract-level workloads: TidemarkLevel against classic-level, each in a child process of its own.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonLines } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

for (const engine of ['tidemark', 'level']) {
  await runJsonLines(path.join(here, '..', 'level_child.mjs'), [engine, ...(quick ? ['--quick'] : [])], (r) =>
    process.stdout.write(JSON.stringify(r) + '\n'),
  );
}
