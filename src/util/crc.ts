import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC-32 (IEEE), native through zlib. `seed` continues a running checksum. */
export function crc32(data: Uint8Array, seed = 0): number {
  return zlibCrc32(data, seed) >>> 0;
}
