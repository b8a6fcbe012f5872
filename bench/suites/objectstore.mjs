// tidemark with objects on the local disk, then in a bucket of moto_server (started here).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMoto } from '../lib/moto.mjs';
import { runJsonLines } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const child = path.join(here, '..', 'objectstore_child.mjs');
const print = (r) => process.stdout.write(JSON.stringify(r) + '\n');

await runJsonLines(child, ['local', ...(quick ? ['--quick'] : [])], print);
const moto = await startMoto();
try {
  await moto.createBucket('tidemark-bench');
  await runJsonLines(child, ['s3', moto.endpoint, 'tidemark-bench', ...(quick ? ['--quick'] : [])], print);
} finally {
  await moto.stop();
}
