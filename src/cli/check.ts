import type { CheckReport } from '../db/check.js';

/** The report as text for people. */
export function formatCheck(r: CheckReport): string {
  const v = r.verified;
  const lines = [
    `${r.dir}: ${r.clean ? 'clean' : `${r.problems.length} problem(s)`}`,
    `  verified: ${v.checkpointFiles} checkpoint file(s), ${v.walSegments} WAL segment(s) with ${v.walRecords} record(s), ${v.objects} object(s) with ${v.chunks} chunk(s), ${v.bytes} bytes`,
  ];
  for (const p of r.problems) lines.push(`PROBLEM: ${p}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
