/**
 * Accounts of the MySQL server and the two password plugins it verifies. Only hashes are kept:
 * SHA1(SHA1(password)) for mysql_native_password and SHA256(SHA256(password)) for
 * caching_sha2_password's fast path; either is enough to check a client's scrambled answer, and
 * neither gives the password back.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { TidemarkError } from '../../errors.js';

export const NATIVE = 'mysql_native_password';
export const SHA2 = 'caching_sha2_password';

export interface Account {
  user: string;
  /** SHA1(SHA1(password)), hex; empty for an account without a password. */
  native: string;
  /** SHA256(SHA256(password)), hex; empty for an account without a password. */
  sha2: string;
}

const sha1 = (b: Uint8Array): Buffer => createHash('sha1').update(b).digest();
const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
}

export function accountFor(user: string, password: string): Account {
  if (password === '') return { user, native: '', sha2: '' };
  const p = Buffer.from(password, 'utf8');
  return { user, native: sha1(sha1(p)).toString('hex'), sha2: sha256(sha256(p)).toString('hex') };
}

/** 20 bytes of scramble, none of them 0 (clients read it NUL-terminated). */
export function newScramble(): Buffer {
  const b = randomBytes(20);
  for (let i = 0; i < b.length; i++) if (b[i] === 0) b[i] = 1 + (b[i]! % 255);
  return b;
}

/** Whether `answer` proves the account's password for this scramble under `plugin`. */
export function verify(account: Account, plugin: string, scramble: Buffer, answer: Buffer): boolean {
  if (account.native === '') return answer.length === 0;
  if (plugin === NATIVE) {
    // answer = SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))): recover SHA1(pw), hash it, compare.
    if (answer.length !== 20) return false;
    const stored = Buffer.from(account.native, 'hex');
    const stage1 = xor(answer, sha1(Buffer.concat([scramble, stored])));
    return timingSafeEqual(sha1(stage1), stored);
  }
  if (plugin === SHA2) {
    // answer = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble).
    if (answer.length !== 32) return false;
    const stored = Buffer.from(account.sha2, 'hex');
    const stage1 = xor(answer, sha256(Buffer.concat([stored, scramble])));
    return timingSafeEqual(sha256(stage1), stored);
  }
  return false;
}

/** Where a data directory keeps its server accounts (hashes only). */
export const ACCOUNTS_FILE = 'mysql-accounts.json';

export interface AccountSetup {
  accounts: Account[];
  /** A password generated at this start, to print once (undefined when none was). */
  generated?: { user: string; password: string };
}

/**
 * The server's accounts: the given user and password (options or TIDEMARK_USER/TIDEMARK_PASSWORD),
 * else those stored in DIR/mysql-accounts.json, else a generated password for `root`, stored as
 * hashes and returned once to be printed. An empty password needs `allowEmptyPassword`.
 */
export function setupAccounts(
  dir: string,
  given: { user?: string; password?: string; allowEmptyPassword?: boolean },
): AccountSetup {
  const file = path.join(dir, ACCOUNTS_FILE);
  const user = given.user ?? 'root';
  if (given.password !== undefined) {
    if (given.password === '' && given.allowEmptyPassword !== true) {
      throw new TidemarkError(
        'INVALID_ARGUMENT',
        'an account without a password needs --allow-empty-password (or give --password / TIDEMARK_PASSWORD)',
      );
    }
    const accounts = [accountFor(user, given.password)];
    store(file, accounts);
    return { accounts };
  }
  if (existsSync(file)) {
    let accounts: Account[];
    try {
      accounts = (JSON.parse(readFileSync(file, 'utf8')) as { accounts: Account[] }).accounts;
    } catch (e) {
      throw new TidemarkError('CORRUPTION', `${file} is not a valid accounts file`, { cause: e });
    }
    if (!Array.isArray(accounts) || accounts.some((a) => typeof a?.user !== 'string')) {
      throw new TidemarkError('CORRUPTION', `${file} is not a valid accounts file`);
    }
    if (given.user === undefined || accounts.some((a) => a.user === given.user)) return { accounts };
  }
  const password = randomBytes(12).toString('base64url');
  const accounts = [accountFor(user, password)];
  store(file, accounts);
  return { accounts, generated: { user, password } };
}

function store(file: string, accounts: Account[]): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify({ accounts }, null, 2), { mode: 0o600 });
  renameSync(tmp, file);
}
