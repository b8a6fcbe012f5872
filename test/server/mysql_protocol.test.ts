import { describe, expect, it } from 'vitest';
import { MAX_PAYLOAD, PacketWriter, Reader } from '../../src/server/mysql/protocol.js';
import { describeColumns } from '../../src/server/mysql/values.js';
import { TYPE } from '../../src/server/mysql/protocol.js';
import { cellText, formatResult } from '../../src/cli/sql.js';
import { Decimal } from '../../src/util/decimal.js';

/** The packets of a framed response: [sequence number, payload]. */
function unframe(data: Buffer): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  for (let at = 0; at < data.length;) {
    const n = data.readUIntLE(at, 3);
    out.push([data[at + 3]!, data.subarray(at + 4, at + 4 + n)]);
    at += 4 + n;
  }
  return out;
}

describe('MySQL protocol encoding', () => {
  it('writes length-encoded strings of every length class, ASCII and multi-byte', () => {
    const samples = [
      '',
      'a',
      'x'.repeat(83), // at most 249 bytes: the one-byte length is certain
      'x'.repeat(84), // could need more, is 84: moved back behind a one-byte length
      'x'.repeat(250),
      'x'.repeat(251), // the first length needing 0xFC
      '€'.repeat(83), // 249 bytes
      '€'.repeat(84), // 252 bytes
      'é'.repeat(125), // 250 bytes
      'a€'.repeat(5000),
      'y'.repeat(21845), // the largest string that takes the in-place path
      'z'.repeat(21846),
      '€'.repeat(30000), // 90,000 bytes: a 3-byte length
    ];
    const w = new PacketWriter(7).begin();
    for (const s of samples) w.lstr(s).int1(0x5a);
    w.end();
    const [[seq, payload]] = unframe(w.payload()) as [[number, Buffer]];
    expect(seq).toBe(7);
    const r = new Reader(payload);
    for (const s of samples) {
      const b = r.lbytes();
      expect(b.length).toBe(Buffer.byteLength(s));
      expect(b.toString('utf8')).toBe(s);
      expect(r.int1()).toBe(0x5a);
    }
    expect(r.left).toBe(0);
  });

  it('reads 8-byte integers as numbers while safe, else as bigints (exact)', () => {
    const signed: [bigint, number | bigint][] = [
      [0n, 0],
      [-1n, -1],
      [1234567890123n, 1234567890123],
      [-1234567890123n, -1234567890123],
      [2n ** 53n - 1n, Number.MAX_SAFE_INTEGER],
      [-(2n ** 53n) + 1n, Number.MIN_SAFE_INTEGER],
      [2n ** 53n, 2n ** 53n],
      [-(2n ** 53n), -(2n ** 53n)],
      [2n ** 63n - 1n, 2n ** 63n - 1n],
      [-(2n ** 63n), -(2n ** 63n)],
    ];
    const w = new PacketWriter();
    // Safe values written from numbers (two halves), the others from bigints.
    for (const [v] of signed) {
      if (v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n) w.int64(Number(v));
      else w.int8(v);
    }
    w.int8(2n ** 64n - 1n).int8(2n ** 32n + 5n);
    const r = new Reader(w.payload());
    for (const [, want] of signed) expect(r.int64(false)).toBe(want);
    expect(r.int64(true)).toBe(2n ** 64n - 1n);
    expect(r.int64(true)).toBe(2 ** 32 + 5);
    expect(() => r.int64(false)).toThrow(/packet too short/);
  });

  it('frames packets in place and splits payloads of 16 MiB - 1 and more', () => {
    const w = new PacketWriter(250);
    w.begin().int1(1).end();
    w.begin().zeros(MAX_PAYLOAD).end(); // exactly 16 MiB - 1: followed by an empty packet
    w.begin()
      .bytes(Buffer.alloc(MAX_PAYLOAD + 10, 7))
      .end();
    w.begin().int1(2).end();
    const packets = unframe(w.payload());
    expect(packets.map(([seq, p]) => [seq, p.length])).toEqual([
      [250, 1],
      [251, MAX_PAYLOAD],
      [252, 0],
      [253, MAX_PAYLOAD],
      [254, 10],
      [255, 1],
    ]);
    expect(packets[4]![1].every((b) => b === 7)).toBe(true);
    expect(w.seq).toBe(256);
    // Reused for the next response: nothing of the last one remains.
    w.reset(1).begin().int1(9).end();
    expect(unframe(w.payload())).toEqual([[1, Buffer.of(9)]]);
  });
});

describe('column types of exact numbers', () => {
  it('BIGINT, BIGINT UNSIGNED, DECIMAL and a column holding both ends of 64 bits', () => {
    const cols = describeColumns({
      columns: ['i', 'u', 'd', 'both'],
      rows: [
        [1, 2n ** 64n - 1n, Decimal.parse('1.50')!, 2n ** 64n - 1n],
        [-(2n ** 63n), 5, Decimal.parse('-12.5')!, -1],
      ],
      affectedRows: 0,
    });
    expect(cols.map((c) => [c.type, c.decimals, (c.flags & 0x20) !== 0])).toEqual([
      [TYPE.LONGLONG, 0, false],
      [TYPE.LONGLONG, 0, true],
      [TYPE.NEWDECIMAL, 2, false],
      [TYPE.NEWDECIMAL, 0, false],
    ]);
  });

  it('the shell prints them exactly', () => {
    expect(cellText(2n ** 63n)).toBe('9223372036854775808');
    expect(cellText(Decimal.parse('0.10'))).toBe('0.10');
    const out = formatResult({ columns: ['n'], rows: [[2n ** 60n]], affectedRows: 0 }, 'json', undefined);
    expect(out).toBe('{"n":"1152921504606846976"}');
  });
});
