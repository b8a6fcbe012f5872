import { HybridClock } from '../txn/clock.js';
import type { InspectReport } from '../db/inspect.js';

const ts = (t: number) => (t === 0 ? '0' : `${new Date(HybridClock.toMs(t)).toISOString()} (${t})`);

/** The report as text for people. */
export function formatReport(r: InspectReport): string {
  const lines: string[] = [`database ${r.dir}`];
  if (r.checkpoint === undefined) lines.push('checkpoints: none (an open replays the whole WAL)');
  else {
    const c = r.checkpoint;
    lines.push(
      `checkpoint: ${c.meta} (storage LSN ${c.storageLsn}; replay starts at LSN ${c.replayFromLsn})`,
    );
    if (c.previousMeta !== undefined) lines.push(`  kept to fall back on: ${c.previousMeta}`);
    lines.push('  chain:');
    for (const e of c.chain)
      lines.push(
        `    ${e.kind.padEnd(11)} #${e.seq}  (${ts(e.start)}, ${ts(e.end)}]  ${e.file}  ${e.bytes} bytes`,
      );
    lines.push(`  tables: ${c.tables.map((t) => `${t.name} (${t.objects} objects)`).join(', ') || 'none'}`);
  }
  for (const i of r.invalidMetas) lines.push(`invalid meta file: ${i.path}: ${i.reason}`);
  lines.push(
    `wal: ${r.wal.segments.length} segment(s), ${r.wal.bytes} bytes, last LSN ${r.wal.lastLsn}, ${r.wal.recordsAfterCheckpoint} record(s) after the checkpoint`,
  );
  for (const s of r.wal.segments) lines.push(`  ${s.path}  first LSN ${s.firstLsn}  ${s.bytes} bytes`);
  if (r.wal.problem !== undefined) lines.push(`  problem: ${r.wal.problem}`);
  lines.push(
    `objects: ${r.objects.live} live (${r.objects.liveBytes} bytes), ${r.objects.retired.length} retired awaiting GC, ${r.objects.orphans.length} orphan(s)`,
  );
  for (const o of r.objects.orphans) lines.push(`  orphan: ${o}`);
  for (const o of r.orphanCheckpointFiles) lines.push(`orphan checkpoint file: ${o}`);
  return lines.join('\n');
}
