import { TidemarkError } from '../errors.js';
import type { FileService } from '../fileservice/types.js';
import { readFileInto } from '../fileservice/util.js';
import type { Logger } from '../log.js';
import type { MemoryPool } from '../mem/pool.js';
import { crc32 } from '../util/crc.js';
import { planted, plantedKeep } from '../util/plant.js';
import {
  applyOps,
  CKP_DIR,
  decodeData,
  decodeMeta,
  metaName,
  namedObjects,
  parseCkpName,
  type CkpMeta,
  type CkpState,
  type RecoveryPoint,
} from './format.js';

/** A meta file and the state its chain describes, loaded and checked. */
export interface LoadedCheckpoint {
  meta: CkpMeta;
  path: string;
  state: CkpState;
  point: RecoveryPoint;
  /** The checkpoint files it needs: the meta and its chain's data files. */
  files: string[];
  /** Object ids its state names. */
  objects: Set<number>;
}

export interface LoadedChain {
  /** The newest valid checkpoint, and the one before it (kept as the fallback), if any. */
  newest: LoadedCheckpoint | undefined;
  previous: LoadedCheckpoint | undefined;
  /** Meta files newer than `newest` that are torn or corrupt (each with why). */
  invalid: { path: string; reason: string }[];
  /** Every name in ckp/ (for orphan detection). */
  listing: string[];
  /** The highest meta sequence number seen, valid or not. */
  maxMetaSeq: number;
}

/**
 * Read the checkpoint chain: the newest meta file whose chain loads and checks (each data file's
 * size and CRC against the meta, then its own CRC and structure), falling back to older meta files
 * when the newer are torn or corrupt, and the valid one before it. Buffers come from `pool` and are
 * released before this returns, on every path. I/O errors propagate (a disk that fails to read is
 * not a reason to go back in time); CORRUPTION if meta files exist but none is valid.
 */
export async function loadChain(fs: FileService, pool: MemoryPool, logger: Logger): Promise<LoadedChain> {
  const listing = await fs.list(CKP_DIR);
  const metas = listing
    .map((name) => ({ name, parsed: parseCkpName(name) }))
    .filter((m) => m.parsed?.kind === 'meta')
    .map((m) => m.parsed!.seq)
    .sort((a, b) => b - a);
  const out: LoadedChain = {
    newest: undefined,
    previous: undefined,
    invalid: [],
    listing,
    maxMetaSeq: metas[0] ?? 0,
  };
  for (const seq of metas) {
    const path = metaName(seq);
    try {
      const loaded = await loadOne(fs, pool, path);
      if (out.newest === undefined) out.newest = loaded;
      else {
        out.previous = loaded;
        break;
      }
    } catch (e) {
      if (!(e instanceof TidemarkError) || e.code !== 'CORRUPTION') throw e;
      if (out.newest === undefined) {
        out.invalid.push({ path, reason: e.message });
        logger.error(
          { file: path, err: e.message },
          'recovery: the newest checkpoint meta file is torn or corrupt; falling back to the one before',
        );
      } else {
        logger.warn({ file: path, err: e.message }, 'recovery: an older checkpoint meta file is corrupt');
        break;
      }
    }
  }
  if (metas.length > 0 && out.newest === undefined) {
    throw new TidemarkError(
      'CORRUPTION',
      `no valid checkpoint meta file in ${CKP_DIR}/: ${out.invalid.map((i) => i.reason).join('; ')}`,
      { details: { files: out.invalid.map((i) => i.path) } },
    );
  }
  return out;
}

async function loadOne(fs: FileService, pool: MemoryPool, path: string): Promise<LoadedCheckpoint> {
  const metaBuf = await readFileInto(fs, path, 'checkpoint', pool, 'checkpoint.meta');
  let meta: CkpMeta;
  try {
    meta = decodeMeta(metaBuf.bytes, path);
  } finally {
    if (planted('replay-batch')) plantedKeep.push(metaBuf);
    else metaBuf.release();
  }
  const state: CkpState = { tables: new Map() };
  let point: RecoveryPoint | undefined;
  for (const entry of meta.chain) {
    if ((await fs.stat(entry.file)) === undefined) {
      throw new TidemarkError('CORRUPTION', `checkpoint ${path} names ${entry.file}, which is missing`, {
        details: { file: entry.file },
      });
    }
    const buf = await readFileInto(fs, entry.file, 'checkpoint', pool, 'checkpoint.data');
    try {
      const bytes = buf.bytes;
      if (bytes.length !== entry.bytes || crc32(bytes) !== entry.crc) {
        throw new TidemarkError(
          'CORRUPTION',
          `checkpoint file ${entry.file} does not match ${path} (${bytes.length} bytes, expected ${entry.bytes})`,
          { details: { file: entry.file } },
        );
      }
      const data = decodeData(bytes, entry.file);
      if (data.kind !== entry.kind || data.seq !== entry.seq)
        throw new TidemarkError('CORRUPTION', `checkpoint file ${entry.file} is not the one ${path} names`, {
          details: { file: entry.file },
        });
      applyOps(state, data.ops, entry.file);
      point = data.point;
    } finally {
      buf.release();
    }
  }
  return {
    meta,
    path,
    state,
    point: point!,
    files: [path, ...meta.chain.map((e) => e.file)],
    objects: namedObjects(state),
  };
}
