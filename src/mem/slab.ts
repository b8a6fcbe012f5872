/**
 * Size-classed slabs: small buffers are carved from shared chunks instead of one ArrayBuffer each.
 *
 * Classes are powers of two from 64 bytes to 128 KiB. A chunk of one class holds a fixed number of
 * equal slots. A request above the largest class gets a dedicated ArrayBuffer (rounded up to 4 KiB),
 * which the GC reclaims after release: large buffers are rare and caching them would pin memory.
 *
 * Retained free memory is bounded: a chunk whose slots are all free is dropped as soon as its class
 * has another chunk with room, so each class keeps at most one empty chunk.
 */

export const MIN_CLASS_BYTES = 64;
export const MAX_CLASS_BYTES = 128 * 1024;
const MIN_CHUNK_BYTES = 64 * 1024;
const SLOTS_PER_LARGE_CHUNK = 8;
const LARGE_ROUND_BYTES = 4096;

const MIN_SHIFT = 6; // log2(64)
const CLASS_COUNT = 12; // 64 .. 128 KiB

export class SlabChunk {
  readonly buffer: ArrayBuffer;
  readonly slotBytes: number;
  /** Offsets of free slots, used as a stack. */
  readonly free: number[];
  used = 0;
  /** Slots lost to a leak found by the GC: never handed out again (a view may still be alive). */
  quarantined = 0;
  /** Index in its class's list of chunks with free room, or -1. */
  openIndex = -1;

  constructor(slotBytes: number) {
    const slots = Math.max(SLOTS_PER_LARGE_CHUNK, Math.floor(MIN_CHUNK_BYTES / slotBytes));
    this.slotBytes = slotBytes;
    this.buffer = new ArrayBuffer(slotBytes * slots);
    this.free = new Array<number>(slots);
    // Hand out low offsets first: neighbouring allocations share cache lines and pages.
    for (let i = 0; i < slots; i++) this.free[i] = (slots - 1 - i) * slotBytes;
  }

  get slots(): number {
    return this.buffer.byteLength / this.slotBytes;
  }
}

class SizeClass {
  /** Chunks with at least one free slot. The last one serves allocations. */
  readonly open: SlabChunk[] = [];
  chunkCount = 0;
  constructor(readonly slotBytes: number) {}
}

export interface SlabStats {
  /** Bytes of ArrayBuffers held by slab chunks, in use or free. */
  slabBytes: number;
  /** Bytes held by slab chunks but not handed out (free slots, quarantined slots excluded). */
  freeBytes: number;
  /** Bytes in slots quarantined after a GC-detected leak. */
  quarantinedBytes: number;
  /** Bytes of live dedicated (large) buffers. */
  largeBytes: number;
  chunks: number;
}

export class SlabAllocator {
  private readonly classes: SizeClass[] = [];
  private slabBytes = 0;
  private usedSlotBytes = 0;
  private quarantinedBytes = 0;
  private largeBytes = 0;

  constructor() {
    for (let i = 0; i < CLASS_COUNT; i++) this.classes.push(new SizeClass(1 << (MIN_SHIFT + i)));
  }

  /** The capacity actually reserved for a request of `size` bytes. */
  static capacityFor(size: number): number {
    if (size <= MIN_CLASS_BYTES) return MIN_CLASS_BYTES;
    if (size <= MAX_CLASS_BYTES) return 1 << (32 - Math.clz32(size - 1));
    return Math.ceil(size / LARGE_ROUND_BYTES) * LARGE_ROUND_BYTES;
  }

  /** The offset of the slot handed out by the last takeSlot (avoids allocating a tuple). */
  takenOffset = 0;

  /** Take a slot of exactly `capacity` bytes (a value from capacityFor); its offset is takenOffset. */
  takeSlot(capacity: number): SlabChunk {
    const cls = this.classes[31 - Math.clz32(capacity) - MIN_SHIFT]!;
    let chunk = cls.open[cls.open.length - 1];
    if (chunk === undefined) {
      chunk = new SlabChunk(capacity);
      cls.chunkCount++;
      this.slabBytes += chunk.buffer.byteLength;
      chunk.openIndex = cls.open.length;
      cls.open.push(chunk);
    }
    this.takenOffset = chunk.free.pop()!;
    chunk.used++;
    this.usedSlotBytes += capacity;
    if (chunk.free.length === 0) this.removeOpen(cls, chunk);
    return chunk;
  }

  giveSlot(chunk: SlabChunk, offset: number): void {
    const cls = this.classes[31 - Math.clz32(chunk.slotBytes) - MIN_SHIFT]!;
    chunk.free.push(offset);
    chunk.used--;
    this.usedSlotBytes -= chunk.slotBytes;
    if (chunk.openIndex < 0) {
      chunk.openIndex = cls.open.length;
      cls.open.push(chunk);
    }
    if (chunk.used === 0 && chunk.quarantined === 0 && cls.open.length > 1) {
      // Keep at most one empty chunk per class: drop this one if another chunk can serve.
      this.removeOpen(cls, chunk);
      cls.chunkCount--;
      this.slabBytes -= chunk.buffer.byteLength;
    }
  }

  /** A slot whose handle was collected without release: never reuse it (a view may be alive). */
  quarantineSlot(chunk: SlabChunk): void {
    chunk.used--;
    chunk.quarantined++;
    this.usedSlotBytes -= chunk.slotBytes;
    this.quarantinedBytes += chunk.slotBytes;
  }

  allocateLarge(capacity: number): ArrayBuffer {
    const buffer = new ArrayBuffer(capacity);
    this.largeBytes += capacity;
    return buffer;
  }

  freeLarge(capacity: number): void {
    this.largeBytes -= capacity;
  }

  stats(): SlabStats {
    let chunks = 0;
    for (const c of this.classes) chunks += c.chunkCount;
    return {
      slabBytes: this.slabBytes,
      freeBytes: this.slabBytes - this.usedSlotBytes - this.quarantinedBytes,
      quarantinedBytes: this.quarantinedBytes,
      largeBytes: this.largeBytes,
      chunks,
    };
  }

  private removeOpen(cls: SizeClass, chunk: SlabChunk): void {
    const i = chunk.openIndex;
    const last = cls.open.pop()!;
    if (last !== chunk) {
      cls.open[i] = last;
      last.openIndex = i;
    }
    chunk.openIndex = -1;
  }
}
