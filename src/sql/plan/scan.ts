/**
 * The planner's base: the catalog and the names the statement mentions, and a table's scan with the
 * conditions on it (those on the primary key become a point read or a key range).
 */
import type * as A from '../parser/ast.js';
import { ExprBinder, hasSubquery, LayoutResolver, type ColInfo, type Level, type Mentions } from '../bind.js';
import { ROWID, TUPLE_KEY, type SqlColumn, type SqlTable } from '../catalog.js';
import { logical, type Expr } from '../expr.js';
import type { KeyRange } from '../ops/keys.js';
import { TableScan } from '../ops/scan.js';
import type { AccessSpec, ColumnPreds, IndexCandidate } from '../ops/access.js';
import type { IndexColumn } from '../ops/indexkeys.js';
import { selectivity, type PlanCatalog, type Rel } from './rel.js';

/** The rows a derived table or view is guessed to give when nothing better is known. */
const UNKNOWN_ROWS = 1000;

export abstract class ScanPlanner extends ExprBinder {
  /** Every table scan planned (EXPLAIN decides how each reads before it prints them). */
  readonly scans: TableScan[] = [];

  constructor(
    protected readonly catalog: PlanCatalog,
    /** Every name the statement mentions: the columns a table scan reads (a superset is fine). */
    protected readonly mentioned: Mentions,
  ) {
    super();
  }

  protected andAll(asts: readonly A.Expr[], level: Level): Expr {
    let e = this.expr(asts[0]!, level);
    for (let i = 1; i < asts.length; i++) e = logical('AND', e, this.expr(asts[i]!, level));
    return e;
  }

  /** A table scan with its conditions; those on the primary key give a point read or a range. */
  protected scan(
    t: SqlTable,
    alias: string,
    conds: A.Expr[],
    parent: Level | undefined,
    uses: Set<number>,
  ): Rel {
    const m = this.mentioned;
    const all = m.all || m.tables.has(alias.toLowerCase());
    const cols = t.columns.filter((c) => all || m.names.has(c.name.toLowerCase()));
    const layout: ColInfo[] = cols.map((c) => ({ table: alias, name: c.name, textual: c.type === 'string' }));
    const level: Level = { resolver: new LayoutResolver(layout), parent, parentUses: uses };
    let range: KeyRange | undefined;
    const keyName = t.keyColumn;
    const byName = new Map(t.columns.map((c) => [c.name, c]));
    const keyType = keyName === ROWID ? 'int64' : keyName === TUPLE_KEY ? 'bytes' : byName.get(keyName)!.type;
    let point = false;
    if (keyName !== ROWID && keyName !== TUPLE_KEY) {
      const isKey = (a: A.Expr): boolean =>
        a.kind === 'column' &&
        a.name.toLowerCase() === keyName.toLowerCase() &&
        (a.table === undefined || a.table.toLowerCase() === alias.toLowerCase());
      const constant = (a: A.Expr): Expr | undefined => {
        if (hasSubquery(a)) return undefined;
        const e = this.expr(a, level);
        return e.constant ? e : undefined;
      };
      const flip: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '=': '=' };
      for (const c of conds) {
        if (c.kind === 'between' && !c.not && isKey(c.arg)) {
          const lo = constant(c.low);
          const hi = constant(c.high);
          if (lo !== undefined && hi !== undefined && range?.eq === undefined) {
            range = {
              ...range,
              lower: { e: lo, inclusive: true },
              upper: { e: hi, inclusive: true },
              between: true,
            };
          }
          continue;
        }
        if (c.kind !== 'binary') continue;
        let op = flip[c.op];
        if (op === undefined) continue;
        let other: A.Expr;
        if (isKey(c.left)) {
          op = c.op;
          other = c.right;
        } else if (isKey(c.right)) other = c.left;
        else continue;
        const v = constant(other);
        if (v === undefined) continue;
        if (op === '=') {
          range = { eq: v };
          point = true;
        } else if (range?.eq === undefined) {
          if (op === '>' || op === '>=') range = { ...range, lower: { e: v, inclusive: op === '>=' } };
          else range = { ...range, upper: { e: v, inclusive: op === '<=' } };
        }
      }
    }
    const filter = conds.length > 0 ? this.andAll(conds, level) : undefined;
    const spec = this.accessSpec(t, alias, conds, level);
    const pointOnly = range?.eq !== undefined && conds.length === 1;
    // The filter is one BETWEEN on the key: for integer bounds the range alone decides.
    const rangeOnly =
      range?.lower !== undefined &&
      range.upper !== undefined &&
      conds.length === 1 &&
      conds[0]!.kind === 'between';
    const op = new TableScan(
      t.name,
      alias === t.name ? t.name : `${t.name} AS ${alias}`,
      cols.map((c) =>
        c.type === 'decimal'
          ? { name: c.name, type: c.type, scale: c.scale ?? 0 }
          : { name: c.name, type: c.type },
      ),
      keyName,
      keyType,
      range,
      filter,
      pointOnly,
      rangeOnly,
      keyType === 'decimal'
        ? { scale: byName.get(keyName)!.scale ?? 0, precision: byName.get(keyName)!.precision ?? 10 }
        : undefined,
      spec,
      keyName === ROWID || keyName === TUPLE_KEY ? undefined : keyName,
    );
    this.scans.push(op);
    const base = this.catalog.estimatedRows?.(t.name) ?? UNKNOWN_ROWS;
    const rows = point ? 1 : base * conds.reduce((s, c) => s * selectivity(c), 1);
    return { op, layout, display: layout.map((_, i) => i), aliases: [alias], rows };
  }

  /**
   * What a scan of `t` may read through its indexes: the conditions that compare one of its columns
   * with a constant (`=`, `<=>`, IN, ranges, BETWEEN, IS [NOT] NULL), by column, and the indexes
   * whose first column has one. Undefined when the table has no index.
   */
  private accessSpec(
    t: SqlTable,
    alias: string,
    conds: readonly A.Expr[],
    level: Level,
  ): AccessSpec | undefined {
    const indexes = this.catalog.indexes?.(t.name) ?? [];
    const byName = new Map(t.columns.map((c) => [c.name.toLowerCase(), c]));
    const columnOf = (a: A.Expr): SqlColumn | undefined =>
      a.kind === 'column' && (a.table === undefined || a.table.toLowerCase() === alias.toLowerCase())
        ? byName.get(a.name.toLowerCase())
        : undefined;
    const constant = (a: A.Expr): Expr | undefined => {
      if (hasSubquery(a)) return undefined;
      const e = this.expr(a, level);
      return e.constant ? e : undefined;
    };
    const preds = new Map<string, ColumnPreds>();
    const predsOf = (c: SqlColumn): ColumnPreds => {
      let p = preds.get(c.name);
      if (p === undefined) {
        p = {
          column: indexColumn(c),
          eqs: [],
          ins: [],
          isNull: false,
          notNull: false,
          lowers: [],
          uppers: [],
          texts: [],
        };
        preds.set(c.name, p);
      }
      return p;
    };
    const flip: Record<string, '=' | '<=>' | '<' | '<=' | '>' | '>='> = {
      '=': '=',
      '<=>': '<=>',
      '<': '>',
      '<=': '>=',
      '>': '<',
      '>=': '<=',
    };
    const condInfo: { column?: string; selectivity: number }[] = [];
    for (const c of conds) {
      const bound = this.bindCondition(c, columnOf, constant, flip, predsOf);
      condInfo.push({ ...(bound !== undefined ? { column: bound } : {}), selectivity: selectivity(c) });
      if (bound !== undefined) predsOf(byName.get(bound.toLowerCase())!).texts.push(this.expr(c, level).text);
    }
    if (indexes.length === 0 && preds.size === 0) return undefined;
    const candidates: IndexCandidate[] = indexes.map((ix) => ({
      name: ix.name,
      engine: ix.engine,
      unique: ix.unique,
      columns: ix.columns.map((n) => indexColumn(t.columns.find((c) => c.name === n)!)),
    }));
    return { preds, indexes: candidates, conds: condInfo };
  }

  /** A condition's comparison of one column with constants, added to its column's; the column's name. */
  private bindCondition(
    c: A.Expr,
    columnOf: (a: A.Expr) => SqlColumn | undefined,
    constant: (a: A.Expr) => Expr | undefined,
    flip: Record<string, '=' | '<=>' | '<' | '<=' | '>' | '>='>,
    predsOf: (c: SqlColumn) => ColumnPreds,
  ): string | undefined {
    switch (c.kind) {
      case 'binary': {
        const flipped = flip[c.op];
        if (flipped === undefined) return undefined;
        // The comparison as `col d constant`.
        let col = columnOf(c.left);
        let other = c.right;
        let d = c.op as '=' | '<=>' | '<' | '<=' | '>' | '>=';
        if (col === undefined) {
          col = columnOf(c.right);
          other = c.left;
          d = flipped;
        }
        if (col === undefined) return undefined;
        const v = constant(other);
        if (v === undefined) return undefined;
        const p = predsOf(col);
        if (d === '=' || d === '<=>') p.eqs.push({ e: v, nullSafe: d === '<=>' });
        else if (d === '>' || d === '>=') p.lowers.push({ e: v, op: d });
        else if (d === '<' || d === '<=') p.uppers.push({ e: v, op: d });
        return col.name;
      }
      case 'between': {
        const col = columnOf(c.arg);
        if (c.not || col === undefined) return undefined;
        const lo = constant(c.low);
        const hi = constant(c.high);
        if (lo === undefined || hi === undefined) return undefined;
        // A string column with a bound that is not a string compares all three as numbers.
        if (col.type === 'string' && [lo, hi].some((x) => x.literal !== null && x.textual !== true))
          return undefined;
        const p = predsOf(col);
        p.lowers.push({ e: lo, op: '>=' });
        p.uppers.push({ e: hi, op: '<=' });
        return col.name;
      }
      case 'inList': {
        const col = columnOf(c.arg);
        if (c.not || col === undefined) return undefined;
        const list: Expr[] = [];
        for (const x of c.list) {
          if (x.kind === 'row') return undefined;
          const v = constant(x);
          if (v === undefined) return undefined;
          list.push(v);
        }
        predsOf(col).ins.push(list);
        return col.name;
      }
      case 'isNull': {
        const col = columnOf(c.arg);
        if (col === undefined) return undefined;
        if (c.not) predsOf(col).notNull = true;
        else predsOf(col).isNull = true;
        return col.name;
      }
    }
    return undefined;
  }
}

/** A column as index bounds see it. */
function indexColumn(c: SqlColumn): IndexColumn {
  return {
    name: c.name,
    type: c.type,
    ...(c.scale !== undefined ? { scale: c.scale } : {}),
    ...(c.precision !== undefined ? { precision: c.precision } : {}),
  };
}
