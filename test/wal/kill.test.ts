import { once } from 'node:events';
import { afterAll, expect, test } from 'vitest';
import { LocalFileService } from '../../src/fileservice/local.js';
import { createLogger } from '../../src/log.js';
import { MemoryManager } from '../../src/mem/manager.js';
import { crc32 } from '../../src/util/crc.js';
import { Rng } from '../../src/util/random.js';
import { Wal } from '../../src/wal/wal.js';
import { spawnTs, waitForLine } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

const LONG = process.env['TIDEMARK_LONG'] === '1';
const t = tempDir();
afterAll(() => t.cleanup());

test('SIGKILL at random moments never loses an acknowledged record', async () => {
  const kills = LONG ? 200 : 20;
  const rng = new Rng(20261126);
  const acked = new Map<number, number>();
  let totalReplayed = 0;
  for (let run = 0; run < kills; run++) {
    const child = spawnTs('test/fixtures/wal_child.ts', [t.dir, String(run)]);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitForLine(child, /^ready$/);
    await new Promise((r) => setTimeout(r, 20 + rng.int(150)));
    child.kill('SIGKILL');
    await once(child, 'exit');
    // Only whole lines: the last one may have been cut by the kill.
    for (const line of out.split('\n').slice(0, -1)) {
      const m = /^(\d+) (\d+)$/.exec(line);
      if (m !== null) acked.set(Number(m[1]), Number(m[2]));
    }
    const fs = new LocalFileService(t.dir);
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    const wal = await Wal.open({
      fs,
      memory,
      logger: createLogger(undefined),
      options: { segmentBytes: 256 * 1024 },
    });
    const replayed = new Map<number, number>();
    for await (const r of wal.replay(1)) replayed.set(r.lsn, crc32(r.payload));
    const lost: number[] = [];
    for (const [lsn, crc] of acked) if (replayed.get(lsn) !== crc) lost.push(lsn);
    expect(lost, `run ${run}: acknowledged records missing or different after the kill`).toEqual([]);
    totalReplayed = replayed.size;
    await wal.close();
    memory.close();
    await fs.close();
  }
  // The children did real work: thousands of acknowledged records across the kills.
  expect(acked.size).toBeGreaterThan(kills * 50);
  expect(totalReplayed).toBeGreaterThanOrEqual(acked.size);
}, 300_000);
