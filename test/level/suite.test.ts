import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { runTs } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';
import { TidemarkLevel } from '../../src/level/index.js';

/**
 * abstract-level's own test suite (the package's test/ directory, run with tape in a child
 * process). Every test it runs must pass. The only ones it leaves out are those of getSync(), which
 * TidemarkLevel does not declare (see the README).
 */
describe("abstract-level's test suite", () => {
  it('passes in full against TidemarkLevel', { timeout: 240_000 }, async () => {
    const r = await runTs('test/level/abstract_suite.ts');
    const failures = r.stdout.split('\n').filter((l) => l.startsWith('not ok'));
    expect(failures, r.stdout.slice(-4000) + r.stderr).toEqual([]);
    expect(r.code).toBe(0);
    const pass = Number(/^# pass\s+(\d+)/m.exec(r.stdout)?.[1]);
    const tests = Number(/^# tests\s+(\d+)/m.exec(r.stdout)?.[1]);
    expect(pass).toBe(tests);
    // The suite with the features declared below runs about 4,700 assertions; far fewer would mean
    // that whole parts were skipped.
    expect(pass).toBeGreaterThan(4500);
    expect(r.stdout).toMatch(/^# ok$/m);
  });

  it('declares what it supports, honestly', async () => {
    const { dir, cleanup } = tempDir('tidemark-level-');
    // abstract-level opens a new database on its own at the next tick: close it.
    const db = new TidemarkLevel(path.join(dir, 'db'));
    const s = db.supports;
    expect({
      implicitSnapshots: s.implicitSnapshots,
      explicitSnapshots: s.explicitSnapshots,
      permanence: s.permanence,
      seek: s.seek,
      createIfMissing: s.createIfMissing,
      errorIfExists: s.errorIfExists,
      deferredOpen: s.deferredOpen,
      has: s.has,
      getSync: (s as unknown as { getSync: boolean }).getSync,
      signals: s.signals,
    }).toEqual({
      implicitSnapshots: true,
      explicitSnapshots: true,
      permanence: true,
      seek: true,
      createIfMissing: true,
      errorIfExists: true,
      deferredOpen: true,
      has: true,
      getSync: false,
      signals: { iterators: true },
    });
    await db.close();
    cleanup();
  });
});
