/**
 * An in-memory B+ tree from keys to numbers (version ids), ordered by a comparator: point lookups
 * and ordered range iteration for the primary-key index of a memtable. Leaves are linked for scans.
 * Nodes hold at most 64 entries; appends in key order (bulk loads) take a fast path to the last leaf.
 */

const MAX = 64;
const HALF = MAX >> 1;

/** What a cursor sees of a leaf. */
export interface LeafView<K> {
  readonly keys: readonly K[];
  readonly vals: readonly number[];
  readonly next: LeafView<K> | null;
}

class Leaf<K> implements LeafView<K> {
  keys: K[] = [];
  vals: number[] = [];
  next: Leaf<K> | null = null;
}

class Inner<K> {
  /** keys[i] is the smallest key under children[i + 1]. */
  keys: K[] = [];
  children: Node<K>[] = [];
}

type Node<K> = Leaf<K> | Inner<K>;

export class BTree<K> {
  private root: Node<K> = new Leaf<K>();
  private last: Leaf<K>;
  private count = 0;

  constructor(private readonly cmp: (a: K, b: K) => number) {
    this.last = this.root as Leaf<K>;
  }

  get size(): number {
    return this.count;
  }

  /** The greatest key, or undefined if empty. */
  maxKey(): K | undefined {
    const k = this.last.keys;
    return k.length > 0 ? k[k.length - 1] : undefined;
  }

  get(key: K): number | undefined {
    let node = this.root;
    while (node instanceof Inner) node = node.children[this.childIndex(node, key)]!;
    const i = this.lowerBound(node.keys, key);
    return i < node.keys.length && this.cmp(node.keys[i]!, key) === 0 ? node.vals[i] : undefined;
  }

  /** Insert or replace, returning the previous value (undefined if the key was new): one descent. */
  swap(key: K, val: number): number | undefined {
    const lastKeys = this.last.keys;
    if (lastKeys.length > 0 && lastKeys.length < MAX && this.cmp(key, lastKeys[lastKeys.length - 1]!) > 0) {
      lastKeys.push(key);
      this.last.vals.push(val);
      this.count++;
      return undefined;
    }
    const path: Inner<K>[] = [];
    const idx: number[] = [];
    let node = this.root;
    while (node instanceof Inner) {
      const c = this.childIndex(node, key);
      path.push(node);
      idx.push(c);
      node = node.children[c]!;
    }
    const i = this.lowerBound(node.keys, key);
    if (i < node.keys.length && this.cmp(node.keys[i]!, key) === 0) {
      const prev = node.vals[i];
      node.vals[i] = val;
      return prev;
    }
    node.keys.splice(i, 0, key);
    node.vals.splice(i, 0, val);
    this.count++;
    if (node.keys.length > MAX) this.splitLeaf(node, path, idx);
    return undefined;
  }

  /**
   * A cursor at the first entry with key >= from (> from when `after`), or at the start. Read
   * `leaf.keys[i]`, `leaf.vals[i]`, move with `i++` and `leaf.next`. Valid until the tree changes.
   */
  cursor(from: K | undefined, after: boolean): { leaf: LeafView<K> | null; i: number } {
    let node = this.root;
    if (from === undefined) {
      while (node instanceof Inner) node = node.children[0]!;
      return { leaf: node, i: 0 };
    }
    while (node instanceof Inner) node = node.children[this.childIndex(node, from)]!;
    let i = this.lowerBound(node.keys, from);
    if (after && i < node.keys.length && this.cmp(node.keys[i]!, from) === 0) i++;
    return { leaf: node, i };
  }

  /** Insert or replace. Returns true if the key was new. */
  set(key: K, val: number): boolean {
    return this.swap(key, val) === undefined;
  }

  /** Iterate entries with key >= from (all if undefined) in order, calling fn until it returns false. */
  forEachFrom(from: K | undefined, fn: (key: K, val: number) => boolean): void {
    let leaf: Leaf<K> | null;
    let i: number;
    if (from === undefined) {
      let node = this.root;
      while (node instanceof Inner) node = node.children[0]!;
      leaf = node;
      i = 0;
    } else {
      let node = this.root;
      while (node instanceof Inner) node = node.children[this.childIndex(node, from)]!;
      leaf = node;
      i = this.lowerBound(node.keys, from);
    }
    while (leaf !== null) {
      const keys = leaf.keys;
      const vals = leaf.vals;
      for (; i < keys.length; i++) if (!fn(keys[i]!, vals[i]!)) return;
      leaf = leaf.next;
      i = 0;
    }
  }

  private childIndex(node: Inner<K>, key: K): number {
    // The number of separator keys <= key.
    const keys = node.keys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cmp(keys[mid]!, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private lowerBound(keys: K[], key: K): number {
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cmp(keys[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private splitLeaf(leaf: Leaf<K>, path: Inner<K>[], idx: number[]): void {
    const right = new Leaf<K>();
    // A leaf split by an append at the end keeps itself full: sequential loads pack leaves.
    const at = leaf === this.last && leaf.keys.length === MAX + 1 ? MAX : HALF;
    right.keys = leaf.keys.splice(at);
    right.vals = leaf.vals.splice(at);
    right.next = leaf.next;
    leaf.next = right;
    if (this.last === leaf) this.last = right;
    this.insertChild(path, idx, right.keys[0]!, right);
  }

  private insertChild(path: Inner<K>[], idx: number[], sep: K, right: Node<K>): void {
    for (let level = path.length - 1; level >= 0; level--) {
      const parent = path[level]!;
      const c = idx[level]!;
      parent.keys.splice(c, 0, sep);
      parent.children.splice(c + 1, 0, right);
      if (parent.children.length <= MAX) return;
      const r = new Inner<K>();
      const mid = parent.keys.length >> 1;
      sep = parent.keys[mid]!;
      r.keys = parent.keys.splice(mid + 1);
      parent.keys.length = mid;
      r.children = parent.children.splice(mid + 1);
      right = r;
    }
    const root = new Inner<K>();
    root.keys = [sep];
    root.children = [this.root, right];
    this.root = root;
  }
}
