// Child of level.test.ts: puts keys into a TidemarkLevel, printing each one once its put resolved
// (acknowledged, so durable), with 16 writers at once, until the parent kills it.
import { TidemarkLevel } from '../../src/level/index.js';

const dir = process.argv[2]!;
const db = new TidemarkLevel<string, string>(dir, { tidemark: { checkpoint: { intervalMs: 20 } } });
await db.open();
console.log('open');
let next = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    for (;;) {
      const i = next++;
      const key = `k${String(i).padStart(8, '0')}`;
      if (i % 5 === 4) {
        await db.batch([
          { type: 'put', key, value: `v${i}` },
          { type: 'put', key: `${key}-pair`, value: `v${i}` },
        ]);
      } else await db.put(key, `v${i}`);
      console.log(`acked ${i}`);
    }
  }),
);
