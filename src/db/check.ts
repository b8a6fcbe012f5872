import { CKP_DIR, parseCkpName } from '../checkpoint/format.js';
import { loadChain, type LoadedChain } from '../checkpoint/recovery.js';
import { TidemarkError } from '../errors.js';
import { isTempName } from '../fileservice/paths.js';
import type { FileService } from '../fileservice/types.js';
import { createLogger } from '../log.js';
import type { MemoryManager } from '../mem/manager.js';
import { BlockCache } from '../objectio/cache.js';
import { ObjectFiles } from '../objectio/files.js';
import { OBJ_DIR, objectPath, parseObjectName } from '../objectio/format.js';
import { ObjectReader } from '../objectio/reader.js';
import { LayerReplay } from '../storage/layer_replay.js';
import { decodeStorage, StorageRecord } from '../table/log_records.js';
import { SegmentScanner } from '../wal/reader.js';
import { parseSegmentName, WAL_DIR } from '../wal/segment.js';
import { readDirectory } from './inspect.js';

export interface CheckReport {
  dir: string;
  clean: boolean;
  /** What is wrong: each names the file. */
  problems: string[];
  /** Worth knowing, not wrong (a torn WAL tail the next open cuts, say). */
  notes: string[];
  verified: {
    checkpointFiles: number;
    walSegments: number;
    walRecords: number;
    objects: number;
    chunks: number;
    bytes: number;
  };
}

/**
 * `tidemark check DIR`: verify every checksum and every reference, changing nothing (no lock taken,
 * nothing written): the retained checkpoint meta files and the data files they name; every WAL
 * segment and record, and the LSNs continuous from the checkpoint's replay start; every object the
 * checkpoints and the log name, each chunk read and decoded against its checksum; and no file that
 * nothing names.
 */
export function check(dir: string): Promise<CheckReport> {
  return readDirectory(dir, (fs, memory) => checkWith(fs, memory, dir));
}

export async function checkWith(fs: FileService, memory: MemoryManager, dir: string): Promise<CheckReport> {
  const r: CheckReport = {
    dir,
    clean: false,
    problems: [],
    notes: [],
    verified: { checkpointFiles: 0, walSegments: 0, walRecords: 0, objects: 0, chunks: 0, bytes: 0 },
  };
  const pool = memory.pool('replay');

  // 1. Checkpoints.
  let chain: LoadedChain | undefined;
  try {
    chain = await loadChain(fs, pool, createLogger(undefined));
  } catch (e) {
    if (!(e instanceof TidemarkError) || e.code !== 'CORRUPTION') throw e;
    r.problems.push(e.message);
  }
  const newest = chain?.newest;
  for (const i of chain?.invalid ?? [])
    r.problems.push(`${i.path} is torn or corrupt (an open falls back to the one before): ${i.reason}`);
  const retained = new Set([...(newest?.files ?? []), ...(chain?.previous?.files ?? [])]);
  r.verified.checkpointFiles = retained.size;
  for (const name of await fs.list(CKP_DIR)) {
    const path = `${CKP_DIR}/${name}`;
    if (retained.has(path) || chain?.invalid.some((i) => i.path === path) === true) continue;
    if (isTempName(name)) r.problems.push(`${path} is a temporary file left by an interrupted write`);
    else if (parseCkpName(name) !== undefined)
      r.problems.push(`${path} is a checkpoint file no retained meta file names`);
    else r.notes.push(`${path} is not a checkpoint file`);
  }

  // 2. The WAL: every segment and record, LSNs continuous; storage records applied to the layers.
  const layers = new LayerReplay();
  for (const t of newest?.state.tables.values() ?? []) layers.seed(t.id, t.layers, newest!.path);
  const storageLsn = newest?.point.storageLsn ?? 0;
  const replayFrom = newest?.point.replayFromLsn ?? 1;
  const segments: { path: string; first: number }[] = [];
  for (const name of await fs.list(WAL_DIR)) {
    const first = parseSegmentName(name);
    if (first === undefined) r.notes.push(`${WAL_DIR}/${name} is not a WAL segment`);
    else segments.push({ path: `${WAL_DIR}/${name}`, first });
  }
  segments.sort((a, b) => a.first - b.first);
  if (segments.length > 0 && segments[0]!.first > replayFrom)
    r.problems.push(
      `the WAL starts at LSN ${segments[0]!.first}, after the checkpoint's replay start ${replayFrom}: records are missing`,
    );
  let expected: number | undefined;
  for (const [i, seg] of segments.entries()) {
    const last = i === segments.length - 1;
    if (expected !== undefined && seg.first !== expected)
      r.problems.push(`${seg.path}: LSN gap, the segment starts at ${seg.first}, ${expected} was expected`);
    expected = seg.first;
    const scanner = await SegmentScanner.open(fs, seg.path, pool);
    try {
      const h = await scanner.header();
      if (!h.ok) {
        r.problems.push(`${seg.path}: bad segment header: ${h.reason}`);
        continue;
      }
      r.verified.walSegments++;
      for (;;) {
        const rec = await scanner.next();
        if (rec.kind === 'end') break;
        if (rec.kind === 'bad') {
          const later = await scanner.findLaterBatch(rec.offset, expected - 1);
          if (last && later === undefined)
            r.notes.push(
              `${seg.path}: a torn tail at byte ${rec.offset} (${rec.reason}); the next open cuts it`,
            );
          else r.problems.push(`${seg.path}: a bad record at byte ${rec.offset}: ${rec.reason}`);
          break;
        }
        if (rec.header.lsn !== expected) {
          r.problems.push(
            `${seg.path} at byte ${rec.offset}: LSN ${rec.header.lsn} where ${expected} was expected`,
          );
          break;
        }
        expected++;
        r.verified.walRecords++;
        r.verified.bytes += rec.payload.length;
        if (rec.header.lsn <= storageLsn) continue;
        const type = rec.header.type;
        if (type !== StorageRecord.FLUSH && type !== StorageRecord.MERGE) continue;
        try {
          const where = `${seg.path} LSN ${rec.header.lsn}`;
          const op = decodeStorage(type, rec.payload, where);
          if (op.kind !== 'freeze') layers.apply(op, where);
        } catch (e) {
          r.problems.push((e as Error).message);
        }
      }
    } finally {
      await scanner.close();
    }
  }
  const lastLsn = (expected ?? 1) - 1;
  if (newest !== undefined && lastLsn < storageLsn && replayFrom <= storageLsn)
    r.problems.push(
      `the WAL ends at LSN ${lastLsn}, before ${storageLsn}, which the checkpoint says was durable: records it needs are missing`,
    );

  // 3. Objects: every one the checkpoints and the log name, each chunk read and checked.
  const live = layers.liveIds();
  const named = new Set([...live, ...(newest?.objects ?? []), ...(chain?.previous?.objects ?? [])]);
  const onDisk = new Set<number>();
  for (const name of await fs.list(OBJ_DIR)) {
    const id = parseObjectName(name);
    if (id === undefined) {
      if (isTempName(name))
        r.problems.push(`${OBJ_DIR}/${name} is a temporary file left by an interrupted write`);
      else r.notes.push(`${OBJ_DIR}/${name} is not an object file`);
      continue;
    }
    onDisk.add(id);
    if (!named.has(id))
      r.problems.push(`${OBJ_DIR}/${name} is an orphan: no checkpoint or log record names it`);
  }
  for (const id of named) {
    if (!onDisk.has(id)) {
      r.problems.push(
        `${objectPath(id)} is missing: ${live.has(id) ? 'a table holds it' : 'a retained checkpoint names it'}`,
      );
    }
  }
  const files = new ObjectFiles(fs);
  const cache = new BlockCache(memory.pool('cache'), 1);
  try {
    for (const id of [...named].filter((i) => onDisk.has(i)).sort((a, b) => a - b)) {
      let reader: ObjectReader | undefined;
      try {
        reader = await ObjectReader.open({
          id,
          files,
          cache,
          io: memory.pool('io'),
          metaPool: memory.pool('meta'),
        });
        const groups = reader.meta.rowGroups;
        for (let g = 0; g < groups.length; g++) {
          for (let c = 0; c < groups[g]!.chunks.length; c++) {
            const pin = await reader.pinChunk(g, c);
            pin.release();
            r.verified.chunks++;
            r.verified.bytes += groups[g]!.chunks[c]!.length;
          }
        }
        r.verified.objects++;
      } catch (e) {
        if (!(e instanceof TidemarkError) || e.code !== 'CORRUPTION') throw e;
        r.problems.push(e.message);
      } finally {
        reader?.dropFromCache();
        reader?.close();
      }
    }
  } finally {
    cache.close();
    await files.close();
  }
  r.clean = r.problems.length === 0;
  return r;
}
