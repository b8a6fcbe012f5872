// Open time after SIGKILL with 64 MiB and 256 MiB of log since the last checkpoint: a child fills
// the log and is killed; another opens the directory and counts the rows.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonLines } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, '..', 'open_child.mjs');
const quick = process.argv.includes('--quick');

function fillAndKill(engine, dir, mib) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, 'fill', engine, dir, String(mib)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const r = JSON.parse(buf.slice(0, nl));
      p.kill('SIGKILL');
      p.on('close', () => resolve(r));
    });
    p.on('error', reject);
  });
}

for (const mib of quick ? [16, 64] : [64, 256]) {
  for (const engine of ['tidemark', 'sqlite']) {
    const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-bench-open-${engine}-`));
    try {
      const filled = await fillAndKill(engine, dir, mib);
      const [opened] = await runJsonLines(child, ['open', engine, dir]);
      if (opened.rows !== filled.rows)
        throw new Error(`${engine}: ${filled.rows} rows written, ${opened.rows} after the kill`);
      process.stdout.write(
        JSON.stringify({
          engine,
          settings: opened.settings,
          workload: `open-${mib}`,
          name: `open after SIGKILL, ${mib} MiB of log since the last checkpoint`,
          walMiB: Math.round(filled.walBytes / 2 ** 20),
          rows: filled.rows,
          openMs: opened.openMs,
          ...(opened.replayedRecords !== undefined ? { replayedRecords: opened.replayedRecords } : {}),
        }) + '\n',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
