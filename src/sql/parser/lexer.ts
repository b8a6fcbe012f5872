/**
 * MySQL's lexical rules: SQL text to tokens. Comments are skipped (`-- ` needs a space after it, as
 * in MySQL, so `1--1` is 1 minus -1; `#` to the end of the line; `/* ... *\/`), except MySQL's
 * versioned comments `/*!NNNNN ... *\/`, whose text is read as SQL when NNNNN is at most the
 * version this server reports (dump tools wrap statements in them). Strings in single or double
 * quotes have MySQL's backslash escapes and doubled quotes undone; identifiers in backticks keep
 * their text. Every token knows where it starts and ends in the text.
 */
import { TidemarkError } from '../../errors.js';

/** Token kinds. */
export const T = {
  /** An unquoted word: a keyword or an identifier (the parser decides). */
  Word: 0,
  /** A `backquoted` identifier. */
  QuotedId: 1,
  Str: 2,
  Num: 3,
  Hex: 4,
  Bits: 5,
  Param: 6,
  /** @name */
  UserVar: 7,
  /** @@name, @@session.name */
  SysVar: 8,
  /** Punctuation and operators. */
  Op: 9,
  End: 10,
} as const;
export type T = (typeof T)[keyof typeof T];

export interface Token {
  t: T;
  /** The text: a word as written, an identifier or string unquoted and unescaped, an operator. */
  v: string;
  /** Upper-cased word (Word tokens only: keywords are compared on it). */
  u: string;
  /** Where the token starts and ends in the text. */
  s: number;
  e: number;
  /** Str: an introducer (`_binary`, `_utf8mb4`, `N` for national strings). Num: its form. */
  x?: string;
}

/** The server version that `/*!NNNNN ...*\/` comments are compared with (8.0.36). */
const VERSION_NUMBER = 80036;

const OPS3 = new Set(['<=>']);
const OPS2 = new Set(['<=', '>=', '<>', '!=', '<<', '>>', '&&', '||', ':=', '->']);
const OPS1 = new Set([
  '(',
  ')',
  ',',
  ';',
  '.',
  '=',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '^',
  '&',
  '|',
  '~',
  '!',
  ':',
  '{',
  '}',
]);

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c >= 128;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}

/** A SYNTAX error at `offset`: the parser turns it into one placed at a line and column. */
export class LexError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/** Undo MySQL's escapes in a string's body (between its quotes). */
function unescape(body: string, quote: string): string {
  if (!body.includes('\\') && !body.includes(quote)) return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === quote) {
      // A doubled quote stands for one.
      out += quote;
      i++;
    } else if (c === '\\' && i + 1 < body.length) {
      const n = body[++i]!;
      switch (n) {
        case '0':
          out += '\0';
          break;
        case 'b':
          out += '\b';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'Z':
          out += '\x1a';
          break;
        case '%':
        case '_':
          // Kept with their backslash: LIKE patterns need to tell them from wildcards.
          out += `\\${n}`;
          break;
        default:
          out += n;
      }
    } else out += c;
  }
  return out;
}

/**
 * The tokens of `sql`, ending with an End token. A string, quoted identifier or comment left open
 * is a LexError. `markers` gets the start and end of each versioned comment's `/*!NNNNN` and `*\/`
 * read as SQL (they are no part of the text MySQL names a column by).
 */
export function tokenize(sql: string, markers?: number[]): Token[] {
  const out: Token[] = [];
  const n = sql.length;
  let i = 0;
  /** Ends of the versioned comments being read as SQL (their `*\/` closes them). */
  const versioned: number[] = [];
  const push = (t: T, v: string, s: number, e: number, x?: string): void => {
    const tok: Token = { t, v, u: t === T.Word ? v.toUpperCase() : '', s, e };
    if (x !== undefined) tok.x = x;
    out.push(tok);
  };
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const ch = sql[i]!;
    // Comments.
    if (
      ch === '#' ||
      (ch === '-' &&
        sql[i + 1] === '-' &&
        (i + 2 >= n || isSpace(sql.charCodeAt(i + 2)) || sql.charCodeAt(i + 2) < 32))
    ) {
      const j = sql.indexOf('\n', i);
      i = j < 0 ? n : j + 1;
      continue;
    }
    if (ch === '*' && sql[i + 1] === '/' && versioned.length > 0) {
      versioned.pop();
      markers?.push(i, i + 2);
      i += 2;
      continue;
    }
    if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new LexError(i, 'unterminated comment');
      if (sql[i + 2] === '!') {
        // /*!NNNNN text */: the text is SQL when this server is version NNNNN or newer.
        let j = i + 3;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        const digits = sql.slice(i + 3, j);
        if (digits === '' || Number(digits) <= VERSION_NUMBER) {
          versioned.push(end);
          markers?.push(i, j);
          i = j;
          continue;
        }
      }
      i = end + 2;
      continue;
    }
    const start = i;
    // Strings, with an optional introducer: N'x', _utf8mb4'x', X'hex', B'bits'.
    if (ch === "'" || ch === '"') {
      const [value, end] = readQuoted(sql, i, ch);
      push(T.Str, value, start, end);
      i = end;
      continue;
    }
    if (ch === '`') {
      let j = i + 1;
      let v = '';
      for (;;) {
        const k = sql.indexOf('`', j);
        if (k < 0) throw new LexError(i, 'unterminated quoted identifier');
        v += sql.slice(j, k);
        if (sql[k + 1] === '`') {
          v += '`';
          j = k + 2;
        } else {
          j = k + 1;
          break;
        }
      }
      push(T.QuotedId, v, start, j);
      i = j;
      continue;
    }
    if ((ch === 'x' || ch === 'X') && sql[i + 1] === "'") {
      const end = sql.indexOf("'", i + 2);
      if (end < 0) throw new LexError(i, 'unterminated hex literal');
      const hex = sql.slice(i + 2, end);
      if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) throw new LexError(i, 'bad hex literal');
      push(T.Hex, hex, start, end + 1);
      i = end + 1;
      continue;
    }
    if ((ch === 'b' || ch === 'B') && sql[i + 1] === "'") {
      const end = sql.indexOf("'", i + 2);
      if (end < 0) throw new LexError(i, 'unterminated bit literal');
      const bits = sql.slice(i + 2, end);
      if (!/^[01]*$/.test(bits)) throw new LexError(i, 'bad bit literal');
      push(T.Bits, bits, start, end + 1);
      i = end + 1;
      continue;
    }
    if ((ch === 'n' || ch === 'N') && sql[i + 1] === "'") {
      const [value, end] = readQuoted(sql, i + 1, "'");
      push(T.Str, value, start, end, 'N');
      i = end;
      continue;
    }
    // Numbers: 12, 1.5, .5, 1e3, 0x1F, 0b101.
    if (isDigit(c) || (ch === '.' && isDigit(sql.charCodeAt(i + 1)) && !afterName(out))) {
      if (ch === '0' && (sql[i + 1] === 'x' || sql[i + 1] === 'X') && /[0-9a-fA-F]/.test(sql[i + 2] ?? '')) {
        let j = i + 2;
        while (j < n && /[0-9a-fA-F]/.test(sql[j]!)) j++;
        if (j >= n || !isIdentPart(sql.charCodeAt(j))) {
          const hex = sql.slice(i + 2, j);
          push(T.Hex, hex.length % 2 === 1 ? `0${hex}` : hex, start, j);
          i = j;
          continue;
        }
      }
      if (ch === '0' && sql[i + 1] === 'b' && /[01]/.test(sql[i + 2] ?? '')) {
        let j = i + 2;
        while (j < n && (sql[j] === '0' || sql[j] === '1')) j++;
        if (j >= n || !isIdentPart(sql.charCodeAt(j))) {
          push(T.Bits, sql.slice(i + 2, j), start, j);
          i = j;
          continue;
        }
      }
      let j = i;
      let form = 'int';
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
      if (sql[j] === '.') {
        form = 'decimal';
        j++;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
      }
      if (
        (sql[j] === 'e' || sql[j] === 'E') &&
        (isDigit(sql.charCodeAt(j + 1)) ||
          ((sql[j + 1] === '+' || sql[j + 1] === '-') && isDigit(sql.charCodeAt(j + 2))))
      ) {
        form = 'float';
        j += 2;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
      }
      // Digits running into letters make an identifier in MySQL (`1abc`), not a number.
      if (j < n && isIdentStart(sql.charCodeAt(j)) && form === 'int') {
        while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
        push(T.Word, sql.slice(i, j), start, j);
        i = j;
        continue;
      }
      push(T.Num, sql.slice(i, j), start, j, form);
      i = j;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      const word = sql.slice(i, j);
      // A charset introducer right before a string: _utf8mb4'x', _binary'x'.
      if (word[0] === '_' && (sql[j] === "'" || sql[j] === '"')) {
        const [value, end] = readQuoted(sql, j, sql[j]!);
        push(T.Str, value, start, end, word.slice(1).toLowerCase());
        i = end;
        continue;
      }
      push(T.Word, word, start, j);
      i = j;
      continue;
    }
    if (ch === '?') {
      push(T.Param, '?', start, i + 1);
      i++;
      continue;
    }
    if (ch === '@') {
      if (sql[i + 1] === '@') {
        // @@name, @@session.name, @@global.name.
        let j = i + 2;
        while (j < n && (isIdentPart(sql.charCodeAt(j)) || sql[j] === '.')) j++;
        const name = sql.slice(i + 2, j);
        if (name === '') throw new LexError(i, 'a system variable needs a name');
        push(T.SysVar, name, start, j);
        i = j;
        continue;
      }
      const q = sql[i + 1];
      if (q === "'" || q === '"' || q === '`') {
        const [value, end] = q === '`' ? readBacktick(sql, i + 1) : readQuoted(sql, i + 1, q);
        push(T.UserVar, value, start, end);
        i = end;
        continue;
      }
      let j = i + 1;
      while (j < n && (isIdentPart(sql.charCodeAt(j)) || sql[j] === '.')) j++;
      if (j === i + 1) throw new LexError(i, 'a user variable needs a name');
      push(T.UserVar, sql.slice(i + 1, j), start, j);
      i = j;
      continue;
    }
    const three = sql.slice(i, i + 3);
    if (OPS3.has(three)) {
      push(T.Op, three, start, i + 3);
      i += 3;
      continue;
    }
    const two = sql.slice(i, i + 2);
    if (OPS2.has(two)) {
      push(T.Op, two, start, i + 2);
      i += 2;
      continue;
    }
    if (OPS1.has(ch)) {
      push(T.Op, ch, start, i + 1);
      i++;
      continue;
    }
    throw new LexError(i, `unexpected character ${JSON.stringify(ch)}`);
  }
  if (versioned.length > 0) throw new LexError(n, 'unterminated comment');
  out.push({ t: T.End, v: '', u: '', s: n, e: n });
  return out;
}

/** Whether the last token is a name (so a following `.5` is `. 5`, a qualifier, not a number). */
function afterName(out: Token[]): boolean {
  const last = out[out.length - 1];
  return (
    last !== undefined && (last.t === T.Word || last.t === T.QuotedId || (last.t === T.Op && last.v === ')'))
  );
}

/** A quoted string starting at `i`: its unescaped value and the offset just past it. */
function readQuoted(sql: string, i: number, quote: string): [string, number] {
  let j = i + 1;
  const n = sql.length;
  while (j < n) {
    const c = sql[j];
    if (c === '\\') j += 2;
    else if (c === quote) {
      if (sql[j + 1] === quote) j += 2;
      else return [unescape(sql.slice(i + 1, j), quote), j + 1];
    } else j++;
  }
  throw new LexError(i, 'unterminated string');
}

function readBacktick(sql: string, i: number): [string, number] {
  const k = sql.indexOf('`', i + 1);
  if (k < 0) throw new LexError(i, 'unterminated quoted identifier');
  return [sql.slice(i + 1, k), k + 1];
}

/** A SYNTAX error at `offset` of `sql`: its line, column and the text there in the message. */
export function syntaxAt(sql: string, offset: number, detail?: string, cause?: unknown): TidemarkError {
  const before = sql.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  const near = sql.slice(offset, offset + 30).split('\n')[0]!;
  const where =
    near.length === 0
      ? `syntax error at line ${line}, column ${column}: unexpected end of input`
      : `syntax error at line ${line}, column ${column} near ${JSON.stringify(near)}`;
  return new TidemarkError('SYNTAX', detail !== undefined ? `${where}: ${detail}` : where, {
    ...(cause !== undefined ? { cause } : {}),
    details: { line, column, offset, mysqlErrno: 1064 },
  });
}
