import { TidemarkError } from '../errors.js';
import type { FileHandle, FileService } from '../fileservice/types.js';

interface Entry {
  handle: Promise<FileHandle>;
  refs: number;
  /** Close once the last reader is done (the object was deleted, or the cache closed). */
  doomed: boolean;
}

/**
 * Open handles of object files, shared by readers and bounded: at most `maxOpen` stay open when
 * idle, least recently used closed first. A handle is held (refs) for the duration of each read, so
 * it is never closed under a read. Counted in the file service's registry as kind `object`.
 */
export class ObjectFiles {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(
    private readonly fs: FileService,
    private readonly maxOpen = 256,
  ) {}

  get open(): number {
    return this.entries.size;
  }

  /** Read `dst.length` bytes at `position` of the object at `path`. */
  async read(path: string, dst: Uint8Array, position: number): Promise<number> {
    if (this.closed) throw new TidemarkError('CLOSED', 'object files are closed');
    let e = this.entries.get(path);
    if (e === undefined) {
      const opening = this.fs.open(path, 'read', 'object');
      e = { handle: opening, refs: 0, doomed: false };
      this.entries.set(path, e);
      opening.catch(() => {
        if (this.entries.get(path) === e) this.entries.delete(path);
      });
    } else {
      // Most recently used last.
      this.entries.delete(path);
      this.entries.set(path, e);
    }
    e.refs++;
    try {
      const h = await e.handle;
      return await h.read(dst, position);
    } finally {
      e.refs--;
      // Closing (this handle, doomed while it read, or idle ones past maxOpen) is housekeeping: its
      // failure must not turn this read's result, or its own error, into a close error.
      if (e.refs === 0 && e.doomed) await this.closeQuietly(path, e);
      else await this.trim();
    }
  }

  /** Handles whose close failed (read-only: nothing is lost; the handle is released all the same). */
  closeErrors = 0;

  private async closeQuietly(path: string, e: Entry): Promise<void> {
    try {
      await this.closeEntry(path, e);
    } catch {
      this.closeErrors++;
    }
  }

  /** The file size of an object (through a handle of its own: sizes are read once, at open). */
  async size(path: string): Promise<number> {
    const st = await this.fs.stat(path);
    if (st === undefined)
      throw new TidemarkError('CORRUPTION', `object ${path} is missing`, { details: { file: path } });
    return st.size;
  }

  /** Close the handle of `path` (now, or when its last read ends): the object is going away. */
  async forget(path: string): Promise<void> {
    const e = this.entries.get(path);
    if (e === undefined) return;
    e.doomed = true;
    if (e.refs === 0) await this.closeEntry(path, e);
  }

  private async trim(): Promise<void> {
    if (this.entries.size <= this.maxOpen) return;
    for (const [path, e] of this.entries) {
      if (this.entries.size <= this.maxOpen) break;
      if (e.refs === 0) await this.closeQuietly(path, e);
    }
  }

  private async closeEntry(path: string, e: Entry): Promise<void> {
    if (this.entries.get(path) === e) this.entries.delete(path);
    const h = await e.handle.catch(() => undefined);
    await h?.close();
  }

  /**
   * Close every handle; reads still running keep theirs until they finish. Every handle is closed
   * even if one fails; then the first failure is thrown.
   */
  async close(): Promise<void> {
    this.closed = true;
    let first: Error | undefined;
    for (const [path, e] of [...this.entries]) {
      e.doomed = true;
      if (e.refs === 0) {
        try {
          await this.closeEntry(path, e);
        } catch (err) {
          first ??= err instanceof Error ? err : new Error(String(err));
        }
      }
    }
    if (first !== undefined) throw first;
  }
}
