import { TidemarkError } from '../errors.js';

// ignoreBOM keeps a leading U+FEFF: it is part of the value (the default would drop it, so a string
// that begins with one would lose it when read back from the WAL or a file).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Writes little-endian values into a buffer sized in advance (see ByteSizer). */
export class ByteWriter {
  private readonly view: DataView;
  private buf: Buffer | undefined;
  pos = 0;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  u8(v: number): void {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }
  u16(v: number): void {
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }
  u32(v: number): void {
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  i32(v: number): void {
    this.view.setInt32(this.pos, v, true);
    this.pos += 4;
  }
  f64(v: number): void {
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }
  /** An unsigned integer up to 2^53 as 8 bytes. */
  u64(v: number): void {
    this.view.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
  }
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.pos);
    this.pos += b.length;
  }
  /** UTF-8 bytes of a string whose byte length the caller already wrote or knows. */
  utf8(s: string): number {
    // Buffer.write is the fast path for short strings; the buffer is a view, created once.
    this.buf ??= Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
    const written = this.buf.write(s, this.pos, 'utf8');
    this.pos += written;
    return written;
  }
  /** A u16-length-prefixed UTF-8 string (names). */
  str16(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u16(n);
    this.utf8(s);
  }
}

/**
 * Reads what a ByteWriter wrote. Every read is bounds-checked: running past the end is a
 * CORRUPTION error naming `what`, never a wrong value.
 */
export class ByteReader {
  private readonly view: DataView;
  pos = 0;

  constructor(
    readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  need(n: number): void {
    if (n < 0 || this.pos + n > this.bytes.length) {
      throw new TidemarkError(
        'CORRUPTION',
        `${this.what}: truncated at byte ${this.pos} (needs ${n} more, ${this.remaining} left)`,
        {
          details: { offset: this.pos },
        },
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`integer ${v} out of range`);
    return Number(v);
  }
  /** A view of the next n bytes (valid as long as the underlying buffer is). */
  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  utf8(n: number): string {
    return this.utf8Of(this.raw(n));
  }
  /** Decode bytes already read; invalid UTF-8 is CORRUPTION. */
  utf8Of(b: Uint8Array): string {
    try {
      return decoder.decode(b);
    } catch {
      this.fail('invalid UTF-8');
    }
  }
  str16(): string {
    return this.utf8(this.u16());
  }

  fail(reason: string): never {
    throw new TidemarkError('CORRUPTION', `${this.what}: ${reason} at byte ${this.pos}`, {
      details: { offset: this.pos },
    });
  }
}

/** The one-character strings of the ASCII characters, by code. */
export const ASCII_CHARS: readonly string[] = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i));
const ASCII = ASCII_CHARS;

/**
 * UTF-8 bytes as a string. Short ASCII strings (flags, codes, names: most values of most string
 * columns) are built directly: a decoder's per-call cost is several times their whole decode.
 */
export function utf8Text(b: Uint8Array): string {
  return utf8Range(b, 0, b.length);
}

/** Bytes `start` to `end` of `b` as a string (as utf8Text of that subarray, without making one). */
export function utf8Range(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 0) return '';
  if (n === 1 && b[start]! < 0x80) return ASCII[b[start]!]!;
  if (n <= 24) {
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (b[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
  }
  // Buffer's own decoder (replacement characters for invalid input, as TextDecoder's default) takes
  // about two thirds of TextDecoder's time, which goes through a generic binding.
  return utf8Slice.call(b, start, end);
}

const utf8Slice = (
  Buffer.prototype as unknown as { utf8Slice: (this: Uint8Array, start: number, end: number) => string }
).utf8Slice;
