// Child of writers.test.ts: a writer on an object-storage prefix. Opens (prints 'open' or
// 'refused CODE'), then commits and checkpoints in a loop, printing what happens, until killed.
import { open } from '../../src/index.js';
import { TidemarkError } from '../../src/errors.js';

const [dir, endpoint, bucket, prefix, leaseMs] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const objectStore = {
  endpoint,
  bucket,
  prefix,
  accessKeyId: 'tidemark',
  secretAccessKey: 'tidemark-secret',
  leaseMs: Number(leaseMs),
};
const codeOf = (e: unknown) => (e instanceof TidemarkError ? e.code : String(e));
let db;
try {
  db = await open(dir, { objectStore, checkpoint: { intervalMs: 0 } });
} catch (e) {
  console.log(`refused ${codeOf(e)}`);
  process.exit(0);
}
if (!db.tables().includes('t'))
  await db.createTable('t', { columns: { id: 'int64', by: 'string' }, primaryKey: 'id' });
console.log('open');
for (let i = 0; ; i++) {
  try {
    await db.upsert('t', { id: i % 1000, by: `child-${process.pid}-${i}` });
    console.log(`commit ok ${i}`);
  } catch (e) {
    console.log(`commit failed ${codeOf(e)} ${(e as Error).message.replace(/\n/g, ' ')}`);
  }
  if (i % 5 === 4) {
    try {
      await db.checkpoint();
      console.log(`ckp ok ${i}`);
    } catch (e) {
      console.log(`ckp failed ${codeOf(e)} ${(e as Error).message.replace(/\n/g, ' ')}`);
    }
  }
  await new Promise((r) => setTimeout(r, 50));
}
