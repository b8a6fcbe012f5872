// One engine's run of YCSB workloads A (50% reads, 50% updates), B (95/5), C (reads only) and E
// (95% short range scans, 5% inserts), keys chosen by a scrambled zipfian law over the loaded
// records. Prints one JSON line per workload. Usage: node ycsb_child.mjs ENGINE [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { now, percentiles, rng } from './lib/data.mjs';
import { reporter, toMiB } from './lib/proc.mjs';
import { ScrambledZipfian, record } from './lib/ycsb.mjs';

const engineName = process.argv[2];
const quick = process.argv.includes('--quick');
const RECORDS = quick ? 100_000 : 1_000_000;
const OPS = quick ? 20_000 : 100_000;
const CALLERS = 16;
const SCAN_MAX = 100;

const engine = await import(`./engines/${engineName}.mjs`);
const y = engine.ycsb;
const dir = mkdtempSync(path.join(os.tmpdir(), `tidemark-ycsb-${engineName}-`));
const { out, stop } = reporter(engineName, y.settings);

const WORKLOADS = [
  { name: 'A', read: 0.5, update: 0.5 },
  { name: 'B', read: 0.95, update: 0.05 },
  { name: 'C', read: 1 },
  { name: 'E', scan: 0.95, insert: 0.05 },
];

try {
  const db = await y.open(dir);
  for (let b = 0; b < RECORDS; b += 1000)
    await db.load(Array.from({ length: Math.min(1000, RECORDS - b) }, (_, i) => record(b + i)));
  await db.settle();
  let inserted = RECORDS;
  for (const w of WORKLOADS) {
    const r = rng(7);
    const keys = new ScrambledZipfian(RECORDS, r);
    const lat = new Float64Array(OPS);
    let next = 0;
    let rows = 0;
    const t0 = now();
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        for (;;) {
          const i = next++;
          if (i >= OPS) return;
          const x = r();
          const id = keys.next();
          const s = now();
          if (w.read !== undefined && x < w.read) {
            const got = await db.read(id);
            if (got === undefined || got.id !== id) throw new Error(`read ${id}: ${JSON.stringify(got)}`);
          } else if (w.update !== undefined) {
            await db.update(id, x);
          } else if (x < w.scan) {
            rows += (await db.scan(id, 1 + Math.floor(r() * SCAN_MAX))).length;
          } else {
            await db.insert(record(inserted++));
          }
          lat[i] = now() - s;
        }
      }),
    );
    const ms = now() - t0;
    out({
      workload: `ycsb-${w.name.toLowerCase()}`,
      name: `YCSB ${w.name} (${Object.entries(w)
        .filter(([k]) => k !== 'name')
        .map(([k, v]) => `${Math.round(v * 100)}% ${k}`)
        .join(', ')}), ${CALLERS} callers`,
      unit: 'ops/s',
      opsPerSec: OPS / (ms / 1000),
      ...percentiles(lat),
      ...(rows > 0 ? { scannedRows: rows } : {}),
      poolHighWaterMiB: toMiB(db.poolHighWater()),
    });
  }
  await db.close();
} finally {
  stop();
  rmSync(dir, { recursive: true, force: true });
}
