// WAL group commit: 100-byte records, 64 concurrent appenders, sync on (every append resolves only
// once fdatasynced). Reports durable records/s, append latency p50/p99 and records per fdatasync,
// next to this disk's raw fdatasync rate measured in the same process.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalFileService } from '../../dist/fileservice/local.js';
import { createLogger } from '../../dist/log.js';
import { MemoryManager } from '../../dist/mem/manager.js';
import { Wal } from '../../dist/wal/wal.js';
import { fdatasyncRate } from '../lib/machine.mjs';

const quick = process.argv.includes('--quick');
const SECONDS = quick ? 2 : 8;

async function run(appenders, sync) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-wal-'));
  const fs = new LocalFileService(dir);
  const memory = new MemoryManager();
  const wal = await Wal.open({ fs, memory, logger: createLogger(undefined), options: { sync } });
  const payload = new Uint8Array(100).fill(42);
  const lat = [];
  let stop = false;
  const t0 = process.hrtime.bigint();
  const timer = setTimeout(() => (stop = true), SECONDS * 1000);
  await Promise.all(
    Array.from({ length: appenders }, async () => {
      while (!stop) {
        const s = process.hrtime.bigint();
        await wal.append(1, payload);
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  clearTimeout(timer);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const st = wal.stats();
  await wal.close();
  memory.close();
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  return {
    name: `${appenders} appenders, sync ${sync}`,
    appenders,
    sync,
    recordsPerSec: Math.round(lat.length / secs),
    p50Ms: lat[lat.length >> 1],
    p99Ms: lat[Math.floor(lat.length * 0.99)],
    recordsPerSync: st.syncs > 0 ? st.appends / st.syncs : null,
    syncs: st.syncs,
  };
}

const raw = fdatasyncRate();
process.stdout.write(
  JSON.stringify({
    name: 'raw fdatasync (4 KiB append + fdatasync)',
    recordsPerSec: raw.perSecond,
    p50Ms: raw.p50Ms,
    p99Ms: raw.p99Ms,
    raw: true,
  }) + '\n',
);
for (const [n, sync] of [
  [64, 'batch'],
  [256, 'batch'],
  [1, 'batch'],
  [64, 'none'],
]) {
  process.stdout.write(JSON.stringify(await run(n, sync)) + '\n');
}
