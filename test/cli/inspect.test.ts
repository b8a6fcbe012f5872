import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, test, vi } from 'vitest';
import { inspect } from '../../src/db/inspect.js';
import { formatReport } from '../../src/cli/inspect.js';
import { main } from '../../src/cli/program.js';
import { open } from '../../src/index.js';
import { ACCOUNTS } from '../helpers/db.js';
import { tempDir } from '../helpers/tmp.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const rows = (from: number, n: number) =>
  Array.from({ length: n }, (_, k) => ({ id: from + k, owner: 'o', balance: from + k }));

test('tidemark inspect: the chain, the WAL, live, retired and orphan files, without opening the database', async () => {
  const { dir, cleanup } = tempDir('tidemark-inspect-');
  try {
    const db = await open(dir, {
      checkpoint: { intervalMs: 0, onClose: false },
      storage: { mergeMinObjects: 0 },
    });
    await db.createTable('a', ACCOUNTS);
    await db.insert('a', rows(0, 100));
    await db.flush();
    await db.insert('a', rows(100, 100));
    await db.flush();
    await db.checkpoint();
    await db.compact(); // two objects retired, still named by the checkpoint
    await db.insert('a', rows(200, 10)); // after the checkpoint: in the WAL only
    // While the database is open (inspect takes no lock).
    const during = await inspect(dir);
    expect(during.checkpoint?.chain.map((e) => e.kind)).toEqual(['incremental']);
    await db.close();
    writeFileSync(path.join(dir, 'obj', '00000000000000ff.obj'), 'left by a crash');
    writeFileSync(path.join(dir, 'ckp', 'meta-0000000000000009.ckp.1-1.tmp'), 'half written');
    const r = await inspect(dir);
    expect(r.checkpoint).toMatchObject({
      meta: 'ckp/meta-0000000000000001.ckp',
      tables: [{ name: 'a', objects: 2 }],
      previousMeta: undefined,
    });
    expect(r.wal.recordsAfterCheckpoint).toBeGreaterThan(0);
    expect(r.wal.problem).toBeUndefined();
    expect(r.objects.live).toBe(1); // the merged object
    expect(r.objects.retired.length).toBe(2);
    expect(r.objects.orphans).toEqual(['obj/00000000000000ff.obj']);
    expect(r.orphanCheckpointFiles).toEqual(['ckp/meta-0000000000000009.ckp.1-1.tmp']);
    const text = formatReport(r);
    expect(text).toContain('incremental #1');
    expect(text).toContain('orphan: obj/00000000000000ff.obj');
    // The command line, with --json.
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    expect(await main(['node', 'tidemark', 'inspect', dir, '--json'])).toBe(0);
    expect((JSON.parse(out) as { objects: { orphans: string[] } }).objects.orphans).toEqual([
      'obj/00000000000000ff.obj',
    ]);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await main(['node', 'tidemark', 'inspect', path.join(dir, 'nothing-here')])).toBe(1);
    // The next open removes the orphans; inspect then finds none.
    const again = await open(dir);
    await again.close();
    const clean = await inspect(dir);
    expect(clean.objects.orphans).toEqual([]);
    expect(clean.orphanCheckpointFiles).toEqual([]);
  } finally {
    cleanup();
  }
});
