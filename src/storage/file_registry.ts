import { TidemarkError } from '../errors.js';
import { isTempName } from '../fileservice/paths.js';
import type { FileService } from '../fileservice/types.js';
import type { Logger } from '../log.js';
import type { ObjectFiles } from '../objectio/files.js';
import { OBJ_DIR, objectPath, parseObjectName } from '../objectio/format.js';

/** Who holds an object file: a table's layer, a retained checkpoint, or the job writing it. */
export type FileHolder = 'layer' | 'checkpoint' | 'writer';

/** References to one file, by holder. */
type Entry = Record<FileHolder, number>;

/** A set of references taken together (a checkpoint's files, a job's new objects): let go at once. */
export interface FileHold {
  readonly ids: ReadonlySet<number>;
  /** Drop these references; resolves with the paths deleted (files no one else held) once gone. */
  release(): Promise<string[]>;
}

export interface FileRegistryStats {
  files: number;
  held: Record<FileHolder, number>;
  deleted: number;
  deleteFailures: number;
}

/**
 * Every object file of the database, reference counted, in the manner of LevelDB's VersionSet: a
 * file lives while anything holds it — the table layer it belongs to (and, through the layer's own
 * count, every reader that pins that layer), each retained checkpoint that names it, and the job
 * writing it until it is published. When the last holder lets go, the registry deletes it. This is
 * the one place object files are deleted: after a merge, a drop, a failed flush, a checkpoint that
 * is no longer retained, and at open for files nothing names (a crash's leftovers).
 *
 * Ids are allocated here and never reused. At quiescence the registry equals a listing of obj/.
 * A registry that does not own its files (a read replica's: they are the writer's) never deletes;
 * nor does one that is shutting down (closing lets go of everything, and deletes nothing).
 */
export class ObjectFileRegistry {
  private readonly entries = new Map<number, Entry>();
  private nextId = 1;
  /** Deletions and handle closes in flight (see settle). */
  private readonly pending = new Set<Promise<void>>();
  /** Files nothing holds whose deletion failed: still on disk, retried by `retryDeletes`. */
  private readonly undeleted = new Set<number>();
  private shuttingDown = false;
  private readonly counters = { deleted: 0, deleteFailures: 0 };

  constructor(
    private readonly fs: FileService,
    private readonly handles: ObjectFiles,
    private readonly logger: Logger,
    /** false on a read replica: the files are the writer's. */
    private readonly owns: boolean,
  ) {}

  /** A new object id, held by the job that writes it (release that hold once it is published). */
  allocate(): number {
    const id = this.nextId++;
    this.ref(id, 'writer');
    return id;
  }

  /** The next id to allocate (checkpoints record it). */
  get next(): number {
    return this.nextId;
  }

  /** Ids named by a checkpoint, a log record or a listing are never allocated again. */
  seen(id: number): void {
    if (id >= this.nextId) this.nextId = id + 1;
  }

  ref(id: number, holder: FileHolder): void {
    if (id === 0) return;
    this.seen(id);
    let e = this.entries.get(id);
    if (e === undefined) {
      e = { layer: 0, checkpoint: 0, writer: 0 };
      this.entries.set(id, e);
    }
    e[holder]++;
  }

  /** Drop one of `holder`'s references to `id`: true when nothing holds it any more (it leaves). */
  private drop(id: number, e: Entry, holder: FileHolder): boolean {
    e[holder]--;
    if (e.layer + e.checkpoint + e.writer > 0) return false;
    this.entries.delete(id);
    return true;
  }

  /**
   * Let go of one reference; the last one deletes the file (in the background: `settle` waits).
   * Resolves once that deletion is done, with whether it deleted the file.
   */
  unref(id: number, holder: FileHolder): Promise<boolean> {
    if (id === 0) return Promise.resolve(false);
    const e = this.entries.get(id);
    if (e === undefined || e[holder] <= 0)
      throw new TidemarkError('REFCOUNT', `object ${id} released by a ${holder} that does not hold it`);
    const last = this.drop(id, e, holder);
    // No layer reads it any more: its shared read handle closes (now, or after the last read).
    if (holder === 'layer' && e.layer === 0) this.track(this.handles.forget(objectPath(id)));
    if (!last || !this.owns || this.shuttingDown) return Promise.resolve(false);
    return this.remove(id);
  }

  /** Background work (handle closes, deletions) that `settle` waits for. */
  private track(p: Promise<unknown>): void {
    const tracked = p.then(
      () => undefined,
      (e: unknown) => this.logger.warn({ err: e }, 'closing an object file handle failed'),
    );
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  /**
   * Take a reference on each of `ids` as one hold. A registry that does not own its files (a
   * replica's) takes none: the writer decides when they go, and the replica does not list them.
   */
  hold(ids: Iterable<number>, holder: FileHolder): FileHold {
    const set = new Set<number>();
    if (this.owns) for (const id of ids) if (id !== 0) set.add(id);
    for (const id of set) this.ref(id, holder);
    let released = false;
    return {
      ids: set,
      release: async () => {
        if (released) return [];
        released = true;
        const gone = await Promise.all([...set].map(async (id) => ((await this.unref(id, holder)) ? id : 0)));
        const paths = gone.filter((id) => id !== 0).map(objectPath);
        if (paths.length > 0) await this.fs.syncDir(OBJ_DIR);
        return paths;
      },
    };
  }

  /**
   * Forget a file without deleting it: a FLUSH or MERGE record whose append failed with the log may
   * be in the file, and a reopen decides (the open deletes it if no durable record names it).
   */
  abandon(id: number, holder: FileHolder): void {
    const e = this.entries.get(id);
    if (e !== undefined && e[holder] > 0) this.drop(id, e, holder);
  }

  private remove(id: number): Promise<boolean> {
    const path = objectPath(id);
    const done = (async () => {
      try {
        await this.handles.forget(path);
        // (An unfinished file its writer deleted itself is not there: not counted.)
        if (await this.fs.delete(path)) this.counters.deleted++;
        return true;
      } catch (e) {
        this.counters.deleteFailures++;
        this.undeleted.add(id);
        this.logger.warn(
          { err: e, path },
          'could not delete an object file; retried after the next checkpoint',
        );
        return false;
      }
    })();
    this.track(done);
    return done;
  }

  /** Try again the deletions that failed. Returns the paths deleted now. */
  async retryDeletes(): Promise<string[]> {
    const gone: string[] = [];
    if (!this.owns || this.shuttingDown) return gone;
    for (const id of [...this.undeleted]) {
      const path = objectPath(id);
      await this.handles.forget(path);
      await this.fs.delete(path);
      this.undeleted.delete(id);
      this.counters.deleted++;
      gone.push(path);
    }
    if (gone.length > 0) await this.fs.syncDir(OBJ_DIR);
    return gone;
  }

  /**
   * At open, once every layer and retained checkpoint holds its files: delete the files in obj/
   * nothing holds (a crash's leftovers, deletions a crash interrupted). Files that are not objects
   * are left alone, with a warning (temporaries go). Returns the paths deleted.
   */
  async removeUnheld(): Promise<string[]> {
    const orphans: string[] = [];
    for (const name of await this.fs.list(OBJ_DIR)) {
      const id = parseObjectName(name);
      if (id !== undefined) {
        this.seen(id);
        if (this.entries.has(id)) continue;
      } else if (!isTempName(name)) {
        this.logger.warn({ file: `${OBJ_DIR}/${name}` }, 'leaving a file in obj/ that is not an object');
        continue;
      }
      if (!this.owns) continue;
      await this.fs.delete(`${OBJ_DIR}/${name}`);
      orphans.push(`${OBJ_DIR}/${name}`);
    }
    if (orphans.length > 0) await this.fs.syncDir(OBJ_DIR);
    return orphans;
  }

  /** Paths of every object file on disk the registry knows: held, or waiting for a retried delete. */
  paths(): string[] {
    return [...this.entries.keys(), ...this.undeleted].sort((a, b) => a - b).map(objectPath);
  }

  /** Whether something holds `id`, and what. */
  holders(id: number): Record<FileHolder, number> | undefined {
    const e = this.entries.get(id);
    return e === undefined ? undefined : { ...e };
  }

  stats(): FileRegistryStats {
    const held: Record<FileHolder, number> = { layer: 0, checkpoint: 0, writer: 0 };
    for (const e of this.entries.values())
      for (const k of Object.keys(held) as FileHolder[]) if (e[k] > 0) held[k]++;
    return { files: this.entries.size + this.undeleted.size, held, ...this.counters };
  }

  /** Resolves when no deletion is in flight. */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** From now on letting go deletes nothing: the database is closing (its files stay). */
  shutdown(): void {
    this.shuttingDown = true;
  }
}
