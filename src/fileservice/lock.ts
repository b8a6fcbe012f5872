import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { errnoOf, TidemarkError } from '../errors.js';
import type { DirectoryLock, FileHandle, FileService } from './types.js';

/**
 * How a database directory is locked against a second opener.
 *
 * - `socket` (Linux, the default there): the lock is a Unix socket bound in the abstract namespace
 *   under a name derived from the directory's device and inode. Binding is atomic, a second bind
 *   fails with EADDRINUSE, and the kernel drops the binding when the process dies, even by SIGKILL,
 *   so a crashed process can never leave a stale lock behind.
 * - `pidfile` (elsewhere): LOCK is created exclusively and holds the owner's pid; a LOCK whose pid
 *   is no longer running is stale and is taken over. Two processes taking over the same stale LOCK
 *   at the same instant are resolved by an atomic rename, checked by content.
 *
 * Either way `DIR/LOCK` exists while the database is open, held open by the owner and holding its
 * pid and host, for people and `tidemark inspect`. Opening the same directory twice in one process
 * is refused before any of this, by an in-process table.
 */
export type LockMethod = 'socket' | 'pidfile';

/**
 * The directory a lock is taken in: a file service on local disk (LocalFileService), which can name
 * the absolute path of its files.
 */
export interface LocalDirectory extends FileService {
  /** The absolute path of a checked relative path. */
  resolve(path: string): string;
}

const LOCK_FILE = 'LOCK';
const heldInProcess = new Set<string>();

export async function acquireLocalLock(fs: LocalDirectory, method: LockMethod): Promise<DirectoryLock> {
  const real = await fsp.realpath(fs.root);
  if (heldInProcess.has(real)) {
    throw new TidemarkError('LOCKED', `database directory ${fs.root} is already open in this process`, {
      details: { dir: fs.root, pid: process.pid },
    });
  }
  heldInProcess.add(real);
  try {
    const release = method === 'socket' ? await lockBySocket(fs, real) : await lockByPidFile(fs);
    let released = false;
    return {
      path: `${fs.root}/${LOCK_FILE}`,
      release: async () => {
        if (released) return;
        released = true;
        try {
          await release();
        } finally {
          heldInProcess.delete(real);
        }
      },
    };
  } catch (e) {
    heldInProcess.delete(real);
    throw e;
  }
}

function ownerLine(): string {
  return `pid=${process.pid}\nhost=${os.hostname()}\nsince=${new Date().toISOString()}\n`;
}

async function lockBySocket(fs: LocalDirectory, real: string): Promise<() => Promise<void>> {
  const st = await fsp.stat(real);
  const key = createHash('sha256').update(`${st.dev}:${st.ino}:${real}`).digest('hex').slice(0, 40);
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      server.close();
      if (errnoOf(e) === 'EADDRINUSE') {
        readText(fs.resolve(LOCK_FILE)).then(
          (text) => reject(lockedError(fs, text)),
          () => reject(lockedError(fs)),
        );
      } else reject(new TidemarkError('IO', `cannot lock ${fs.root}: ${e.message}`, { cause: e }));
    };
    server.once('error', onError);
    server.listen({ path: `\0tidemark-lock-${key}`, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // The socket must not keep the process alive: the database's own work decides that.
  server.unref();
  let handle: FileHandle;
  try {
    handle = await writeOwner(fs);
  } catch (e) {
    await closeServer(server);
    throw e;
  }
  return async () => {
    try {
      await handle.close();
    } finally {
      await closeServer(server);
    }
  };
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function writeOwner(fs: LocalDirectory): Promise<FileHandle> {
  const handle = await fs.open(LOCK_FILE, 'create', 'lock');
  try {
    const text = Buffer.from(ownerLine());
    await handle.truncate(0);
    await handle.write(text, 0);
    return handle;
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw e;
  }
}

async function lockByPidFile(fs: LocalDirectory): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    let handle: FileHandle;
    try {
      handle = await fs.open(LOCK_FILE, 'create-new', 'lock');
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST') throw e;
      const text = await readText(fs.resolve(LOCK_FILE));
      const pid = parsePid(text);
      if (pid !== undefined && pid !== process.pid && isAlive(pid)) throw lockedError(fs, text);
      // Stale: move it aside atomically, and make sure what we moved is what we judged stale.
      const aside = `${LOCK_FILE}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        await fs.rename(LOCK_FILE, aside);
      } catch (e2) {
        if (errnoOf(e2) === 'ENOENT') continue; // someone else moved it: race again for create-new
        throw e2;
      }
      const moved = await readText(fs.resolve(aside));
      await fs.delete(aside);
      if (moved !== text) throw lockedError(fs, moved);
      continue;
    }
    try {
      await handle.write(Buffer.from(ownerLine()), 0);
      await handle.datasync();
    } catch (e) {
      await handle.close().catch(() => undefined);
      await fs.delete(LOCK_FILE).catch(() => undefined);
      throw e;
    }
    return async () => {
      try {
        await handle.close();
      } finally {
        await fs.delete(LOCK_FILE);
      }
    };
  }
  throw lockedError(fs);
}

async function readText(abs: string): Promise<string> {
  try {
    return await fsp.readFile(abs, 'utf8');
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return '';
    throw e;
  }
}

function parsePid(text: string): number | undefined {
  const m = /^pid=(\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoOf(e) === 'EPERM'; // it exists, it is just not ours
  }
}

function lockedError(fs: LocalDirectory, text?: string): TidemarkError {
  const owner = text !== undefined ? parsePid(text) : undefined;
  const who = owner !== undefined ? ` (held by pid ${owner})` : ' (held by another process)';
  return new TidemarkError('LOCKED', `database directory ${fs.root} is locked${who}`, {
    details: { dir: fs.root, ...(owner !== undefined ? { pid: owner } : {}) },
  });
}
