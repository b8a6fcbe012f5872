/** Aggregates and GROUP BY: how names resolve over a hash aggregation's output. */
import type * as A from '../parser/ast.js';
import { TidemarkError } from '../../errors.js';
import {
  hasAggregate,
  hasSubquery,
  unsupported,
  type ExprBinder,
  type Level,
  type Resolver,
} from '../bind.js';
import { columnRef, markText, rowwise, type Expr } from '../expr.js';
import type { Op } from '../ops/op.js';
import { TableScan } from '../ops/scan.js';
import { Filter } from '../ops/filter.js';
import { Aggregate, type AggName, type AggSpec } from '../ops/aggregate.js';
import { hashKey, toText } from '../values.js';

const AGG_NAMES = new Set(['COUNT', 'SUM', 'AVG', 'MIN', 'MAX', 'GROUP_CONCAT', 'TOTAL']);

/**
 * Name resolution after grouping: GROUP BY expressions and aggregates become columns of the
 * aggregation's output; a column that is neither takes its value from any row of the group (as
 * MySQL does without ONLY_FULL_GROUP_BY).
 */
export class AggregateBuilder implements Resolver {
  readonly groups: Expr[];
  private readonly groupKeys: string[];
  readonly aggs: AggSpec[] = [];
  private readonly aggKeys = new Map<string, number>();
  private readonly resolvingAliases = new Set<string>();

  constructor(
    private readonly planner: ExprBinder,
    private readonly input: Level,
    groupAsts: A.Expr[],
    private readonly items: { ast: A.Expr; name: string }[],
  ) {
    this.groups = groupAsts.map((g) => planner.expr(g, input));
    this.groupKeys = this.groups.map((g) => g.text);
  }

  textual(i: number): boolean {
    if (i < this.groups.length) return this.groups[i]!.textual === true;
    const a = this.aggs[i - this.groups.length];
    if (a === undefined) return false;
    if (a.name === 'GROUP_CONCAT') return true;
    return (a.name === 'MIN' || a.name === 'MAX' || a.name === 'FIRST') && a.arg?.textual === true;
  }

  resolve(table: string | undefined, name: string): number | undefined {
    const i = this.input.resolver.resolve(table, name);
    if (i === undefined) return undefined;
    const g = this.groups.findIndex((e) => e.column === i);
    if (g >= 0) return g;
    const c = columnRef(i, `${table !== undefined ? `${table}.` : ''}${name}`);
    return this.addAgg(
      'FIRST',
      this.input.resolver.textual?.(i) === true ? markText(c) : c,
      false,
      undefined,
    );
  }

  intercept(ast: A.Expr, level: Level): Expr | undefined {
    if (ast.kind === 'column' && ast.table === undefined) {
      // HAVING and ORDER BY may name a select item by its alias (when no input column has the name).
      const name = ast.name;
      if (this.input.resolver.resolve(undefined, name) === undefined) {
        const key = name.toLowerCase();
        const item = this.items.find((it) => it.name.toLowerCase() === key);
        if (
          item !== undefined &&
          !this.resolvingAliases.has(key) &&
          !(item.ast.kind === 'column' && item.ast.name.toLowerCase() === key)
        ) {
          // Aliases naming each other (x AS y, y AS x) end here: unknown, not endless.
          this.resolvingAliases.add(key);
          try {
            return this.planner.expr(item.ast, level);
          } finally {
            this.resolvingAliases.delete(key);
          }
        }
      }
      return undefined;
    }
    if (ast.kind === 'aggregate') {
      const name = ast.name.toUpperCase();
      if (!AGG_NAMES.has(name)) throw unsupported(`the aggregate ${name}`);
      if (ast.orderBy !== undefined) throw unsupported('GROUP_CONCAT(... ORDER BY ...)');
      for (const a of ast.args) {
        if (hasAggregate(a)) {
          throw new TidemarkError('INVALID_ARGUMENT', 'aggregates cannot be nested', {
            details: { mysqlErrno: 1111 },
          });
        }
      }
      const args = ast.args.map((a) => this.planner.expr(a, this.input));
      let arg: Expr | undefined;
      if (args.length === 1) arg = args[0];
      else if (args.length > 1) {
        if (name !== 'COUNT' && name !== 'GROUP_CONCAT') throw unsupported(`${name} of several arguments`);
        if (name === 'COUNT' && !ast.distinct)
          throw unsupported('COUNT of several arguments without DISTINCT');
        arg = tuple(args, name === 'GROUP_CONCAT');
      }
      const text = `${name}(${ast.distinct ? 'DISTINCT ' : ''}${arg === undefined ? '*' : arg.text})`;
      const i = this.addAgg(name as AggName, arg, ast.distinct, ast.separator, text);
      return this.textual(i) ? markText(columnRef(i, text)) : columnRef(i, text);
    }
    if (this.groups.length > 0 && ast.kind !== 'column' && ast.kind !== 'number') {
      // A GROUP BY expression (matched by its text once bound at the input level).
      let text: string | undefined;
      try {
        if (!hasAggregate(ast) && !hasSubquery(ast)) text = this.planner.expr(ast, this.input).text;
      } catch (e) {
        // Not an expression of the input's columns: not a GROUP BY expression either.
        if (!(e instanceof TidemarkError)) throw e;
        text = undefined;
      }
      if (text !== undefined) {
        const g = this.groupKeys.indexOf(text);
        if (g >= 0) return this.textual(g) ? markText(columnRef(g, text)) : columnRef(g, text);
      }
    }
    return undefined;
  }

  private addAgg(
    name: AggName,
    arg: Expr | undefined,
    distinct: boolean,
    separator: string | undefined,
    text?: string,
  ): number {
    const t = text ?? `${name}(${arg!.text})`;
    const key = `${name}|${distinct}|${separator ?? ''}|${t}`;
    const have = this.aggKeys.get(key);
    if (have !== undefined) return have;
    this.aggs.push({ name, arg, distinct, ...(separator !== undefined ? { separator } : {}), text: t });
    const i = this.groups.length + this.aggs.length - 1;
    this.aggKeys.set(key, i);
    return i;
  }

  build(input: Op): Op {
    const agg = new Aggregate(input, this.groups, this.aggs, [
      ...this.groups.map((g) => g.text),
      ...this.aggs.map((a) => a.text),
    ]);
    // A filter right below may hand over its rows as a selection instead of gathering them.
    if ((input instanceof TableScan || input instanceof Filter) && agg.takesSelection)
      input.yieldSelection = true;
    return agg;
  }
}

/**
 * Several aggregate arguments as one value: NULL when any is NULL (COUNT(DISTINCT a, b) and
 * GROUP_CONCAT(a, b) skip such rows); otherwise a key telling the tuples apart (COUNT) or the
 * values concatenated (GROUP_CONCAT).
 */
function tuple(args: Expr[], concat: boolean): Expr {
  return rowwise(
    args.map((a) => a.text).join(', '),
    args,
    (vals) => {
      if (vals.some((v) => v === null)) return null;
      return concat ? vals.map((v) => toText(v)).join('') : vals.map((v) => hashKey(v)).join('\u0001');
    },
    true,
  );
}
