import { LeakError, TidemarkError, invalidArgument, type LeakHolder } from '../errors.js';
import { PooledBuffer, Reservation, type OwningPool } from './buffer.js';
import { captureSite, TrackRecord, type LeakDetector } from './leak_detector.js';
import { SlabAllocator, MAX_CLASS_BYTES, type SlabChunk } from './slab.js';
import type { OwnerStats, WaitOptions } from './types.js';

export interface PoolStats {
  bytes: number;
  highWaterBytes: number;
  handles: number;
  allocations: number;
  frees: number;
  /** Handles the GC collected without a release (sampled levels only). */
  leaksDetected: number;
  /** This pool's share of the limit, or Infinity when it only shares the global limit. */
  maxBytes: number;
}

/**
 * What a pool needs of the manager that made it (MemoryManager is the one): the global limit and its
 * waiters, and the leak detector, shared by all the manager's pools.
 */
export interface PoolHost {
  readonly limitBytes: number;
  readonly bytesInUse: number;
  /** @internal */ readonly detector: LeakDetector;
  /** @internal Charge `bytes` to `pool` if it fits the limit and the pool's share. */
  _tryCharge(pool: MemoryPool, bytes: number): boolean;
  /** @internal */
  _credit(pool: MemoryPool, bytes: number): void;
  /** @internal */
  _limitError(pool: MemoryPool, bytes: number): TidemarkError;
  /** @internal Wait until `bytes` are charged to `pool`, or fail. */
  _wait(pool: MemoryPool, bytes: number, options: WaitOptions): Promise<void>;
  /** @internal Grant waiters in order while memory allows. */
  _wake(): void;
}

const POISON = 0xde;

/**
 * One subsystem's pool. All pools of a MemoryManager share its limit and its slabs; each counts its
 * own bytes, handles and owners exactly, so that a leak is attributed to the subsystem that made it.
 */
export class MemoryPool implements OwningPool {
  readonly name: string;
  /** @internal */ readonly manager: PoolHost;
  /** @internal */ readonly maxBytes: number;
  private bytes = 0;
  private highWaterBytes = 0;
  private handles = 0;
  private allocations = 0;
  private frees = 0;
  private leaksDetected = 0;
  private readonly owners = new Map<string, OwnerStats>();
  private readonly slabs: SlabAllocator;
  private closed = false;

  /** @internal Pools are made by MemoryManager. */
  constructor(manager: PoolHost, name: string, maxBytes: number, slabs: SlabAllocator) {
    this.manager = manager;
    this.name = name;
    this.maxBytes = maxBytes;
    this.slabs = slabs;
  }

  /** Allocate now, or throw MEMORY_LIMIT if the limit leaves no room. */
  allocateSync(size: number, owner: string): PooledBuffer {
    const capacity = this.capacityOf(size);
    if (!this.manager._tryCharge(this, capacity)) throw this.manager._limitError(this, capacity);
    return this.make(size, capacity, owner);
  }

  /**
   * Allocate now, or return undefined if the limit leaves no room. (If the limit has room but the
   * system refuses the ArrayBuffer, MEMORY_LIMIT is thrown, as by every allocation.)
   */
  tryAllocate(size: number, owner: string): PooledBuffer | undefined {
    const capacity = this.capacityOf(size);
    if (!this.manager._tryCharge(this, capacity)) return undefined;
    return this.make(size, capacity, owner);
  }

  /**
   * Allocate, waiting (first come, first served) until memory is freed if the limit leaves no room
   * now. Fails with MEMORY_LIMIT after `timeoutMs` (default: the manager's waitTimeoutMs).
   */
  async allocate(size: number, owner: string, options: WaitOptions = {}): Promise<PooledBuffer> {
    const capacity = this.capacityOf(size);
    if (!this.manager._tryCharge(this, capacity)) await this.manager._wait(this, capacity, options);
    return this.make(size, capacity, owner);
  }

  /** Account `bytes` without a buffer, now, or throw MEMORY_LIMIT. */
  reserveSync(bytes: number, owner: string): Reservation {
    checkSize(bytes);
    if (!this.manager._tryCharge(this, bytes)) throw this.manager._limitError(this, bytes);
    return this.makeReservation(bytes, owner);
  }

  async reserve(bytes: number, owner: string, options: WaitOptions = {}): Promise<Reservation> {
    checkSize(bytes);
    if (!this.manager._tryCharge(this, bytes)) await this.manager._wait(this, bytes, options);
    return this.makeReservation(bytes, owner);
  }

  stats(): PoolStats {
    return {
      bytes: this.bytes,
      highWaterBytes: this.highWaterBytes,
      handles: this.handles,
      allocations: this.allocations,
      frees: this.frees,
      leaksDetected: this.leaksDetected,
      maxBytes: this.maxBytes,
    };
  }

  /** Bytes this pool could take now without waiting (its share and the global limit allowing). */
  available(): number {
    return Math.max(
      0,
      Math.min(this.maxBytes - this.bytes, this.manager.limitBytes - this.manager.bytesInUse),
    );
  }

  /** Live bytes per owner tag (for diagnostics and the /debug/leaks endpoint). */
  ownerStats(): OwnerStats[] {
    const out: OwnerStats[] = [];
    for (const o of this.owners.values()) if (o.count > 0) out.push({ ...o });
    return out;
  }

  /**
   * Everything still live in this pool, grouped by owner and, where recorded, allocation stack.
   * Handles tracked by the leak detector are listed with their stack; the rest by owner only.
   */
  holders(): LeakHolder[] {
    if (this.handles === 0) return [];
    const untracked = new Map<string, { count: number; bytes: number }>();
    for (const o of this.owners.values()) {
      if (o.count > 0) untracked.set(o.owner, { count: o.count, bytes: o.bytes });
    }
    const stacks = new Map<string, LeakHolder>();
    for (const rec of this.manager.detector.live) {
      if (rec.pool !== this.name) continue;
      const stack = rec.created.describe();
      const key = `${rec.owner}\n${stack}`;
      const h = stacks.get(key);
      if (h !== undefined) {
        h.count++;
        h.bytes += rec.capacity;
      } else {
        const records = rec.describeRecords();
        stacks.set(key, {
          scope: this.name,
          owner: rec.owner,
          count: 1,
          bytes: rec.capacity,
          stack,
          ...(records.length > 0 ? { records } : {}),
        });
      }
      const u = untracked.get(rec.owner);
      if (u !== undefined) {
        u.count--;
        u.bytes -= rec.capacity;
      }
    }
    const out = [...stacks.values()];
    for (const [owner, u] of untracked) {
      if (u.count > 0) out.push({ scope: this.name, owner, count: u.count, bytes: u.bytes });
    }
    return out;
  }

  /** Throw a LeakError if anything in this pool is still live. */
  checkLeaks(): void {
    const holders = this.holders();
    if (holders.length > 0) throw new LeakError(`memory pool ${this.name}`, holders);
  }

  /**
   * Close the pool: no allocation succeeds afterwards. Raises LEAK, listing each holder, if handles
   * are still live (the pool is closed all the same).
   */
  close(): void {
    this.closed = true;
    this.checkLeaks();
  }

  // ---- internal: called by PooledBuffer, Reservation and MemoryManager ----

  /** @internal Bytes charged to this pool now. */
  get bytesInUse(): number {
    return this.bytes;
  }

  /** @internal Throw CLOSED if the pool is closed. */
  _checkOpen(): void {
    if (this.closed) throw new TidemarkError('CLOSED', `memory pool ${this.name} is closed`);
  }

  /** @internal Close without the leak check (the manager, closing, checks every pool at once). */
  _markClosed(): void {
    this.closed = true;
  }

  /** @internal Whether `bytes` more would take this pool past its share of the limit. */
  _overShare(bytes: number): boolean {
    return this.bytes + bytes > this.maxBytes;
  }

  /** @internal The manager charged `bytes` to this pool (they fit its share). */
  _charged(bytes: number): void {
    this.bytes += bytes;
    if (this.bytes > this.highWaterBytes) this.highWaterBytes = this.bytes;
  }

  /** @internal The manager took `bytes` back from this pool. */
  _credited(bytes: number): void {
    this.bytes -= bytes;
  }

  private capacityOf(size: number): number {
    checkSize(size);
    return SlabAllocator.capacityFor(size);
  }

  /**
   * An owner with nothing live is dropped from the map: owner tags may be many over a process's life
   * (a query's carries its text), and nothing refers to an owner's entry once its handles are gone.
   */
  private forgetIfIdle(o: OwnerStats): void {
    if (o.count === 0 && this.owners.get(o.owner) === o) this.owners.delete(o.owner);
  }

  private ownerOf(owner: string): OwnerStats {
    let o = this.owners.get(owner);
    if (o === undefined) {
      o = { owner, count: 0, bytes: 0 };
      this.owners.set(owner, o);
    }
    return o;
  }

  /** A buffer for `capacity` bytes already charged; the charge is given back if none can be made. */
  private make(size: number, capacity: number, owner: string): PooledBuffer {
    let chunk = null;
    let buffer: ArrayBuffer;
    let offset = 0;
    try {
      if (capacity <= MAX_CLASS_BYTES) {
        chunk = this.slabs.takeSlot(capacity);
        buffer = chunk.buffer;
        offset = this.slabs.takenOffset;
      } else {
        buffer = this.slabs.allocateLarge(capacity);
      }
    } catch (e) {
      // `new ArrayBuffer` failed (RangeError: the process is out of memory or address space).
      this.manager._credit(this, capacity);
      throw new TidemarkError(
        'MEMORY_LIMIT',
        `the system refused ${capacity} bytes for pool ${this.name} (${e instanceof Error ? e.message : String(e)})`,
        { details: { pool: this.name, bytes: capacity } },
      );
    }
    const o = this.ownerOf(owner);
    o.count++;
    o.bytes += capacity;
    this.handles++;
    this.allocations++;
    const detector = this.manager.detector;
    if (!detector.shouldTrack()) {
      return new PooledBuffer(this, o, size, capacity, chunk, buffer, offset, undefined);
    }
    const rec = new TrackRecord(this.name, owner, capacity, detector.recordsAccesses);
    const handle = new PooledBuffer(this, o, size, capacity, chunk, buffer, offset, rec);
    // The callback closes over the slot, not the handle: the handle must stay collectable.
    rec.onCollected = () => this.collectedBuffer(rec, chunk, capacity);
    detector.track(handle, rec);
    return handle;
  }

  private makeReservation(bytes: number, owner: string): Reservation {
    const o = this.ownerOf(owner);
    o.count++;
    o.bytes += bytes;
    this.handles++;
    this.allocations++;
    const detector = this.manager.detector;
    if (!detector.shouldTrack()) return new Reservation(this, o, bytes, undefined);
    const rec = new TrackRecord(this.name, owner, bytes, detector.recordsAccesses);
    const r = new Reservation(this, o, bytes, rec);
    rec.onCollected = () => this.collected(rec, rec.capacity);
    detector.track(r, rec);
    return r;
  }

  /** @internal */
  _free(h: PooledBuffer): void {
    const detector = this.manager.detector;
    if (h._track !== undefined) {
      detector.untrack(h, h._track);
      if (detector.recordsAccesses) {
        h._releasedAt = captureSite('final release');
        // Poison freed memory in the debug levels: a stale view then reads garbage, loudly.
        new Uint8Array(h._buffer, h._offset, h.capacity).fill(POISON);
      }
    }
    if (h._chunk !== null) this.slabs.giveSlot(h._chunk, h._offset);
    else this.slabs.freeLarge(h.capacity);
    const o = h._owner;
    o.count--;
    o.bytes -= h.capacity;
    this.forgetIfIdle(o);
    this.handles--;
    this.frees++;
    this.manager._credit(this, h.capacity);
  }

  /** @internal */
  _freeReservation(r: Reservation): void {
    if (r._track !== undefined) this.manager.detector.untrack(r, r._track);
    const o = r._owner;
    o.count--;
    o.bytes -= r._bytes;
    this.forgetIfIdle(o);
    this.handles--;
    this.frees++;
    this.manager._credit(this, r._bytes);
  }

  /** @internal */
  _resizeReservation(r: Reservation, bytes: number): void {
    checkSize(bytes);
    const delta = bytes - r._bytes;
    if (delta > 0 && !this.manager._tryCharge(this, delta)) throw this.manager._limitError(this, delta);
    if (delta < 0) this.manager._credit(this, -delta);
    r._bytes = bytes;
    r._owner.bytes += delta;
    if (r._track !== undefined) r._track.capacity = bytes;
  }

  /** @internal */
  _tryGrowReservation(r: Reservation, delta: number): boolean {
    checkSize(delta);
    if (!this.manager._tryCharge(this, delta)) return false;
    r._bytes += delta;
    r._owner.bytes += delta;
    if (r._track !== undefined) r._track.capacity = r._bytes;
    return true;
  }

  /** @internal */
  async _growReservation(r: Reservation, delta: number, options: WaitOptions): Promise<void> {
    checkSize(delta);
    if (!this.manager._tryCharge(this, delta)) await this.manager._wait(this, delta, options);
    if (r._released) {
      // Released while waiting: give the memory back rather than leak the charge.
      this.manager._credit(this, delta);
      return;
    }
    r._bytes += delta;
    r._owner.bytes += delta;
    if (r._track !== undefined) r._track.capacity = r._bytes;
  }

  /** @internal */
  _handOver(h: PooledBuffer, to: OwningPool, owner: string): void {
    if (!(to instanceof MemoryPool) || to.manager !== this.manager) {
      throw invalidArgument('hand-over between memory managers');
    }
    if (to.closed) throw new TidemarkError('CLOSED', `memory pool ${to.name} is closed`);
    const from = h._owner;
    from.count--;
    from.bytes -= h.capacity;
    this.forgetIfIdle(from);
    this.handles--;
    this.bytes -= h.capacity;
    const o = to.ownerOf(owner);
    o.count++;
    o.bytes += h.capacity;
    to.handles++;
    to.bytes += h.capacity;
    if (to.bytes > to.highWaterBytes) to.highWaterBytes = to.bytes;
    h._pool = to;
    h._owner = o;
    if (h._track !== undefined) {
      // The record names the pool for reports: re-home it so a later leak is blamed correctly.
      const capacity = h.capacity;
      const chunk = h._chunk;
      const rec = new TrackRecord(to.name, owner, capacity, false, h._track.created);
      rec.records = h._track.records;
      // Capture the slot, never the handle: the handle must stay collectable.
      rec.onCollected = () => to.collectedBuffer(rec, chunk, capacity);
      this.manager.detector.untrack(h, h._track);
      this.manager.detector.track(h, rec);
      h._track = rec;
      to._record(rec, `handed over from ${this.name} to ${to.name} as ${owner}`);
    }
    // Moving bytes between pools can free room under this pool's own share.
    this.manager._wake();
  }

  /** @internal */
  _record(rec: TrackRecord, hint: string): void {
    rec.record(hint, () => this.manager.detector.random());
  }

  private collectedBuffer(rec: TrackRecord, chunk: SlabChunk | null, capacity: number): void {
    // Correct the accounting, never recycle: a view may outlive the handle.
    if (chunk !== null) this.slabs.quarantineSlot(chunk);
    else this.slabs.freeLarge(capacity);
    this.collected(rec, capacity);
  }

  private collected(rec: TrackRecord, bytes: number): void {
    const o = this.ownerOf(rec.owner);
    o.count--;
    o.bytes -= bytes;
    this.forgetIfIdle(o);
    this.handles--;
    this.leaksDetected++;
    this.manager._credit(this, bytes);
  }
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw invalidArgument(`buffer size must be a non-negative integer, got ${String(size)}`);
  }
}
