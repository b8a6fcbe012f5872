/**
 * Prepared statements: a SQL text parsed once and kept, with its plans, in a cache keyed by the text
 * (and the schema version it was planned against), so a repeated statement with `?` parameters
 * costs its execution only.
 */
import type * as A from './parser/ast.js';
import type { ColumnType } from '../schema/schema.js';
import type { Expr } from './expr.js';
import type { Op } from './ops/op.js';
import type { TableScan } from './ops/scan.js';
import type { KeyDigits } from './ops/keys.js';
import { parseSql } from './parse.js';
import { Planner } from './plan/planner.js';
import type { PlanCatalog } from './plan/rel.js';
import { mentionQuery, mentions } from './bind.js';

const PLAN_CACHE_ENTRIES = 1000;

export interface Prepared {
  version: number;
  statements: A.Statement[];
  params: number;
  /** Plans of SELECT statements by position. */
  plans: Map<number, PlannedStatement>;
  /** SELECTs that are one point read of plain columns, by position (null: not one). */
  points: Map<number, PointPlan | null>;
  /** The planned VALUES of short INSERTs with placeholders, by position (DEFAULT: undefined). */
  values: Map<number, (Expr | undefined)[][]>;
}

/** A statement's plan: its operators, output names, and the table scans in it (EXPLAIN). */
export interface PlannedStatement {
  op: Op;
  names: string[];
  scans?: readonly TableScan[];
}

/** A SELECT of plain columns by a key equality: run as one lookup, without a transaction. */
export interface PointPlan {
  table: string;
  keyType: ColumnType;
  keyDigits: KeyDigits | undefined;
  key: Expr;
  fetch: string[];
  types: ColumnType[];
  /** For each output column, its index in `fetch`. */
  out: number[];
  names: string[];
}

/** Prepared statements by their text, oldest first out. */
export class PlanCache {
  private readonly cache = new Map<string, Prepared>();

  /** Statements held. */
  get size(): number {
    return this.cache.size;
  }

  /** Drop every statement (the catalog changed). */
  clear(): void {
    this.cache.clear();
  }

  /** The statement of this text as parsed for this schema version (parsed now if not kept). */
  prepare(sql: string, version: number): Prepared {
    const hit = this.cache.get(sql);
    // Oldest first out past PLAN_CACHE_ENTRIES (a hit is not moved: that costs more than it saves).
    if (hit !== undefined && hit.version === version) return hit;
    const parsed = parseSql(sql);
    const p: Prepared = {
      version,
      statements: parsed.statements,
      params: parsed.params,
      plans: new Map(),
      points: new Map(),
      values: new Map(),
    };
    this.cache.set(sql, p);
    if (this.cache.size > PLAN_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    return p;
  }
}

/** The plan of the statement's SELECT at position i, made once and kept with the statement. */
export function planSelect(catalog: PlanCatalog, p: Prepared, i: number, query: A.Query): PlannedStatement {
  let plan = p.plans.get(i);
  if (plan === undefined) {
    const planner = plannerFor(catalog, query);
    const planned = planner.select(query);
    plan = { op: planned.op, names: planned.names, scans: planner.scans };
    p.plans.set(i, plan);
  }
  return plan;
}

/** A planner for one query, reading the columns the query mentions. */
export function plannerFor(catalog: PlanCatalog, query: A.Query): Planner {
  const m = mentions();
  mentionQuery(query, m);
  return new Planner(catalog, m);
}
