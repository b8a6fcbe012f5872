import type { ColumnDef, StorageType, TableSchema } from '../schema/schema.js';
import type { PooledBuffer } from '../mem/buffer.js';
import type { MemoryPool } from '../mem/pool.js';
import type { WaitOptions } from '../mem/types.js';

/** Rows per appendable block. */
export const BLOCK_ROWS = 4096;

/** Bytes per value of fixed-width types; string and bytes keep (offset, length) pairs of u32. */
export function fixedWidth(type: StorageType): number {
  switch (type) {
    case 'int32':
      return 4;
    case 'bool':
      return 1;
    case 'string':
    case 'bytes':
      return 8;
    default:
      return 8; // int64 and uint64 (two's complement), float64, timestamp (ms)
  }
}

export function isVarWidth(type: StorageType): boolean {
  return type === 'string' || type === 'bytes';
}

const MIN_DATA_BYTES = 4096;

/**
 * One column of one block, in pooled memory: a typed array of BLOCK_ROWS values (for strings and
 * bytes, (offset, length) pairs into a data buffer that grows), and a null map if nullable.
 */
export class ColumnVector {
  readonly values: PooledBuffer;
  readonly nulls: PooledBuffer | undefined;
  data: PooledBuffer | undefined;
  dataUsed = 0;
  // Views, refreshed when a buffer is replaced.
  i32: Int32Array | undefined;
  f64: Float64Array | undefined;
  /** int64 and uint64: the value's 32-bit halves (low, high), and the same bytes as 64-bit integers. */
  halves: Int32Array | undefined;
  i64: BigInt64Array | undefined;
  u8: Uint8Array | undefined;
  refs: Uint32Array | undefined;
  nullMap: Uint8Array | undefined;
  dataBytes: Uint8Array | undefined;
  /** A Buffer view of the data buffer: Buffer.write encodes short strings faster than TextEncoder. */
  dataBuf: Buffer | undefined;

  constructor(
    readonly def: ColumnDef,
    values: PooledBuffer,
    nulls: PooledBuffer | undefined,
  ) {
    this.values = values;
    this.nulls = nulls;
    switch (def.storage) {
      case 'int32':
        this.i32 = values.int32();
        break;
      case 'int64':
      case 'uint64':
        this.halves = values.int32();
        this.i64 = values.bigInt64();
        break;
      case 'bool':
        this.u8 = values.bytes;
        break;
      case 'string':
      case 'bytes':
        this.refs = values.uint32();
        break;
      default:
        this.f64 = values.float64();
    }
    if (nulls !== undefined) {
      this.nullMap = nulls.bytes;
      this.nullMap.fill(0);
    }
  }

  get bytes(): number {
    return this.values.capacity + (this.nulls?.capacity ?? 0) + (this.data?.capacity ?? 0);
  }

  /** Make room for `need` more data bytes (var-width columns), growing the buffer if needed. */
  async reserveData(pool: MemoryPool, need: number, owner: string, options: WaitOptions): Promise<void> {
    const have = this.data?.length ?? 0;
    if (have - this.dataUsed >= need) return;
    const want = Math.max(MIN_DATA_BYTES, (this.dataUsed + need) * 2);
    const next = await pool.allocate(want, owner, options);
    if (this.data !== undefined) {
      next.bytes.set(this.data.bytes.subarray(0, this.dataUsed));
      this.data.release();
    }
    this.data = next;
    this.dataBytes = next.bytes;
    this.dataBuf = Buffer.from(next.arrayBuffer, next.byteOffset, next.length);
  }

  release(): void {
    this.values.release();
    this.nulls?.release();
    this.data?.release();
    this.data = undefined;
  }
}

/** Rows of a memtable, BLOCK_ROWS at a time, one ColumnVector per column. */
export class RowBlock {
  readonly columns: ColumnVector[] = [];

  private constructor(readonly firstRow: number) {}

  static async allocate(
    schema: TableSchema,
    firstRow: number,
    pool: MemoryPool,
    owner: string,
    options: WaitOptions,
  ): Promise<RowBlock> {
    const b = new RowBlock(firstRow);
    try {
      for (const def of schema.columns) {
        const values = await pool.allocate(BLOCK_ROWS * fixedWidth(def.storage), owner, options);
        let nulls: PooledBuffer | undefined;
        try {
          nulls = def.nullable ? await pool.allocate(BLOCK_ROWS, owner, options) : undefined;
        } catch (e) {
          values.release();
          throw e;
        }
        b.columns.push(new ColumnVector(def, values, nulls));
      }
    } catch (e) {
      b.release();
      throw e;
    }
    return b;
  }

  get bytes(): number {
    let n = 0;
    for (const c of this.columns) n += c.bytes;
    return n;
  }

  release(): void {
    for (const c of this.columns) c.release();
    this.columns.length = 0;
  }
}

const TWO32 = 4294967296;

/**
 * Row i of a 64-bit integer column in canonical form (a number when safe, else a bigint). The two
 * halves make a double exactly whenever the value is safe: no bigint is made for those.
 */
export function readInt64(c: ColumnVector, i: number): number | bigint {
  const v = readInt64Double(c, i);
  if (Number.isSafeInteger(v)) return v;
  const b = c.i64![i]!;
  return c.def.storage === 'uint64' ? BigInt.asUintN(64, b) : b;
}

/** Row i's value, rounded to a double (exact when safe). */
export function readInt64Double(c: ColumnVector, i: number): number {
  const h = c.halves!;
  const lo = h[2 * i]! >>> 0;
  const hi = c.def.storage === 'uint64' ? h[2 * i + 1]! >>> 0 : h[2 * i + 1]!;
  return hi * TWO32 + lo;
}

/** Store a canonical integer at row i. */
export function writeInt64(c: ColumnVector, i: number, v: number | bigint): void {
  if (typeof v === 'bigint') {
    c.i64![i] = BigInt.asIntN(64, v);
    return;
  }
  const hi = Math.floor(v / TWO32);
  const h = c.halves!;
  h[2 * i] = (v - hi * TWO32) | 0;
  h[2 * i + 1] = hi | 0;
}
