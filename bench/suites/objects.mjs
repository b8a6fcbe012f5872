// Data in objects (issue "Columnar objects"): each engine loads its data in one process, then a
// second process reopens it, after the OS page cache is dropped where this user may (root), and
// measures point gets and a column SUM with a cold and then a warm cache.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonLines } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

const run = (engine, phase, dir) =>
  runJsonLines(path.join(here, '..', 'objects_child.mjs'), [
    engine,
    phase,
    dir,
    ...(quick ? ['--quick'] : []),
  ]);

/** Drop the OS page cache, so "cold" means read from the disk. False when not permitted. */
function dropPageCache() {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

for (const engine of ['tidemark', 'sqlite', 'lmdb', 'duckdb']) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-bench-objects-${engine}-`));
  try {
    process.stderr.write(`  objects: ${engine}: loading\n`);
    const [load] = await run(engine, 'load', dir);
    const dropped = dropPageCache();
    process.stderr.write(
      `  objects: ${engine}: loaded in ${(load.ms / 1000).toFixed(1)} s; reading${dropped ? ' (OS page cache dropped)' : ''}\n`,
    );
    for (const r of await run(engine, 'read', dir)) {
      process.stdout.write(
        JSON.stringify({ ...r, loadMs: load.ms, storage: load.storage, pageCacheDropped: dropped }) + '\n',
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
