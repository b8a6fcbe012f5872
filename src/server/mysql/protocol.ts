/**
 * The MySQL client/server protocol (4.1) as tidemark's server speaks it: packet framing, the
 * integer and string encodings, and the packets it sends. Specification: the MySQL and MariaDB
 * documentation of the client/server protocol (dev.mysql.com/doc/dev/mysql-server/latest/
 * PAGE_PROTOCOL.html); this is our own code.
 */

export const CLIENT = {
  LONG_PASSWORD: 1,
  FOUND_ROWS: 2,
  LONG_FLAG: 4,
  CONNECT_WITH_DB: 8,
  PROTOCOL_41: 512,
  INTERACTIVE: 1024,
  SSL: 2048,
  TRANSACTIONS: 8192,
  SECURE_CONNECTION: 32768,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 1 << 21,
  DEPRECATE_EOF: 1 << 24,
} as const;

/** What the server offers: no TLS, no compression, no LOCAL INFILE. */
export const SERVER_CAPABILITIES =
  CLIENT.LONG_PASSWORD |
  CLIENT.FOUND_ROWS |
  CLIENT.LONG_FLAG |
  CLIENT.CONNECT_WITH_DB |
  CLIENT.PROTOCOL_41 |
  CLIENT.INTERACTIVE |
  CLIENT.TRANSACTIONS |
  CLIENT.SECURE_CONNECTION |
  CLIENT.MULTI_STATEMENTS |
  CLIENT.MULTI_RESULTS |
  CLIENT.PS_MULTI_RESULTS |
  CLIENT.PLUGIN_AUTH |
  CLIENT.CONNECT_ATTRS |
  CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  CLIENT.DEPRECATE_EOF;

export const STATUS = { IN_TRANS: 0x0001, AUTOCOMMIT: 0x0002, MORE_RESULTS: 0x0008 } as const;

export const COM = {
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  STATISTICS: 0x09,
  PING: 0x0e,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  RESET_CONNECTION: 0x1f,
} as const;

/** Column types used here. */
export const TYPE = {
  TINY: 0x01,
  SHORT: 0x02,
  LONG: 0x03,
  FLOAT: 0x04,
  DOUBLE: 0x05,
  NULL: 0x06,
  TIMESTAMP: 0x07,
  LONGLONG: 0x08,
  INT24: 0x09,
  DATE: 0x0a,
  TIME: 0x0b,
  DATETIME: 0x0c,
  YEAR: 0x0d,
  VARCHAR: 0x0f,
  JSON: 0xf5,
  NEWDECIMAL: 0xf6,
  DECIMAL: 0x00,
  ENUM: 0xf7,
  SET: 0xf8,
  TINY_BLOB: 0xf9,
  MEDIUM_BLOB: 0xfa,
  LONG_BLOB: 0xfb,
  BLOB: 0xfc,
  VAR_STRING: 0xfd,
  STRING: 0xfe,
} as const;

/** utf8mb4_general_ci and binary. */
export const CHARSET_UTF8MB4 = 45;
export const CHARSET_BINARY = 63;

export const MAX_PAYLOAD = 0xffffff;

/**
 * Buffer's UTF-8 writer without the argument checks of `write` (which cost more than writing a
 * short string): callers have made room for `length` bytes at `offset`.
 */
const utf8Write = (
  Buffer.prototype as unknown as {
    utf8Write: (this: Buffer, s: string, offset: number, length: number) => number;
  }
).utf8Write;

/** Builds a packet payload in one growing buffer. */
export class Writer {
  protected buf = Buffer.allocUnsafe(256);
  protected at = 0;

  protected room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.at + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  int1(v: number): this {
    this.room(1);
    this.buf[this.at++] = v & 0xff;
    return this;
  }
  int2(v: number): this {
    this.room(2);
    this.buf.writeUInt16LE(v & 0xffff, this.at);
    this.at += 2;
    return this;
  }
  int3(v: number): this {
    this.room(3);
    this.buf.writeUIntLE(v, this.at, 3);
    this.at += 3;
    return this;
  }
  int4(v: number): this {
    this.room(4);
    this.buf.writeUInt32LE(v >>> 0, this.at);
    this.at += 4;
    return this;
  }
  int8(v: bigint): this {
    this.room(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.at);
    this.at += 8;
    return this;
  }
  /** An integral number as 8 bytes: two halves while safe (no BigInt), else through BigInt. */
  int64(v: number): this {
    if (!Number.isSafeInteger(v)) return this.int8(BigInt(v));
    this.room(8);
    const hi = Math.floor(v / 0x100000000);
    this.buf.writeUInt32LE(v - hi * 0x100000000, this.at);
    this.buf.writeInt32LE(hi, this.at + 4);
    this.at += 8;
    return this;
  }
  double(v: number): this {
    this.room(8);
    this.buf.writeDoubleLE(v, this.at);
    this.at += 8;
    return this;
  }
  /** A length-encoded integer. */
  lenenc(v: number | bigint): this {
    if (typeof v === 'bigint') return this.int1(0xfe).int8(v);
    if (v < 251) return this.int1(v);
    if (v < 0x10000) return this.int1(0xfc).int2(v);
    if (v < 0x1000000) return this.int1(0xfd).int3(v);
    return this.int1(0xfe).int8(BigInt(v));
  }
  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
    return this;
  }
  /** A length-encoded string. */
  lstr(s: string | Uint8Array): this {
    if (typeof s !== 'string') return this.lenenc(s.length).bytes(s);
    const most = s.length * 3;
    if (most < 251) {
      // The length fits one byte whatever the characters: write, then fill it in.
      this.room(1 + most);
      const n = utf8Write.call(this.buf, s, this.at + 1, most);
      this.buf[this.at] = n;
      this.at += 1 + n;
      return this;
    }
    if (most < 0x10000) {
      // A 3-byte length (0xFC and two bytes) is room enough: write, then move the bytes back if
      // the length turned out to fit one byte.
      this.room(3 + most);
      const n = utf8Write.call(this.buf, s, this.at + 3, most);
      if (n < 251) {
        this.buf.copyWithin(this.at + 1, this.at + 3, this.at + 3 + n);
        this.buf[this.at] = n;
        this.at += 1 + n;
      } else {
        this.buf[this.at] = 0xfc;
        this.buf.writeUInt16LE(n, this.at + 1);
        this.at += 3 + n;
      }
      return this;
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.lenenc(n);
    this.room(n);
    this.at += utf8Write.call(this.buf, s, this.at, n);
    return this;
  }
  /** A NUL-terminated string. */
  zstr(s: string): this {
    return this.eof(s).int1(0);
  }
  /** A string to the end of the packet. */
  eof(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.room(n);
    this.at += utf8Write.call(this.buf, s, this.at, n);
    return this;
  }
  zeros(n: number): this {
    this.room(n);
    const b = this.buf;
    for (let i = this.at, end = this.at + n; i < end; i++) b[i] = 0;
    this.at += n;
    return this;
  }

  /** Sets bits in a byte already written (a NULL bitmap). */
  orByte(at: number, bits: number): this {
    this.buf[at]! |= bits;
    return this;
  }

  get size(): number {
    return this.at;
  }

  /** Bytes allocated, written or not. */
  get capacity(): number {
    return this.buf.length;
  }

  payload(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

/**
 * A whole response: packets framed in place (each header written when the packet ends), so a
 * response is one buffer and one socket write, whatever its number of packets.
 */
export class PacketWriter extends Writer {
  private start = -1;

  constructor(public seq = 0) {
    super();
  }

  /** Empties the writer for a new response starting at sequence number `seq`. */
  reset(seq: number): this {
    this.at = 0;
    this.start = -1;
    this.seq = seq;
    return this;
  }

  /** Starts a packet; its payload follows. */
  begin(): this {
    this.start = this.at;
    this.room(4);
    this.at += 4;
    return this;
  }

  /** Ends the packet begun last: a payload of 16 MiB - 1 or more is split into several. */
  end(): this {
    const n = this.at - this.start - 4;
    if (n < MAX_PAYLOAD) {
      this.header(this.start, n);
      return this;
    }
    const body = Buffer.from(this.buf.subarray(this.start + 4, this.at));
    this.at = this.start;
    for (let at = 0; ;) {
      const k = Math.min(MAX_PAYLOAD, body.length - at);
      this.room(4 + k);
      this.header(this.at, k);
      body.copy(this.buf, this.at + 4, at, at + k);
      this.at += 4 + k;
      at += k;
      // A payload of exactly 16 MiB - 1 (or a multiple) ends with an empty packet.
      if (k < MAX_PAYLOAD) return this;
    }
  }

  private header(at: number, n: number): void {
    this.buf[at] = n & 0xff;
    this.buf[at + 1] = (n >>> 8) & 0xff;
    this.buf[at + 2] = n >>> 16;
    this.buf[at + 3] = this.seq++ & 0xff;
  }
}

/** Reads a packet payload; every read past the end throws a ProtocolError. */
export class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length)
      throw new ProtocolError(`packet too short: wanted ${n} bytes at ${this.pos} of ${this.buf.length}`);
  }
  get left(): number {
    return this.buf.length - this.pos;
  }
  int1(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  int2(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  int3(): number {
    this.need(3);
    const v = this.buf.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  int4(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  int8(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  /**
   * An 8-byte integer: a number when it is a safe integer, else a bigint. Read as two halves: no
   * BigInt for the usual values.
   */
  int64(unsigned: boolean): number | bigint {
    this.need(8);
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = unsigned ? this.buf.readUInt32LE(this.pos + 4) : this.buf.readInt32LE(this.pos + 4);
    const at = this.pos;
    this.pos += 8;
    // |hi| below 2^21: the value is within +-2^53.
    if (hi >= -0x200000 && hi < 0x200000) {
      const v = hi * 0x100000000 + lo;
      if (Number.isSafeInteger(v)) return v;
    }
    return unsigned ? this.buf.readBigUInt64LE(at) : this.buf.readBigInt64LE(at);
  }
  /** A signed integer of 1, 2 or 4 bytes (8-byte ones: int64). */
  sint(n: 1 | 2 | 4): number {
    this.need(n);
    const b = this.buf;
    const at = this.pos;
    this.pos += n;
    if (n === 1) return b.readInt8(at);
    if (n === 2) return b.readInt16LE(at);
    return b.readInt32LE(at);
  }
  float(): number {
    this.need(4);
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }
  double(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  lenenc(): number | null {
    const first = this.int1();
    if (first < 0xfb) return first;
    if (first === 0xfb) return null;
    if (first === 0xfc) return this.int2();
    if (first === 0xfd) return this.int3();
    if (first === 0xfe) {
      const v = this.int8();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('length-encoded integer too large');
      return Number(v);
    }
    throw new ProtocolError(`bad length-encoded integer 0x${first.toString(16)}`);
  }
  raw(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  lbytes(): Buffer {
    const n = this.lenenc();
    if (n === null) throw new ProtocolError('NULL where a string was expected');
    return this.raw(n);
  }
  zstr(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new ProtocolError('string without its terminating NUL');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  rest(): Buffer {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }
}

/** A malformed packet: the connection that sent it is closed. */
export class ProtocolError extends Error {}

export function okPacket(
  w: PacketWriter,
  affected: number,
  insertId: number | bigint,
  status: number,
  info = '',
): PacketWriter {
  w.begin().int1(0x00).lenenc(affected).lenenc(insertId).int2(status).int2(0);
  if (info !== '') w.eof(info);
  return w.end();
}

/** The end of a result set: an OK packet with the EOF header (DEPRECATE_EOF) or an EOF packet. */
export function endPacket(w: PacketWriter, status: number, deprecateEof: boolean): PacketWriter {
  if (deprecateEof) return w.begin().int1(0xfe).lenenc(0).lenenc(0).int2(status).int2(0).end();
  return w.begin().int1(0xfe).int2(0).int2(status).end();
}

export function errPacket(w: PacketWriter, errno: number, sqlState: string, message: string): PacketWriter {
  return w
    .begin()
    .int1(0xff)
    .int2(errno)
    .eof(`#${sqlState.slice(0, 5).padEnd(5, '0')}`)
    .eof(message.slice(0, 512))
    .end();
}

export interface ColumnDef {
  name: string;
  type: number;
  charset: number;
  length: number;
  flags: number;
  decimals: number;
}

export function columnPacket(w: PacketWriter, c: ColumnDef, table = ''): PacketWriter {
  return w
    .begin()
    .lstr('def')
    .lstr('')
    .lstr(table)
    .lstr(table)
    .lstr(c.name)
    .lstr(c.name)
    .lenenc(0x0c)
    .int2(c.charset)
    .int4(c.length)
    .int1(c.type)
    .int2(c.flags)
    .int1(c.decimals)
    .int2(0)
    .end();
}
