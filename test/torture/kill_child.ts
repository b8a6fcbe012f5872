// The kill -9 child: opens the database, then runs the torture workload with four workers until
// it is killed, printing each try and acknowledgement as a JSON line (stdout to a pipe is
// synchronous on Linux: a line printed is a line the parent will read, even after SIGKILL).
// Usage: kill_child.ts DIR SEED SEQBASE TAG [OBJECT-STORE-JSON]
import { open, type OpenOptions } from '../../src/index.js';
import { Rng, Worker, type Event } from './workload.js';

const [dir, seedArg, seqArg, tag, objectStoreArg] = process.argv.slice(2);
const seed = Number(seedArg);
const db = await open(dir!, {
  // Objects and checkpoints in a bucket (the object-storage torture test), or all local.
  ...(objectStoreArg !== undefined
    ? { objectStore: JSON.parse(objectStoreArg) as OpenOptions['objectStore'] }
    : {}),
  // Background checkpoints, compaction and GC at short intervals, small memtables, small segments.
  checkpoint: { intervalMs: 20, incrementalsPerGlobal: 3, walBytesMax: 1 << 20 },
  storage: { memtableRowsMax: 200, mergeMinObjects: 3, rowGroupRows: 64 },
  wal: { segmentBytes: 64 * 1024 },
  memory: { leakDetection: 'disabled' },
});
const emit = (ev: Event | { e: 'ready' }) => process.stdout.write(JSON.stringify(ev) + '\n');
emit({ e: 'ready' });
const workers = Array.from(
  { length: 4 },
  (_, w) => new Worker(db, w, new Rng(seed * 16 + w), Number(seqArg), emit, tag!),
);
await Promise.all(
  workers.map(async (wk) => {
    for (;;) await wk.step();
  }),
);
