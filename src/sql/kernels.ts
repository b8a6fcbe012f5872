/**
 * The inner loops of vectorized evaluation, one compiled function per operator and argument
 * representation (Float64Array, Int32Array, Uint8Array, number[], or a constant).
 *
 * Why generated: V8 keeps type feedback per function, not per call site of a closure. One shared
 * loop reading Float64Arrays in one query and Int32Arrays in the next goes megamorphic and runs
 * several times slower than a loop that only ever sees one array type. So each (operation,
 * representation) pair gets a function of its own, built once from a fixed template below with
 * `new Function` (no SQL text ever reaches the generated source: operators come from a fixed list).
 */
/** The numbers of a column as the kernels loop over them (see NumCol in vector.ts). */
export type NumArray = Float64Array | Int32Array | Uint8Array | number[];

/** F: Float64Array, I: Int32Array, U: Uint8Array, A: number[], C: a constant number. */
export type Rep = 'F' | 'I' | 'U' | 'A' | 'C';

export function repOf(a: NumArray | number): Rep {
  if (typeof a === 'number') return 'C';
  if (a instanceof Float64Array) return 'F';
  if (a instanceof Int32Array) return 'I';
  if (a instanceof Uint8Array) return 'U';
  return 'A';
}

const cache = new Map<string, unknown>();

function compiled<T>(key: string, params: string[], body: string): T {
  let f = cache.get(key) as T | undefined;
  if (f === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    f = new Function(...params, `'use strict';\n${body}`) as T;
    cache.set(key, f);
  }
  return f;
}

const at = (name: string, rep: Rep): string => (rep === 'C' ? name : `${name}[i]`);

const COMPARE: Record<string, string> = {
  '=': '===',
  '<>': '!==',
  '!=': '!==',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
};

/** out[i] = x[i] OP y[i] ? 1 : 0 for a comparison OP. */
export function compareKernel(
  op: string,
  x: Rep,
  y: Rep,
): (x: NumArray | number, y: NumArray | number, n: number, out: Uint8Array) => void {
  const js = COMPARE[op];
  if (js === undefined) throw new Error(`no compare kernel for ${op}`);
  return compiled(
    `cmp${op}${x}${y}`,
    ['x', 'y', 'n', 'out'],
    `for (let i = 0; i < n; i++) out[i] = ${at('x', x)} ${js} ${at('y', y)} ? 1 : 0;`,
  );
}

/** out[i] = x[i] OP y[i] for + - * /; a zero divisor marks the row null. */
export function arithKernel(
  op: string,
  x: Rep,
  y: Rep,
): (x: NumArray | number, y: NumArray | number, n: number, out: Float64Array, nulls: Uint8Array) => number {
  if (op === '/') {
    return compiled(
      `ar/${x}${y}`,
      ['x', 'y', 'n', 'out', 'nulls'],
      `let z = 0;
for (let i = 0; i < n; i++) {
  const d = ${at('y', y)};
  if (d === 0) { nulls[i] = 1; z++; } else out[i] = ${at('x', x)} / d;
}
return z;`,
    );
  }
  if (op !== '+' && op !== '-' && op !== '*') throw new Error(`no arithmetic kernel for ${op}`);
  return compiled(
    `ar${op}${x}${y}`,
    ['x', 'y', 'n', 'out', 'nulls'],
    `for (let i = 0; i < n; i++) out[i] = ${at('x', x)} ${op} ${at('y', y)};\nreturn 0;`,
  );
}

/**
 * `+ - *` of exact numbers (integers, scaled DECIMALs): as arithKernel, returning the largest
 * |result|, so that the caller knows in the same pass whether every result is exact (<= 2^53).
 */
export function exactArithKernel(
  op: string,
  x: Rep,
  y: Rep,
): (x: NumArray | number, y: NumArray | number, n: number, out: Float64Array) => number {
  if (op !== '+' && op !== '-' && op !== '*') throw new Error(`no exact arithmetic kernel for ${op}`);
  return compiled(
    `xar${op}${x}${y}`,
    ['x', 'y', 'n', 'out'],
    `let m = 0;
for (let i = 0; i < n; i++) {
  const v = ${at('x', x)} ${op} ${at('y', y)};
  out[i] = v;
  const a = v < 0 ? -v : v;
  if (a > m) m = a;
}
return m;`,
  );
}

/** SQL truth per row: 1, 0, or -1 for null. */
export function truthKernel(
  d: Rep,
): (d: NumArray, nulls: Uint8Array | null, n: number, out: Int8Array) => void {
  return compiled(
    `truth${d}`,
    ['d', 'nulls', 'n', 'out'],
    `if (nulls === null) { for (let i = 0; i < n; i++) out[i] = d[i] !== 0 ? 1 : 0; return; }
for (let i = 0; i < n; i++) out[i] = nulls[i] === 1 ? -1 : d[i] !== 0 ? 1 : 0;`,
  );
}

/** out[j] = src[sel[j]]. */
export function gatherKernel(
  s: Rep,
): (src: NumArray, sel: ArrayLike<number>, n: number, out: Float64Array) => void {
  return compiled(
    `gather${s}`,
    ['src', 'sel', 'n', 'out'],
    `for (let j = 0; j < n; j++) out[j] = src[sel[j]];`,
  );
}

/**
 * sum[g] += d[i] (and count[g]++ when `counting`) for each row i of group g = gid[i], skipping
 * rows left out (g -1) and, when `nullable`, null rows; gid null: every row in group 0.
 */
export function sumKernel(
  d: Rep,
  nullable: boolean,
  counting: boolean,
  grouped: boolean,
): (
  d: NumArray,
  nulls: Uint8Array | null,
  gid: Int32Array | null,
  n: number,
  sum: Float64Array,
  count: Float64Array,
) => void {
  const skip = [grouped ? 'g < 0' : '', nullable ? 'nulls[i] === 1' : ''].filter(Boolean).join(' || ');
  const body = grouped
    ? `for (let i = 0; i < n; i++) {
  const g = gid[i];
  ${skip ? `if (${skip}) continue;` : ''}
  sum[g] += d[i];${counting ? ' count[g]++;' : ''}
}`
    : `let s = 0, c = 0;
for (let i = 0; i < n; i++) {
  ${skip ? `if (${skip}) continue;` : ''}
  s += d[i];${counting ? ' c++;' : ''}
}
sum[0] += s;${counting ? ' count[0] += c;' : ''}`;
  return compiled(
    `sum${d}${nullable ? 'n' : ''}${counting ? 'c' : ''}${grouped ? 'g' : ''}`,
    ['d', 'nulls', 'gid', 'n', 'sum', 'count'],
    body,
  );
}

/** One condition of a conjunction: column slot `slot` compared with constant number `k`. */
export interface SelectAtom {
  slot: number;
  op: string;
  k: number;
}

/**
 * A conjunction of column-against-constant comparisons, fused into one pass that writes the
 * indexes of the rows where every one is true (a NULL in a compared column fails the row) to
 * `sel` and returns how many there are. `reps` and `withNulls` describe each column slot.
 */
export function selectKernel(
  atoms: readonly SelectAtom[],
  reps: readonly Rep[],
  withNulls: readonly boolean[],
): (
  cols: readonly NumArray[],
  nulls: readonly (Uint8Array | null)[],
  k: readonly number[],
  n: number,
  sel: Int32Array,
) => number {
  const key = `sel:${reps.join('')}:${withNulls.map((x) => (x ? 1 : 0)).join('')}:${atoms.map((a) => `${a.slot}${a.op}${a.k}`).join(',')}`;
  const decl: string[] = [];
  reps.forEach((_, s) => {
    decl.push(`const c${s} = cols[${s}];`);
    if (withNulls[s]) decl.push(`const n${s} = nulls[${s}];`);
  });
  const ks = new Set(atoms.map((a) => a.k));
  for (const k of ks) decl.push(`const k${k} = k[${k}];`);
  const terms: string[] = [];
  const nullChecked = new Set<number>();
  for (const a of atoms) {
    const js = COMPARE[a.op];
    if (js === undefined) throw new Error(`no select kernel for ${a.op}`);
    if (withNulls[a.slot] && !nullChecked.has(a.slot)) {
      terms.push(`n${a.slot}[i] === 0`);
      nullChecked.add(a.slot);
    }
    terms.push(`c${a.slot}[i] ${js} k${a.k}`);
  }
  return compiled(
    key,
    ['cols', 'nulls', 'k', 'n', 'sel'],
    `${decl.join('\n')}
let m = 0;
for (let i = 0; i < n; i++) if (${terms.join(' && ')}) sel[m++] = i;
return m;`,
  );
}

/** One accumulator of a fused sum: its argument's representation, nulls, and whether it counts. */
export interface SumSpec {
  rep: Rep;
  nullable: boolean;
  counting: boolean;
}

/**
 * Several sums in one pass over the rows (an aggregation's SUM/AVG/COUNT over numbers): for each
 * row of group g = gid[i] (skipped when -1; gid null: group 0), sums[k][g] += ds[k][i], unless that
 * argument is null there, and counts[k][g]++ for those that count.
 */
export function multiSumKernel(
  specs: readonly SumSpec[],
  grouped: boolean,
): (
  ds: readonly NumArray[],
  nulls: readonly (Uint8Array | null)[],
  gid: Int32Array | null,
  n: number,
  sums: readonly Float64Array[],
  counts: readonly Float64Array[],
) => void {
  const key = `msum${grouped ? 'g' : ''}:${specs.map((s) => `${s.rep}${s.nullable ? 'n' : ''}${s.counting ? 'c' : ''}`).join(',')}`;
  const decl: string[] = [];
  const stmts: string[] = [];
  specs.forEach((s, k) => {
    decl.push(`const d${k} = ds[${k}], s${k} = sums[${k}], c${k} = counts[${k}];`);
    if (s.nullable) decl.push(`const n${k} = nulls[${k}];`);
    const add = `s${k}[g] += d${k}[i];${s.counting ? ` c${k}[g]++;` : ''}`;
    stmts.push(s.nullable ? `if (n${k}[i] === 0) { ${add} }` : add);
  });
  const body = grouped
    ? `for (let i = 0; i < n; i++) {\n  const g = gid[i];\n  if (g < 0) continue;\n  ${stmts.join('\n  ')}\n}`
    : `const g = 0;\nfor (let i = 0; i < n; i++) {\n  ${stmts.join('\n  ')}\n}`;
  return compiled(key, ['ds', 'nulls', 'gid', 'n', 'sums', 'counts'], `${decl.join('\n')}\n${body}`);
}
