import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import { TidemarkError } from '../errors.js';
import { parentOf, tempNameFor } from './paths.js';
import type { FileService } from './types.js';
import type { FileKind } from './kinds.js';

/**
 * The atomic whole-file write every FileService offers, built from its primitive steps so that a
 * fault-injecting wrapper can fail or crash each step in turn: create a temporary file, write,
 * fsync, close, rename over the target, fsync the directory. On an error the temporary is removed.
 */
export async function writeFileAtomicVia(
  fs: FileService,
  path: string,
  chunks: readonly Uint8Array[],
  kind: FileKind,
): Promise<void> {
  const tmp = tempNameFor(path, fs.tempTag?.());
  const h = await fs.open(tmp, 'create-new', kind);
  let ok = false;
  try {
    let pos = 0;
    for (const c of chunks) {
      await h.write(c, pos);
      pos += c.length;
    }
    await h.datasync();
    ok = true;
  } finally {
    if (!ok) {
      await h.close().catch(() => undefined);
      await fs.delete(tmp).catch(() => undefined);
    }
  }
  await h.close();
  try {
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.delete(tmp).catch(() => undefined);
    throw e;
  }
  await fs.syncDir(parentOf(path));
}

/**
 * Read a whole file into a buffer from `pool`. The caller owns the buffer and releases it; on every
 * error path the buffer is released and the handle closed here.
 */
export async function readFileInto(
  fs: FileService,
  path: string,
  kind: FileKind,
  pool: MemoryPool,
  owner: string,
): Promise<PooledBuffer> {
  const h = await fs.open(path, 'read', kind);
  let buf: PooledBuffer | undefined;
  let out: PooledBuffer | undefined;
  try {
    const size = await h.size();
    buf = await pool.allocate(size, owner);
    const n = await h.read(buf.bytes, 0);
    if (n !== size) {
      throw new TidemarkError('IO', `short read of ${path}: ${n} of ${size} bytes`, {
        details: { path, expected: size, read: n },
      });
    }
    out = buf;
    buf = undefined;
  } finally {
    buf?.release();
    try {
      await h.close();
    } catch (e) {
      out?.release();
      // eslint-disable-next-line no-unsafe-finally
      throw e;
    }
  }
  return out;
}
