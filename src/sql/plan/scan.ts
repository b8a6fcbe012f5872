/**
 * The planner's base: the catalog and the names the statement mentions, and a table's scan with the
 * conditions on it (those on the primary key become a point read or a key range).
 */
import type * as A from '../parser/ast.js';
import { ExprBinder, hasSubquery, LayoutResolver, type ColInfo, type Level, type Mentions } from '../bind.js';
import { ROWID, TUPLE_KEY, type SqlTable } from '../catalog.js';
import { logical, type Expr } from '../expr.js';
import type { KeyRange } from '../ops/keys.js';
import { TableScan } from '../ops/scan.js';
import { selectivity, type PlanCatalog, type Rel } from './rel.js';

/** The rows a derived table or view is guessed to give when nothing better is known. */
const UNKNOWN_ROWS = 1000;

export abstract class ScanPlanner extends ExprBinder {
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
    );
    const base = this.catalog.estimatedRows?.(t.name) ?? UNKNOWN_ROWS;
    const rows = point ? 1 : base * conds.reduce((s, c) => s * selectivity(c), 1);
    return { op, layout, display: layout.map((_, i) => i), aliases: [alias], rows };
  }
}
