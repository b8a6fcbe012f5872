/**
 * SQL text to syntax trees, with node-sql-parser's MySQL grammar (the choice and its reasons are in
 * docs/architecture.md), plus what that grammar lacks:
 * - `?` placeholders become numbered parameters (`:tm_p1`, `:tm_p2`, ... in text order);
 * - `SUM/AVG/MIN/MAX/TOTAL(DISTINCT x)`, which MySQL allows and the grammar does not, become
 *   `tm_distinct_sum(x)` and so on;
 * - a syntax error is a TidemarkError of code SYNTAX carrying the position in the caller's text.
 */
import parser from 'node-sql-parser';
import { TidemarkError } from '../errors.js';

export type Ast = any;

const { Parser } = parser;
const sqlParser = new Parser();
const OPTIONS = { database: 'MySQL' };

export const PARAM_PREFIX = 'tm_p';
export const DISTINCT_PREFIX = 'tm_distinct_';

interface Edit {
  /** Offset in the rewritten text where the edit ends. */
  at: number;
  /** Characters the rewritten text gained there (negative when it lost some). */
  delta: number;
}

export interface Rewritten {
  text: string;
  params: number;
  edits: Edit[];
}

const DISTINCT_AGG = /^(SUM|AVG|MIN|MAX|TOTAL)\s*\(\s*DISTINCT\b/i;

/**
 * If a string literal, quoted identifier or comment starts at `i`: the index just past it (-1 when
 * the text ends inside it). Otherwise undefined. Doubled quotes and backslash escapes stay inside.
 */
export function skipQuotedOrComment(sql: string, i: number): number | undefined {
  const c = sql[i];
  const n = sql.length;
  if (c === "'" || c === '"' || c === '`') {
    let j = i + 1;
    while (j < n) {
      if (sql[j] === '\\' && c !== '`') j += 2;
      else if (sql[j] === c) {
        if (sql[j + 1] === c) j += 2;
        else return j + 1;
      } else j++;
    }
    return -1;
  }
  if ((c === '-' && sql[i + 1] === '-') || c === '#') {
    const j = sql.indexOf('\n', i);
    return j < 0 ? n : j;
  }
  if (c === '/' && sql[i + 1] === '*') {
    const j = sql.indexOf('*/', i + 2);
    return j < 0 ? -1 : j + 2;
  }
  return undefined;
}

/**
 * Rewrite placeholders and DISTINCT aggregates, skipping string literals, quoted identifiers and
 * comments. Keeps what is needed to map positions back to the original text.
 */
export function rewrite(sql: string): Rewritten {
  let out = '';
  let params = 0;
  const edits: Edit[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const skip = skipQuotedOrComment(sql, i);
    if (skip !== undefined) {
      const end = skip < 0 ? n : skip;
      out += sql.slice(i, end);
      i = end;
    } else if (c === '?') {
      params++;
      const p = `:${PARAM_PREFIX}${params}`;
      out += p;
      edits.push({ at: out.length, delta: p.length - 1 });
      i++;
    } else if (/[A-Za-z_]/.test(c) && (i === 0 || !/[A-Za-z0-9_$]/.test(sql[i - 1]!))) {
      const m = DISTINCT_AGG.exec(sql.slice(i, i + 40));
      if (m !== null) {
        const r = `${DISTINCT_PREFIX}${m[1]!.toLowerCase()}(`;
        out += r;
        edits.push({ at: out.length, delta: r.length - m[0].length });
        i += m[0].length;
      } else {
        let j = i;
        while (j < n && /[A-Za-z0-9_$]/.test(sql[j]!)) j++;
        out += sql.slice(i, j);
        i = j;
      }
    } else {
      out += c;
      i++;
    }
  }
  return { text: out, params, edits };
}

/** The offset in the original text of an offset in the rewritten one. */
function originalOffset(r: Rewritten, offset: number): number {
  let o = offset;
  for (const e of r.edits) if (e.at <= offset) o -= e.delta;
  return Math.max(0, o);
}

export interface Parsed {
  statements: Ast[];
  params: number;
}

/** Parse one or more statements (separated by `;`). */
export function parseSql(sql: string): Parsed {
  if (typeof sql !== 'string') {
    throw new TidemarkError(
      'INVALID_ARGUMENT',
      `SQL must be a string, got ${sql === null ? 'null' : typeof sql}`,
    );
  }
  if (sql.length > 16 * 1024 * 1024) {
    throw new TidemarkError(
      'INVALID_ARGUMENT',
      `SQL text of ${sql.length} characters is over the 16 MiB limit`,
    );
  }
  const r = rewrite(sql);
  if (r.text.trim() === '' || /^[\s;]*$/.test(r.text)) {
    throw new TidemarkError('SYNTAX', 'empty statement', { details: { line: 1, column: 1, offset: 0 } });
  }
  // DROP INDEX without ON (SQLite's form, which the MySQL grammar lacks): the index is found by name.
  const dropIndex = /^\s*DROP\s+INDEX\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\s*;?\s*$/i.exec(r.text);
  if (dropIndex !== null) {
    return {
      statements: [{ type: 'drop', keyword: 'index', name: { column: dropIndex[1] }, table: null }],
      params: 0,
    };
  }
  let ast: Ast;
  try {
    ast = sqlParser.astify(r.text, OPTIONS);
  } catch (e) {
    throw syntaxError(sql, r, e);
  }
  const statements = (Array.isArray(ast) ? ast : [ast]).filter((s) => s !== null && s !== undefined);
  for (const s of statements) regroupLogical(s);
  return { statements, params: r.params };
}

/** Binding strength of MySQL's logical operators: OR (and `||`) < XOR < AND (and `&&`). */
const LOGICAL_RANK: Record<string, number> = { OR: 1, '||': 1, XOR: 2, AND: 3, '&&': 3 };

function logicalRank(node: Ast): number | undefined {
  if (node === null || typeof node !== 'object' || node.type !== 'binary_expr') return undefined;
  return LOGICAL_RANK[String(node.operator).toUpperCase()];
}

/**
 * node-sql-parser 5.4.0 groups unparenthesized chains of AND, OR and XOR by position, not by
 * precedence (`b = 1 OR c = 5 AND c = 6` came out as `(b = 1 OR c = 5) AND c = 6` in WHERE, and
 * `a AND b OR c` as `a AND (b OR c)` in a select list). Every such chain in the tree is regrouped
 * here as MySQL groups it: AND binds tighter than XOR, XOR tighter than OR, each left-associative.
 * A chain is the operands and operators of adjacent logical nodes the text did not parenthesize
 * (the parser marks those `parentheses: true`), in text order, which any grouping keeps.
 */
function regroupLogical(ast: Ast): Ast {
  if (ast === null || typeof ast !== 'object') return ast;
  if (Array.isArray(ast)) {
    for (let i = 0; i < ast.length; i++) ast[i] = regroupLogical(ast[i]);
    return ast;
  }
  if (logicalRank(ast) === undefined) {
    for (const k of Object.keys(ast)) {
      const v = ast[k];
      if (v !== null && typeof v === 'object') ast[k] = regroupLogical(v);
    }
    return ast;
  }
  const operands: Ast[] = [];
  const operators: Ast[] = [];
  const flatten = (node: Ast, root: boolean): void => {
    if (logicalRank(node) !== undefined && (root || node.parentheses !== true)) {
      flatten(node.left, false);
      operators.push(node);
      flatten(node.right, false);
    } else operands.push(regroupLogical(node));
  };
  flatten(ast, true);
  // Precedence climbing over the flat chain (operator i stands between operands i and i + 1);
  // the operator nodes are reused with new children.
  let next = 0;
  const climb = (minRank: number): Ast => {
    let left = operands[next]!;
    while (next < operators.length && logicalRank(operators[next])! >= minRank) {
      const op = operators[next]!;
      next++;
      const right = climb(logicalRank(op)! + 1);
      left = { ...op, left, right, parentheses: undefined };
    }
    return left;
  };
  const out = climb(1);
  if (ast.parentheses === true) out.parentheses = true;
  return out;
}

function syntaxError(sql: string, r: Rewritten, e: unknown): TidemarkError {
  const loc = (e as { location?: { start?: { offset?: number } } }).location?.start?.offset;
  return syntaxAt(sql, originalOffset(r, typeof loc === 'number' ? loc : 0), e);
}

/** A SYNTAX error at `offset` of `sql`: its line, column and the text there in the message. */
function syntaxAt(sql: string, offset: number, cause: unknown): TidemarkError {
  const before = sql.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  const near = sql.slice(offset, offset + 30).split('\n')[0]!;
  const message =
    near.length === 0
      ? `syntax error at line ${line}, column ${column}: unexpected end of input`
      : `syntax error at line ${line}, column ${column} near ${JSON.stringify(near)}`;
  return new TidemarkError('SYNTAX', message, { cause, details: { line, column, offset } });
}

/**
 * A SYNTAX error found in a statement that starts at `at` of the whole text `sql`, placed in the
 * whole text (other errors as they are).
 */
export function inWholeText(e: unknown, sql: string, at: number): unknown {
  const offset = (e as { code?: string; details?: { offset?: unknown } }).details?.offset;
  if ((e as { code?: string }).code !== 'SYNTAX' || typeof offset !== 'number') return e;
  return syntaxAt(sql, at + offset, (e as Error).cause ?? e);
}

/** A statement of a longer text: trimmed, and where it starts in the text. */
export interface StatementText {
  text: string;
  at: number;
}

/**
 * A text cut at the semicolons outside string literals, quoted identifiers and comments: the
 * statements that end with one (trimmed; empty ones left out) and the rest after the last, as it is
 * (all of an unfinished statement when a string or comment is still open at the end).
 */
export function splitStatements(sql: string): { statements: StatementText[]; rest: string; restAt: number } {
  const statements: StatementText[] = [];
  let start = 0;
  for (let i = 0; i < sql.length;) {
    const skip = skipQuotedOrComment(sql, i);
    if (skip !== undefined) {
      if (skip < 0) break;
      i = skip;
    } else {
      if (sql[i] === ';') {
        const s = statementAt(sql, start, i);
        if (s !== undefined) statements.push(s);
        start = i + 1;
      }
      i++;
    }
  }
  return { statements, rest: sql.slice(start), restAt: start };
}

/** Every statement of a text, the one without a closing semicolon at the end included. */
export function allStatements(sql: string): StatementText[] {
  const { statements, restAt } = splitStatements(sql);
  const last = statementAt(sql, restAt, sql.length);
  return last === undefined ? statements : [...statements, last];
}

function statementAt(sql: string, from: number, to: number): StatementText | undefined {
  const raw = sql.slice(from, to);
  const text = raw.trim();
  return text === '' ? undefined : { text, at: from + raw.length - raw.trimStart().length };
}
