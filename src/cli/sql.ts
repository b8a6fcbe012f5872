/**
 * `tidemark sql DIR -e "SQL"` and `tidemark shell DIR`: SQL from the command line, and an
 * interactive shell in the manner of the mysql and sqlite3 shells (statements end at `;`, over as
 * many lines as they need; history kept in ~/.tidemark_history; results as aligned tables with the
 * time taken; `.tables`, `.schema`, `.timer`, `.mode`, `.help`, `.quit`).
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { Database } from '../api/database.js';
import { open } from '../api/database.js';
import { TidemarkError } from '../errors.js';
import type { QueryResult } from '../txn/query.js';
import type { SqlSession } from '../sql/session.js';
import { allStatements, splitStatements as splitSql } from '../sql/parse.js';
import { dateText, Decimal } from '../sql/values.js';

export type OutputMode = 'table' | 'json' | 'tsv';

/** A value as the shell prints it. */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (v instanceof Date) return dateText(v);
  if (v instanceof Uint8Array) return `0x${Buffer.from(v).toString('hex').toUpperCase()}`;
  if (typeof v === 'number') return Number.isInteger(v) ? v.toFixed(0) : String(v);
  if (typeof v === 'string') return v;
  // Integers past 2^53 and DECIMALs: their exact text.
  if (typeof v === 'bigint' || v instanceof Decimal) return v.toString();
  return JSON.stringify(v) ?? '';
}

/** A result as an aligned table with a border, like the mysql shell's. */
export function formatTable(r: QueryResult): string {
  const cells = r.rows.map((row) => row.map(cellText));
  const widths = r.columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const numeric = r.columns.map(
    (_, i) =>
      r.rows.length > 0 &&
      r.rows.every(
        (row) =>
          typeof row[i] === 'number' ||
          typeof row[i] === 'bigint' ||
          row[i] instanceof Decimal ||
          row[i] === null,
      ),
  );
  const fmt = (row: string[], header = false) =>
    `| ${row.map((c, i) => (numeric[i] && !header ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  return [line, fmt(r.columns, true), line, ...cells.map((row) => fmt(row)), line].join('\n');
}

function formatJson(r: QueryResult): string {
  return r.rows
    .map((row) =>
      JSON.stringify(
        Object.fromEntries(
          r.columns.map((c, i) => {
            const v = row[i];
            // Exact numbers as their text (JSON numbers are doubles).
            const exact = typeof v === 'bigint' || v instanceof Decimal;
            return [c, v instanceof Date ? dateText(v) : v instanceof Uint8Array || exact ? cellText(v) : v];
          }),
        ),
      ),
    )
    .join('\n');
}

function formatTsv(r: QueryResult): string {
  return [r.columns.join('\t'), ...r.rows.map((row) => row.map(cellText).join('\t'))].join('\n');
}

/** What one statement's result prints as. */
export function formatResult(r: QueryResult, mode: OutputMode, ms: number | undefined): string {
  const time = ms === undefined ? '' : ` (${(ms / 1000).toFixed(3)} sec)`;
  if (r.columns.length === 0) {
    return mode === 'table'
      ? `Query OK, ${r.affectedRows} row${r.affectedRows === 1 ? '' : 's'} affected${time}`
      : '';
  }
  if (mode === 'json') return formatJson(r);
  if (mode === 'tsv') return formatTsv(r);
  const n = r.rows.length;
  const footer = `${n === 0 ? 'Empty set' : `${n} row${n === 1 ? '' : 's'} in set`}${time}`;
  return n === 0 ? footer : `${formatTable(r)}\n${footer}`;
}

export function errorText(e: unknown): string {
  if (e instanceof TidemarkError) return `ERROR ${e.code}: ${e.message}`;
  return `ERROR: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Split input into complete statements (ending at `;` outside quotes and comments) and the
 * incomplete rest.
 */
export function splitStatements(text: string): { statements: string[]; rest: string } {
  const { statements, rest } = splitSql(text);
  return { statements: statements.map((s) => s.text), rest };
}

/** `tidemark sql DIR -e SQL`: run the statements, print each result; exit 1 on the first error. */
export async function runSql(
  dir: string,
  sql: string,
  options: { mode?: OutputMode; db?: Database; out?: (s: string) => void } = {},
): Promise<number> {
  const out = options.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const db = options.db ?? (await open(dir));
  const session = db.session();
  let code = 0;
  try {
    for (const { text: s } of allStatements(sql)) {
      const started = performance.now();
      const r = await session.query(s);
      const text = formatResult(
        r,
        options.mode ?? 'table',
        options.mode === 'table' || options.mode === undefined ? performance.now() - started : undefined,
      );
      if (text.length > 0) out(text);
    }
  } catch (e) {
    process.stderr.write(`${errorText(e)}\n`);
    code = 1;
  } finally {
    session.end();
    if (options.db === undefined) await db.close();
  }
  return code;
}

const HELP = `Statements end with ';' and may span lines. Commands:
  .tables            list tables and views
  .schema [NAME]     show CREATE statements
  .mode table|json|tsv   how results print
  .timer on|off      show how long each statement took
  .help              this text
  .quit              leave (also Ctrl-D)`;

/** The interactive shell. Reads from stdin: with prompts and history on a terminal, silently from a pipe. */
export async function runShell(
  dir: string,
  options: {
    input?: NodeJS.ReadableStream;
    output?: NodeJS.WritableStream;
    db?: Database;
    historyFile?: string;
  } = {},
): Promise<number> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const tty = (input as { isTTY?: boolean }).isTTY === true;
  const print = (s: string) => output.write(`${s}\n`);
  const db = options.db ?? (await open(dir));
  const session: SqlSession = db.session();
  const historyFile = options.historyFile ?? path.join(homedir(), '.tidemark_history');
  let history: string[] = [];
  if (tty && existsSync(historyFile)) {
    try {
      history = readFileSync(historyFile, 'utf8').split('\n').filter(Boolean).reverse().slice(0, 1000);
    } catch {
      history = [];
    }
  }
  const rl = readline.createInterface({ input, output, terminal: tty, history, historySize: 1000 });
  let mode: OutputMode = 'table';
  let timer = true;
  let buffer = '';
  let failures = 0;
  const prompt = () => {
    if (tty) {
      rl.setPrompt(buffer.trim().length === 0 ? 'tidemark> ' : '      -> ');
      rl.prompt();
    }
  };
  if (tty) print(`tidemark shell on ${dir}. Statements end with ';'. .help for commands.`);

  const command = async (line: string): Promise<boolean> => {
    const [cmd, ...args] = line.trim().split(/\s+/);
    switch (cmd) {
      case '.quit':
      case '.exit':
        return false;
      case '.help':
        print(HELP);
        break;
      case '.tables': {
        const objs = await db._sql.listObjects();
        print(
          objs.length === 0
            ? '(no tables)'
            : objs.map((o) => (o.kind === 'view' ? `${o.name} (view)` : o.name)).join('\n'),
        );
        break;
      }
      case '.schema': {
        const names = args.length > 0 ? args : (await db._sql.listObjects()).map((o) => o.name);
        for (const n of names) {
          const s = await db._sql.createStatement(n);
          print(s === undefined ? `ERROR NOT_FOUND: no table or view ${n}` : `${s};`);
        }
        break;
      }
      case '.mode':
        if (args[0] === 'table' || args[0] === 'json' || args[0] === 'tsv') mode = args[0];
        else print('usage: .mode table|json|tsv');
        break;
      case '.timer':
        if (args[0] === 'on' || args[0] === 'off') timer = args[0] === 'on';
        else print('usage: .timer on|off');
        break;
      default:
        print(`unknown command ${cmd}: .help lists them`);
    }
    return true;
  };

  const run = async (statement: string): Promise<void> => {
    const started = performance.now();
    try {
      const r = await session.query(statement);
      const text = formatResult(r, mode, timer && mode === 'table' ? performance.now() - started : undefined);
      if (text.length > 0) print(text);
    } catch (e) {
      failures++;
      print(errorText(e));
    }
  };

  try {
    prompt();
    rl.on('SIGINT', () => {
      // Ctrl-C: drop the statement being typed, as the mysql shell does.
      buffer = '';
      output.write('\n');
      prompt();
    });
    for await (const line of rl) {
      if (buffer.trim().length === 0 && line.trim().startsWith('.')) {
        if (!(await command(line))) break;
        prompt();
        continue;
      }
      buffer += `${line}\n`;
      const { statements, rest } = splitStatements(buffer);
      buffer = rest;
      for (const s of statements) {
        if (tty) {
          try {
            appendFileSync(historyFile, `${s.replace(/\n/g, ' ')}\n`);
          } catch {
            // History is a convenience: a read-only home directory does not stop the shell.
          }
        }
        await run(s);
      }
      prompt();
    }
    if (buffer.trim().length > 0) await run(buffer.trim());
  } finally {
    rl.close();
    session.end();
    if (options.db === undefined) await db.close();
  }
  return tty || failures === 0 ? 0 : 1;
}
