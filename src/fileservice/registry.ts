import { LeakError, type LeakHolder } from '../errors.js';
import { captureSite, type Site } from '../mem/leak_detector.js';
import { FILE_KINDS, type FileKind, type OpenMode } from './kinds.js';

export interface OpenFileInfo {
  id: number;
  path: string;
  kind: FileKind;
  mode: OpenMode;
  openedAtMs: number;
  /** Where it was opened (always recorded: opens are rare next to buffer allocations). */
  stack: string;
}

class Entry {
  constructor(
    readonly id: number,
    readonly path: string,
    readonly kind: FileKind,
    readonly mode: OpenMode,
    readonly openedAtMs: number,
    readonly site: Site,
  ) {}
}

/**
 * Every open file handle of a FileService, with where it was opened. The counts per kind feed the
 * `tidemark_open_files{kind}` metric; `check()` is what `close()` uses to prove nothing is open.
 */
export class HandleRegistry {
  private readonly open = new Map<number, Entry>();
  private nextId = 1;
  private opened = 0;
  private closed = 0;

  /** @internal Record an open handle; returns the id to pass to `remove`. */
  add(path: string, kind: FileKind, mode: OpenMode): number {
    const id = this.nextId++;
    this.open.set(id, new Entry(id, path, kind, mode, Date.now(), captureSite(`opened ${path}`)));
    this.opened++;
    return id;
  }

  /** @internal */
  remove(id: number): void {
    if (this.open.delete(id)) this.closed++;
  }

  /** @internal Forget every handle without closing it (the simulated process died). */
  forgetAll(): void {
    this.open.clear();
  }

  get size(): number {
    return this.open.size;
  }

  counts(): Record<FileKind, number> {
    const out = Object.fromEntries(FILE_KINDS.map((k) => [k, 0])) as Record<FileKind, number>;
    for (const e of this.open.values()) out[e.kind]++;
    return out;
  }

  totals(): { open: number; opened: number; closed: number } {
    return { open: this.open.size, opened: this.opened, closed: this.closed };
  }

  list(): OpenFileInfo[] {
    return [...this.open.values()].map((e) => ({
      id: e.id,
      path: e.path,
      kind: e.kind,
      mode: e.mode,
      openedAtMs: e.openedAtMs,
      stack: e.site.describe(),
    }));
  }

  holders(): LeakHolder[] {
    return this.list().map((f) => ({
      scope: `file:${f.kind}`,
      owner: f.path,
      count: 1,
      bytes: 0,
      stack: f.stack,
    }));
  }

  /** Throw a LeakError naming each handle still open and where it was opened. */
  check(what = 'file handles'): void {
    const holders = this.holders();
    if (holders.length > 0) throw new LeakError(what, holders);
  }
}
