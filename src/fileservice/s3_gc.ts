import type { BucketClient, ObjectStoreCounters } from './s3_requests.js';

/** Deletions waiting for their grace period: `gc/<when, 16 hex digits>-<path, '/' as '!'>`. */
const GC_DIR = 'gc';
const gcMarker = (dueMs: number, path: string) =>
  `${GC_DIR}/${dueMs.toString(16).padStart(16, '0')}-${path.replace(/\//g, '!')}`;
function parseGcMarker(name: string): { dueMs: number; path: string } | undefined {
  const m = /^([0-9a-f]{16})-(.+)$/.exec(name);
  return m === null ? undefined : { dueMs: Number.parseInt(m[1]!, 16), path: m[2]!.replace(/!/g, '/') };
}

/**
 * Files the writer deleted, kept in the bucket for their grace period so that read replicas still on
 * an older checkpoint can read them: gone for the writer at once, each named by a marker under `gc/`
 * that says when it is due, and deleted by a sweep once it is.
 */
export class GraceDeletes {
  /** Paths deleted and waiting for their grace period: gone for the writer, still there for replicas. */
  private readonly hidden = new Map<string, string>();
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly client: BucketClient,
    private readonly counters: ObjectStoreCounters,
  ) {}

  /** Whether `path` was deleted and waits for its grace period. */
  has(path: string): boolean {
    return this.hidden.has(path);
  }

  /** How many deletions wait for their grace period. */
  get size(): number {
    return this.hidden.size;
  }

  /** Delete `path` for the writer now, in the bucket once `graceMs` have passed (its marker first). */
  async hide(path: string, graceMs: number): Promise<void> {
    const marker = gcMarker(Date.now() + graceMs, path);
    await this.client.putNew(marker, Buffer.alloc(0));
    this.hidden.set(path, marker);
  }

  /** Delete a path waiting for its grace period, and its marker, now. */
  async purge(path: string): Promise<void> {
    const marker = this.hidden.get(path)!;
    await this.client.deleteRaw(path);
    await this.client.deleteRaw(marker);
    this.hidden.delete(path);
  }

  /** Take up the deletions whose markers are in the bucket (a writer taking the prefix). */
  async load(): Promise<void> {
    for (const name of await this.listGc()) {
      const g = parseGcMarker(name);
      if (g !== undefined) this.hidden.set(g.path, `${GC_DIR}/${name}`);
    }
  }

  private listGc(): Promise<string[]> {
    return this.client.listKeys(GC_DIR);
  }

  /** Delete what passed its grace period (the object, then its marker). One sweep at a time. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        const now = Date.now();
        for (const name of await this.listGc()) {
          const g = parseGcMarker(name);
          if (g === undefined) continue;
          if (g.dueMs > now) break; // sorted by due time
          await this.client.deleteRaw(g.path);
          await this.client.deleteRaw(`${GC_DIR}/${name}`);
          this.hidden.delete(g.path);
          this.counters.collected++;
        }
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  /** The sweep under way, if any, settled (never rejects). */
  settled(): Promise<void> | undefined {
    return this.sweeping?.catch(() => undefined);
  }
}
