import { TidemarkError } from '../errors.js';
import type { Site, TrackRecord } from './leak_detector.js';
import type { SlabChunk } from './slab.js';
import type { OwnerStats, WaitOptions } from './types.js';

type TypedArrayCtor<T> = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
};

/**
 * The pool that owns a buffer or a reservation, as they see it (MemoryPool is the one): where they
 * record accesses, give their memory back, and move to another pool.
 */
export interface OwningPool {
  readonly name: string;
  /** @internal */
  _record(rec: TrackRecord, hint: string): void;
  /** @internal */
  _free(h: PooledBuffer): void;
  /** @internal */
  _handOver(h: PooledBuffer, to: OwningPool, owner: string): void;
  /** @internal */
  _freeReservation(r: Reservation): void;
  /** @internal */
  _resizeReservation(r: Reservation, bytes: number): void;
  /** @internal */
  _tryGrowReservation(r: Reservation, delta: number): boolean;
  /** @internal */
  _growReservation(r: Reservation, delta: number, options: WaitOptions): Promise<void>;
}

/**
 * A reference-counted buffer from a memory pool. The count starts at 1; `retain()` adds one,
 * `release()` removes one, and the memory goes back to the pool when it reaches zero. A buffer has
 * exactly one owning pool at a time; `handOver` moves it (and its accounting) to another.
 *
 * Views (`bytes`, `float64()`, ...) alias pooled memory: never keep one past the final release.
 */
export class PooledBuffer implements Disposable {
  /** The requested size in bytes: the length of `bytes`. */
  readonly length: number;
  /** The bytes reserved against the limit (the slab slot or the rounded large buffer). */
  readonly capacity: number;
  /** @internal */ _pool: OwningPool;
  /** @internal */ _owner: OwnerStats;
  /** @internal */ readonly _chunk: SlabChunk | null;
  /** @internal */ readonly _buffer: ArrayBuffer;
  /** @internal */ readonly _offset: number;
  /** @internal */ _refCnt = 1;
  /** @internal */ _track: TrackRecord | undefined;
  /** @internal Where the final release happened, kept in the debug levels to explain misuse. */
  _releasedAt: Site | undefined = undefined;
  private _view: Uint8Array | undefined = undefined;

  /** @internal Buffers are made by MemoryPool.allocate*, never directly. */
  constructor(
    pool: OwningPool,
    owner: OwnerStats,
    length: number,
    capacity: number,
    chunk: SlabChunk | null,
    buffer: ArrayBuffer,
    offset: number,
    track: TrackRecord | undefined,
  ) {
    this._pool = pool;
    this._owner = owner;
    this.length = length;
    this.capacity = capacity;
    this._chunk = chunk;
    this._buffer = buffer;
    this._offset = offset;
    this._track = track;
  }

  /** The name of the pool that owns this buffer now. */
  get pool(): string {
    return this._pool.name;
  }

  /** The owner tag given at allocation or at the last hand-over. */
  get owner(): string {
    return this._owner.owner;
  }

  get refCount(): number {
    return this._refCnt;
  }

  get released(): boolean {
    return this._refCnt <= 0;
  }

  /** A Uint8Array over the buffer's `length` bytes. */
  get bytes(): Uint8Array {
    if (this._refCnt <= 0) throw this.misuse('used after its final release');
    return (this._view ??= new Uint8Array(this._buffer, this._offset, this.length));
  }

  /** The underlying ArrayBuffer and the byte offset of this buffer in it (for I/O calls). */
  get arrayBuffer(): ArrayBuffer {
    if (this._refCnt <= 0) throw this.misuse('used after its final release');
    return this._buffer;
  }

  get byteOffset(): number {
    return this._offset;
  }

  /** A typed view at `byteOffset` (aligned to the element size) of `length` elements. */
  view<T>(ctor: TypedArrayCtor<T>, byteOffset = 0, length?: number): T {
    if (this._refCnt <= 0) throw this.misuse('used after its final release');
    const size = ctor.BYTES_PER_ELEMENT;
    const max = Math.floor((this.length - byteOffset) / size);
    const n = length ?? max;
    if (byteOffset < 0 || byteOffset % size !== 0 || n < 0 || n > max) {
      throw new TidemarkError(
        'INVALID_ARGUMENT',
        `view of ${n} x ${size} bytes at ${byteOffset} does not fit a ${this.length}-byte buffer`,
      );
    }
    return new ctor(this._buffer, this._offset + byteOffset, n);
  }

  float64(byteOffset = 0, length?: number): Float64Array {
    return this.view(Float64Array, byteOffset, length);
  }

  int32(byteOffset = 0, length?: number): Int32Array {
    return this.view(Int32Array, byteOffset, length);
  }

  uint32(byteOffset = 0, length?: number): Uint32Array {
    return this.view(Uint32Array, byteOffset, length);
  }

  bigInt64(byteOffset = 0, length?: number): BigInt64Array {
    return this.view(BigInt64Array, byteOffset, length);
  }

  dataView(): DataView {
    if (this._refCnt <= 0) throw this.misuse('used after its final release');
    return new DataView(this._buffer, this._offset, this.length);
  }

  /** Add a reference: each holder of the buffer releases it once. */
  retain(): this {
    if (this._refCnt <= 0) throw this.misuse('retained after its final release');
    this._refCnt++;
    if (this._track?.records !== undefined) this._pool._record(this._track, 'retain');
    return this;
  }

  /** Drop a reference. Returns true when this was the final one and the memory went back. */
  release(): boolean {
    if (this._refCnt <= 0) throw this.misuse('released again after its final release');
    if (this._track?.records !== undefined) this._pool._record(this._track, 'release');
    if (--this._refCnt > 0) return false;
    this._view = undefined;
    this._pool._free(this);
    return true;
  }

  /** Leave an access record (kept at the `advanced` and `paranoid` levels). */
  touch(hint: string): this {
    if (this._track?.records !== undefined) this._pool._record(this._track, hint);
    return this;
  }

  /**
   * Hand ownership to another pool (and owner tag): the accounting moves with the buffer, so the
   * sender stops counting it and the receiver must release it.
   */
  handOver(to: OwningPool, owner: string): this {
    if (this._refCnt <= 0) throw this.misuse('handed over after its final release');
    this._pool._handOver(this, to, owner);
    return this;
  }

  [Symbol.dispose](): void {
    if (this._refCnt > 0) this.release();
  }

  private misuse(what: string): TidemarkError {
    const lines = [
      `pooled buffer of ${this.capacity} bytes (owner ${this.owner}, pool ${this.pool}) ${what}`,
    ];
    if (this._track !== undefined) lines.push(`allocated at:\n${this._track.created.describe()}`);
    else lines.push('(allocation stack not recorded: use leakDetection "paranoid" to record it)');
    if (this._releasedAt !== undefined) lines.push(`finally released at:\n${this._releasedAt.describe()}`);
    return new TidemarkError('REFCOUNT', lines.join('\n'), {
      details: { pool: this.pool, owner: this.owner, bytes: this.capacity },
    });
  }
}

/**
 * Memory accounted against a pool without a buffer behind it: JS structures whose size the engine
 * estimates (an index, a decoded row set). Same ownership rules as a PooledBuffer.
 */
export class Reservation implements Disposable {
  /** @internal */ _pool: OwningPool;
  /** @internal */ _owner: OwnerStats;
  /** @internal */ _bytes: number;
  /** @internal */ _track: TrackRecord | undefined;
  /** @internal */ _released = false;

  /** @internal */
  constructor(pool: OwningPool, owner: OwnerStats, bytes: number, track: TrackRecord | undefined) {
    this._pool = pool;
    this._owner = owner;
    this._bytes = bytes;
    this._track = track;
  }

  get bytes(): number {
    return this._bytes;
  }

  get owner(): string {
    return this._owner.owner;
  }

  get pool(): string {
    return this._pool.name;
  }

  get released(): boolean {
    return this._released;
  }

  /** Change the reserved size. Growth that does not fit the limit now throws MEMORY_LIMIT. */
  resize(bytes: number): void {
    if (this._released) throw this.misuse('resized after release');
    this._pool._resizeReservation(this, bytes);
  }

  /** Grow by `delta` bytes if that fits the limit now; false (and no change) if it does not. */
  tryGrow(delta: number): boolean {
    if (this._released) throw this.misuse('grown after release');
    return this._pool._tryGrowReservation(this, delta);
  }

  /** Grow by `delta` bytes, waiting for memory like `MemoryPool.allocate` when the limit is reached. */
  async grow(delta: number, options: WaitOptions = {}): Promise<void> {
    if (this._released) throw this.misuse('grown after release');
    await this._pool._growReservation(this, delta, options);
  }

  release(): void {
    if (this._released) throw this.misuse('released twice');
    this._released = true;
    this._pool._freeReservation(this);
  }

  [Symbol.dispose](): void {
    if (!this._released) this.release();
  }

  private misuse(what: string): TidemarkError {
    const where = this._track !== undefined ? `\nreserved at:\n${this._track.created.describe()}` : '';
    return new TidemarkError(
      'REFCOUNT',
      `reservation of ${this._bytes} bytes (owner ${this.owner}, pool ${this.pool}) ${what}${where}`,
    );
  }
}
