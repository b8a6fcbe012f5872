import { afterEach, describe, expect, test } from 'vitest';
import type { TidemarkError } from '../../src/errors.js';
import { FaultFileService } from '../../src/fileservice/fault.js';
import { LocalFileService } from '../../src/fileservice/local.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import type { FileHandle, FileService, OpenOptions } from '../../src/fileservice/types.js';
import type { FileKind, OpenMode } from '../../src/fileservice/kinds.js';
import { createLogger } from '../../src/log.js';
import { MemoryManager } from '../../src/mem/manager.js';
import { Wal, type WalOptions } from '../../src/wal/wal.js';
import { segmentName } from '../../src/wal/segment.js';
import { codeOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

const logger = createLogger(undefined);
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function openWal(
  fs: FileService,
  options: WalOptions = {},
  memory = new MemoryManager({ leakDetection: 'paranoid' }),
) {
  const wal = await Wal.open({ fs, memory, logger, options });
  return { wal, memory };
}

async function readAll(wal: Wal, from = 1): Promise<[number, number, string][]> {
  const out: [number, number, string][] = [];
  for await (const r of wal.replay(from)) out.push([r.lsn, r.type, dec(r.payload)]);
  return out;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('append and replay', () => {
  test('records replay in order, byte for byte; LSNs continue across reopen', async () => {
    const fs = new MemoryFileService();
    let { wal, memory } = await openWal(fs);
    expect(await wal.append(1, enc('a'))).toBe(1);
    expect(await Promise.all([wal.append(2, enc('bb')), wal.append(3, enc(''))])).toEqual([2, 3]);
    await wal.close();
    memory.close();
    ({ wal, memory } = await openWal(fs));
    expect(await readAll(wal)).toEqual([
      [1, 1, 'a'],
      [2, 2, 'bb'],
      [3, 3, ''],
    ]);
    expect(await readAll(wal, 3)).toEqual([[3, 3, '']]);
    expect(await wal.append(9, enc('d'))).toBe(4);
    await wal.close();
    memory.close(); // every pool at zero: record buffers were released once durable
  });

  test('concurrent appends share fdatasyncs (group commit)', async () => {
    const fs = new MemoryFileService();
    const { wal, memory } = await openWal(fs);
    const lsns = await Promise.all(Array.from({ length: 256 }, (_, i) => wal.append(1, enc(`r${i}`))));
    expect(lsns).toEqual(Array.from({ length: 256 }, (_, i) => i + 1));
    const s = wal.stats();
    expect(s.appends).toBe(256);
    expect(s.syncs).toBeLessThanOrEqual(4);
    expect(s.durableLsn).toBe(256);
    await wal.close();
    memory.close();
  });

  test("sync 'none' makes no fdatasync per batch", async () => {
    const fs = new FaultFileService(new MemoryFileService());
    const { wal, memory } = await openWal(fs, { sync: 'none' });
    for (let i = 0; i < 10; i++) await wal.append(1, enc('x'));
    expect(wal.stats().syncs).toBe(0);
    const before = fs.counts.get('datasync') ?? 0;
    await wal.close(); // a clean close still syncs once
    expect((fs.counts.get('datasync') ?? 0) - before).toBe(1);
    memory.close();
  });

  test('segments roll at the size limit; truncate removes only whole segments below the LSN', async () => {
    const fs = new MemoryFileService();
    const { wal, memory } = await openWal(fs, { segmentBytes: 4096 });
    const payload = new Uint8Array(1000).fill(7);
    for (let i = 0; i < 20; i++) await wal.append(1, payload);
    const segs = wal.segmentList();
    expect(segs.length).toBeGreaterThan(4);
    for (const s of segs) expect(s.bytes).toBeLessThanOrEqual(4096);
    expect(await fs.list('wal')).toEqual(segs.map((s) => segmentName(s.firstLsn)));
    // Nothing below LSN 2: the first segment still holds LSN 1..k with k >= 2.
    expect(await wal.truncate(2)).toBe(0);
    const third = segs[2]!.firstLsn;
    expect(await wal.truncate(third)).toBe(2);
    expect(wal.stats().oldestLsn).toBe(third);
    // The active segment is never removed, even below everything.
    expect(await wal.truncate(1_000_000)).toBe(segs.length - 3);
    expect(wal.stats().segments).toBe(1);
    expect(await wal.append(1, payload)).toBe(21);
    await wal.close();
    memory.close();
    const again = await openWal(fs);
    const records = await readAll(again.wal, wal.stats().oldestLsn);
    expect(records.at(-1)![0]).toBe(21);
    await again.wal.close();
    again.memory.close();
  });

  test('stats report bytes, segments, durable LSN and oldest retained LSN', async () => {
    const fs = new MemoryFileService();
    const { wal, memory } = await openWal(fs);
    await wal.append(1, enc('hello'));
    const s = wal.stats();
    expect(s).toMatchObject({ segments: 1, durableLsn: 1, nextLsn: 2, oldestLsn: 1, failed: false });
    expect(s.bytes).toBe(32 + 24 + 5);
    await wal.close();
    memory.close();
  });

  test('bad input is INVALID_ARGUMENT; after close, CLOSED', async () => {
    const { wal, memory } = await openWal(new MemoryFileService());
    expect(await codeOf(wal.append(1, 'text' as never))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(wal.append(256, enc('x')))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(wal.append(1.5, enc('x')))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(wal.append(1, { length: 2 ** 28 } as Uint8Array))).toBe('INVALID_ARGUMENT');
    expect(
      await codeOf(
        Wal.open({ fs: new MemoryFileService(), memory, logger, options: { sync: 'always' as never } }),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(
      await codeOf(Wal.open({ fs: new MemoryFileService(), memory, logger, options: { segmentBytes: 10 } })),
    ).toBe('INVALID_ARGUMENT');
    expect(await wal.append(1, enc('fine'))).toBe(1);
    await wal.close();
    expect(await codeOf(wal.append(1, enc('late')))).toBe('CLOSED');
    memory.close();
  });
});

/** A file service whose writes wait for the test to open a gate: to hold appends in the queue. */
class GatedFileService extends MemoryFileService {
  gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;
  close_() {
    this.gate = new Promise((r) => (this.openGate = r));
  }
  open_() {
    this.openGate();
  }
  override async open(
    path: string,
    mode: OpenMode,
    kind: FileKind,
    options?: OpenOptions,
  ): Promise<FileHandle> {
    const h = await super.open(path, mode, kind, options);
    const write = h.write.bind(h);
    h.write = async (src: Uint8Array, position: number) => {
      await this.gate;
      await write(src, position);
    };
    return h;
  }
}

describe('back-pressure', () => {
  test('the queue is bounded: past the bound appenders wait, and memory does not grow', async () => {
    const fs = new GatedFileService();
    const { wal, memory } = await openWal(fs, { queueBytesMax: 8192 });
    fs.close_();
    const payload = new Uint8Array(1000);
    const done: number[] = [];
    const appends = Array.from({ length: 100 }, () => wal.append(1, payload).then((lsn) => done.push(lsn)));
    await new Promise((r) => setTimeout(r, 50));
    // One batch is stuck in its durable write; at most queueBytesMax more wait in memory.
    const walBytes = memory.stats().pools.wal!.bytes;
    expect(wal.stats().queuedBytes).toBeLessThanOrEqual(8192 + 1024);
    expect(walBytes).toBeLessThanOrEqual(2 * (8192 + 1024) + 64 * 1024);
    expect(done.length).toBe(0);
    fs.open_();
    await Promise.all(appends);
    expect(done).toEqual(Array.from({ length: 100 }, (_, i) => i + 1)); // in order, none lost
    await wal.close();
    memory.close();
  });
});

describe('failures', () => {
  test('a failed durable write fails the batch and every later append with IO, releasing every buffer', async () => {
    const mem = new MemoryFileService();
    // Writes to wal/: 1 is the segment header, 2 the first batch, 3 the second.
    const fs = new FaultFileService(mem, { rules: [{ op: 'write', nth: 3, errno: 'EIO', path: 'wal/' }] });
    const { wal, memory } = await openWal(fs);
    expect(await wal.append(1, enc('kept'))).toBe(1);
    const results = await Promise.allSettled([wal.append(1, enc('lost-1')), wal.append(1, enc('lost-2'))]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(((r as PromiseRejectedResult).reason as TidemarkError).code).toBe('IO');
    }
    expect(await codeOf(wal.append(1, enc('after')))).toBe('IO');
    expect(wal.stats().failed).toBe(true);
    // No record buffer is kept on the error path (the reusable batch buffer stays until close).
    expect(
      memory
        .pool('wal')
        .ownerStats()
        .filter((o) => o.owner === 'wal.record'),
    ).toEqual([]);
    await wal.close();
    memory.close();
    // Reopened, the log holds the acknowledged record, and nothing of the failed batch.
    const again = await openWal(mem);
    expect(await readAll(again.wal)).toEqual([[1, 1, 'kept']]);
    expect(await again.wal.append(1, enc('next'))).toBe(2);
    await again.wal.close();
    again.memory.close();
  });

  test('a failed write (ENOSPC) is IO too, and so is a failed segment roll', async () => {
    for (const rule of [
      { op: 'write' as const, nth: 2, errno: 'ENOSPC' as const, path: 'wal/' },
      // Opens: 1 creates the first segment, 2 opens it for appending, 3 is the first roll.
      { op: 'open' as const, nth: 3, errno: 'EIO' as const, path: 'wal/' },
    ]) {
      const mem = new MemoryFileService();
      const fs = new FaultFileService(mem, { rules: [rule] });
      const { wal, memory } = await openWal(fs, { segmentBytes: 4096 });
      const acked: number[] = [];
      let failure: unknown;
      for (let i = 0; i < 20 && failure === undefined; i++) {
        try {
          acked.push(await wal.append(1, new Uint8Array(1500).fill(i)));
        } catch (e) {
          failure = e;
        }
      }
      expect((failure as TidemarkError).code).toBe('IO');
      expect((failure as TidemarkError).details?.['errno']).toBe(rule.errno);
      await wal.close();
      memory.close();
      const again = await openWal(mem);
      expect((await readAll(again.wal)).map((r) => r[0])).toEqual(acked);
      await again.wal.close();
      again.memory.close();
    }
  });
});

describe('recovery', () => {
  async function writeSome(fs: FileService, n: number, options: WalOptions = {}, pad = 0) {
    const { wal, memory } = await openWal(fs, options);
    for (let i = 1; i <= n; i++) await wal.append(1, enc(`record-${i}`.padEnd(pad, '.')));
    await wal.close();
    memory.close();
  }

  async function corrupt(fs: LocalFileService, path: string, f: (b: Buffer) => Buffer) {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const abs = fs.resolve(path);
    writeFileSync(abs, f(readFileSync(abs)));
  }

  function local() {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return new LocalFileService(t.dir);
  }

  test('a torn tail in the newest segment is cut off and appends continue after it', async () => {
    const fs = local();
    await writeSome(fs, 5);
    const seg = `wal/${segmentName(1)}`;
    await corrupt(fs, seg, (b) => b.subarray(0, b.length - 7)); // cut into the last record
    const { wal, memory } = await openWal(fs);
    expect(wal.recovery.tornTail).toMatchObject({ path: seg });
    expect((await readAll(wal)).map((r) => r[2])).toEqual(['record-1', 'record-2', 'record-3', 'record-4']);
    expect(await wal.append(1, enc('again'))).toBe(5);
    await wal.close();
    memory.close();
    const again = await openWal(fs);
    expect((await readAll(again.wal)).map((r) => r[2]).at(-1)).toBe('again');
    expect(again.wal.recovery.tornTail).toBeUndefined();
    await again.wal.close();
    again.memory.close();
  });

  test('garbage after the last record (a torn batch) is cut off', async () => {
    const fs = local();
    await writeSome(fs, 3);
    await corrupt(fs, `wal/${segmentName(1)}`, (b) => Buffer.concat([b, Buffer.alloc(100, 0xab)]));
    const { wal, memory } = await openWal(fs);
    expect(wal.recovery.tornTail?.bytes).toBe(100);
    expect((await readAll(wal)).length).toBe(3);
    await wal.close();
    memory.close();
  });

  test('damage to the last record is CORRUPTION, not a torn tail to cut: a flipped payload bit, a longer length', async () => {
    for (const damage of ['payload', 'length'] as const) {
      const fs = local();
      await writeSome(fs, 5);
      const seg = `wal/${segmentName(1)}`;
      const last = 32 + 4 * (24 + 'record-1'.length); // records 1-4 before it
      await corrupt(fs, seg, (b) => {
        if (damage === 'payload') b[last + 24 + 3]! ^= 0x04;
        else b.writeUInt32LE(b.readUInt32LE(last + 4) + 16, last + 4);
        return b;
      });
      const memory = new MemoryManager({ leakDetection: 'paranoid' });
      const err = (await Wal.open({ fs, memory, logger }).catch((e: unknown) => e)) as TidemarkError;
      expect(err.code, damage).toBe('CORRUPTION');
      expect(err.details, damage).toMatchObject({ file: seg, offset: last });
      memory.close();
      // An operator can still cut the log there, knowingly.
      const salvaged = await openWal(fs, { salvage: true });
      expect((await readAll(salvaged.wal)).length).toBe(4);
      await salvaged.wal.close();
      salvaged.memory.close();
    }
  });

  test('a last record with a sector the disk never wrote (all zeros) is a torn tail', async () => {
    const fs = local();
    await writeSome(fs, 3, {}, 2000);
    const seg = `wal/${segmentName(1)}`;
    const last = 32 + 2 * (24 + 2000);
    await corrupt(fs, seg, (b) => {
      const sector = Math.ceil((last + 100) / 512) * 512;
      b.fill(0, sector, sector + 512);
      return b;
    });
    const { wal, memory } = await openWal(fs);
    expect(wal.recovery.tornTail).toMatchObject({ path: seg, offset: last });
    expect((await readAll(wal)).length).toBe(2);
    await wal.close();
    memory.close();
  });

  test('a bad checksum followed by a later batch is CORRUPTION naming the file and offset', async () => {
    const fs = local();
    await writeSome(fs, 5);
    const seg = `wal/${segmentName(1)}`;
    // Flip a payload byte of record 2 (each record here is its own batch).
    const offset2 = 32 + (24 + 'record-1'.length);
    await corrupt(fs, seg, (b) => {
      b[offset2 + 24]! ^= 0xff;
      return b;
    });
    const memory = new MemoryManager({ leakDetection: 'paranoid' });
    const err = (await Wal.open({ fs, memory, logger }).catch((e: unknown) => e)) as TidemarkError;
    expect(err.code).toBe('CORRUPTION');
    expect(err.message).toContain(seg);
    expect(err.details).toMatchObject({ file: seg, offset: offset2 });
    memory.close(); // the failed open released what it read with
    expect(fs.handles.size).toBe(0);
  });

  test('corruption in an older segment is found by replay; salvage mode cuts the log there', async () => {
    const fs = local();
    await writeSome(fs, 30, { segmentBytes: 4096 }, 500);
    const names = await fs.list('wal');
    expect(names.length).toBeGreaterThan(2);
    const victim = `wal/${names[1]!}`;
    await corrupt(fs, victim, (b) => {
      b[32 + 30]! ^= 0x01;
      return b;
    });
    let { wal, memory } = await openWal(fs);
    const err = (await readAll(wal).catch((e: unknown) => e)) as TidemarkError;
    expect(err.code).toBe('CORRUPTION');
    expect(err.details).toMatchObject({ file: victim, offset: 32 });
    await wal.close();
    memory.close();
    ({ wal, memory } = await openWal(fs, { salvage: true }));
    expect(wal.recovery.salvaged).toMatchObject({ path: victim, offset: 32 });
    const kept = await readAll(wal);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.map((r) => r[0])).toEqual(kept.map((_, i) => i + 1));
    expect(await wal.append(1, enc('after salvage'))).toBe(kept.length + 1);
    await wal.close();
    memory.close();
  });

  test('a missing segment is an LSN gap: CORRUPTION', async () => {
    const fs = local();
    await writeSome(fs, 30, { segmentBytes: 4096 }, 500);
    const names = await fs.list('wal');
    await fs.delete(`wal/${names[1]!}`);
    const { wal, memory } = await openWal(fs);
    const err = (await readAll(wal).catch((e: unknown) => e)) as TidemarkError;
    expect(err.code).toBe('CORRUPTION');
    expect(err.message).toMatch(/LSN gap/);
    // The segment before the gap, and the one after it, are named.
    expect(err.details?.['file']).toBe(`wal/${names[0]!}`);
    expect(err.message).toContain(`wal/${names[2]!}`);
    await wal.close();
    memory.close();
  });

  test('a segment whose creation was torn is deleted at open', async () => {
    const fs = local();
    await writeSome(fs, 3);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(fs.resolve(`wal/${segmentName(4)}`), Buffer.from('TDMKW')); // a partial header
    const { wal, memory } = await openWal(fs);
    expect(wal.recovery.tornSegments).toEqual([`wal/${segmentName(4)}`]);
    expect((await readAll(wal)).length).toBe(3);
    expect(await wal.append(1, enc('x'))).toBe(4);
    await wal.close();
    memory.close();
  });

  test('startLsn past the end of the log starts a new segment there', async () => {
    const fs = new MemoryFileService();
    await writeSome(fs, 3);
    const memory = new MemoryManager();
    const wal = await Wal.open({ fs, memory, logger, startLsn: 100 });
    expect(await readAll(wal, 100)).toEqual([]);
    expect(await wal.append(1, enc('x'))).toBe(100);
    await wal.close();
    memory.close();
  });
});
