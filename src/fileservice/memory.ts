import { ioError, TidemarkError } from '../errors.js';
import { Rng } from '../util/random.js';
import { baseName, checkPath, joinPath } from './paths.js';
import { HandleRegistry } from './registry.js';
import type {
  CrashReport,
  CrashableFileService,
  DirectoryLock,
  FileHandle,
  FileStat,
  OpenOptions,
} from './types.js';
import type { FileKind, OpenMode } from './kinds.js';
import { writeFileAtomicVia } from './util.js';

/** One write (or truncate) not yet made durable by a datasync, with what it overwrote. */
interface PendingWrite {
  offset: number;
  length: number;
  /** The file size before the write. */
  prevSize: number;
  /** The bytes in [offset, min(offset + length, prevSize)) before the write (a truncate: the cut tail). */
  before: Uint8Array;
}

class MemFile {
  data = new Uint8Array(0);
  size = 0;
  pending: PendingWrite[] = [];

  ensure(capacity: number): void {
    if (capacity <= this.data.length) return;
    const next = new Uint8Array(Math.max(capacity, this.data.length * 2, 256));
    next.set(this.data.subarray(0, this.size));
    this.data = next;
  }

  write(src: Uint8Array, position: number): void {
    const end = position + src.length;
    const overlapEnd = Math.min(end, this.size);
    const before = overlapEnd > position ? this.data.slice(position, overlapEnd) : new Uint8Array(0);
    this.pending.push({ offset: position, length: src.length, prevSize: this.size, before });
    this.ensure(end);
    // A write past the end leaves a hole of zeros, as on disk.
    if (position > this.size) this.data.fill(0, this.size, position);
    this.data.set(src, position);
    if (end > this.size) this.size = end;
  }

  truncate(length: number): void {
    const prevSize = this.size;
    if (length < prevSize) {
      const before = this.data.slice(length, prevSize);
      this.pending.push({ offset: length, length: 0, prevSize, before });
      this.size = length;
    } else if (length > prevSize) {
      this.pending.push({ offset: prevSize, length: length - prevSize, prevSize, before: new Uint8Array(0) });
      this.ensure(length);
      this.data.fill(0, prevSize, length);
      this.size = length;
    }
  }

  /** Undo pending write `w` from byte `from` of it onward (from = 0: entirely). */
  private undo(w: PendingWrite, from: number): void {
    if (w.length === 0) {
      // A shrinking truncate: put the cut tail back.
      this.ensure(w.prevSize);
      this.data.set(w.before, w.offset);
      this.size = w.prevSize;
      return;
    }
    const start = w.offset + from;
    if (from < w.before.length) this.data.set(w.before.subarray(from), start);
    // A torn write that reached past the old end still extended the file up to where it tore.
    this.size = from === 0 ? w.prevSize : Math.max(w.prevSize, start);
  }

  /** Apply the crash model: keep `kept` pending writes, tear the last kept one at `tornAt` bytes. */
  crash(kept: number, tornAt: number | null): void {
    for (let i = this.pending.length - 1; i >= kept; i--) this.undo(this.pending[i]!, 0);
    if (tornAt !== null && kept > 0) this.undo(this.pending[kept - 1]!, tornAt);
    this.pending = [];
  }
}

type DirOp =
  | { type: 'set'; name: string; node: MemNode }
  | { type: 'delete'; name: string }
  | { type: 'rename'; from: string; to: string; node: MemNode };

class MemDir {
  entries = new Map<string, MemNode>();
  durable = new Map<string, MemNode>();
  pending: DirOp[] = [];

  set(name: string, node: MemNode): void {
    this.entries.set(name, node);
    this.pending.push({ type: 'set', name, node });
  }

  delete(name: string): void {
    this.entries.delete(name);
    this.pending.push({ type: 'delete', name });
  }

  sync(): void {
    this.durable = new Map(this.entries);
    this.pending = [];
  }

  crash(kept: number): void {
    const e = new Map(this.durable);
    for (const op of this.pending.slice(0, kept)) {
      if (op.type === 'set') e.set(op.name, op.node);
      else if (op.type === 'delete') e.delete(op.name);
      else {
        e.delete(op.from);
        e.set(op.to, op.node);
      }
    }
    this.entries = e;
    this.durable = new Map(e);
    this.pending = [];
  }
}

type MemNode = MemFile | MemDir;

/**
 * An in-memory FileService for fast tests, which also models durability: it knows which writes and
 * directory entries were fsynced, so `crash(seed)` can produce what a machine would find on disk
 * after losing power. Deterministic for a seed.
 */
export class MemoryFileService implements CrashableFileService {
  readonly root: string;
  private tempSeq = 0;
  readonly handles = new HandleRegistry();
  private top = new MemDir();
  /** Bumped by a crash: handles of an earlier generation belong to a dead process. */
  private generation = 0;
  private locked = false;
  private static nextId = 1;

  constructor(name?: string) {
    this.root = `memory:${name ?? MemoryFileService.nextId++}`;
    this.top.sync();
  }

  async open(path: string, mode: OpenMode, kind: FileKind, options: OpenOptions = {}): Promise<FileHandle> {
    const generation = this.generation;
    const segs = checkPath(path);
    if (segs.length === 0) throw notFile(path);
    const dir = this.dirOf(segs, 'open', path);
    const name = segs[segs.length - 1]!;
    let node = dir.entries.get(name);
    if (node instanceof MemDir) throw errno('open', path, 'EISDIR');
    if (node === undefined) {
      if (mode === 'read' || mode === 'readwrite') throw errno('open', path, 'ENOENT');
      node = new MemFile();
      dir.set(name, node);
    } else if (mode === 'create-new') {
      throw errno('open', path, 'EEXIST');
    }
    await Promise.resolve();
    // A crash while this open was under way: the process that asked is gone, and so is its handle
    // (registering it now would count it against whoever opens the directory next).
    this.checkGeneration(generation, path);
    const id = this.handles.add(path, kind, mode);
    return new MemHandle(this, node, path, kind, mode === 'read', id, generation, options.sync === true);
  }

  async writeFileAtomic(path: string, chunks: readonly Uint8Array[], kind: FileKind): Promise<void> {
    checkPath(path);
    await writeFileAtomicVia(this, path, chunks, kind);
  }

  async list(dir: string): Promise<string[]> {
    const node = this.lookup(checkPath(dir));
    await Promise.resolve();
    if (node === undefined) return [];
    if (!(node instanceof MemDir)) throw errno('list', dir, 'ENOTDIR');
    return [...node.entries.keys()].sort();
  }

  async stat(path: string): Promise<FileStat | undefined> {
    const node = this.lookup(checkPath(path));
    await Promise.resolve();
    if (node === undefined) return undefined;
    return node instanceof MemDir ? { size: 0, isDirectory: true } : { size: node.size, isDirectory: false };
  }

  async rename(from: string, to: string): Promise<void> {
    const a = checkPath(from);
    const b = checkPath(to);
    if (a.length === 0 || b.length === 0) throw errno('rename', `${from} -> ${to}`, 'EBUSY');
    const src = this.dirOf(a, 'rename', from);
    const dst = this.dirOf(b, 'rename', to);
    const node = src.entries.get(a[a.length - 1]!);
    if (node === undefined) throw errno('rename', `${from} -> ${to}`, 'ENOENT');
    const target = dst.entries.get(b[b.length - 1]!);
    if (target instanceof MemDir) throw errno('rename', `${from} -> ${to}`, 'EISDIR');
    await Promise.resolve();
    if (src === dst) {
      src.entries.delete(baseName(from));
      src.entries.set(baseName(to), node);
      src.pending.push({ type: 'rename', from: baseName(from), to: baseName(to), node });
    } else {
      // Across directories each side's entry is durable only when its own directory is synced.
      src.delete(baseName(from));
      dst.set(baseName(to), node);
    }
  }

  async delete(path: string): Promise<boolean> {
    const segs = checkPath(path);
    if (segs.length === 0) throw errno('delete', path, 'EISDIR');
    const dir = this.lookup(segs.slice(0, -1));
    await Promise.resolve();
    if (!(dir instanceof MemDir)) return false;
    const name = segs[segs.length - 1]!;
    const node = dir.entries.get(name);
    if (node === undefined) return false;
    if (node instanceof MemDir) throw errno('delete', path, 'EISDIR');
    dir.delete(name);
    return true;
  }

  async mkdir(dirPath: string): Promise<void> {
    const segs = checkPath(dirPath);
    await Promise.resolve();
    let dir = this.top;
    for (const s of segs) {
      const next = dir.entries.get(s);
      if (next instanceof MemFile) throw errno('mkdir', dirPath, 'ENOTDIR');
      if (next === undefined) {
        const made = new MemDir();
        dir.set(s, made);
        dir = made;
      } else {
        dir = next;
      }
    }
  }

  async syncDir(dirPath: string): Promise<void> {
    const node = this.lookup(checkPath(dirPath));
    await Promise.resolve();
    if (node === undefined) throw errno('fsync directory', dirPath, 'ENOENT');
    if (!(node instanceof MemDir)) throw errno('fsync directory', dirPath, 'ENOTDIR');
    node.sync();
  }

  async lock(): Promise<DirectoryLock> {
    if (this.locked) {
      throw new TidemarkError('LOCKED', `database ${this.root} is already open`, {
        details: { dir: this.root },
      });
    }
    this.locked = true;
    let handle: FileHandle;
    try {
      handle = await this.open('LOCK', 'create', 'lock');
      await handle.truncate(0);
      await handle.write(new TextEncoder().encode(`pid=${process.pid}\n`), 0);
    } catch (e) {
      this.locked = false;
      throw e;
    }
    const generation = this.generation;
    return {
      path: `${this.root}/LOCK`,
      release: async () => {
        if (generation !== this.generation) return; // a crash released it already
        await handle.close();
        this.locked = false;
      },
    };
  }

  async close(): Promise<void> {
    this.handles.check(`file handles open in ${this.root}`);
  }

  crash(seed: number): CrashReport {
    const rng = new Rng(seed);
    const report: CrashReport = { seed, files: [], dirs: [] };
    // Visit every directory and file reachable now, durably, or through an unsynced entry change,
    // in sorted order, so that the same seed always draws the same fate for the same file.
    const seen = new Set<MemNode>();
    const visit = (dir: MemDir, path: string): void => {
      seen.add(dir);
      const named = new Map<MemNode, string>();
      const names = new Set([...dir.entries.keys(), ...dir.durable.keys()]);
      for (const name of [...names].sort()) {
        const n = dir.entries.get(name) ?? dir.durable.get(name)!;
        if (!named.has(n)) named.set(n, joinPath(path, name));
      }
      for (const op of dir.pending) {
        if (op.type === 'delete' || named.has(op.node)) continue;
        named.set(op.node, joinPath(path, op.type === 'set' ? op.name : op.to));
      }
      for (const [n, p] of named) {
        if (seen.has(n)) continue;
        if (n instanceof MemDir) {
          visit(n, p);
          continue;
        }
        seen.add(n);
        const count = n.pending.length;
        if (count === 0) continue;
        const kept = rng.int(count + 1);
        const last = kept > 0 ? n.pending[kept - 1]! : undefined;
        const tornAt =
          last !== undefined && last.length > 1 && rng.bool() ? 1 + rng.int(last.length - 1) : null;
        n.crash(kept, tornAt);
        report.files.push({ path: p, unsyncedWrites: count, kept, tornBytes: tornAt });
      }
      const ops = dir.pending.length;
      if (ops > 0) {
        const kept = rng.int(ops + 1);
        report.dirs.push({ path: path === '' ? '.' : path, unsyncedOps: ops, kept });
        dir.crash(kept);
      }
    };
    visit(this.top, '');
    this.generation++;
    this.locked = false;
    this.handles.forgetAll();
    return report;
  }

  tempTag(): string {
    return `m${++this.tempSeq}`;
  }

  /** Every file's path and content, sorted: to compare post-crash states in tests. */
  snapshot(): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    const walk = (dir: MemDir, path: string): void => {
      for (const name of [...dir.entries.keys()].sort()) {
        const n = dir.entries.get(name)!;
        const p = joinPath(path, name);
        if (n instanceof MemDir) walk(n, p);
        else out.set(p, n.data.slice(0, n.size));
      }
    };
    walk(this.top, '');
    return out;
  }

  /** @internal */
  checkGeneration(generation: number, path: string): void {
    if (generation !== this.generation) {
      throw new TidemarkError('IO', `simulated crash: handle of ${path} belongs to a process that died`, {
        details: { path, errno: 'EBADF', simulatedCrash: true },
      });
    }
  }

  private lookup(segs: string[]): MemNode | undefined {
    let node: MemNode = this.top;
    for (const s of segs) {
      if (!(node instanceof MemDir)) return undefined;
      const next: MemNode | undefined = node.entries.get(s);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  private dirOf(segs: string[], op: string, path: string): MemDir {
    const d = this.lookup(segs.slice(0, -1));
    if (d === undefined) throw errno(op, path, 'ENOENT');
    if (!(d instanceof MemDir)) throw errno(op, path, 'ENOTDIR');
    return d;
  }
}

class MemHandle implements FileHandle {
  private closed = false;

  constructor(
    private readonly fs: MemoryFileService,
    private readonly file: MemFile,
    readonly path: string,
    readonly kind: FileKind,
    private readonly readOnly: boolean,
    private readonly id: number,
    private readonly generation: number,
    /** O_DSYNC: a write is durable when it returns. */
    private readonly dsync: boolean,
  ) {}

  async read(dst: Uint8Array, position: number): Promise<number> {
    this.check();
    await Promise.resolve();
    this.check();
    const n = Math.max(0, Math.min(dst.length, this.file.size - position));
    if (n > 0) dst.set(this.file.data.subarray(position, position + n));
    return n;
  }

  async write(src: Uint8Array, position: number): Promise<void> {
    this.check();
    if (this.readOnly) throw errno('write', this.path, 'EBADF');
    await Promise.resolve();
    this.check();
    this.file.write(src, position);
    if (this.dsync) this.file.pending = [];
  }

  async datasync(): Promise<void> {
    this.check();
    await Promise.resolve();
    this.check();
    this.file.pending = [];
  }

  async size(): Promise<number> {
    this.check();
    await Promise.resolve();
    return this.file.size;
  }

  async truncate(length: number): Promise<void> {
    this.check();
    if (this.readOnly) throw errno('truncate', this.path, 'EBADF');
    await Promise.resolve();
    this.check();
    this.file.truncate(length);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fs.handles.remove(this.id);
    await Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private check(): void {
    if (this.closed) throw new TidemarkError('CLOSED', `file ${this.path} is closed`);
    this.fs.checkGeneration(this.generation, this.path);
  }
}

function errno(op: string, path: string, code: string): TidemarkError {
  const e = Object.assign(new Error(`${code}: ${op} ${path}`), { code });
  return ioError(op, path, e);
}

function notFile(path: string): TidemarkError {
  return errno('open', path === '' ? '.' : path, 'EISDIR');
}
