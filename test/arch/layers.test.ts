// The layering rule of docs/architecture.md, enforced: every import in src/ points to a lower layer
// (or stays in its own folder), and no import cycle exists between files. A forbidden import fails
// the build here, naming the file and the import.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { importCycles, importGraph, LAYERS, SRC, top, upwardImports } from './graph.js';

describe('layers', () => {
  const graph = importGraph();

  test('every folder of src/ has a layer', () => {
    expect([...new Set([...graph.keys()].map(top))].filter((t) => LAYERS[t] === undefined)).toEqual([]);
  });

  test('imports point to lower layers only', () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  test('no import cycles between files', () => {
    expect(importCycles(graph)).toEqual([]);
  });

  test('the engine does not depend on SQL: nothing below src/api imports src/sql', () => {
    const below = [...graph].filter(([from]) => LAYERS[top(from)]! < LAYERS.sql!);
    expect(
      below.flatMap(([from, to]) => to.filter((t) => top(t) === 'sql').map((t) => `${from} -> ${t}`)),
    ).toEqual([]);
  });

  test('the checks catch what they are for', () => {
    // A planted upward import and a planted cycle, on a graph of their own.
    const planted = new Map([
      ['wal/a.ts', ['db/b.ts']],
      ['db/b.ts', ['db/c.ts']],
      ['db/c.ts', ['db/b.ts']],
    ]);
    expect(upwardImports(planted)).toEqual(['wal/a.ts (layer 5) -> db/b.ts (layer 11)']);
    expect(importCycles(planted)).toEqual([['db/b.ts', 'db/c.ts']]);
  });

  test('no file in src/ passes 900 lines', () => {
    const long = [...graph.keys()]
      .map((f) => ({ f, n: readFileSync(path.join(SRC, f), 'utf8').split('\n').length }))
      .filter((x) => x.n > 900)
      .map((x) => `${x.f}: ${x.n} lines`);
    expect(long).toEqual([]);
  });
});
