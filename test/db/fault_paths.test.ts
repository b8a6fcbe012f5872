import { expect, test } from 'vitest';
import { FaultFileService } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { open } from '../../src/index.js';
import { runTs } from '../helpers/child.js';
import { collect } from '../helpers/db.js';

const SPEC = { columns: { id: 'int32', v: 'string' }, primaryKey: 'id' } as const;

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A background job that finds nothing to do finishes without awaiting anything. The flush lane's
 * worker then ended before it was recorded as running, and the lane stayed "running" for ever: no
 * later flush ran, and waiting for idleness spun without yielding (found by `leakcheck --faults`:
 * a flush failed on an injected EIO, its table was dropped, its retry found nothing to do).
 */
test('a flush retried after its table was dropped leaves the flush lane working', async () => {
  const fs = new FaultFileService(new MemoryFileService('/lanes'));
  const db = await open('/lanes', {
    fileService: fs,
    checkpoint: { intervalMs: 0, onClose: false },
    storage: { memtableRowsMax: 1000 },
  });
  try {
    await db.createTable('t', SPEC);
    await db.upsert(
      't',
      Array.from({ length: 50 }, (_, id) => ({ id, v: `v${id}` })),
    );
    fs.addRule({ op: 'write', nth: 1, errno: 'EIO', path: /^obj\// });
    await expect(db.flush()).rejects.toMatchObject({ code: 'IO' });
    fs.clearRules();
    // The failed flush is retried later; its table goes first.
    await db.dropTable('t');
    await new Promise((r) => setTimeout(r, 500));
    await db.createTable('u', SPEC);
    await db.upsert('u', { id: 1, v: 'x' });
    await within(db.flush(), 5_000, 'flush after the retry');
    expect(db.stats().files.objects).toBeGreaterThan(0);
    await within(db._idle(), 5_000, 'idle');
  } finally {
    await db.close();
  }
});

/**
 * A commit that fails in the log gives back the room it grew in the recent-commit index (found by
 * `leakcheck --faults`: the index kept it until the next commit, and after a failed log none comes).
 */
test('a commit failed by the log leaves no memory claimed for it', async () => {
  const fs = new FaultFileService(new MemoryFileService('/recent'));
  const db = await open('/recent', { fileService: fs, checkpoint: { intervalMs: 0, onClose: false } });
  try {
    await db.createTable('t', SPEC);
    await db.upsert('t', { id: 0, v: 'x' });
    const held = () => db._holders().pools.filter((h) => h.owner === 'table.recent' && h.bytes > 0);
    expect(held()).toEqual([]);
    // A snapshot older than the commit: the index must remember the commit's keys.
    const snap = db.snapshot();
    fs.addRule({ op: 'write', nth: 1, errno: 'EIO', path: /^wal\// });
    await expect(
      db.upsert(
        't',
        Array.from({ length: 200 }, (_, id) => ({ id, v: `v${id}` })),
      ),
    ).rejects.toMatchObject({ code: 'IO' });
    snap.release();
    expect(held()).toEqual([]);
  } finally {
    await db.close().catch(() => undefined);
  }
});

/**
 * Recovery leaves nothing claimed for the commits it replayed (found by `leakcheck --faults`: the
 * recent-commit indexes kept the room replay grew until the first commit, and a reopen after a
 * fault may see none).
 */
test('a reopen that replays the log holds no room for the replayed commits', async () => {
  const fs = new MemoryFileService('/replay');
  const options = { fileService: fs, checkpoint: { intervalMs: 0, onClose: false } };
  const db = await open('/replay', options);
  await db.createTable('t', SPEC);
  await db.upsert(
    't',
    Array.from({ length: 200 }, (_, id) => ({ id, v: `v${id}` })),
  );
  await db.close();
  const again = await open('/replay', options);
  try {
    expect(again.stats().recovery.replayedRecords).toBeGreaterThan(0);
    expect(again._holders().pools.filter((h) => h.owner === 'table.recent' && h.bytes > 0)).toEqual([]);
  } finally {
    await again.close();
  }
});

/**
 * A flush whose new object cannot be opened (a read fails) deletes the object, and closes the
 * handle that read had opened (found by `leakcheck --faults`: the handle stayed open on the deleted
 * file, for the life of the database).
 */
test('a flush failed while opening its new object leaves no handle on the deleted file', async () => {
  const fs = new FaultFileService(new MemoryFileService('/publish'));
  const db = await open('/publish', { fileService: fs, checkpoint: { intervalMs: 0, onClose: false } });
  try {
    await db.createTable('t', SPEC);
    await db.upsert(
      't',
      Array.from({ length: 50 }, (_, id) => ({ id, v: `v${id}` })),
    );
    // The flush writes the object, then opens it to put it in place: its first read fails.
    fs.addRule({ op: 'read', nth: 1, errno: 'EIO', path: /^obj\// });
    await expect(db.flush()).rejects.toMatchObject({ code: 'IO' });
    fs.clearRules();
    const objects = db._holders().files.filter((f) => f.path.startsWith('obj/'));
    for (const f of objects) expect(await fs.stat(f.path), `${f.path} is open`).toBeDefined();
    await within(db.flush(), 5_000, 'flush after the failure');
    expect(
      db._holders().files.filter((f) => f.path.startsWith('obj/') && f.path === objects[0]?.path),
    ).toEqual([]);
  } finally {
    await db.close();
  }
});

/**
 * A table dropped in the log after its last flush: the reopen replays the flush, then the drop, and
 * must not look for the table's objects, which went with the table (found by `leakcheck --faults`:
 * the log failed after a DROP and before any checkpoint, and the database could not be opened).
 */
test('a reopen replaying a flush and then the drop of its table opens', async () => {
  const fs = new MemoryFileService('/dropped');
  const options = { fileService: fs, checkpoint: { intervalMs: 0, onClose: false } };
  const db = await open('/dropped', options);
  await db.createTable('t', SPEC);
  await db.createTable('keep', SPEC);
  await db.upsert(
    't',
    Array.from({ length: 50 }, (_, id) => ({ id, v: `v${id}` })),
  );
  await db.upsert('keep', { id: 1, v: 'kept' });
  await db.flush();
  const objects = (await fs.list('obj')).length;
  expect(objects).toBeGreaterThan(0);
  await db.dropTable('t');
  await db._idle();
  // The dropped table's object is deleted at once: no checkpoint names it.
  expect((await fs.list('obj')).length).toBeLessThan(objects);
  await db.close();
  const again = await open('/dropped', options);
  try {
    expect(again.tables()).toEqual(['keep']);
    expect(await again.get('keep', 1)).toEqual({ id: 1, v: 'kept' });
  } finally {
    await again.close();
  }
});

/**
 * A flush whose FLUSH record was written but whose log then failed (its fdatasync, and the cut of
 * the failed batch): the record may be replayed, so the object must stay (found by `leakcheck
 * --faults`: the object was deleted, and the reopen replayed a record naming a missing file).
 */
test('objects a possibly logged FLUSH record names survive the failure of the log', async () => {
  const fs = new FaultFileService(new MemoryFileService('/unknown'));
  const options = { fileService: fs, checkpoint: { intervalMs: 0, onClose: false } };
  const db = await open('/unknown', options);
  await db.createTable('t', SPEC);
  await db.upsert(
    't',
    Array.from({ length: 50 }, (_, id) => ({ id, v: `v${id}` })),
  );
  // The flush logs FREEZE, writes its object, logs FLUSH: that write reaches the file and reports
  // EIO, and the cut of the failed batch fails too.
  fs.addRule({ op: 'write', nth: 2, errno: 'EIO', path: /^wal\//, landed: true });
  fs.addRule({ op: 'truncate', nth: 1, errno: 'EIO', path: /^wal\//, sticky: true });
  await expect(db.flush()).rejects.toMatchObject({ code: 'IO' });
  expect(db.stats().wal.failed).toBe(true);
  await db.close().catch(() => undefined);
  fs.clearRules();
  const again = await open('/unknown', options);
  try {
    expect((await collect(again.scan('t'))).length).toBe(50);
  } finally {
    await again.close();
  }
});

/**
 * An error a subsystem keeps (the checkpointer's last failure, a failed log's reason) holds nothing
 * of the frames it was thrown through (found by `leakcheck --faults`: a failed checkpoint's error
 * kept the object writer it came from, and that writer's buffers, alive until the next failure).
 */
test('a kept error does not keep the objects it was thrown from alive', async () => {
  const r = await runTs('test/fixtures/kept_child.ts', [], ['--expose-gc']);
  expect(r.stderr).toBe('');
  // V8 keeps each frame's receiver with an unformatted stack: what keptError is for.
  expect(r.stdout).toMatch(/^unformatted: kept$/m);
  expect(r.stdout).toMatch(/^keptError: collected$/m);
}, 60_000);
