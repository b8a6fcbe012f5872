/**
 * The parser's footing: a cursor over the tokens of one text, with the checks every grammar rule
 * uses (accept a keyword, expect a symbol, read a name) and errors that point at the text.
 */
import { TidemarkError } from '../../errors.js';
import { syntaxAt, T, type Token } from './lexer.js';

/**
 * MySQL's reserved words that matter to this grammar: they are never read as a name unless quoted
 * (a column `order` must be written `` `order` ``), so that `SELECT a b FROM t` can tell an alias
 * from a clause. Words MySQL keeps unreserved (DATE, TEXT, STATUS, VALUE, ...) stay usable as names.
 */
export const RESERVED = new Set([
  'ADD',
  'ALL',
  'ALTER',
  'ANALYZE',
  'AND',
  'AS',
  'ASC',
  'BETWEEN',
  'BINARY',
  'BOTH',
  'BY',
  'CALL',
  'CASCADE',
  'CASE',
  'CHANGE',
  'CHECK',
  'COLLATE',
  'COLUMN',
  'CONSTRAINT',
  'CONVERT',
  'CREATE',
  'CROSS',
  'CURRENT_DATE',
  'CURRENT_TIME',
  'CURRENT_TIMESTAMP',
  'CURRENT_USER',
  'DATABASE',
  'DATABASES',
  'DEFAULT',
  'DELETE',
  'DESC',
  'DESCRIBE',
  'DISTINCT',
  'DISTINCTROW',
  'DIV',
  'DROP',
  'DUAL',
  'ELSE',
  'EXCEPT',
  'EXISTS',
  'EXPLAIN',
  'FALSE',
  'FETCH',
  'FOR',
  'FORCE',
  'FOREIGN',
  'FROM',
  'FULLTEXT',
  'GRANT',
  'GROUP',
  'HAVING',
  'IF',
  'IGNORE',
  'IN',
  'INDEX',
  'INNER',
  'INSERT',
  'INTERSECT',
  'INTERVAL',
  'INTO',
  'IS',
  'JOIN',
  'KEY',
  'KEYS',
  'KILL',
  'LATERAL',
  'LEADING',
  'LEFT',
  'LIKE',
  'LIMIT',
  'LOCALTIME',
  'LOCALTIMESTAMP',
  'LOCK',
  'MATCH',
  'MOD',
  'NATURAL',
  'NOT',
  'NULL',
  'ON',
  'OPTIMIZE',
  'OR',
  'ORDER',
  'OUTER',
  'PRIMARY',
  'REFERENCES',
  'REGEXP',
  'RENAME',
  'REPLACE',
  'RIGHT',
  'RLIKE',
  'SCHEMA',
  'SELECT',
  'SET',
  'SHOW',
  'STRAIGHT_JOIN',
  'TABLE',
  'THEN',
  'TO',
  'TRAILING',
  'TRUE',
  'UNION',
  'UNIQUE',
  'UNLOCK',
  'UPDATE',
  'USE',
  'USING',
  'UTC_DATE',
  'UTC_TIME',
  'UTC_TIMESTAMP',
  'VALUES',
  'WHEN',
  'WHERE',
  'WINDOW',
  'WITH',
  'XOR',
]);

/** What MySQL has and tidemark does not run: INVALID_ARGUMENT (MySQL's errno 1235), not SYNTAX. */
export function unsupportedSyntax(what: string): TidemarkError {
  return new TidemarkError('INVALID_ARGUMENT', `${what} is not supported`, {
    details: { unsupported: what, mysqlErrno: 1235 },
  });
}

export class Cursor {
  protected pos = 0;
  /** `?` placeholders seen so far (their indexes follow text order). */
  params = 0;

  constructor(
    readonly sql: string,
    protected readonly toks: Token[],
    /** Versioned comments' markers (start, end pairs, in order): see tokenize. */
    private readonly markers: readonly number[] = [],
  ) {}

  get tok(): Token {
    return this.toks[this.pos]!;
  }

  peek(k = 1): Token {
    return this.toks[Math.min(this.pos + k, this.toks.length - 1)]!;
  }

  next(): Token {
    const t = this.toks[this.pos]!;
    if (t.t !== T.End) this.pos++;
    return t;
  }

  get atEnd(): boolean {
    return this.tok.t === T.End;
  }

  /** Whether the current token is the keyword `w` (upper case). */
  is(w: string): boolean {
    return this.tok.t === T.Word && this.tok.u === w;
  }

  /** Whether the token `k` ahead is the keyword `w`. */
  isAt(k: number, w: string): boolean {
    const t = this.peek(k);
    return t.t === T.Word && t.u === w;
  }

  isOp(o: string): boolean {
    return this.tok.t === T.Op && this.tok.v === o;
  }

  /** Take the keyword `w` if it is next. */
  accept(w: string): boolean {
    if (!this.is(w)) return false;
    this.pos++;
    return true;
  }

  /** Take the keywords `ws` if they are all next, in order. */
  acceptSeq(...ws: string[]): boolean {
    for (let k = 0; k < ws.length; k++) if (!this.isAt(k, ws[k]!)) return false;
    this.pos += ws.length;
    return true;
  }

  acceptOp(o: string): boolean {
    if (!this.isOp(o)) return false;
    this.pos++;
    return true;
  }

  expect(w: string): Token {
    if (!this.is(w)) throw this.error(`expected ${w}`);
    return this.next();
  }

  expectOp(o: string): Token {
    if (!this.isOp(o)) throw this.error(`expected ${JSON.stringify(o)}`);
    return this.next();
  }

  /** One of the keywords `ws` (upper case), taken; or undefined. */
  oneOf(...ws: string[]): string | undefined {
    if (this.tok.t !== T.Word || !ws.includes(this.tok.u)) return undefined;
    return this.next().u;
  }

  /** Whether the current token can be read as a name (a quoted one, or an unreserved word). */
  get atName(): boolean {
    return this.tok.t === T.QuotedId || (this.tok.t === T.Word && !RESERVED.has(this.tok.u));
  }

  /** A name: an unreserved word or a quoted identifier (`anyWord`: reserved words too). */
  name(what = 'a name', anyWord = false): string {
    const t = this.tok;
    if (t.t === T.QuotedId || (t.t === T.Word && (anyWord || !RESERVED.has(t.u)))) {
      this.pos++;
      return t.v;
    }
    throw this.error(`expected ${what}`);
  }

  /** A name, or a string literal where MySQL allows one (aliases, charsets). */
  nameOrString(what = 'a name'): string {
    if (this.tok.t === T.Str) return this.next().v;
    return this.name(what);
  }

  /** `name (, name)*` inside parentheses. */
  nameList(what = 'a column name'): string[] {
    this.expectOp('(');
    const out = [this.name(what)];
    while (this.acceptOp(',')) out.push(this.name(what));
    this.expectOp(')');
    return out;
  }

  /** A SYNTAX error at the current token (or at `at`). */
  error(detail?: string, at = this.tok.s): TidemarkError {
    return syntaxAt(this.sql, at, detail);
  }

  /** The text between two offsets, as written, without versioned comments' markers (as MySQL). */
  text(from: number, to: number): string {
    let out = '';
    let at = from;
    for (let k = 0; k < this.markers.length; k += 2) {
      const s = this.markers[k]!;
      const e = this.markers[k + 1]!;
      if (e <= at || s >= to) continue;
      out += this.sql.slice(at, s);
      at = e;
    }
    return out + this.sql.slice(at, Math.max(at, to));
  }

  /** Where the previous token ended. */
  get lastEnd(): number {
    return this.pos === 0 ? 0 : this.toks[this.pos - 1]!.e;
  }
}
