/**
 * What planning works with: the catalog it reads (PlanCatalog), a planned query (Planned), a planned
 * piece of FROM (Rel), and the guesses of how many rows a condition keeps.
 */
import type * as A from '../parser/ast.js';
import type { ColInfo } from '../bind.js';
import type { SqlTable, TableIndex } from '../catalog.js';
import type { Op } from '../ops/op.js';

/** What the planner needs from the engine: tables and views by name, and their sizes. */
export interface PlanCatalog {
  table(name: string): SqlTable | undefined;
  /** A view's query, or undefined. */
  view(name: string): { query: A.Query; columns?: string[] } | undefined;
  /** About how many rows a table holds (join ordering); unknown: a guess is made. */
  estimatedRows?(name: string): number;
  /** A table's secondary indexes (none when not given). */
  indexes?(table: string): TableIndex[];
}

export interface Planned {
  op: Op;
  names: string[];
  /** Which columns are string-typed (see Expr.textual). */
  textual: boolean[];
  /** About how many rows it gives (join ordering). */
  rows: number;
}

/**
 * A planned piece of FROM: its operator, where each column of it sits (`layout`), the order
 * `SELECT *` shows them in (`display`, indexes into layout) and the aliases it holds.
 */
export interface Rel {
  op: Op;
  layout: ColInfo[];
  display: number[];
  aliases: string[];
  rows: number;
}

/** The fraction of rows a condition on one table is guessed to keep. */
export function selectivity(c: A.Expr): number {
  switch (c.kind) {
    case 'binary':
      if (c.op === '=' || c.op === '<=>') return 0.1;
      if (c.op === 'OR') return Math.min(1, selectivity(c.left) + selectivity(c.right));
      if (c.op === 'AND') return selectivity(c.left) * selectivity(c.right);
      if (c.op === '<>') return 0.9;
      return 1 / 3;
    case 'between':
      return c.not ? 0.75 : 0.25;
    case 'inList':
      return c.not ? 0.9 : Math.min(0.5, 0.1 * c.list.length);
    case 'isNull':
      return c.not ? 0.9 : 0.1;
    case 'like':
      return 0.25;
    case 'unary':
      return c.op === 'NOT' || c.op === '!' ? 1 - selectivity(c.arg) : 0.5;
  }
  return 0.5;
}
