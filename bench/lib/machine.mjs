// What the machine is, and how fast its disk makes data durable, measured in the same run as the
// benchmarks so that ratios can be read against it.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function fdatasyncRate(dir = os.tmpdir(), n = 300) {
  const d = mkdtempSync(path.join(dir, 'tidemark-fsync-'));
  const fd = openSync(path.join(d, 'probe'), 'w');
  const block = Buffer.alloc(4096, 7);
  const lat = new Float64Array(n);
  try {
    for (let i = 0; i < n; i++) {
      writeSync(fd, block);
      const t0 = process.hrtime.bigint();
      fdatasyncSync(fd);
      lat[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    }
  } finally {
    closeSync(fd);
    rmSync(d, { recursive: true, force: true });
  }
  lat.sort();
  const total = lat.reduce((a, b) => a + b, 0);
  return { perSecond: Math.round((n / total) * 1000), p50Ms: lat[n >> 1], p99Ms: lat[Math.floor(n * 0.99)] };
}

export function machine() {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}
