import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Key, KeyCompare, TableSchema } from '../schema/schema.js';
import { TidemarkError } from '../errors.js';
import type { FileService } from '../fileservice/types.js';
import type { MemoryPool } from '../mem/pool.js';
import type { BlockCache, CachePin } from '../objectio/cache.js';
import type { Decoded } from '../objectio/encoding.js';
import type { ObjectFiles } from '../objectio/files.js';
import { physicalOf } from '../objectio/format.js';
import { ObjectReader } from '../objectio/reader.js';
import { LayerOutput, wideOf, type FlushResult, type GroupBuffers } from './flush.js';
import type { LayerIds } from './log_records.js';
import { keyAt } from './object_layer.js';

/** The versions of one object in (key ascending, newest first) order, a pinned row group at a time. */
class VersionStream {
  private g = -1;
  private pos = 0;
  private pins: CachePin[] = [];
  private keyCol = 0;
  private tsCol = 0;

  constructor(
    readonly reader: ObjectReader,
    private readonly schema: TableSchema,
  ) {
    const kind = reader.meta.kind;
    this.keyCol = kind === 'data' ? schema.pk.index : 0;
    this.tsCol = kind === 'data' ? schema.columns.length : 1;
  }

  get isData(): boolean {
    return this.reader.meta.kind === 'data';
  }

  /** Make sure the current position is loaded; false at the end. */
  async ready(): Promise<boolean> {
    const groups = this.reader.meta.rowGroups;
    while (this.g < groups.length) {
      if (this.g >= 0 && this.pos < groups[this.g]!.rows) return true;
      this.release();
      this.g++;
      this.pos = 0;
      if (this.g >= groups.length) return false;
      const cols = this.isData ? this.schema.columns.length + 1 : 2;
      for (let c = 0; c < cols; c++) this.pins.push(await this.reader.pinChunk(this.g, c));
    }
    return false;
  }

  key(): Key {
    return keyAt(this.pins[this.keyCol]!.decoded, this.schema.pk.storage, this.pos);
  }

  ts(): number {
    return this.pins[this.tsCol]!.decoded.f64![this.pos]!;
  }

  /** The decoded column c of the current row group (data objects) and the row in it. */
  column(c: number): Decoded {
    return this.pins[c]!.decoded;
  }

  get row(): number {
    return this.pos;
  }

  advance(): void {
    this.pos++;
  }

  release(): void {
    for (const p of this.pins.splice(0)) p.release();
  }
}

/**
 * One row's stored values copied out of an input (numbers, byte strings, or null; a 64-bit
 * integer from a chunk with values beyond ±2^53 as its bits, a bigint).
 */
type Captured = (number | bigint | Uint8Array | null)[];

function capture(s: VersionStream, cols: number): Captured {
  const out: Captured = new Array<number | bigint | Uint8Array | null>(cols);
  const r = s.row;
  for (let c = 0; c < cols; c++) {
    const d = s.column(c);
    if (d.nulls?.[r] === 1) out[c] = null;
    else if (d.physical === 'var') out[c] = d.data!.slice(d.offsets![r], d.offsets![r + 1]);
    else if (d.wide !== undefined) out[c] = d.wide[r]!;
    else out[c] = (d.f64 ?? d.i32 ?? d.u8)![r]!;
  }
  return out;
}

/** Output rows of a data row group being built, values copied in (inputs move on meanwhile). */
class GroupBuilder {
  private rows: Captured[] = [];
  readonly keys: Key[] = [];
  ts: number[] = [];
  /** Bytes of values added (an estimate of the decoded group's size). */
  bytes = 0;

  add(values: Captured, key: Key, ts: number): void {
    for (const v of values)
      this.bytes += v instanceof Uint8Array ? v.length + 4 : typeof v === 'bigint' ? 16 : 8;
    this.rows.push(values);
    this.keys.push(key);
    this.ts.push(ts);
  }

  get n(): number {
    return this.keys.length;
  }

  /** The schema's columns in their stored layout, in `bufs` (no timestamp column). */
  columns(schema: TableSchema, bufs: GroupBuffers): Decoded[] {
    const n = this.n;
    const out: Decoded[] = schema.columns.map((def) => {
      const c = def.index;
      let nulls: Uint8Array | undefined;
      if (def.nullable) {
        nulls = bufs.u8(n);
        for (let i = 0; i < n; i++) nulls[i] = this.rows[i]![c] === null ? 1 : 0;
      }
      const d: Decoded = { n, physical: physicalOf(def.storage), ...(nulls !== undefined ? { nulls } : {}) };
      if (d.physical === 'var') {
        let total = 0;
        for (let i = 0; i < n; i++) total += (this.rows[i]![c] as Uint8Array | null)?.length ?? 0;
        const offsets = bufs.u32(n + 1);
        const data = bufs.u8(total);
        let at = 0;
        for (let i = 0; i < n; i++) {
          offsets[i] = at;
          const v = this.rows[i]![c] as Uint8Array | null;
          if (v === null) continue;
          data.set(v, at);
          at += v.length;
        }
        offsets[n] = at;
        d.offsets = offsets;
        d.data = data;
      } else {
        const v = d.physical === 'f64' ? bufs.f64(n) : d.physical === 'i32' ? bufs.i32(n) : bufs.u8(n);
        let wide = false;
        for (let i = 0; i < n; i++) {
          const x = this.rows[i]![c] as number | bigint | null;
          if (typeof x === 'bigint') {
            // Bits of a 64-bit integer: the double of its value.
            wide = true;
            v[i] = Number(def.storage === 'uint64' ? BigInt.asUintN(64, x) : x);
          } else v[i] = x ?? 0;
        }
        if (wide)
          d.wide = wideOf(
            this.rows.map((r) => r[c] as number | bigint | null),
            n,
            bufs,
          );
        if (d.physical === 'f64') d.f64 = v as Float64Array;
        else if (d.physical === 'i32') d.i32 = v as Int32Array;
        else d.u8 = v as Uint8Array;
      }
      return d;
    });
    return out;
  }

  clear(): void {
    this.rows = [];
    this.keys.length = 0;
    this.ts = [];
    this.bytes = 0;
  }
}

/**
 * Merge object layers (a contiguous run of a table's layers, oldest first) into one, streaming in
 * bounded memory: each input holds one pinned row group at a time (in the merge cache, on the
 * `merge` pool), and the output one row group being built. Per key it keeps the versions a reader
 * may still need (all newer than `oldestSnapshot`, and the newest at or before it); when the inputs
 * include the table's oldest layer, a delete that is the oldest version kept is dropped too: there
 * is nothing older for it to hide. Resolves with the new objects (durable), or undefined when
 * nothing remains.
 */
export async function mergeLayers(params: {
  fs: FileService;
  files: ObjectFiles;
  cache: BlockCache;
  pool: MemoryPool;
  schema: TableSchema;
  compare: KeyCompare;
  tableId: number;
  inputs: LayerIds[];
  includesBottom: boolean;
  oldestSnapshot: number;
  rowGroupRows: number;
  rowGroupBytes: number;
  nextObjectId: () => number;
  /** Checked between steps: true aborts the merge (CLOSED), deleting what it wrote. */
  shouldStop?: () => boolean;
}): Promise<FlushResult | undefined> {
  const { fs, pool, schema, compare: cmp } = params;
  let keysSinceYield = 0;
  const readers: ObjectReader[] = [];
  const streams: VersionStream[] = [];
  const outputs: LayerOutput[] = [];
  try {
    for (const l of params.inputs) {
      for (const id of [l.data, l.tomb]) {
        if (id === 0) continue;
        const r = await ObjectReader.open({
          id,
          files: params.files,
          cache: params.cache,
          io: pool,
          metaPool: pool,
        });
        readers.push(r);
        streams.push(new VersionStream(r, schema));
      }
    }
    const expected = readers.reduce((n, r) => n + r.meta.rows, 0);
    const out = new LayerOutput({
      fs,
      tableId: params.tableId,
      schema,
      compare: cmp,
      pool,
      nextObjectId: params.nextObjectId,
      expectedData: expected,
      expectedTomb: expected,
      owner: 'merge.group',
    });
    outputs.push(out);
    const dataOut = new GroupBuilder();
    const tombKeys: Key[] = [];
    const tombTs: number[] = [];
    const flushData = async () => {
      if (dataOut.n === 0) return;
      await out.addData(dataOut.keys.slice(), dataOut.ts, (bufs) => dataOut.columns(schema, bufs));
      dataOut.clear();
    };
    const flushTomb = async () => {
      if (tombKeys.length === 0) return;
      await out.addTombstones(tombKeys.slice(), tombTs);
      tombKeys.length = 0;
      tombTs.length = 0;
    };
    for (;;) {
      // The smallest key among the inputs.
      let key: Key | undefined;
      for (const s of streams) {
        if (!(await s.ready())) continue;
        const k = s.key();
        if (key === undefined || cmp(k, key) < 0) key = k;
      }
      if (key === undefined) break;
      // Every version of that key from all inputs (values copied out before the inputs move on).
      const all: { ts: number; values: Captured | undefined }[] = [];
      for (const s of streams) {
        while ((await s.ready()) && cmp(s.key(), key) === 0) {
          all.push({ ts: s.ts(), values: s.isData ? capture(s, schema.columns.length) : undefined });
          s.advance();
        }
      }
      // Newest first; keep what a reader may still need.
      all.sort((a, b) => b.ts - a.ts);
      for (const v of all) {
        const oldestKept = v.ts <= params.oldestSnapshot;
        // A delete that is the oldest version kept hides nothing when nothing older exists.
        if (!(oldestKept && v.values === undefined && params.includesBottom)) {
          if (v.values === undefined) {
            tombKeys.push(key);
            tombTs.push(v.ts);
          } else dataOut.add(v.values, key, v.ts);
        }
        if (oldestKept) break;
      }
      if (dataOut.n >= params.rowGroupRows || dataOut.bytes >= params.rowGroupBytes) await flushData();
      if (tombKeys.length >= params.rowGroupRows) await flushTomb();
      // Background work: let commits and reads run between steps, and stop when told to.
      if (++keysSinceYield >= 1024) {
        keysSinceYield = 0;
        await nextTurn();
        if (params.shouldStop?.() === true)
          throw new TidemarkError(
            'CLOSED',
            'merge stopped: the database is closing or the table was dropped',
          );
      }
    }
    await flushData();
    await flushTomb();
    return await out.finish();
  } catch (e) {
    for (const o of outputs) await o.abort();
    throw e;
  } finally {
    for (const s of streams) s.release();
    for (const r of readers) {
      r.dropFromCache();
      r.close();
    }
  }
}
