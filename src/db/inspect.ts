import { stat } from 'node:fs/promises';
import { CKP_DIR, parseCkpName, type ChainEntry } from '../checkpoint/format.js';
import { loadChain } from '../checkpoint/recovery.js';
import { TidemarkError } from '../errors.js';
import { LocalFileService } from '../fileservice/local.js';
import { isTempName } from '../fileservice/paths.js';
import type { FileService } from '../fileservice/types.js';
import { createLogger } from '../log.js';
import { MemoryManager } from '../mem/manager.js';
import { OBJ_DIR, objectPath, parseObjectName } from '../objectio/format.js';
import { LayerReplay } from '../storage/layer_replay.js';
import { decodeStorage, StorageRecord } from '../table/log_records.js';
import { SegmentScanner } from '../wal/reader.js';
import { parseSegmentName, WAL_DIR } from '../wal/segment.js';

export interface InspectReport {
  dir: string;
  checkpoint:
    | {
        meta: string;
        chain: (Omit<ChainEntry, 'crc'> & { crc: string })[];
        storageLsn: number;
        replayFromLsn: number;
        tables: { id: number; name: string; objects: number }[];
        /** The meta file kept to fall back on, if any. */
        previousMeta: string | undefined;
      }
    | undefined;
  /** Newer meta files that are torn or corrupt (open falls back past them). */
  invalidMetas: { path: string; reason: string }[];
  wal: {
    segments: { path: string; firstLsn: number; bytes: number }[];
    bytes: number;
    /** Records after the checkpoint (what an open would replay), and a bad record if one was met. */
    recordsAfterCheckpoint: number;
    lastLsn: number;
    problem: string | undefined;
  };
  objects: {
    /** In a table's layers (after the checkpoint and the log after it). */
    live: number;
    liveBytes: number;
    /** Retired, still named by a retained checkpoint: deleted by the next checkpoints. */
    retired: string[];
    /** Named by nothing: a crash left them; the next open deletes them. */
    orphans: string[];
  };
  /** Checkpoint files no retained meta names, and temporary files anywhere. */
  orphanCheckpointFiles: string[];
}

/**
 * Read a database directory without opening it (no lock taken, nothing written): the checkpoint
 * chain, the WAL segments, the objects (live, retired, orphaned) and stray checkpoint files.
 */
export function inspect(dir: string): Promise<InspectReport> {
  return readDirectory(dir, (fs, memory) => inspectWith(fs, memory, dir));
}

/**
 * Run `fn` over a database directory read through a file service and memory of its own (without
 * its lock: nothing is written), both closed afterwards, and checked for leaks. NOT_FOUND if the
 * directory is not there.
 */
export async function readDirectory<T>(
  dir: string,
  fn: (fs: FileService, memory: MemoryManager) => Promise<T>,
): Promise<T> {
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined || !st.isDirectory())
    throw new TidemarkError('NOT_FOUND', `no database directory at ${dir}`, { details: { dir } });
  const fs = new LocalFileService(dir);
  const memory = new MemoryManager({ leakDetection: 'paranoid' });
  try {
    return await fn(fs, memory);
  } finally {
    await fs.close();
    memory.close();
  }
}

export async function inspectWith(
  fs: FileService,
  memory: MemoryManager,
  dir: string,
): Promise<InspectReport> {
  const chain = await loadChain(fs, memory.pool('replay'), createLogger(undefined));
  const newest = chain.newest;
  const retainedFiles = new Set([...(newest?.files ?? []), ...(chain.previous?.files ?? [])]);

  // Layers: the checkpoint's, then the FLUSH and MERGE records after it.
  const layers = new LayerReplay();
  for (const t of newest?.state.tables.values() ?? []) layers.seed(t.id, t.layers, newest!.path);
  const storageLsn = newest?.point.storageLsn ?? 0;
  const segments: InspectReport['wal']['segments'] = [];
  for (const name of await fs.list(WAL_DIR)) {
    const first = parseSegmentName(name);
    if (first === undefined) continue;
    const s = await fs.stat(`${WAL_DIR}/${name}`);
    segments.push({ path: `${WAL_DIR}/${name}`, firstLsn: first, bytes: s?.size ?? 0 });
  }
  segments.sort((a, b) => a.firstLsn - b.firstLsn);
  let after = 0;
  let lastLsn = 0;
  let problem: string | undefined;
  const pool = memory.pool('replay');
  scan: for (const seg of segments) {
    const scanner = await SegmentScanner.open(fs, seg.path, pool);
    try {
      const h = await scanner.header();
      if (!h.ok) {
        problem = `${seg.path}: ${h.reason}`;
        break;
      }
      for (;;) {
        const r = await scanner.next();
        if (r.kind === 'end') break;
        if (r.kind === 'bad') {
          problem = `${seg.path} at byte ${r.offset}: ${r.reason} (a torn tail if it is the last write)`;
          break scan;
        }
        lastLsn = r.header.lsn;
        if (r.header.lsn <= storageLsn) continue;
        after++;
        const type = r.header.type;
        if (type !== StorageRecord.FLUSH && type !== StorageRecord.MERGE) continue;
        const where = `${seg.path} LSN ${r.header.lsn}`;
        try {
          const op = decodeStorage(type, r.payload, where);
          if (op.kind !== 'freeze') layers.apply(op, where);
        } catch (e) {
          problem ??= (e as Error).message;
        }
      }
    } finally {
      await scanner.close();
    }
  }
  const live = layers.liveIds();
  const named = new Set([...(newest?.objects ?? []), ...(chain.previous?.objects ?? [])]);
  const objects: InspectReport['objects'] = { live: 0, liveBytes: 0, retired: [], orphans: [] };
  for (const name of await fs.list(OBJ_DIR)) {
    const id = parseObjectName(name);
    const path = `${OBJ_DIR}/${name}`;
    if (id !== undefined && live.has(id)) {
      objects.live++;
      objects.liveBytes += (await fs.stat(objectPath(id)))?.size ?? 0;
    } else if (id !== undefined && named.has(id)) objects.retired.push(path);
    else objects.orphans.push(path);
  }
  const orphanCheckpointFiles: string[] = [];
  for (const name of await fs.list(CKP_DIR)) {
    const path = `${CKP_DIR}/${name}`;
    if (!retainedFiles.has(path) && (parseCkpName(name) !== undefined || isTempName(name)))
      orphanCheckpointFiles.push(path);
  }
  return {
    dir,
    checkpoint:
      newest === undefined
        ? undefined
        : {
            meta: newest.path,
            chain: newest.meta.chain.map((e) => ({ ...e, crc: e.crc.toString(16).padStart(8, '0') })),
            storageLsn: newest.point.storageLsn,
            replayFromLsn: newest.point.replayFromLsn,
            tables: [...newest.state.tables.values()].map((t) => ({
              id: t.id,
              name: t.schema.name,
              objects: t.layers.reduce((n, l) => n + (l.data !== 0 ? 1 : 0) + (l.tomb !== 0 ? 1 : 0), 0),
            })),
            previousMeta: chain.previous?.path,
          },
    invalidMetas: chain.invalid,
    wal: {
      segments,
      bytes: segments.reduce((n, s) => n + s.bytes, 0),
      recordsAfterCheckpoint: after,
      lastLsn,
      problem,
    },
    objects,
    orphanCheckpointFiles,
  };
}
