// The object file registry: the one place object files are deleted, when the last holder lets go.
import { describe, expect, test } from 'vitest';
import { FaultFileService } from '../../src/fileservice/fault.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { createLogger } from '../../src/log.js';
import { ObjectFiles } from '../../src/objectio/files.js';
import { OBJ_DIR, objectPath } from '../../src/objectio/format.js';
import { ObjectFileRegistry } from '../../src/storage/file_registry.js';

async function setup(owns = true) {
  const fs = new MemoryFileService();
  await fs.mkdir(OBJ_DIR);
  const handles = new ObjectFiles(fs);
  const registry = new ObjectFileRegistry(fs, handles, createLogger({ level: 'silent' }), owns);
  const write = async (id: number) =>
    fs.writeFileAtomic(objectPath(id), [new Uint8Array([1, 2, 3])], 'object');
  const listing = async () => (await fs.list(OBJ_DIR)).sort();
  return { fs, handles, registry, write, listing };
}

describe('object file registry', () => {
  test('a file lives while any holder holds it, and is deleted when the last lets go', async () => {
    const { registry, write, listing } = await setup();
    const id = registry.allocate(); // held by its writer
    await write(id);
    registry.ref(id, 'layer'); // published: a layer holds it
    const ckp = registry.hold([id], 'checkpoint'); // a checkpoint names it
    await registry.unref(id, 'writer');
    expect(await listing()).toEqual(['0000000000000001.obj']);
    expect(registry.holders(id)).toEqual({ layer: 1, checkpoint: 1, writer: 0 });
    // Merged away: the layer lets go; the retained checkpoint still holds it.
    expect(await registry.unref(id, 'layer')).toBe(false);
    expect(await listing()).toEqual(['0000000000000001.obj']);
    // The checkpoint is no longer retained: the file goes.
    expect(await ckp.release()).toEqual([objectPath(id)]);
    expect(await listing()).toEqual([]);
    expect(registry.paths()).toEqual([]);
    expect(registry.stats()).toMatchObject({ files: 0, deleted: 1 });
    expect(await ckp.release()).toEqual([]); // twice: nothing more
  });

  test('a writing job that fails lets go and its file goes; ids are never reused', async () => {
    const { registry, write, listing } = await setup();
    const a = registry.allocate();
    await write(a);
    await registry.unref(a, 'writer');
    expect(await listing()).toEqual([]);
    expect(registry.allocate()).toBe(a + 1);
    registry.seen(41);
    expect(registry.allocate()).toBe(42);
  });

  test('letting go of what one does not hold is REFCOUNT', async () => {
    const { registry } = await setup();
    const id = registry.allocate();
    expect(() => registry.unref(id, 'layer')).toThrow(expect.objectContaining({ code: 'REFCOUNT' }));
    expect(() => registry.unref(99, 'writer')).toThrow(expect.objectContaining({ code: 'REFCOUNT' }));
  });

  test("closing, or a replica (whose files are the writer's), deletes nothing", async () => {
    for (const owns of [true, false]) {
      const { registry, write, listing } = await setup(owns);
      const id = registry.allocate();
      await write(id);
      if (owns) registry.shutdown();
      await registry.unref(id, 'writer');
      expect(await listing()).toEqual(['0000000000000001.obj']);
      expect(registry.paths()).toEqual([]);
    }
  });

  test('an abandoned file stays on disk for the next open to judge', async () => {
    const { registry, write, listing } = await setup();
    const id = registry.allocate();
    await write(id);
    registry.abandon(id, 'writer');
    expect(registry.paths()).toEqual([]);
    expect(await listing()).toEqual(['0000000000000001.obj']);
    // The next open: nothing holds it, so it is an orphan.
    expect(await registry.removeUnheld()).toEqual([`${OBJ_DIR}/0000000000000001.obj`]);
    expect(await listing()).toEqual([]);
  });

  test('at open, files nothing holds go; held ones, and files that are not objects, stay', async () => {
    const { fs, registry, write, listing } = await setup();
    await write(3);
    await write(7);
    await fs.writeFileAtomic(`${OBJ_DIR}/README`, [new Uint8Array([1])], 'object');
    registry.ref(3, 'layer');
    expect(await registry.removeUnheld()).toEqual([objectPath(7)]);
    expect(await listing()).toEqual(['0000000000000003.obj', 'README']);
    expect(registry.allocate()).toBe(8); // ids past every listed file
  });

  test('a deletion that fails stays in the registry (it equals the disk) and is retried', async () => {
    const mem = new MemoryFileService();
    await mem.mkdir(OBJ_DIR);
    const fs = new FaultFileService(mem, { rules: [{ op: 'delete', nth: 1, errno: 'EIO' }] });
    const registry = new ObjectFileRegistry(fs, new ObjectFiles(fs), createLogger({ level: 'silent' }), true);
    const id = registry.allocate();
    await mem.writeFileAtomic(objectPath(id), [new Uint8Array([1])], 'object');
    expect(await registry.unref(id, 'writer')).toBe(false);
    expect(registry.paths()).toEqual([objectPath(id)]);
    expect((await mem.list(OBJ_DIR)).length).toBe(1);
    expect(await registry.retryDeletes()).toEqual([objectPath(id)]);
    expect(registry.paths()).toEqual([]);
    expect(await mem.list(OBJ_DIR)).toEqual([]);
    expect(registry.stats()).toMatchObject({ deleted: 1, deleteFailures: 1 });
  });
});
