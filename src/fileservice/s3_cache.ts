import { constants as C, promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { ioError } from '../errors.js';
import type { FileKind } from './kinds.js';
import type { LocalFileService } from './local.js';
import type { HandleRegistry } from './registry.js';
import { CachedReadHandle } from './s3_handles.js';
import type { FileHandle } from './types.js';

interface CacheEntry {
  file: string;
  bytes: number;
  /** Read handles open on it: it is not evicted while any is. */
  readers: number;
  /** Dropped from the cache while read: removed when the last reader closes. */
  forgotten: boolean;
}

/**
 * Whole objects cached in local files under DIR/cache/, least recently used first out past
 * `limitBytes` (files open for reading stay until closed). Objects are immutable, so a cached copy is
 * never stale. Emptied at open: a partial download from a crash is never trusted.
 */
export class ObjectCache {
  /** In recency order: the first is the least recently used. */
  private readonly entries = new Map<string, CacheEntry>();
  private readonly loading = new Map<string, Promise<CacheEntry>>();
  private bytes = 0;
  readonly dir: string;

  constructor(
    local: LocalFileService,
    private readonly limitBytes: number,
    private readonly fetch: (path: string, file: string) => Promise<number>,
  ) {
    this.dir = local.resolve('cache');
  }

  stagingFile(path: string): string {
    return nodePath.join(this.dir, ...path.split('/'));
  }

  async reset(): Promise<void> {
    await fsp.rm(this.dir, { recursive: true, force: true });
    await fsp.mkdir(this.dir, { recursive: true });
    this.entries.clear();
    this.bytes = 0;
  }

  async openRead(path: string, kind: FileKind, registry: HandleRegistry): Promise<FileHandle> {
    const e = await this.get(path);
    e.readers++;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(e.file, C.O_RDONLY);
    } catch (err) {
      e.readers--;
      throw ioError('open', path, err);
    }
    return new CachedReadHandle(fh, path, kind, registry, registry.add(path, kind, 'read'), () =>
      this.closed(e),
    );
  }

  private async get(path: string): Promise<CacheEntry> {
    const hit = this.entries.get(path);
    if (hit !== undefined) {
      // Most recently used now.
      this.entries.delete(path);
      this.entries.set(path, hit);
      return hit;
    }
    let p = this.loading.get(path);
    if (p === undefined) {
      const file = this.stagingFile(path);
      p = this.fetch(path, file).then(
        (bytes) => {
          this.loading.delete(path);
          const e = this.insert(path, file, bytes);
          void this.evict();
          return e;
        },
        (e: unknown) => {
          this.loading.delete(path);
          throw e;
        },
      );
      this.loading.set(path, p);
    }
    return p;
  }

  async adopt(path: string, file: string, bytes: number): Promise<void> {
    this.insert(path, file, bytes);
    await this.evict();
  }

  private insert(path: string, file: string, bytes: number): CacheEntry {
    const e: CacheEntry = { file, bytes, readers: 0, forgotten: false };
    this.entries.set(path, e);
    this.bytes += bytes;
    return e;
  }

  private closed(e: CacheEntry): void {
    e.readers--;
    if (e.readers === 0 && e.forgotten) void fsp.rm(e.file, { force: true });
    else void this.evict();
  }

  async forget(path: string): Promise<void> {
    const e = this.entries.get(path);
    if (e === undefined) return;
    this.entries.delete(path);
    this.bytes -= e.bytes;
    if (e.readers > 0) e.forgotten = true;
    else await fsp.rm(e.file, { force: true });
  }

  private async evict(): Promise<void> {
    for (const [path, e] of this.entries) {
      if (this.bytes <= this.limitBytes) return;
      if (e.readers > 0) continue;
      this.entries.delete(path);
      this.bytes -= e.bytes;
      await fsp.rm(e.file, { force: true });
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.loading.values()]);
    this.entries.clear();
    this.bytes = 0;
  }

  stats(): { entries: number; bytes: number; limitBytes: number } {
    return { entries: this.entries.size, bytes: this.bytes, limitBytes: this.limitBytes };
  }
}
