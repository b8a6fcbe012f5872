/**
 * Join order by cost. The inner joins of a query level (commas, JOIN, CROSS JOIN, and the ON
 * conditions that go with them) form a set of units (tables, derived tables, views, LEFT JOIN
 * groups); the planner estimates each unit's rows after its own conditions and describes every
 * condition that spans units by the units it reads. From that, this module picks the join tree:
 * exhaustively by dynamic programming over the subsets of units for up to DP_UNITS of them (bushy
 * trees, both orientations: the right input of a join is the one held in memory), greedily beyond.
 * Trees that join units no condition connects (cross products) are considered only where nothing
 * else can join them.
 *
 * The estimates are the textbook ones (System R's): an equality between units keeps 1/max of their
 * rows, any other condition a third. They need only tell a plan that filters early from one that
 * multiplies first.
 */

/** A condition spanning units. */
export interface JoinCond {
  /** The units it reads (bit i: unit i). */
  mask: number;
  /** For an equality between expressions of disjoint unit sets: the units of each side. */
  equi?: { left: number; right: number };
  /** The fraction of pairs it keeps. */
  selectivity: number;
}

export type JoinTree =
  | { kind: 'unit'; unit: number; mask: number; rows: number; cost: number }
  | {
      kind: 'join';
      left: JoinTree;
      right: JoinTree;
      mask: number;
      rows: number;
      cost: number;
      /** The right side, one unit, is looked up by an index for each left row (an index nested loop). */
      lookup?: boolean;
    };

/**
 * What looking unit `unit` up costs per row of the units in `left` (an equality between one of its
 * indexed columns, or its key, and an expression of those units), in the units of the estimates
 * (about a row hashed); undefined when it cannot be.
 */
export type Lookup = (unit: number, left: number) => number | undefined;

/**
 * The cost of one lookup per left row, by what it reads (measured against a hash join's work per
 * row): a point read of the key, a UNIQUE index's row (getBy), a seek into an index and its rows.
 */
export const LOOKUP_COST = { primary: 5, unique: 16, index: 26 } as const;

/** Up to this many units the order is searched exhaustively (3^n splits: 6,561 at 8). */
export const DP_UNITS = 8;

function popcount(m: number): number {
  let n = 0;
  for (; m !== 0; m &= m - 1) n++;
  return n;
}

/** Rows of joining the units of `mask`: their rows times every condition inside it. */
function joinedRows(mask: number, rows: readonly number[], conds: readonly JoinCond[]): number {
  let r = 1;
  for (let i = 0; i < rows.length; i++) if ((mask >> i) & 1) r *= rows[i]!;
  for (const c of conds) if ((c.mask & mask) === c.mask) r *= c.selectivity;
  return Math.max(r, 1e-3);
}

/** Whether some condition reads both sides (the join is not a cross product). */
function connected(l: number, r: number, conds: readonly JoinCond[]): boolean {
  for (const c of conds)
    if ((c.mask & l) !== 0 && (c.mask & r) !== 0 && (c.mask & ~(l | r)) === 0) return true;
  return false;
}

/** Whether an equality can key a hash join of `l` (probe side) and `r` (held side). */
function hashable(l: number, r: number, conds: readonly JoinCond[]): boolean {
  for (const c of conds) {
    const e = c.equi;
    if (e === undefined) continue;
    if (((e.left & ~l) === 0 && (e.right & ~r) === 0) || ((e.left & ~r) === 0 && (e.right & ~l) === 0))
      return true;
  }
  return false;
}

/**
 * The cost of joining `left` (streamed) with `right` (held in memory): both inputs, the build side
 * once more (hashing, memory), the pairs tried (every pair without an equality key), the output.
 */
function joinCost(left: JoinTree, right: JoinTree, rows: number, conds: readonly JoinCond[]): number {
  const pairs = hashable(left.mask, right.mask, conds) ? left.rows + right.rows : left.rows * right.rows;
  return left.cost + right.cost + 2 * right.rows + pairs + rows;
}

function join(
  left: JoinTree,
  right: JoinTree,
  rows: number,
  conds: readonly JoinCond[],
  lookup?: Lookup,
): JoinTree {
  const cost = joinCost(left, right, rows, conds);
  // Looking the right unit up per left row: the left input, a lookup per row, the output; the
  // right unit is never read whole.
  const perRow = right.kind === 'unit' ? lookup?.(right.unit, left.mask) : undefined;
  if (perRow !== undefined) {
    const viaLookup = left.cost + left.rows * perRow + rows;
    if (viaLookup < cost)
      return { kind: 'join', left, right, mask: left.mask | right.mask, rows, cost: viaLookup, lookup: true };
  }
  return { kind: 'join', left, right, mask: left.mask | right.mask, rows, cost };
}

/** Unit i alone: its cost is reading it. */
function unitLeaf(rows: readonly number[], i: number): JoinTree {
  return { kind: 'unit', unit: i, mask: 1 << i, rows: rows[i]!, cost: rows[i]! };
}

/**
 * The join tree of `rows.length` units (rows[i]: unit i's estimated rows). `fixed`: keep the units
 * in their order, left-deep (STRAIGHT_JOIN, and the order a caller must keep).
 */
export function orderJoins(
  rows: readonly number[],
  conds: readonly JoinCond[],
  fixed = false,
  lookup?: Lookup,
): JoinTree {
  const n = rows.length;
  const leaf = (i: number): JoinTree => unitLeaf(rows, i);
  if (n === 1) return leaf(0);
  if (fixed) {
    let t = leaf(0);
    for (let i = 1; i < n; i++)
      t = join(t, leaf(i), joinedRows(t.mask | (1 << i), rows, conds), conds, lookup);
    return t;
  }
  return n <= DP_UNITS ? dynamic(rows, conds, lookup) : greedy(rows, conds, lookup);
}

function dynamic(rows: readonly number[], conds: readonly JoinCond[], lookup?: Lookup): JoinTree {
  const n = rows.length;
  const full = (1 << n) - 1;
  const best = new Array<JoinTree | undefined>(full + 1);
  for (let i = 0; i < n; i++)
    best[1 << i] = { kind: 'unit', unit: i, mask: 1 << i, rows: rows[i]!, cost: rows[i]! };
  // Subsets in order of size, so both halves of a split are known.
  const bySize: number[][] = Array.from({ length: n + 1 }, () => []);
  for (let m = 1; m <= full; m++) bySize[popcount(m)]!.push(m);
  for (let size = 2; size <= n; size++) {
    for (const m of bySize[size]!) {
      const r = joinedRows(m, rows, conds);
      let chosen: JoinTree | undefined;
      for (const crossOk of [false, true]) {
        // Every split into two non-empty halves, each half tried on both sides.
        for (let l = (m - 1) & m; l > 0; l = (l - 1) & m) {
          const right = m & ~l;
          const a = best[l];
          const b = best[right];
          if (a === undefined || b === undefined) continue;
          if (!crossOk && !connected(l, right, conds)) continue;
          const t = join(a, b, r, conds, lookup);
          if (chosen === undefined || t.cost < chosen.cost) chosen = t;
        }
        if (chosen !== undefined) break;
      }
      best[m] = chosen;
    }
  }
  return best[full]!;
}

/** Left-deep: start from the smallest unit, then add the unit whose join costs least. */
function greedy(rows: readonly number[], conds: readonly JoinCond[], lookup?: Lookup): JoinTree {
  const n = rows.length;
  const leaf = (i: number): JoinTree => unitLeaf(rows, i);
  let start = 0;
  for (let i = 1; i < n; i++) if (rows[i]! < rows[start]!) start = i;
  let t = leaf(start);
  const left = new Set<number>();
  for (let i = 0; i < n; i++) if (i !== start) left.add(i);
  while (left.size > 0) {
    let chosen: JoinTree | undefined;
    let chosenUnit = -1;
    for (const crossOk of [false, true]) {
      for (const i of left) {
        if (!crossOk && !connected(t.mask, 1 << i, conds)) continue;
        const r = joinedRows(t.mask | (1 << i), rows, conds);
        for (const cand of [join(t, leaf(i), r, conds, lookup), join(leaf(i), t, r, conds, lookup)]) {
          if (chosen === undefined || cand.cost < chosen.cost) {
            chosen = cand;
            chosenUnit = i;
          }
        }
      }
      if (chosen !== undefined) break;
    }
    t = chosen!;
    left.delete(chosenUnit);
  }
  return t;
}
