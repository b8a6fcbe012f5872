import { describe, expect, test } from 'vitest';
import { FaultFileService } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { ObjectFiles } from '../../src/objectio/files.js';

/**
 * The shared, bounded handles of object files: a read that succeeded is never turned into a failure
 * by closing a handle on its way out (an idle one trimmed past maxOpen, or its own, doomed while it
 * read), and a failed close still leaves no handle open.
 */
async function setup(): Promise<{ fs: FaultFileService; files: ObjectFiles }> {
  const fs = new FaultFileService(new MemoryFileService(), {
    rules: [{ op: 'close', nth: 1, errno: 'EIO', sticky: true, path: /\.obj$/ }],
  });
  await fs.writeFileAtomic('a.obj', [new Uint8Array([1, 2, 3, 4])], 'object');
  await fs.writeFileAtomic('b.obj', [new Uint8Array([5, 6, 7, 8])], 'object');
  return { fs, files: new ObjectFiles(fs, 1) };
}

describe('object file handles', () => {
  test('a read that trims an idle handle whose close fails still returns its bytes', async () => {
    const { fs, files } = await setup();
    const dst = new Uint8Array(4);
    expect(await files.read('a.obj', dst, 0)).toBe(4);
    // Past maxOpen (1): a.obj's idle handle is closed on b.obj's way out, and that close fails.
    expect(await files.read('b.obj', dst, 0)).toBe(4);
    expect([...dst]).toEqual([5, 6, 7, 8]);
    expect(fs.injected.map((s) => s.op)).toContain('close');
    expect(files.closeErrors).toBe(1);
    // b.obj's handle, closed now, fails too (the fault is sticky); it is released all the same.
    await expect(files.close()).rejects.toMatchObject({ code: 'IO' });
    fs.handles.check('object files');
  });

  test('a read whose own handle was doomed while it ran, and fails to close, still returns its bytes', async () => {
    const { fs, files } = await setup();
    const dst = new Uint8Array(4);
    const reading = files.read('a.obj', dst, 0);
    await files.forget('a.obj'); // the object is going away: close once the read is done
    expect(await reading).toBe(4);
    expect([...dst]).toEqual([1, 2, 3, 4]);
    expect(files.closeErrors).toBe(1);
    expect(files.open).toBe(0);
    await files.close();
    fs.handles.check('object files');
  });

  test('closing all tries every handle, then reports the first failure', async () => {
    const { fs, files } = await setup();
    const big = new ObjectFiles(fs, 8);
    await big.read('a.obj', new Uint8Array(4), 0);
    await big.read('b.obj', new Uint8Array(4), 0);
    await expect(big.close()).rejects.toMatchObject({ code: 'IO' });
    expect(big.open).toBe(0);
    await files.close();
    fs.handles.check('object files');
  });

  test('a failed read keeps its own error, not a close error', async () => {
    const fs = new FaultFileService(new MemoryFileService(), {
      rules: [
        { op: 'read', nth: 1, errno: 'EIO' },
        { op: 'close', nth: 1, errno: 'EIO', sticky: true, path: /\.obj$/ },
      ],
    });
    await fs.writeFileAtomic('a.obj', [new Uint8Array([1, 2, 3, 4])], 'object');
    const files = new ObjectFiles(fs, 1);
    const reading = files.read('a.obj', new Uint8Array(4), 0);
    await files.forget('a.obj');
    await expect(reading).rejects.toMatchObject({
      code: 'IO',
      message: expect.stringMatching(/^read a\.obj/),
    });
    expect(fs.injected.map((s) => s.op)).toEqual(['read', 'close']);
    await files.close();
    fs.handles.check('object files');
  });
});
