// The layers of src/ (docs/architecture.md) and its import graph, for the architecture tests.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Each top-level folder (or file) of src/ and its layer, bottom up: imports go to lower numbers. */
export const LAYERS: Record<string, number> = {
  'errors.ts': 0,
  'log.ts': 1,
  util: 1,
  mem: 2,
  fileservice: 3,
  schema: 4,
  objectio: 5,
  wal: 5,
  table: 6,
  catalog: 7,
  storage: 8,
  txn: 9,
  checkpoint: 10,
  db: 11,
  sql: 12,
  api: 13,
  level: 14,
  metrics: 14,
  leakcheck: 15,
  server: 15,
  cli: 16,
  'index.ts': 17,
};

/** Relative imports of every .ts file under src/ (static, re-exports, type-only and dynamic). */
export function importGraph(root = SRC): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.ts')) {
        const text = readFileSync(full, 'utf8');
        const specs = [
          ...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]/gms),
          ...text.matchAll(/^\s*import\s+['"](\.[^'"]+)['"]/gm),
          ...text.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g),
        ].map((m) => m[1]!);
        const from = path.relative(root, full);
        graph.set(
          from,
          specs.map((s) => path.normalize(path.join(path.dirname(from), s)).replace(/\.js$/, '.ts')),
        );
      }
    }
  };
  walk(root);
  return graph;
}

export const top = (file: string): string => file.split(path.sep)[0]!;

/** Imports that break the layering: into a higher layer, or sideways into another folder. */
export function upwardImports(graph: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [from, targets] of graph) {
    const a = top(from);
    for (const to of targets) {
      const b = top(to);
      if (a === b) continue;
      const la = LAYERS[a];
      const lb = LAYERS[b];
      if (la === undefined || lb === undefined)
        bad.push(`${from} -> ${to}: ${la === undefined ? a : b} has no layer`);
      else if (lb >= la) bad.push(`${from} (layer ${la}) -> ${to} (layer ${lb})`);
    }
  }
  return bad;
}

/** File-level import cycles (strongly connected components of more than one file, or self-imports). */
export function importCycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
        if (w === v) break;
      }
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}
