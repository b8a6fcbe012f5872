import { readSchema, schemaSize, writeSchema } from '../schema/codec.js';
import { TidemarkError } from '../errors.js';
import type { LayerIds } from '../table/log_records.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32 } from '../util/crc.js';
import type { TableLayers } from '../storage/storage.js';

/**
 * Checkpoint files (docs/formats/checkpoint.md), all under `DIR/ckp/`:
 *
 * - `meta-<seq>.ckp`: a meta file, the commit point of a checkpoint: the whole live chain (a global
 *   checkpoint and the incrementals after it) with each data file's size and checksum, and where
 *   replay starts. `seq` grows with every meta file written.
 * - `global-<n>.ckd`, `incr-<n>.ckd`: checkpoint data: the catalog and the tables' object lists, in
 *   full (global) or as the changes since the previous checkpoint (incremental). `n` is the number
 *   of the incremental checkpoint they describe the state after (a global is built from one).
 *
 * Numbers in names are 16 hex digits. Integers are little-endian; every file ends with the CRC-32
 * of everything before it.
 */
export const CKP_DIR = 'ckp';
export const CKP_FORMAT_VERSION = 1;
/** Data files: 2 adds the `ready` operation of indexes (1 is still read). */
const DATA_FORMAT_VERSION = 2;
const META_MAGIC = 'TDMKCKPM';
const DATA_MAGIC = 'TDMKCKPD';

export type CheckpointKind = 'global' | 'incremental';

/** Where replay resumes after this checkpoint, and what it reflects. */
export interface RecoveryPoint {
  /** Every DDL, FLUSH and MERGE record at or below this LSN is reflected in the checkpoint. */
  storageLsn: number;
  /** The first LSN replay must read (the WAL may be truncated below it). */
  replayFromLsn: number;
  /** Per table: its writes below this LSN are in its objects (replay passes over them). */
  redo: Map<number, number>;
  /** The newest commit timestamp handed out when the checkpoint was cut (the clock resumes above). */
  maxTs: number;
  nextTableId: number;
  nextObjectId: number;
}

/** A table in a checkpoint: its schema and its object layers, as the storage layer gives them. */
export type CkpTable = TableLayers;

/** The catalog and object lists a checkpoint describes. */
export interface CkpState {
  tables: Map<number, CkpTable>;
}

export type CkpOp =
  | { kind: 'create'; table: CkpTable }
  | { kind: 'drop'; tableId: number }
  | { kind: 'layers'; tableId: number; layers: LayerIds[] }
  | { kind: 'ready'; tableId: number; readyTs: number };

export interface CkpData {
  kind: CheckpointKind;
  /** The incremental checkpoint number this data describes the state after. */
  seq: number;
  /** The covered range of commit timestamps: (start, end]; a global starts at 0. */
  start: number;
  end: number;
  point: RecoveryPoint;
  ops: CkpOp[];
}

export interface ChainEntry {
  kind: CheckpointKind;
  seq: number;
  start: number;
  end: number;
  file: string;
  bytes: number;
  crc: number;
}

export interface CkpMeta {
  seq: number;
  chain: ChainEntry[];
  /** The recovery point of the chain's newest entry (copied here for tools). */
  storageLsn: number;
  replayFromLsn: number;
}

const hex = (n: number) => n.toString(16).padStart(16, '0');

export function metaName(seq: number): string {
  return `${CKP_DIR}/meta-${hex(seq)}.ckp`;
}

export function dataName(kind: CheckpointKind, seq: number): string {
  return `${CKP_DIR}/${kind === 'global' ? 'global' : 'incr'}-${hex(seq)}.ckd`;
}

/** What a name in ckp/ is: a meta file or a data file (with its number), or undefined. */
export function parseCkpName(name: string): { kind: 'meta' | CheckpointKind; seq: number } | undefined {
  const m = /^(meta|global|incr)-([0-9a-f]{16})\.(ckp|ckd)$/.exec(name);
  if (m === null) return undefined;
  if ((m[1] === 'meta') !== (m[3] === 'ckp')) return undefined;
  const seq = parseInt(m[2]!, 16);
  if (!Number.isSafeInteger(seq) || seq <= 0) return undefined;
  return { kind: m[1] === 'meta' ? 'meta' : m[1] === 'global' ? 'global' : 'incremental', seq };
}

// ---- state ----

/** The state after applying checkpoint data ops (a global's, then each incremental's in order). */
export function applyOps(state: CkpState, ops: readonly CkpOp[], where: string): void {
  for (const op of ops) {
    if (op.kind === 'create') {
      if (state.tables.has(op.table.id)) throw corrupt(where, `table ${op.table.id} created twice`);
      state.tables.set(op.table.id, { ...op.table, layers: op.table.layers.map((l) => ({ ...l })) });
    } else if (op.kind === 'drop') {
      if (!state.tables.delete(op.tableId)) throw corrupt(where, `drop of unknown table ${op.tableId}`);
    } else if (op.kind === 'ready') {
      const t = state.tables.get(op.tableId);
      if (t?.schema.index === undefined) throw corrupt(where, `ready of ${op.tableId}, not an index`);
      t.readyTs = op.readyTs;
    } else {
      const t = state.tables.get(op.tableId);
      if (t === undefined) throw corrupt(where, `object list of unknown table ${op.tableId}`);
      t.layers = op.layers.map((l) => ({ ...l }));
    }
  }
}

const sameLayers = (a: readonly LayerIds[], b: readonly LayerIds[]) =>
  a.length === b.length && a.every((l, i) => l.data === b[i]!.data && l.tomb === b[i]!.tomb);

/** The ops that turn `prev` into `next` (an incremental's changes). */
export function diffOps(prev: CkpState, next: CkpState): CkpOp[] {
  const ops: CkpOp[] = [];
  for (const id of prev.tables.keys()) if (!next.tables.has(id)) ops.push({ kind: 'drop', tableId: id });
  for (const t of next.tables.values()) {
    const p = prev.tables.get(t.id);
    if (p === undefined) ops.push({ kind: 'create', table: t });
    else if (!sameLayers(p.layers, t.layers)) ops.push({ kind: 'layers', tableId: t.id, layers: t.layers });
    if (t.readyTs !== undefined && p?.readyTs === undefined)
      ops.push({ kind: 'ready', tableId: t.id, readyTs: t.readyTs });
  }
  return ops;
}

/** The ops that build `state` from nothing (a global checkpoint). */
export function fullOps(state: CkpState): CkpOp[] {
  const ops: CkpOp[] = [];
  for (const table of state.tables.values()) {
    ops.push({ kind: 'create', table });
    if (table.readyTs !== undefined) ops.push({ kind: 'ready', tableId: table.id, readyTs: table.readyTs });
  }
  return ops;
}

/** Object ids a state names. */
export function namedObjects(state: CkpState, into = new Set<number>()): Set<number> {
  for (const t of state.tables.values())
    for (const l of t.layers) {
      if (l.data !== 0) into.add(l.data);
      if (l.tomb !== 0) into.add(l.tomb);
    }
  return into;
}

// ---- data files ----

function layersSize(layers: readonly LayerIds[]): number {
  return 4 + layers.length * 32;
}

function writeLayers(w: ByteWriter, layers: readonly LayerIds[]): void {
  w.u32(layers.length);
  for (const l of layers) {
    w.u64(l.data);
    w.u64(l.tomb);
    w.f64(l.minTs);
    w.f64(l.maxTs);
  }
}

function readLayers(r: ByteReader): LayerIds[] {
  const n = r.u32();
  const out: LayerIds[] = [];
  for (let i = 0; i < n; i++) out.push({ data: r.u64(), tomb: r.u64(), minTs: r.f64(), maxTs: r.f64() });
  return out;
}

const OP_CREATE = 1;
const OP_DROP = 2;
const OP_LAYERS = 3;
const OP_READY = 4;

/** Encode checkpoint data into the bytes `alloc(size)` provides (a pooled buffer's, normally). */
export function encodeData(d: CkpData, alloc: (size: number) => Uint8Array): Uint8Array {
  let size = 8 + 2 + 1 + 8 + 8 + 8;
  size += 8 + 8 + 8 + 4 + 8 + 4 + d.point.redo.size * 12;
  size += 4;
  for (const op of d.ops) {
    size += 1 + 4;
    if (op.kind === 'create') size += 8 + schemaSize(op.table.schema) + layersSize(op.table.layers);
    else if (op.kind === 'layers') size += layersSize(op.layers);
    else if (op.kind === 'ready') size += 8;
  }
  size += 4;
  const out = alloc(size).subarray(0, size);
  const w = new ByteWriter(out);
  w.raw(Buffer.from(DATA_MAGIC, 'latin1'));
  w.u16(DATA_FORMAT_VERSION);
  w.u8(d.kind === 'global' ? 1 : 2);
  w.u64(d.seq);
  w.f64(d.start);
  w.f64(d.end);
  const p = d.point;
  w.u64(p.storageLsn);
  w.u64(p.replayFromLsn);
  w.f64(p.maxTs);
  w.u32(p.nextTableId);
  w.u64(p.nextObjectId);
  w.u32(p.redo.size);
  for (const [id, lsn] of p.redo) {
    w.u32(id);
    w.u64(lsn);
  }
  w.u32(d.ops.length);
  for (const op of d.ops) {
    if (op.kind === 'create') {
      w.u8(OP_CREATE);
      w.u32(op.table.id);
      w.f64(op.table.createdTs);
      writeSchema(w, op.table.schema);
      writeLayers(w, op.table.layers);
    } else if (op.kind === 'drop') {
      w.u8(OP_DROP);
      w.u32(op.tableId);
    } else if (op.kind === 'ready') {
      w.u8(OP_READY);
      w.u32(op.tableId);
      w.f64(op.readyTs);
    } else {
      w.u8(OP_LAYERS);
      w.u32(op.tableId);
      writeLayers(w, op.layers);
    }
  }
  w.u32(crc32(out.subarray(0, w.pos)));
  if (w.pos !== size)
    throw new TidemarkError('CORRUPTION', `checkpoint data encoded ${w.pos} bytes, sized ${size}`);
  return out;
}

/** Decode a checkpoint data file; anything inconsistent is CORRUPTION naming `path`. */
export function decodeData(bytes: Uint8Array, path: string): CkpData {
  const r = checkedReader(bytes, path, DATA_MAGIC, [1, DATA_FORMAT_VERSION]);
  const kindByte = r.u8();
  if (kindByte !== 1 && kindByte !== 2) r.fail(`unknown checkpoint kind ${kindByte}`);
  const kind: CheckpointKind = kindByte === 1 ? 'global' : 'incremental';
  const seq = r.u64();
  const start = r.f64();
  const end = r.f64();
  const storageLsn = r.u64();
  const replayFromLsn = r.u64();
  const maxTs = r.f64();
  const nextTableId = r.u32();
  const nextObjectId = r.u64();
  const redo = new Map<number, number>();
  const nRedo = r.u32();
  for (let i = 0; i < nRedo; i++) redo.set(r.u32(), r.u64());
  const ops: CkpOp[] = [];
  const nOps = r.u32();
  for (let i = 0; i < nOps; i++) {
    const k = r.u8();
    const id = r.u32();
    if (k === OP_CREATE) {
      const createdTs = r.f64();
      const schema = readSchema(r);
      ops.push({ kind: 'create', table: { id, schema, createdTs, layers: readLayers(r) } });
    } else if (k === OP_DROP) ops.push({ kind: 'drop', tableId: id });
    else if (k === OP_LAYERS) ops.push({ kind: 'layers', tableId: id, layers: readLayers(r) });
    else if (k === OP_READY) ops.push({ kind: 'ready', tableId: id, readyTs: r.f64() });
    else r.fail(`unknown checkpoint operation ${k}`);
  }
  if (r.remaining !== 4) r.fail(`${r.remaining - 4} unexpected bytes before the checksum`);
  return {
    kind,
    seq,
    start,
    end,
    point: { storageLsn, replayFromLsn, redo, maxTs, nextTableId, nextObjectId },
    ops,
  };
}

// ---- meta files ----

export function encodeMeta(m: CkpMeta, alloc: (size: number) => Uint8Array): Uint8Array {
  let size = 8 + 2 + 8 + 8 + 8 + 4;
  for (const e of m.chain) size += 1 + 8 + 8 + 8 + 2 + Buffer.byteLength(e.file, 'utf8') + 8 + 4;
  size += 4;
  const out = alloc(size).subarray(0, size);
  const w = new ByteWriter(out);
  w.raw(Buffer.from(META_MAGIC, 'latin1'));
  w.u16(CKP_FORMAT_VERSION);
  w.u64(m.seq);
  w.u64(m.storageLsn);
  w.u64(m.replayFromLsn);
  w.u32(m.chain.length);
  for (const e of m.chain) {
    w.u8(e.kind === 'global' ? 1 : 2);
    w.u64(e.seq);
    w.f64(e.start);
    w.f64(e.end);
    w.str16(e.file);
    w.u64(e.bytes);
    w.u32(e.crc);
  }
  w.u32(crc32(out.subarray(0, w.pos)));
  return out;
}

export function decodeMeta(bytes: Uint8Array, path: string): CkpMeta {
  const r = checkedReader(bytes, path, META_MAGIC);
  const seq = r.u64();
  const storageLsn = r.u64();
  const replayFromLsn = r.u64();
  const n = r.u32();
  const chain: ChainEntry[] = [];
  for (let i = 0; i < n; i++) {
    const k = r.u8();
    if (k !== 1 && k !== 2) r.fail(`unknown checkpoint kind ${k}`);
    chain.push({
      kind: k === 1 ? 'global' : 'incremental',
      seq: r.u64(),
      start: r.f64(),
      end: r.f64(),
      file: r.str16(),
      bytes: r.u64(),
      crc: r.u32(),
    });
  }
  if (r.remaining !== 4) r.fail(`${r.remaining - 4} unexpected bytes before the checksum`);
  if (chain.length === 0) r.fail('the chain is empty');
  if (chain.slice(1).some((e) => e.kind !== 'incremental'))
    r.fail('only the first entry of a chain may be a global checkpoint');
  return { seq, chain, storageLsn, replayFromLsn };
}

/** A reader past the magic and version, after checking the trailing CRC-32. */
function checkedReader(
  bytes: Uint8Array,
  path: string,
  magic: string,
  versions: readonly number[] = [CKP_FORMAT_VERSION],
): ByteReader {
  const r = new ByteReader(bytes, `checkpoint file ${path}`);
  if (bytes.length < 8 + 2 + 4) r.fail(`file of ${bytes.length} bytes is too short`);
  const stored = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
  if (crc32(bytes.subarray(0, bytes.length - 4)) !== stored) r.fail('checksum mismatch (torn or corrupt)');
  if (Buffer.from(r.raw(8)).toString('latin1') !== magic) r.fail('bad magic');
  const version = r.u16();
  if (!versions.includes(version)) r.fail(`unknown format version ${version}`);
  return r;
}

function corrupt(where: string, reason: string): TidemarkError {
  return new TidemarkError('CORRUPTION', `${where}: ${reason}`, { details: { file: where } });
}
