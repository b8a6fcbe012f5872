/**
 * SQL text to syntax trees, with tidemark's own parser of MySQL's grammar (`parser/`; why one of
 * our own: docs/architecture.md): the statements of a text and how many `?` placeholders it has.
 * Also the splitting of a text at its semicolons, for the shell (which must know where an
 * unfinished statement begins before it can be parsed).
 */
import { TidemarkError } from '../errors.js';
import type { Statement } from './parser/ast.js';
import { LexError, syntaxAt, tokenize } from './parser/lexer.js';
import { StatementParser } from './parser/statements.js';

/** SQL texts longer than this are refused before they are read. */
const SQL_CHARS_MAX = 16 * 1024 * 1024;

export interface Parsed {
  statements: Statement[];
  /** `?` placeholders in the whole text (each statement's are numbered on from the one before). */
  params: number;
}

/** Parse one or more statements (separated by `;`). SYNTAX errors give the line and column. */
export function parseSql(sql: string): Parsed {
  if (typeof sql !== 'string') {
    throw new TidemarkError(
      'INVALID_ARGUMENT',
      `SQL must be a string, got ${sql === null ? 'null' : typeof sql}`,
    );
  }
  if (sql.length > SQL_CHARS_MAX) {
    throw new TidemarkError(
      'INVALID_ARGUMENT',
      `SQL text of ${sql.length} characters is over the 16 MiB limit`,
    );
  }
  let parser: StatementParser;
  try {
    const markers: number[] = [];
    parser = new StatementParser(sql, tokenize(sql, markers), markers);
  } catch (e) {
    if (e instanceof LexError) throw syntaxAt(sql, e.offset, e.message, e);
    throw e;
  }
  const statements = parser.statements();
  return { statements, params: parser.params };
}

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
