// Commit latency with background checkpoints running, and without (tidemark), each mode in a child
// process of its own.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonLines } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

for (const mode of ['off', 'on']) {
  await runJsonLines(path.join(here, '..', 'ckp_child.mjs'), [mode, ...(quick ? ['--quick'] : [])], (r) =>
    process.stdout.write(JSON.stringify(r) + '\n'),
  );
}
