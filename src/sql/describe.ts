/**
 * A statement's result set described before it runs: how many columns, their names (the plan's)
 * and the kind of value each holds, as a prepared statement's metadata needs them (MySQL's
 * COM_STMT_PREPARE answers with the column definitions of the result its executions will give).
 *
 * Nothing runs: a SELECT is planned against the catalog (the plan is kept for its executions) and
 * its select list typed from the catalog's column types and the rules by which the expressions
 * compute (integers stay integers, `/` gives a DECIMAL, aggregates as ops/aggregate.ts makes them).
 * Where the kind depends on the values (a parameter, a variable, a mix of kinds) it is left
 * undefined, and only the run tells.
 */
import type * as A from './parser/ast.js';
import type { SqlColumn } from './catalog.js';
import type { SqlMeta } from './meta.js';
import { planSelect, type Prepared } from './prepared.js';
import { STRING_FUNCTIONS, numberLiteral } from './bind.js';
import { Decimal, DIV_PRECISION_INCREMENT } from './values.js';
import { DECIMAL_MAX_SCALE, INT64_MAX } from '../util/decimal.js';

/** The kinds of values a result column holds (how the MySQL server describes them: values.ts there). */
export type ResultKind = 'int' | 'uint' | 'decimal' | 'double' | 'string' | 'bytes' | 'date';

export interface ResultColumn {
  name: string;
  /** Undefined: it depends on the values (a parameter, a variable, NULL, a mix of kinds). */
  kind?: ResultKind;
  /** DECIMAL: digits after the point (every value has at most these). */
  scale?: number;
  /** DECIMAL: digits in all, when the type says (a column, a CAST). */
  precision?: number;
}

export interface StatementShape {
  /** `?` placeholders. */
  params: number;
  /**
   * The columns of the result set the statement gives: empty for a statement without one (INSERT,
   * SET, DDL...); undefined where only a run tells (a SHOW form not described here).
   */
  columns: ResultColumn[] | undefined;
}

const shapes = new WeakMap<Prepared, StatementShape>();

/**
 * The shape of what the statement's last statement gives (what `session.query` returns), with the
 * catalog loaded (SqlMeta.load). Planning errors (unknown tables and columns) are thrown, as MySQL
 * refuses such a statement when it is prepared. Kept with the prepared statement.
 */
export function describeStatement(meta: SqlMeta, p: Prepared, database: string): StatementShape {
  let shape = shapes.get(p);
  if (shape === undefined) {
    const i = p.statements.length - 1;
    shape = { params: p.params, columns: i < 0 ? [] : statementColumns(meta, p, i, database) };
    shapes.set(p, shape);
  }
  return shape;
}

function statementColumns(
  meta: SqlMeta,
  p: Prepared,
  i: number,
  database: string,
): ResultColumn[] | undefined {
  const ast = p.statements[i]!;
  const text = (name: string): ResultColumn => ({ name, kind: 'string' });
  switch (ast.kind) {
    case 'select': {
      const names = planSelect(meta, p, i, ast.query).names;
      const typed = new Typer(meta).query(ast.query, undefined);
      // Typed as the planner names them; a select list read otherwise here: names only.
      if (typed === undefined || typed.length !== names.length) return names.map((name) => ({ name }));
      return names.map((name, c) => ({ ...kindOnly(typed[c]!.kind), name }));
    }
    case 'explain':
      return [text('plan')];
    case 'describe':
      return ['Field', 'Type', 'Null', 'Key', 'Default', 'Extra'].map(text);
    case 'show':
      return showColumns(ast, database);
  }
  return [];
}

/** The columns of the SHOW forms show.ts answers (undefined for others: their run tells). */
function showColumns(ast: A.ShowStatement, database: string): ResultColumn[] | undefined {
  const text = (name: string): ResultColumn => ({ name, kind: 'string' });
  if (ast.where !== undefined) return undefined;
  switch (ast.what) {
    case 'DATABASES':
      return [text('Database')];
    case 'TABLES': {
      const name = `Tables_in_${database}${ast.like !== undefined ? ` (${ast.like})` : ''}`;
      return ast.full ? [text(name), text('Table_type')] : [text(name)];
    }
    case 'COLUMNS':
      return ['Field', 'Type', 'Null', 'Key', 'Default', 'Extra'].map(text);
    case 'VARIABLES':
    case 'STATUS':
      return [text('Variable_name'), text('Value')];
    case 'WARNINGS':
    case 'ERRORS':
      return [text('Level'), { name: 'Code', kind: 'int' }, text('Message')];
    case 'COUNT WARNINGS':
    case 'COUNT ERRORS':
      return [
        { name: `@@session.${ast.what === 'COUNT WARNINGS' ? 'warning' : 'error'}_count`, kind: 'int' },
      ];
    case 'CREATE TABLE':
      return [text('Table'), text('Create Table')];
    case 'INDEX': {
      const int = (name: string): ResultColumn => ({ name, kind: 'int' });
      return [
        text('Table'),
        int('Non_unique'),
        text('Key_name'),
        int('Seq_in_index'),
        text('Column_name'),
        text('Collation'),
        int('Cardinality'),
        int('Sub_part'),
        text('Packed'),
        text('Null'),
        text('Index_type'),
        text('Comment'),
        text('Index_comment'),
        text('Ignored'),
      ];
    }
  }
  return undefined;
}

// ---- typing ----

/** A kind as typing carries it: 'null' for the NULL literal (no kind of its own), undefined unknown. */
type Kind = { kind: ResultKind; scale?: number; precision?: number } | 'null' | undefined;

interface Named {
  name: string;
  kind: Kind;
}

interface ScopeColumn extends Named {
  /** The alias of the table it belongs to. */
  table: string;
  /** The copy a USING or NATURAL join merged away: found only qualified, not shown by `*`. */
  merged?: boolean;
}

interface Scope {
  cols: ScopeColumn[];
  /** A FROM item could not be typed: a name not found here may be one of its columns. */
  opaque: boolean;
  parent: Scope | undefined;
}

const INT: Kind = { kind: 'int' };
const DOUBLE: Kind = { kind: 'double' };
const STRING: Kind = { kind: 'string' };

function kindOnly(k: Kind): Omit<ResultColumn, 'name'> {
  if (k === undefined || k === 'null') return {};
  return k;
}

function decimal(scale: number, precision?: number): Kind {
  if (scale > DECIMAL_MAX_SCALE) return undefined;
  return precision !== undefined ? { kind: 'decimal', scale, precision } : { kind: 'decimal', scale };
}

/** A table column's kind, from its MySQL type as the catalog keeps it. */
function columnKind(c: SqlColumn): Kind {
  switch (c.type) {
    case 'int32':
    case 'int64':
    case 'bool':
      return INT;
    case 'uint64':
      return { kind: 'uint' };
    case 'float64':
      return DOUBLE;
    case 'decimal':
      return decimal(c.scale ?? 0, c.precision);
    case 'string':
      return STRING;
    case 'bytes':
      return { kind: 'bytes' };
    case 'timestamp':
      return { kind: 'date' };
  }
  return undefined;
}

/** The kind of a column whose values are any of `ks` (CASE branches, UNION columns). */
function merge(ks: readonly Kind[]): Kind {
  const real = ks.filter((k) => k !== 'null');
  if (real.length === 0) return 'null';
  if (real.includes(undefined)) return undefined;
  const ts = real as Exclude<Kind, 'null' | undefined>[];
  // A string among them makes them all text (the binder converts the others).
  if (ts.some((k) => k.kind === 'string')) return STRING;
  const all = (...kinds: ResultKind[]) => ts.every((k) => kinds.includes(k.kind));
  if (all(ts[0]!.kind) && ts[0]!.kind !== 'decimal') return ts[0];
  // Integers are exact in a DECIMAL column and in a DOUBLE one (both hold them as they are).
  if (all('int', 'decimal')) return decimal(Math.max(...ts.map((k) => k.scale ?? 0)));
  if (all('int', 'double')) return DOUBLE;
  return undefined;
}

/** Typing of queries and expressions against the catalog. */
class Typer {
  private readonly ctes: Map<string, A.Cte>[] = [];
  /** Views being typed (a view reaching itself is the planner's error, not endless recursion here). */
  private readonly expanding = new Set<string>();

  constructor(private readonly meta: SqlMeta) {}

  /** A query's columns, or undefined when its select list cannot be listed. */
  query(q: A.Query, parent: Scope | undefined): Named[] | undefined {
    if (q.with !== undefined) this.ctes.push(new Map(q.with.ctes.map((c) => [c.name.toLowerCase(), c])));
    try {
      return this.term(q.body, parent);
    } finally {
      if (q.with !== undefined) this.ctes.pop();
    }
  }

  private term(t: A.QueryTerm, parent: Scope | undefined): Named[] | undefined {
    switch (t.kind) {
      case 'select':
        return this.select(t, parent);
      case 'nested':
        return this.query(t.query, parent);
      case 'values': {
        const scope: Scope = { cols: [], opaque: false, parent };
        return t.rows[0]?.map((_, c) => ({
          name: `column_${c}`,
          kind: merge(t.rows.map((r) => (r[c] !== undefined ? this.expr(r[c], scope) : undefined))),
        }));
      }
      case 'setop': {
        const l = this.term(t.left, parent);
        const r = this.term(t.right, parent);
        if (l === undefined || r === undefined || l.length !== r.length) return undefined;
        return l.map((c, i) => ({ name: c.name, kind: merge([c.kind, r[i]!.kind]) }));
      }
    }
  }

  private select(core: A.SelectCore, parent: Scope | undefined): Named[] | undefined {
    const scope = this.from(core.from, parent);
    const out: Named[] = [];
    for (const item of core.items) {
      if (item.kind === 'star') {
        if (scope.opaque) return undefined;
        const t = item.table?.toLowerCase();
        for (const c of scope.cols) {
          if (t === undefined ? c.merged !== true : c.table.toLowerCase() === t) out.push(c);
        }
        continue;
      }
      const e = item.expr;
      const name = e.kind === 'column' ? e.name : e.kind === 'string' ? e.value : item.text;
      out.push({ name: item.alias ?? name, kind: this.expr(e, scope) });
    }
    return out;
  }

  /** The columns of a FROM clause, in the order SELECT * shows them (as plan/from.ts orders them). */
  private from(refs: readonly A.TableRef[], parent: Scope | undefined): Scope {
    const scope: Scope = { cols: [], opaque: false, parent };
    for (const r of refs) scope.cols.push(...this.ref(r, scope, parent));
    return scope;
  }

  private ref(r: A.TableRef, scope: Scope, parent: Scope | undefined): ScopeColumn[] {
    const renamed = (alias: string, cols: Named[] | undefined, names?: string[]): ScopeColumn[] => {
      if (cols === undefined || (names !== undefined && names.length !== cols.length)) {
        scope.opaque = true;
        return [];
      }
      return cols.map((c, i) => ({ table: alias, name: names?.[i] ?? c.name, kind: c.kind }));
    };
    switch (r.kind) {
      case 'table': {
        const alias = r.alias ?? r.name;
        const lname = r.name.toLowerCase();
        const cte = r.schema === undefined ? this.cte(lname) : undefined;
        if (cte !== undefined) return renamed(alias, this.query(cte.query, undefined), cte.columns);
        const table = this.meta.table(r.name);
        if (table !== undefined)
          return table.columns.map((c) => ({ table: alias, name: c.name, kind: columnKind(c) }));
        const view = this.meta.view(r.name);
        if (view === undefined || this.expanding.has(lname)) return renamed(alias, undefined);
        this.expanding.add(lname);
        try {
          return renamed(alias, this.query(view.query, undefined), view.columns);
        } finally {
          this.expanding.delete(lname);
        }
      }
      case 'derived':
        return renamed(r.alias ?? '', this.query(r.query, r.lateral ? scope : parent), r.columns);
      case 'join': {
        const l = this.ref(r.left, scope, parent);
        const rr = this.ref(r.right, scope, parent);
        let using = (r.using ?? []).map((u) => u.toLowerCase());
        if (r.natural) {
          const right = new Set(rr.filter((c) => c.merged !== true).map((c) => c.name.toLowerCase()));
          using = l.filter((c) => c.merged !== true && right.has(c.name.toLowerCase())).map((c) => c.name);
          using = using.map((u) => u.toLowerCase());
        }
        if (using.length === 0) return [...l, ...rr];
        const merged = (c: ScopeColumn) => c.merged !== true && using.includes(c.name.toLowerCase());
        const [first, second] = r.type === 'right' ? [rr, l] : [l, rr];
        return [
          ...first.filter(merged),
          ...first.filter((c) => !merged(c)),
          ...second.filter((c) => !merged(c)),
          ...second.filter(merged).map((c) => ({ ...c, merged: true })),
        ];
      }
    }
  }

  private cte(name: string): A.Cte | undefined {
    for (let i = this.ctes.length - 1; i >= 0; i--) {
      const c = this.ctes[i]!.get(name);
      if (c !== undefined) return c;
    }
    return undefined;
  }

  private column(ref: A.ColumnRef, scope: Scope): Kind {
    const name = ref.name.toLowerCase();
    const table = ref.table?.toLowerCase();
    for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
      const found = s.cols.find(
        (c) =>
          c.name.toLowerCase() === name &&
          (table !== undefined ? c.table.toLowerCase() === table : c.merged !== true),
      );
      if (found !== undefined) return found.kind;
      if (s.opaque) return undefined;
    }
    return undefined;
  }

  expr(e: A.Expr, scope: Scope): Kind {
    switch (e.kind) {
      case 'column':
        return this.column(e, scope);
      case 'number': {
        if (e.form === 'float') return DOUBLE;
        let v;
        try {
          v = numberLiteral(e.text, e.form);
        } catch {
          return undefined;
        }
        return literalKind(v);
      }
      case 'string':
        return e.charset === 'binary' ? { kind: 'bytes' } : STRING;
      case 'hex':
        return { kind: 'bytes' };
      case 'bits':
      case 'bool':
        return INT;
      case 'null':
        return 'null';
      case 'typed':
        return e.type === 'TIME' ? undefined : { kind: 'date' };
      case 'unary':
        return this.unary(e, scope);
      case 'binary':
        return this.binary(e, scope);
      case 'quantified':
      case 'isNull':
      case 'isTruth':
      case 'between':
      case 'inList':
      case 'inQuery':
      case 'like':
      case 'regexp':
      case 'exists':
        return INT;
      case 'scalarQuery': {
        const cols = this.query(e.query, scope);
        return cols?.length === 1 ? cols[0]!.kind : undefined;
      }
      case 'case': {
        const branches = e.whens.map((w) => this.expr(w.then, scope));
        branches.push(e.else === undefined ? 'null' : this.expr(e.else, scope));
        return merge(branches);
      }
      case 'cast':
        return castKind(e.type, this.expr(e.arg, scope));
      case 'convert':
      case 'collate':
        return this.expr(e.arg, scope);
      case 'call':
        return this.call(e, scope);
      case 'aggregate':
        return this.aggregate(e, scope);
    }
    // Parameters, variables and the rest: the values tell.
    return undefined;
  }

  private unary(e: A.Unary, scope: Scope): Kind {
    if (e.op === 'NOT' || e.op === '!') return INT;
    if (e.op === '~') return { kind: 'uint' };
    if (e.op === '-' && e.arg.kind === 'number' && e.arg.form !== 'float') {
      try {
        return literalKind(numberLiteral(`-${e.arg.text}`, e.arg.form));
      } catch {
        return undefined;
      }
    }
    const k = this.expr(e.arg, scope);
    if (e.op === '+' || e.op === 'BINARY') return k;
    // Negation keeps integers, DECIMALs and DOUBLEs as they are.
    return k !== undefined && k !== 'null' && ['int', 'decimal', 'double'].includes(k.kind) ? k : undefined;
  }

  private binary(e: A.Binary, scope: Scope): Kind {
    switch (e.op) {
      case 'OR':
      case 'XOR':
      case 'AND':
      case '=':
      case '<=>':
      case '<>':
      case '<':
      case '<=':
      case '>':
      case '>=':
        return INT;
      case '|':
      case '&':
      case '^':
      case '<<':
      case '>>':
        return { kind: 'uint' };
    }
    return arithmeticKind(e.op, this.expr(e.left, scope), this.expr(e.right, scope));
  }

  private call(e: A.Call, scope: Scope): Kind {
    const name = e.name.toUpperCase();
    if (e.args.length === 0) {
      const fact = SESSION_FACTS[name];
      if (fact !== undefined) return fact;
    }
    if (STRING_FUNCTIONS.has(name) || (name === 'TRIM' && e.mode !== undefined)) return STRING;
    if (e.mode !== undefined) return undefined;
    if (INT_FUNCTIONS.has(name)) return INT;
    if (DOUBLE_FUNCTIONS.has(name)) return DOUBLE;
    const args = e.args.map((a) => this.expr(a, scope));
    switch (name) {
      case 'IF':
        return merge(args.slice(1, 3));
      case 'IFNULL':
      case 'COALESCE':
        return merge(args);
      case 'NULLIF':
        return merge(args.slice(0, 1));
    }
    return undefined;
  }

  private aggregate(e: A.Aggregate, scope: Scope): Kind {
    const name = e.name.toUpperCase();
    if (name === 'COUNT') return INT;
    if (name === 'GROUP_CONCAT') return STRING;
    if (name === 'TOTAL') return DOUBLE;
    if (e.args.length !== 1) return undefined;
    const k = this.expr(e.args[0]!, scope);
    if (name === 'MIN' || name === 'MAX') return k;
    if (k === undefined || k === 'null') return undefined;
    // Sums of exact values are exact (integers while within BIGINT: past it a DECIMAL, which the
    // values then tell), of anything else doubles.
    const exact = k.kind === 'int' ? 0 : k.kind === 'decimal' ? (k.scale ?? 0) : k.kind === 'uint' ? -2 : -1;
    if (exact === -2) return undefined;
    if (name === 'SUM') return exact < 0 ? DOUBLE : exact === 0 ? INT : decimal(exact);
    if (name === 'AVG')
      return exact < 0 ? DOUBLE : decimal(Math.min(exact + DIV_PRECISION_INCREMENT, DECIMAL_MAX_SCALE));
    return undefined;
  }
}

function literalKind(v: unknown): Kind {
  if (typeof v === 'bigint') return v > INT64_MAX ? { kind: 'uint' } : INT;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? INT : DOUBLE;
  if (v instanceof Decimal) return decimal(v.s);
  return undefined;
}

/** + - * / DIV % over the operands' kinds, as values.ts computes them. */
function arithmeticKind(op: string, l: Kind, r: Kind): Kind {
  if (l === undefined || r === undefined || l === 'null' || r === 'null') return undefined;
  // BIGINT UNSIGNED arithmetic, dates: the values tell.
  const numeric = (k: ResultKind) => k === 'int' || k === 'decimal' || k === 'double' || k === 'string';
  if (!numeric(l.kind) || !numeric(r.kind)) return undefined;
  // A double or a string (read as a double) makes the arithmetic doubles.
  if (l.kind === 'double' || l.kind === 'string' || r.kind === 'double' || r.kind === 'string') return DOUBLE;
  const sl = l.scale ?? 0;
  const sr = r.scale ?? 0;
  const dec = l.kind === 'decimal' || r.kind === 'decimal';
  switch (op) {
    case '+':
    case '-':
      return dec ? decimal(Math.max(sl, sr)) : INT;
    case '*':
      return dec ? decimal(Math.min(sl + sr, DECIMAL_MAX_SCALE)) : INT;
    case '/':
      return decimal(Math.min(sl + DIV_PRECISION_INCREMENT, DECIMAL_MAX_SCALE));
    case 'DIV':
      return INT;
    case '%':
      return dec ? decimal(Math.max(sl, sr)) : INT;
  }
  return undefined;
}

function castKind(t: A.CastType, arg: Kind): Kind {
  const name = t.name === 'SIGNED' && t.unsigned === true ? 'UNSIGNED' : t.name;
  switch (name) {
    case 'SIGNED':
    case 'INTEGER':
    case 'INT':
    case 'BIGINT':
      return INT;
    case 'UNSIGNED':
      return { kind: 'uint' };
    case 'DECIMAL':
    case 'NUMERIC': {
      const s = Math.min(t.scale ?? 0, DECIMAL_MAX_SCALE);
      return decimal(s, Math.max(t.length ?? 10, s, 1));
    }
    case 'DOUBLE':
    case 'FLOAT':
    case 'REAL':
      return DOUBLE;
    case 'CHAR':
    case 'VARCHAR':
    case 'TEXT':
    case 'NCHAR':
      return STRING;
    case 'BINARY':
    case 'BLOB':
      return { kind: 'bytes' };
    case 'DATE':
    case 'DATETIME':
    case 'TIMESTAMP':
      return { kind: 'date' };
  }
  return arg === 'null' ? 'null' : undefined;
}

/** Functions of no arguments that read the session (expr.ts sessionFact). */
const SESSION_FACTS: Record<string, Kind> = {
  DATABASE: STRING,
  SCHEMA: STRING,
  USER: STRING,
  CURRENT_USER: STRING,
  SESSION_USER: STRING,
  SYSTEM_USER: STRING,
  CONNECTION_ID: INT,
};

/** Functions whose value is an integer (or NULL) whatever their arguments (values.ts FUNCTIONS). */
const INT_FUNCTIONS = new Set([
  'LENGTH',
  'OCTET_LENGTH',
  'CHAR_LENGTH',
  'CHARACTER_LENGTH',
  'INSTR',
  'LOCATE',
  'ASCII',
  'ISNULL',
]);

/** Functions whose value is a double (or NULL) whatever their arguments. */
const DOUBLE_FUNCTIONS = new Set(['SQRT', 'POW', 'POWER', 'EXP', 'LN', 'LOG', 'LOG10', 'LOG2', 'PI']);
