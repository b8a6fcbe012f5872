import { describe, expect, test } from 'vitest';
import { FaultFileService } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { createLogger } from '../../src/log.js';
import { MemoryManager } from '../../src/mem/manager.js';
import { crc32 } from '../../src/util/crc.js';
import { Rng } from '../../src/util/random.js';
import { Wal } from '../../src/wal/wal.js';

const logger = createLogger(undefined);
/** TIDEMARK_LONG=1 runs the long mode: ten times the seeds. */
const LONG = process.env['TIDEMARK_LONG'] === '1';

/**
 * A payload that says what it is: writer, sequence and length, then bytes derived from those, then
 * a checksum. A replayed record either equals what some appender wrote, byte for byte, or is damaged.
 */
function payloadFor(writer: number, seq: number, rng: Rng): Uint8Array {
  const len = 12 + rng.int(rng.bool(0.1) ? 3000 : 200);
  const p = new Uint8Array(len);
  const v = new DataView(p.buffer);
  v.setUint32(0, writer, true);
  v.setUint32(4, seq, true);
  for (let i = 8; i < len - 4; i++) p[i] = (writer * 31 + seq * 7 + i) & 0xff;
  v.setUint32(len - 4, crc32(p.subarray(0, len - 4)), true);
  return p;
}

function key(p: Uint8Array): string {
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  return `${v.getUint32(0, true)}/${v.getUint32(4, true)}`;
}

interface RunResult {
  acked: Map<number, Uint8Array>;
  attempted: Map<string, Uint8Array>;
  steps: number;
}

/** The workload: 8 concurrent appenders, small segments (so rolls happen), until done or crashed. */
async function workload(
  mem: MemoryFileService,
  seed: number,
  crashAtStep: number | undefined,
): Promise<RunResult & { fault: FaultFileService }> {
  const fault = new FaultFileService(mem, { crashAtStep, seed });
  const memory = new MemoryManager({ leakDetection: 'disabled' });
  const acked = new Map<number, Uint8Array>();
  const attempted = new Map<string, Uint8Array>();
  const rng = new Rng(seed);
  let wal: Wal | undefined;
  try {
    wal = await Wal.open({ fs: fault, memory, logger, options: { segmentBytes: 4096, batchBytesMax: 4096 } });
    const w = wal;
    await Promise.all(
      Array.from({ length: 8 }, async (_, writer) => {
        for (let seq = 0; seq < 12; seq++) {
          const p = payloadFor(writer, seq, rng);
          attempted.set(key(p), p);
          acked.set(await w.append(1, p), p);
        }
      }),
    );
  } catch {
    // The crash (or the failure it caused) ends the workload.
  }
  if (wal !== undefined) await wal.close().catch(() => undefined);
  // The dead process's buffers were all released on the failure paths.
  memory.close();
  return { acked, attempted, steps: fault.steps, fault };
}

async function recoverAndCheck(mem: MemoryFileService, run: RunResult, context: string): Promise<void> {
  const memory = new MemoryManager({ leakDetection: 'disabled' });
  const wal = await Wal.open({ fs: mem, memory, logger, options: { segmentBytes: 4096 } });
  const replayed = new Map<number, Uint8Array>();
  let expected = 1;
  for await (const r of wal.replay(1)) {
    expect(r.lsn, context).toBe(expected++);
    const p = r.payload.slice();
    // Never damaged: it is exactly a payload some appender tried to write.
    const orig = run.attempted.get(key(p));
    expect(orig !== undefined && Buffer.compare(orig, p) === 0, `${context}: record ${r.lsn} damaged`).toBe(
      true,
    );
    replayed.set(r.lsn, p);
  }
  for (const [lsn, p] of run.acked) {
    const got = replayed.get(lsn);
    expect(
      got !== undefined && Buffer.compare(got, p) === 0,
      `${context}: acknowledged LSN ${lsn} lost`,
    ).toBe(true);
  }
  // The log goes on after recovery.
  expect(await wal.append(1, new Uint8Array([1, 2, 3])), context).toBe(expected);
  await wal.close();
  memory.close();
}

describe('WAL crash recovery (simulated crashes, seeded)', () => {
  test('a crash at every step of appends, syncs and segment rolls loses no acknowledged record', async () => {
    const workloads = LONG ? 200 : 20;
    let runs = 0;
    for (let w = 1; w <= workloads; w++) {
      // Count the steps of this workload without a crash, then crash at each one in turn.
      const clean = await workload(new MemoryFileService(), w, undefined);
      expect(clean.acked.size).toBe(96);
      for (let step = 1; step <= clean.steps; step++) {
        const seed = w * 100_000 + step;
        const mem = new MemoryFileService();
        const run = await workload(mem, seed, step);
        if (!run.fault.crashed) continue; // the workload finished first (steps vary with the seed's sizes)
        await recoverAndCheck(
          mem,
          run,
          `workload ${w}, crash at step ${step}, seed ${seed} (replay: TIDEMARK_SEED=${seed})`,
        );
        runs++;
      }
    }
    expect(runs).toBeGreaterThan(LONG ? 10_000 : 1_000);
  }, 600_000);

  test('random crash points over many seeds', async () => {
    const only = process.env['TIDEMARK_SEED'];
    const seeds =
      only !== undefined ? [Number(only)] : Array.from({ length: LONG ? 20_000 : 2_000 }, (_, i) => i + 1);
    for (const seed of seeds) {
      const rng = new Rng(seed ^ 0x5eed);
      const mem = new MemoryFileService();
      const run = await workload(mem, seed, 1 + rng.int(400));
      await recoverAndCheck(mem, run, `seed ${seed} (replay: TIDEMARK_SEED=${seed})`);
    }
  }, 600_000);
});
