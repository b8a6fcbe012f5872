import * as v8 from 'node:v8';

/**
 * What keeps an object alive: from a V8 heap snapshot, the shortest path of strong references
 * from the GC roots to each live instance of a class. When the soak finds more instances of an
 * engine class than the database holds, these paths name the holder (a closure's context, a map,
 * a pending promise's reaction) instead of leaving it to a heap-snapshot viewer.
 */

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Take a heap snapshot of this process (a full GC first, as V8 does for snapshots). */
export async function takeSnapshot(): Promise<Snapshot> {
  const chunks: string[] = [];
  const stream = v8.getHeapSnapshot();
  stream.setEncoding('utf8');
  for await (const c of stream) chunks.push(c as string);
  return JSON.parse(chunks.join('')) as Snapshot;
}

/**
 * For each live object whose constructor is `className` (at most `limit`), its retaining path from
 * the roots, as "root -> (edge) Type name -> ...", the nearest hops last. Weak edges do not retain.
 */
export function retainingPaths(s: Snapshot, className: string, limit = 4): string[] {
  const nf = s.snapshot.meta.node_fields;
  const ef = s.snapshot.meta.edge_fields;
  const nodeTypes = s.snapshot.meta.node_types[0];
  const edgeTypes = s.snapshot.meta.edge_types[0];
  const N = nf.length;
  const E = ef.length;
  const fType = nf.indexOf('type');
  const fName = nf.indexOf('name');
  const fEdges = nf.indexOf('edge_count');
  const eType = ef.indexOf('type');
  const eName = ef.indexOf('name_or_index');
  const eTo = ef.indexOf('to_node');
  const nodes = s.nodes;
  const edges = s.edges;
  const count = nodes.length / N;
  // Where each node's edges start.
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e;
    e += nodes[i * N + fEdges]! * E;
    firstEdge[i + 1] = e;
  }
  const weak = edgeTypes.indexOf('weak');
  const objectType = nodeTypes.indexOf('object');
  // Breadth-first from the root (node 0): the shortest strong path to every node.
  const parentEdge = new Int32Array(count).fill(-1);
  const parentNode = new Int32Array(count).fill(-1);
  const seen = new Uint8Array(count);
  seen[0] = 1;
  let queue = [0];
  while (queue.length > 0) {
    const next: number[] = [];
    for (const n of queue) {
      for (let e = firstEdge[n]!; e < firstEdge[n + 1]!; e += E) {
        if (edges[e + eType] === weak) continue;
        const to = edges[e + eTo]! / N;
        if (seen[to] === 1) continue;
        seen[to] = 1;
        parentEdge[to] = e;
        parentNode[to] = n;
        next.push(to);
      }
    }
    queue = next;
  }
  const nameOf = (n: number) => s.strings[nodes[n * N + fName]!]!;
  const describe = (n: number) => `${nodeTypes[nodes[n * N + fType]!]} ${nameOf(n).slice(0, 60)}`;
  const edgeName = (e: number) => {
    const type = edgeTypes[edges[e + eType]!]!;
    const v = edges[e + eName]!;
    return type === 'element' || type === 'hidden' ? `[${v}]` : `${type} ${s.strings[v]}`;
  };
  const out: string[] = [];
  for (let n = 0; n < count && out.length < limit; n++) {
    if (nodes[n * N + fType] !== objectType || nameOf(n) !== className) continue;
    if (seen[n] !== 1) continue; // unreachable: garbage the snapshot still listed
    const hops: string[] = [];
    for (let m = n; parentNode[m]! > 0 && hops.length < 40; m = parentNode[m]!)
      hops.push(`${describe(parentNode[m]!)} --${edgeName(parentEdge[m]!)}-->`);
    out.push(`${className} instance: ${hops.reverse().join(' ')} ${className}`);
  }
  return out;
}
