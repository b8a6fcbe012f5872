import type { Database } from '../../src/index.js';
import { TidemarkError } from '../../src/index.js';
import { Rng } from '../../src/util/random.js';
import { checkIndexes } from '../helpers/index_check.js';

/**
 * The torture workload, shared by the kill -9 child and the in-process simulated crashes: bank
 * transfers (the total never changes), two-row writes and deletes whose rows must always agree
 * (atomicity), and tables created and dropped. Every operation is announced before it starts
 * ("try") and acknowledged when its commit resolved ("ack"); `TortureModel` checks a recovered
 * database against that history.
 */
export const BANK = { columns: { id: 'int64', balance: 'float64' }, primaryKey: 'id' } as const;
export const KV = {
  columns: { k: 'int64', seq: 'int32', w: 'int32', v: 'string' },
  primaryKey: 'k',
  indexes: [
    { name: 'kv_w_seq', columns: ['w', 'seq'] },
    { name: 'kv_v', columns: ['v'] },
  ],
};
/** Rows that claim emails: a UNIQUE index keeps two rows from holding the same one. */
export const CLAIMS = {
  columns: { id: 'int64', email: { type: 'string', nullable: true }, w: 'int32' },
  primaryKey: 'id',
  indexes: [{ name: 'claims_email', columns: ['email'], unique: true }],
};
const EMAILS = 8;
const CLAIM_IDS = 24;
export const ACCOUNTS = 16;
export const INITIAL = 1000;
/** Each write touches key k and its partner k + PARTNER, in one transaction. */
export const PARTNER = 100_000;
const PAIRS = 20;

export type Event =
  | { e: 'try' | 'ack'; op: 'kv'; k: number; seq: number; del: boolean }
  | { e: 'try' | 'ack'; op: 'ddl'; name: string; create: boolean }
  /** 'abort': it certainly did not commit (every attempt met a conflict). */
  | { e: 'try' | 'ack' | 'abort'; op: 'transfer'; id: string; a: number; b: number; amount: number };

/** Create the schema (bank accounts funded) if it is not there. */
export async function ensureSchema(db: Database): Promise<void> {
  if (!db.tables().includes('kv')) await db.createTable('kv', KV as never);
  if (!db.tables().includes('claims')) await db.createTable('claims', CLAIMS as never);
  if (!db.tables().includes('bank')) {
    await db.createTable('bank', BANK);
    await db.insert(
      'bank',
      Array.from({ length: ACCOUNTS }, (_, id) => ({ id, balance: INITIAL })),
    );
  }
}

const retryable = (e: unknown) =>
  e instanceof TidemarkError && (e.code === 'CONFLICT' || e.code === 'DUPLICATE_KEY');

export class Worker {
  private seq: number;
  private ddl = 0;
  private readonly tables: string[] = [];
  constructor(
    private readonly db: Database,
    readonly w: number,
    private readonly rng: Rng,
    seqBase: number,
    private readonly emit: (ev: Event) => void,
    /** A prefix that keeps table names unique across runs. */
    private readonly tag: string,
  ) {
    this.seq = seqBase;
  }

  /** What the next step will do (drawn now; `step` does it). */
  get next(): string {
    this.pick ??= this.rng.next();
    return this.pick < 0.45 ? 'kv write' : this.pick < 0.8 ? 'transfer' : this.pick < 0.95 ? 'claim' : 'DDL';
  }

  private pick: number | undefined;

  /** One operation, chosen at random. */
  async step(): Promise<void> {
    const x = this.pick ?? this.rng.next();
    this.pick = undefined;
    if (x < 0.45) await this.kv();
    else if (x < 0.8) await this.transfer();
    else if (x < 0.95) await this.claim();
    else await this.table();
  }

  /**
   * Claim an email for a row (or give it up): a UNIQUE index refuses an email another row holds
   * (DUPLICATE_KEY, an expected outcome here). What the claims must show after a crash is only that
   * the table and its index agree (checkIndexes).
   */
  private async claim(): Promise<void> {
    const id = this.rng.int(CLAIM_IDS);
    const email = this.rng.bool(0.15) ? null : `e${this.rng.int(EMAILS)}`;
    try {
      await this.db.transaction(async (tx) => {
        if (this.rng.bool(0.1)) await tx.delete('claims', id);
        else if ((await tx.get('claims', id)) === undefined)
          await tx.insert('claims', { id, email, w: this.w });
        else await tx.update('claims', id, { email, w: this.w });
      });
    } catch (e) {
      if (!retryable(e)) throw e;
    }
  }

  private async kv(): Promise<void> {
    const k = this.w * 1000 + this.rng.int(PAIRS);
    const seq = ++this.seq;
    const del = this.rng.bool(0.2);
    this.emit({ e: 'try', op: 'kv', k, seq, del });
    await this.db.transaction(async (tx) => {
      if (del) {
        await tx.delete('kv', k);
        await tx.delete('kv', k + PARTNER);
      } else {
        await tx.upsert('kv', { k, seq, w: this.w, v: `v${seq}` });
        await tx.upsert('kv', { k: k + PARTNER, seq, w: this.w, v: `v${seq}` });
      }
    });
    this.emit({ e: 'ack', op: 'kv', k, seq, del });
  }

  private async transfer(): Promise<void> {
    const a = this.rng.int(ACCOUNTS);
    const b = (a + 1 + this.rng.int(ACCOUNTS - 1)) % ACCOUNTS;
    const amount = 1 + this.rng.int(50);
    const id = `${this.tag}:${this.w}:${++this.transfers}`;
    this.emit({ e: 'try', op: 'transfer', id, a, b, amount });
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.db.transaction(async (tx) => {
          const ra = await tx.get('bank', a);
          const rb = await tx.get('bank', b);
          await tx.update('bank', a, { balance: (ra!['balance'] as number) - amount });
          await tx.update('bank', b, { balance: (rb!['balance'] as number) + amount });
        });
        this.emit({ e: 'ack', op: 'transfer', id, a, b, amount });
        return;
      } catch (e) {
        if (!retryable(e)) throw e;
      }
    }
    this.emit({ e: 'abort', op: 'transfer', id, a, b, amount });
  }

  private transfers = 0;

  private async table(): Promise<void> {
    const create = this.tables.length === 0 || this.rng.bool(0.5);
    const name = create ? `tmp_${this.tag}_${this.w}_${this.ddl++}` : this.tables.shift()!;
    this.emit({ e: 'try', op: 'ddl', name, create });
    if (create) {
      // An index declared with the table, or built afterwards (a crash may cut the build short:
      // the index is then dropped at the next open).
      if (this.rng.bool(0.5))
        await this.db.createTable(name, { ...BANK, indexes: [{ name: 'by_balance', columns: ['balance'] }] });
      else {
        await this.db.createTable(name, BANK);
        await this.db.insert(name, { id: 1, balance: 5 });
        await this.db.createIndex(name, 'by_balance', ['balance']);
      }
      this.tables.push(name);
    } else await this.db.dropTable(name);
    this.emit({ e: 'ack', op: 'ddl', name, create });
  }
}

interface KvState {
  seq: number;
  del: boolean;
}

/** What a recovered database must show, from the history of tries and acknowledgements. */
export class TortureModel {
  private readonly kv = new Map<number, KvState>();
  private readonly kvTry = new Map<number, KvState>();
  private readonly tables = new Map<string, boolean>();
  private readonly tableTry = new Map<string, boolean>();

  /** Account balances after every acknowledged transfer. */
  private readonly balances: number[] = Array.from({ length: ACCOUNTS }, () => INITIAL);
  private readonly transfersInFlight = new Map<string, { a: number; b: number; amount: number }>();

  apply(ev: Event): void {
    if (ev.op === 'transfer') {
      if (ev.e === 'try') this.transfersInFlight.set(ev.id, ev);
      else {
        this.transfersInFlight.delete(ev.id);
        if (ev.e === 'ack') {
          this.balances[ev.a]! -= ev.amount;
          this.balances[ev.b]! += ev.amount;
        }
      }
    } else if (ev.op === 'kv') {
      const s = { seq: ev.seq, del: ev.del };
      if (ev.e === 'try') this.kvTry.set(ev.k, s);
      else {
        this.kv.set(ev.k, s);
        this.kvTry.delete(ev.k);
      }
    } else if (ev.e === 'try') this.tableTry.set(ev.name, ev.create);
    else {
      this.tables.set(ev.name, ev.create);
      this.tableTry.delete(ev.name);
    }
  }

  /**
   * Problems with the recovered database (none: it matches). Then the state found becomes the
   * history's baseline: an unacknowledged operation that did commit is now known to have.
   */
  async verify(db: Database): Promise<string[]> {
    const problems: string[] = [];
    // Bank: the total never changes, and each balance is what the acknowledged transfers made it,
    // plus any of those in flight.
    const found: number[] = [];
    for await (const r of db.scan('bank')) found[r['id'] as number] = r['balance'] as number;
    const total = found.reduce((x, y) => x + y, 0);
    if (found.length !== ACCOUNTS || found.includes(undefined as never) || total !== ACCOUNTS * INITIAL)
      problems.push(
        `bank: ${JSON.stringify(found)} holding ${total}, expected ${ACCOUNTS} accounts holding ${ACCOUNTS * INITIAL}`,
      );
    else {
      const inFlight = [...this.transfersInFlight.values()];
      let explained = false;
      // Each worker has at most one operation in flight: a handful of subsets to try.
      for (let mask = 0; mask < 1 << Math.min(inFlight.length, 12) && !explained; mask++) {
        const want = [...this.balances];
        inFlight.forEach((t, i) => {
          if ((mask & (1 << i)) === 0) return;
          want[t.a]! -= t.amount;
          want[t.b]! += t.amount;
        });
        explained = want.every((x, i) => x === found[i]);
      }
      if (!explained)
        problems.push(
          `bank: balances ${JSON.stringify(found)}, acknowledged transfers make ${JSON.stringify(this.balances)}, ${inFlight.length} in flight do not explain the difference`,
        );
      this.balances.splice(0, ACCOUNTS, ...found);
    }
    this.transfersInFlight.clear();
    // KV: both rows of a pair agree, and show the last acknowledged write or the one in flight.
    const rows = new Map<number, { seq: number; v: string }>();
    for await (const r of db.scan('kv')) {
      const k = r['k'] as number;
      const seq = r['seq'] as number;
      if (r['v'] !== `v${seq}` || r['w'] !== Math.floor((k >= PARTNER ? k - PARTNER : k) / 1000))
        problems.push(`kv ${k}: a row that was never written: ${JSON.stringify(r)}`);
      rows.set(k, { seq, v: r['v'] as string });
    }
    const keys = new Set([...this.kv.keys(), ...this.kvTry.keys()]);
    for (const k of rows.keys()) keys.add(k >= PARTNER ? k - PARTNER : k);
    for (const k of keys) {
      const a = rows.get(k);
      const b = rows.get(k + PARTNER);
      if (
        (a === undefined) !== (b === undefined) ||
        (a !== undefined && (a.seq !== b!.seq || a.v !== b!.v))
      ) {
        problems.push(
          `kv ${k}: a transaction is partly visible: ${JSON.stringify(a)} / ${JSON.stringify(b)}`,
        );
        continue;
      }
      const found: KvState | undefined = a === undefined ? undefined : { seq: a.seq, del: false };
      const allowed = [this.kv.get(k), this.kvTry.get(k)];
      const ok = allowed.some((s) =>
        s === undefined
          ? found === undefined && !this.kv.has(k)
          : s.del
            ? found === undefined
            : found !== undefined && found.seq === s.seq,
      );
      if (!ok)
        problems.push(
          `kv ${k}: found ${JSON.stringify(found ?? 'nothing')}, acknowledged ${JSON.stringify(this.kv.get(k) ?? 'nothing')}, in flight ${JSON.stringify(this.kvTry.get(k) ?? 'nothing')}`,
        );
      if (found === undefined) this.kv.set(k, { seq: this.kv.get(k)?.seq ?? 0, del: true });
      else this.kv.set(k, found);
    }
    this.kvTry.clear();
    // Tables created and dropped.
    const present = new Set(db.tables());
    for (const name of new Set([...this.tables.keys(), ...this.tableTry.keys()])) {
      const is = present.has(name);
      const acked = this.tables.get(name) ?? false;
      const inFlight = this.tableTry.get(name);
      if (is !== acked && is !== inFlight)
        problems.push(
          `table ${name}: ${is ? 'exists' : 'missing'}, acknowledged ${acked ? 'created' : 'dropped'}`,
        );
      this.tables.set(name, is);
    }
    this.tableTry.clear();
    // Every table's indexes agree with it.
    problems.push(...(await checkIndexes(db)));
    return problems;
  }
}

export { Rng };

/** A wall clock that ticks one millisecond per reading, from the same instant every run. */
export function fakeClock(): () => number {
  let ms = Date.UTC(2026, 0, 1);
  return () => ms++;
}
