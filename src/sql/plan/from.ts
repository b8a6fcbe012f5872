/**
 * The FROM clause: table references flattened into the units of inner joins (LEFT and RIGHT JOINs
 * kept as groups), views and CTEs expanded, USING and NATURAL joins merged, the inner joins of a
 * level ordered by cost (`joinorder.ts`), and WHERE and ON conditions split at AND and placed as
 * low as they can go.
 */
import type * as A from '../parser/ast.js';
import { TidemarkError } from '../../errors.js';
import {
  conjuncts,
  hasSubquery,
  LayoutResolver,
  mentionQuery,
  unknownColumn,
  unsupported,
  walk,
  type ColInfo,
  type Level,
} from '../bind.js';
import type { SqlTable } from '../catalog.js';
import type { Expr } from '../expr.js';
import { orderJoins, type JoinCond, type JoinTree, type Lookup, LOOKUP_COST } from './joinorder.js';
import type { Op } from '../ops/op.js';
import { OneRow, TableScan } from '../ops/scan.js';
import { IndexJoin, type LookupPath } from '../ops/lookupjoin.js';
import type { IndexColumn } from '../ops/indexkeys.js';
import { Filter } from '../ops/filter.js';
import { Derived } from '../ops/rows.js';
import { Join } from '../ops/join.js';
import { selectivity, type Planned, type Rel } from './rel.js';
import { ScanPlanner } from './scan.js';

/** A column of a FROM clause by its table alias and name (both case-insensitive). */
const colKey = (table: string, name: string): string => `${table.toLowerCase()}\u0000${name.toLowerCase()}`;

/** A unit of an inner-join set, before it is planned. */
interface Unit {
  ref: A.TableRef;
  /** Its columns, as the conditions see them (aliases and names). */
  cols: ColInfo[];
  aliases: string[];
}

export abstract class FromPlanner extends ScanPlanner {
  /** Views being expanded (a view reaching itself is an error, not endless recursion). */
  private readonly expanding = new Set<string>();
  /** The WITH clauses in scope, innermost last. */
  protected readonly ctes: Map<string, A.Cte>[] = [];

  /** A query at the top level or inside an enclosing level (see Planner). */
  abstract select(q: A.Query, parent?: Level, uses?: Set<number>): Planned;

  /**
   * The FROM clause with the conditions that may be placed in it (WHERE's conjuncts): a Rel whose
   * operator applies all of them (those it could not place below, in a filter on top).
   */
  protected from(
    refs: readonly A.TableRef[],
    conds: A.Expr[],
    parent: Level | undefined,
    uses: Set<number>,
  ): Rel {
    if (refs.length === 0) {
      let op: Op = new OneRow();
      if (conds.length > 0)
        op = new Filter(
          op,
          this.andAll(conds, { resolver: new LayoutResolver([]), parent, parentUses: uses }),
        );
      return { op, layout: [], display: [], aliases: [], rows: 1 };
    }
    const units: A.TableRef[] = [];
    const pool = [...conds];
    const merges: { keep: string; drop: string; name: string }[] = [];
    const straight = { on: false };
    this.flatten(refs, units, pool, merges, straight);
    const rel = this.innerJoin(units, pool, parent, uses, straight.on);
    this.applyMerges(rel, merges);
    // SELECT * in MySQL's order (whatever the join order and the nesting of USING joins).
    const order = new Map(this.displayOrder(refs).map((c, i) => [colKey(c.table, c.name), i]));
    const rank = (i: number) => order.get(colKey(rel.layout[i]!.table ?? '', rel.layout[i]!.name)) ?? -1;
    rel.display = [...rel.display].sort((x, y) => rank(x) - rank(y));
    const seen = new Set<string>();
    for (const a of rel.aliases) {
      const l = a.toLowerCase();
      if (seen.has(l)) {
        throw new TidemarkError('INVALID_ARGUMENT', `not unique table/alias: ${a}`, {
          details: { mysqlErrno: 1066 },
        });
      }
      seen.add(l);
    }
    return rel;
  }

  /**
   * The inner-join units of table references: tables, derived tables and outer-join groups, with
   * the ON conditions and USING equalities of the inner joins added to `pool`.
   */
  private flatten(
    refs: readonly A.TableRef[],
    units: A.TableRef[],
    pool: A.Expr[],
    merges: { keep: string; drop: string; name: string }[],
    straight: { on: boolean },
  ): void {
    for (const r of refs) {
      if (r.kind !== 'join' || r.type === 'left' || r.type === 'right') {
        units.push(r);
        continue;
      }
      if (r.type === 'straight') straight.on = true;
      const before = units.length;
      this.flatten([r.left], units, pool, merges, straight);
      const leftUnits = units.slice(before);
      this.flatten([r.right], units, pool, merges, straight);
      const rightUnits = units.slice(before + leftUnits.length);
      pool.push(...conjuncts(r.on));
      const using = this.usingColumns(r, leftUnits, rightUnits);
      for (const u of using) {
        const l = this.ownerOf(u, [r.left]);
        const rr = this.ownerOf(u, [r.right]);
        pool.push(usingEquality(r.at, l, rr, u));
        merges.push({ keep: l, drop: rr, name: u });
      }
    }
  }

  /** The USING columns of a join (a NATURAL join's: the names both sides have). */
  private usingColumns(r: A.Join, left: readonly A.TableRef[], right: readonly A.TableRef[]): string[] {
    if (r.using !== undefined) return r.using;
    if (!r.natural) return [];
    const names = (us: readonly A.TableRef[]) =>
      new Set(us.flatMap((u) => this.unitColumns(u).cols.map((c) => c.name.toLowerCase())));
    const rightNames = names(right);
    const out: string[] = [];
    for (const u of left)
      for (const c of this.unitColumns(u).cols)
        if (rightNames.has(c.name.toLowerCase()) && !out.includes(c.name)) out.push(c.name);
    return out;
  }

  /**
   * The one alias among `units` that has column `name` (USING needs exactly one per side), the
   * copies that USING or NATURAL joins inside a unit merged away left out.
   */
  private ownerOf(name: string, units: readonly A.TableRef[]): string {
    const owners: string[] = [];
    for (const u of units) {
      const info = this.unitColumns(u);
      const away = this.mergedAway(u);
      for (const c of info.cols)
        if (
          c.name.toLowerCase() === name.toLowerCase() &&
          c.merged !== true &&
          !away.has(colKey(c.table!, c.name))
        )
          owners.push(c.table!);
    }
    if (owners.length === 0) throw unknownColumn(name);
    if (owners.length > 1) {
      throw new TidemarkError('SCHEMA', `column ${name} in USING is ambiguous`, {
        details: { mysqlErrno: 1052 },
      });
    }
    return owners[0]!;
  }

  /** The columns (colKey) that USING or NATURAL joins in `ref` merged away: the other side's copies. */
  private mergedAway(ref: A.TableRef): Set<string> {
    if (ref.kind !== 'join') return new Set();
    const out = new Set([...this.mergedAway(ref.left), ...this.mergedAway(ref.right)]);
    const dropSide = ref.type === 'right' ? ref.left : ref.right;
    for (const u of this.usingColumns(ref, [ref.left], [ref.right]))
      out.add(colKey(this.ownerOf(u, [dropSide]), u));
    return out;
  }

  /**
   * The columns SELECT * shows, in MySQL's order: a USING or NATURAL join shows its merged columns
   * first, in the order of its first table (the left one; a RIGHT JOIN's right one), then that
   * table's other columns, then the other table's; any other join shows left, then right.
   */
  private displayOrder(refs: readonly A.TableRef[]): { table: string; name: string }[] {
    return refs.flatMap((r) => {
      if (r.kind !== 'join') return this.unitColumns(r).cols.map((c) => ({ table: c.table!, name: c.name }));
      const l = this.displayOrder([r.left]);
      const rr = this.displayOrder([r.right]);
      const using = new Set(this.usingColumns(r, [r.left], [r.right]).map((u) => u.toLowerCase()));
      if (using.size === 0) return [...l, ...rr];
      const [first, second] = r.type === 'right' ? [rr, l] : [l, rr];
      const merged = (c: { name: string }) => using.has(c.name.toLowerCase());
      return [
        ...first.filter(merged),
        ...first.filter((c) => !merged(c)),
        ...second.filter((c) => !merged(c)),
      ];
    });
  }

  /** A USING column is shown once: the kept side's copy; the other is found only qualified. */
  private applyMerges(rel: Rel, merges: readonly { keep: string; drop: string; name: string }[]): void {
    if (merges.length === 0) return;
    const dropped = new Set<number>();
    for (const m of merges) {
      const drop = rel.layout.findIndex((c) => colKey(c.table ?? '', c.name) === colKey(m.drop, m.name));
      if (drop >= 0) {
        rel.layout[drop] = { ...rel.layout[drop]!, merged: true };
        dropped.add(drop);
      }
    }
    // The order SELECT * shows the rest in is decided once for the whole FROM (displayOrder).
    rel.display = rel.display.filter((i) => !dropped.has(i));
  }

  /** A unit's columns and aliases, without planning it (for condition placement and USING). */
  private unitColumns(ref: A.TableRef): Unit {
    if (ref.kind === 'table') {
      const alias = ref.alias ?? ref.name;
      const t = this.tableOf(ref);
      if (t !== undefined)
        return { ref, cols: t.columns.map((c) => ({ table: alias, name: c.name })), aliases: [alias] };
      const names = this.expandView(ref, (v) => v.columns ?? this.outputNames(v.query));
      return { ref, cols: names.map((n) => ({ table: alias, name: n })), aliases: [alias] };
    }
    if (ref.kind === 'derived') {
      const alias = ref.alias ?? '';
      const names = ref.columns ?? this.outputNames(ref.query);
      return { ref, cols: names.map((n) => ({ table: alias, name: n })), aliases: [alias] };
    }
    const l = this.unitColumns(ref.left);
    const r = this.unitColumns(ref.right);
    return { ref, cols: [...l.cols, ...r.cols], aliases: [...l.aliases, ...r.aliases] };
  }

  /** The output names of a query (planned once to know them; the plan is thrown away). */
  private outputNames(q: A.Query): string[] {
    const saved = this.ctes.length;
    try {
      return this.select(q, undefined).names;
    } finally {
      this.ctes.length = saved;
    }
  }

  private cte(name: string): A.Cte | undefined {
    const n = name.toLowerCase();
    for (let i = this.ctes.length - 1; i >= 0; i--) {
      const c = this.ctes[i]!.get(n);
      if (c !== undefined) return c;
    }
    return undefined;
  }

  /** The table a reference names (not a view or CTE). */
  protected baseTable(ref: A.TableName): SqlTable | undefined {
    return this.tableOf(ref);
  }

  private tableOf(ref: A.TableName): SqlTable | undefined {
    if (ref.schema === undefined && this.cte(ref.name) !== undefined) return undefined;
    return this.catalog.table(ref.name);
  }

  /** A view or CTE named by `ref` (NOT_FOUND when there is none). */
  private viewOf(ref: A.TableName): { query: A.Query; columns?: string[] } {
    const c = ref.schema === undefined ? this.cte(ref.name) : undefined;
    if (c !== undefined) return c;
    const v = this.catalog.view(ref.name);
    if (v === undefined) {
      throw new TidemarkError('NOT_FOUND', `unknown table ${ref.name}`, {
        details: { table: ref.name, mysqlErrno: 1146 },
      });
    }
    return v;
  }

  /**
   * `fn` over the view or CTE `ref` names, with the names its query mentions read by the scans in
   * it. A view that reaches itself (directly or through others) is refused, not expanded forever.
   */
  private expandView<T>(ref: A.TableName, fn: (v: { query: A.Query; columns?: string[] }) => T): T {
    const name = ref.name;
    const key = `${ref.schema === undefined && this.cte(name) !== undefined ? 'cte' : 'view'}:${name.toLowerCase()}`;
    const v = this.viewOf(ref);
    if (this.expanding.has(key)) {
      throw new TidemarkError('INVALID_ARGUMENT', `view ${name} references itself`, {
        details: { view: name, mysqlErrno: 1462 },
      });
    }
    this.expanding.add(key);
    mentionQuery(v.query, this.mentioned);
    try {
      return fn(v);
    } finally {
      this.expanding.delete(key);
    }
  }

  /**
   * Join a set of units: each planned with the conditions on it alone, then joined in the order
   * `orderJoins` finds cheapest, each condition at the first join that has all it reads; what
   * reads no unit, or has a subquery, is checked on top.
   */
  private innerJoin(
    refs: A.TableRef[],
    pool: A.Expr[],
    parent: Level | undefined,
    uses: Set<number>,
    fixed: boolean,
  ): Rel {
    const units = refs.map((r) => this.unitColumns(r));
    const allCols = units.flatMap((u) => u.cols);
    const unitOfCol: number[] = units.flatMap((u, i) => u.cols.map(() => i));
    const resolver = new LayoutResolver(allCols);
    const local: A.Expr[][] = units.map(() => []);
    const spanning: { ast: A.Expr; mask: number }[] = [];
    const top: A.Expr[] = [];
    for (const c of pool) {
      const mask = this.unitsOf(c, resolver, unitOfCol);
      if (mask === undefined || mask === 0) top.push(c);
      else if ((mask & (mask - 1)) === 0) local[Math.log2(mask)]!.push(c);
      else spanning.push({ ast: c, mask });
    }
    const rels = units.map((u, i) => this.planUnit(u.ref, local[i]!, parent, uses));
    const rows = rels.map((r) => Math.max(r.rows, 1));
    const conds: JoinCond[] = spanning.map(({ ast, mask }) => {
      let equi: JoinCond['equi'];
      let sel = 1 / 3;
      if (ast.kind === 'binary' && ast.op === '=') {
        const l = this.unitsOf(ast.left, resolver, unitOfCol);
        const r = this.unitsOf(ast.right, resolver, unitOfCol);
        if (l !== undefined && r !== undefined && l !== 0 && r !== 0 && (l & r) === 0) {
          equi = { left: l, right: r };
          let most = 1;
          for (let i = 0; i < rows.length; i++) if ((mask >> i) & 1) most = Math.max(most, rows[i]!);
          sel = 1 / most;
        }
      }
      return { mask, selectivity: sel, ...(equi !== undefined ? { equi } : {}) };
    });
    // Equalities between a table unit's plain column and an expression of other units: that unit
    // may be looked up per row of the others through an index on the column (or its key).
    const keyEqs: KeyEquality[] = [];
    spanning.forEach(({ ast }) => {
      if (ast.kind !== 'binary' || ast.op !== '=' || hasSubquery(ast)) return;
      for (const [side, other] of [
        [ast.left, ast.right],
        [ast.right, ast.left],
      ] as const) {
        if (side.kind !== 'column') continue;
        const sm = this.unitsOf(side, resolver, unitOfCol);
        const om = this.unitsOf(other, resolver, unitOfCol);
        if (sm === undefined || om === undefined || om === 0 || (sm & (sm - 1)) !== 0 || (sm & om) !== 0)
          continue;
        const unit = Math.log2(sm);
        const scan = rels[unit]!.op;
        if (!(scan instanceof TableScan) || scan.order !== undefined) continue;
        const at = resolver.resolve(side.table, side.name);
        if (at === undefined) continue;
        keyEqs.push({ unit, column: allCols[at]!.name, other, otherMask: om });
      }
    });
    const lookup: Lookup = (unit, left) => {
      const scan = rels[unit]!.op as TableScan;
      const cols = keyEqs.filter((e) => e.unit === unit && (e.otherMask & ~left) === 0).map((e) => e.column);
      return lookupCost(scan, cols);
    };
    const tree = orderJoins(rows, conds, fixed, keyEqs.length > 0 ? lookup : undefined);
    const placed = new Set<number>();
    const built = this.buildTree(tree, rels, spanning, placed, parent, uses, keyEqs);
    // Layout in the units' order for display: SELECT * follows FROM, whatever the join order.
    const display: number[] = [];
    for (let i = 0; i < rels.length; i++) {
      const at = built.offsets.get(i)!;
      for (const d of rels[i]!.display) display.push(at + d);
    }
    let op = built.op;
    const rest = [...top, ...spanning.filter((_, k) => !placed.has(k)).map((s) => s.ast)];
    if (rest.length > 0)
      op = new Filter(
        op,
        this.andAll(rest, { resolver: new LayoutResolver(built.layout), parent, parentUses: uses }),
      );
    return { op, layout: built.layout, display, aliases: rels.flatMap((r) => r.aliases), rows: tree.rows };
  }

  /** The join tree's operators: each join with the spanning conditions it is the first to have. */
  private buildTree(
    tree: JoinTree,
    rels: readonly Rel[],
    spanning: readonly { ast: A.Expr; mask: number }[],
    placed: Set<number>,
    parent: Level | undefined,
    uses: Set<number>,
    keyEqs: readonly KeyEquality[],
  ): { op: Op; layout: ColInfo[]; offsets: Map<number, number> } {
    if (tree.kind === 'unit') {
      const r = rels[tree.unit]!;
      return { op: r.op, layout: r.layout, offsets: new Map([[tree.unit, 0]]) };
    }
    const l = this.buildTree(tree.left, rels, spanning, placed, parent, uses, keyEqs);
    const r = this.buildTree(tree.right, rels, spanning, placed, parent, uses, keyEqs);
    const layout = [...l.layout, ...r.layout];
    const offsets = new Map(l.offsets);
    for (const [u, at] of r.offsets) offsets.set(u, at + l.layout.length);
    const lvl = (cols: ColInfo[]): Level => ({
      resolver: new LayoutResolver(cols),
      parent,
      parentUses: uses,
    });
    const leftKeys: Expr[] = [];
    const rightKeys: Expr[] = [];
    const rest: A.Expr[] = [];
    const atJoin: A.Expr[] = [];
    spanning.forEach((s, k) => {
      if (placed.has(k) || (s.mask & ~tree.mask) !== 0) return;
      placed.add(k);
      const c = s.ast;
      atJoin.push(c);
      const keys = this.equiKeys(c, l.layout, r.layout, lvl);
      if (keys !== undefined) {
        leftKeys.push(keys[0]);
        rightKeys.push(keys[1]);
        return;
      }
      rest.push(c);
    });
    const cond = rest.length > 0 ? this.andAll(rest, lvl(layout)) : undefined;
    if (tree.lookup === true && tree.right.kind === 'unit' && r.op instanceof TableScan) {
      const unit = tree.right.unit;
      const eqs = keyEqs.filter((e) => e.unit === unit && (e.otherMask & ~tree.left.mask) === 0);
      const path = this.lookupPath(r.op, eqs, lvl(l.layout));
      if (path !== undefined) {
        const all = this.andAll(atJoin, lvl(layout));
        const hash = { leftKeys, rightKeys, condition: cond };
        return { op: new IndexJoin(l.op, r.op, 'inner', path, all, hash), layout, offsets };
      }
    }
    return { op: new Join(l.op, r.op, 'inner', leftKeys, rightKeys, cond), layout, offsets };
  }

  /**
   * How to look a table's rows up by the values of equalities with its columns: through the
   * UNIQUE index all of whose columns they give, else the primary key, else the index with the most
   * leading columns given. The values are bound over `left` (the other side of the join).
   */
  private lookupPath(
    scan: TableScan,
    eqs: readonly { column: string; other: A.Expr }[],
    left: Level,
  ): LookupPath | undefined {
    const byColumn = new Map<string, Expr>();
    for (const e of eqs) {
      if (byColumn.has(e.column)) continue;
      const x = this.expr(e.other, left);
      const col = scan.columns.find((c) => c.name === e.column);
      const textual = col !== undefined ? col.type === 'string' : scan.keyType === 'string';
      // A string against a number compares as numbers: no lookup by either's order.
      if ((x.textual === true) !== textual) continue;
      byColumn.set(e.column, x);
    }
    let best: { path: LookupPath; rank: number } | undefined;
    const consider = (path: LookupPath, rank: number) => {
      if (path.columns.length > 0 && (best === undefined || rank > best.rank)) best = { path, rank };
    };
    for (const ix of scan.spec?.indexes ?? []) {
      const columns: IndexColumn[] = [];
      const keys: Expr[] = [];
      for (const c of ix.columns) {
        const k = byColumn.get(c.name);
        if (k === undefined) break;
        columns.push(c);
        keys.push(k);
      }
      consider(
        { index: ix, columns, keys },
        ix.unique && columns.length === ix.columns.length ? 1000 : columns.length,
      );
    }
    const keyName = scan.keyName;
    const k = keyName !== undefined ? byColumn.get(keyName) : undefined;
    if (keyName !== undefined && k !== undefined) {
      const column: IndexColumn = {
        name: keyName,
        type: scan.keyType,
        ...(scan.keyDigits !== undefined
          ? { scale: scan.keyDigits.scale, precision: scan.keyDigits.precision }
          : {}),
      };
      consider({ columns: [column], keys: [k] }, 999);
    }
    return best?.path;
  }

  /**
   * A hash join's key pair for `c` when it is an equality of an expression of the left side with
   * one of the right side; undefined when it is not, or when the two would compare otherwise than
   * by their hash keys (a string with a number compares as numbers: '1e2' = 100).
   */
  private equiKeys(
    c: A.Expr,
    left: ColInfo[],
    right: ColInfo[],
    lvl: (cols: ColInfo[]) => Level,
  ): [Expr, Expr] | undefined {
    if (c.kind !== 'binary' || c.op !== '=' || hasSubquery(c)) return undefined;
    const lr = new LayoutResolver(left);
    const rr = new LayoutResolver(right);
    for (const [a, b] of [
      [c.left, c.right],
      [c.right, c.left],
    ] as const) {
      if (!this.readsOnly(a, lr) || !this.readsOnly(b, rr)) continue;
      const ka = this.expr(a, lvl(left));
      const kb = this.expr(b, lvl(right));
      return (ka.textual === true) === (kb.textual === true) ? [ka, kb] : undefined;
    }
    return undefined;
  }

  /** Whether every column an expression reads (at this level) is in `res`, and it reads one. */
  private readsOnly(e: A.Expr, res: LayoutResolver): boolean {
    let ok = true;
    let any = false;
    walk(e, (n) => {
      if (n.kind !== 'column') return;
      try {
        if (res.resolve(n.table, n.name) === undefined) ok = false;
        else any = true;
      } catch (e) {
        // Ambiguous here: not this side's alone (the error comes when the condition is bound).
        if (!(e instanceof TidemarkError)) throw e;
        ok = false;
      }
    });
    return ok && any;
  }

  /**
   * The units (bits) an expression reads; undefined when it has a subquery or an ambiguous name
   * (it is then checked on top, where binding reports the ambiguity).
   */
  private unitsOf(e: A.Expr, res: LayoutResolver, unitOfCol: readonly number[]): number | undefined {
    if (hasSubquery(e)) return undefined;
    let mask = 0;
    let ok = true;
    walk(e, (n) => {
      if (n.kind !== 'column') return;
      try {
        const i = res.resolve(n.table, n.name);
        if (i !== undefined) mask |= 1 << unitOfCol[i]!;
      } catch (e) {
        if (!(e instanceof TidemarkError)) throw e;
        ok = false;
      }
    });
    return ok ? mask : undefined;
  }

  /** A unit with the conditions on it alone. */
  private planUnit(ref: A.TableRef, conds: A.Expr[], parent: Level | undefined, uses: Set<number>): Rel {
    if (ref.kind === 'join') return this.outerJoin(ref, conds, parent, uses);
    if (ref.kind === 'table') {
      const alias = ref.alias ?? ref.name;
      const t = this.tableOf(ref);
      if (t !== undefined) return this.scan(t, alias, conds, parent, uses);
      return this.expandView(ref, (v) =>
        this.derivedRel(this.select(v.query, undefined), v.columns, alias, conds, parent, uses),
      );
    }
    if (ref.alias === undefined) {
      throw new TidemarkError('INVALID_ARGUMENT', 'every derived table must have its own alias', {
        details: { mysqlErrno: 1248 },
      });
    }
    if (ref.lateral) throw unsupported('LATERAL');
    // A derived table sees the enclosing levels, not its siblings.
    const planned = this.select(ref.query, parent, uses);
    return this.derivedRel(planned, ref.columns, ref.alias, conds, parent, uses);
  }

  private derivedRel(
    planned: Planned,
    columns: string[] | undefined,
    alias: string,
    conds: A.Expr[],
    parent: Level | undefined,
    uses: Set<number>,
  ): Rel {
    if (columns !== undefined && columns.length !== planned.names.length) {
      throw new TidemarkError('INVALID_ARGUMENT', 'the column list and the SELECT differ in length', {
        details: { mysqlErrno: 1353 },
      });
    }
    const names = columns ?? planned.names;
    const layout = names.map((n, i) => ({ table: alias, name: n, textual: planned.textual[i] === true }));
    let op: Op = new Derived(planned.op, names, alias);
    if (conds.length > 0)
      op = new Filter(
        op,
        this.andAll(conds, { resolver: new LayoutResolver(layout), parent, parentUses: uses }),
      );
    return {
      op,
      layout,
      display: layout.map((_, i) => i),
      aliases: [alias],
      rows: planned.rows * conds.reduce((s, c) => s * selectivity(c), 1),
    };
  }

  /**
   * `left LEFT JOIN right ON c` (a RIGHT JOIN is the mirror of one). The ON conditions on the
   * right side alone go into it; the rest are the join's. Conditions from outside (WHERE) on the
   * preserved side alone go into it; the others are checked above the join.
   */
  private outerJoin(j: A.Join, conds: A.Expr[], parent: Level | undefined, uses: Set<number>): Rel {
    const mirrored = j.type === 'right';
    const keptRef = mirrored ? j.right : j.left;
    const nullRef = mirrored ? j.left : j.right;
    const keptInfo = this.unitColumns(keptRef);
    const nullInfo = this.unitColumns(nullRef);
    const keptRes = new LayoutResolver(keptInfo.cols);
    const nullRes = new LayoutResolver(nullInfo.cols);
    const using = this.usingColumns(j, [j.left], [j.right]);
    const on = conjuncts(j.on);
    const merges: { keep: string; drop: string; name: string }[] = [];
    for (const u of using) {
      const k = this.ownerOf(u, [keptRef]);
      const n = this.ownerOf(u, [nullRef]);
      on.push(usingEquality(j.at, k, n, u));
      merges.push({ keep: k, drop: n, name: u });
    }
    const intoKept: A.Expr[] = [];
    const above: A.Expr[] = [];
    for (const c of conds) (!hasSubquery(c) && this.readsOnly(c, keptRes) ? intoKept : above).push(c);
    const intoNull: A.Expr[] = [];
    const atJoin: A.Expr[] = [];
    for (const c of on) (!hasSubquery(c) && this.readsOnly(c, nullRes) ? intoNull : atJoin).push(c);
    const kept = this.refRel(keptRef, intoKept, parent, uses);
    const nul = this.refRel(nullRef, intoNull, parent, uses);
    const layout = [...kept.layout, ...nul.layout];
    const lvl = (cols: ColInfo[]): Level => ({
      resolver: new LayoutResolver(cols),
      parent,
      parentUses: uses,
    });
    const leftKeys: Expr[] = [];
    const rightKeys: Expr[] = [];
    const rest: A.Expr[] = [];
    for (const c of atJoin) {
      const keys = this.equiKeys(c, kept.layout, nul.layout, lvl);
      if (keys !== undefined) {
        leftKeys.push(keys[0]);
        rightKeys.push(keys[1]);
        continue;
      }
      rest.push(c);
    }
    const cond = rest.length > 0 ? this.andAll(rest, lvl(layout)) : undefined;
    let op: Op = new Join(kept.op, nul.op, 'left', leftKeys, rightKeys, cond);
    // The null side one table with an index on an equality's column: looked up per kept row when
    // that reads less than holding it in a hash table does.
    if (nul.op instanceof TableScan && nul.op.order === undefined && atJoin.length > 0) {
      const eqs: { column: string; other: A.Expr }[] = [];
      for (const c of atJoin) {
        if (c.kind !== 'binary' || c.op !== '=' || hasSubquery(c)) continue;
        for (const [side, other] of [
          [c.left, c.right],
          [c.right, c.left],
        ] as const) {
          if (side.kind !== 'column' || !this.readsOnly(other, keptRes)) continue;
          let at: number | undefined;
          try {
            at = nullRes.resolve(side.table, side.name);
          } catch (e) {
            if (!(e instanceof TidemarkError)) throw e;
          }
          if (at !== undefined) eqs.push({ column: nullInfo.cols[at]!.name, other });
        }
      }
      const scan = nul.op;
      const perRow = lookupCost(
        scan,
        eqs.map((e) => e.column),
      );
      // A lookup per kept row against holding the null side in a hash table (joinorder.ts's costs).
      const keptRows = Math.max(kept.rows, 1);
      if (perRow !== undefined && keptRows * perRow < 3 * Math.max(nul.rows, 1) + keptRows) {
        const path = this.lookupPath(scan, eqs, lvl(kept.layout));
        if (path !== undefined)
          op = new IndexJoin(kept.op, scan, 'left', path, this.andAll(atJoin, lvl(layout)), {
            leftKeys,
            rightKeys,
            condition: cond,
          });
      }
    }
    if (above.length > 0) op = new Filter(op, this.andAll(above, lvl(layout)));
    // SELECT * shows the tables as the FROM clause has them (a RIGHT JOIN's left table first).
    const keptDisplay = kept.display;
    const nullDisplay = nul.display.map((i) => i + kept.layout.length);
    const rel: Rel = {
      op,
      layout,
      display: mirrored ? [...nullDisplay, ...keptDisplay] : [...keptDisplay, ...nullDisplay],
      aliases: mirrored ? [...nul.aliases, ...kept.aliases] : [...kept.aliases, ...nul.aliases],
      rows: Math.max(kept.rows, 1) * above.reduce((s, c) => s * selectivity(c), 1),
    };
    this.applyMerges(rel, merges);
    return rel;
  }

  /** A table reference (a unit or a tree of inner joins) with conditions on it. */
  private refRel(ref: A.TableRef, conds: A.Expr[], parent: Level | undefined, uses: Set<number>): Rel {
    const units: A.TableRef[] = [];
    const pool = [...conds];
    const merges: { keep: string; drop: string; name: string }[] = [];
    const straight = { on: false };
    this.flatten([ref], units, pool, merges, straight);
    const rel = this.innerJoin(units, pool, parent, uses, straight.on);
    this.applyMerges(rel, merges);
    return rel;
  }
}

/** An equality between a table unit's plain column and an expression of other units. */
interface KeyEquality {
  unit: number;
  column: string;
  other: A.Expr;
  otherMask: number;
}

/**
 * What a lookup of a table's rows by values of these columns costs per row (LOOKUP_COST): by its
 * key, by a UNIQUE index all of whose columns they are, or by an index they lead; undefined when
 * none of these.
 */
export function lookupCost(scan: TableScan, columns: readonly string[]): number | undefined {
  if (columns.length === 0) return undefined;
  if (scan.keyName !== undefined && columns.includes(scan.keyName)) return LOOKUP_COST.primary;
  const ixs = scan.spec?.indexes ?? [];
  if (ixs.some((ix) => ix.unique && ix.columns.every((c) => columns.includes(c.name))))
    return LOOKUP_COST.unique;
  if (ixs.some((ix) => columns.includes(ix.columns[0]!.name))) return LOOKUP_COST.index;
  return undefined;
}

/** `a.name = b.name`: the join condition a USING or NATURAL column stands for. */
function usingEquality(at: number, a: string, b: string, name: string): A.Expr {
  return {
    kind: 'binary',
    at,
    op: '=',
    left: { kind: 'column', at, table: a, name },
    right: { kind: 'column', at, table: b, name },
  };
}
