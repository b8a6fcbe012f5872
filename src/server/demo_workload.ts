import type { Database } from '../api/database.js';
import { TidemarkError } from '../errors.js';
import type { Logger } from '../log.js';

const ACCOUNTS = 2_000;
const EVENTS_KEPT = 200_000;

/**
 * The built-in workload of `tidemark serve --demo`, so that a new user sees the charts move: bank
 * transfers between 2,000 accounts (small durable transactions), batches of events appended (which
 * fill memtables, so flushes and merges happen), the oldest events deleted once there are enough,
 * and a scan summing the balances every second. Checkpoints come from the database's own timer.
 */
export class DemoWorkload {
  private stopped = false;
  private readonly loops: Promise<void>[];
  private nextEvent: number;
  private oldestEvent: number;

  private constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    range: { oldest: number; next: number },
  ) {
    this.oldestEvent = range.oldest;
    this.nextEvent = range.next;
    this.loops = [this.transfers(0), this.transfers(1), this.events(), this.audits()];
  }

  /** Create the demo tables if missing, then start the loops. */
  static async start(db: Database, logger: Logger): Promise<DemoWorkload> {
    if (!db.tables().includes('demo_accounts')) {
      await db.createTable('demo_accounts', {
        columns: { id: 'int64', owner: 'string', balance: 'float64' },
        primaryKey: 'id',
      });
    }
    // Funded in one transaction: a crash never leaves some accounts missing.
    if ((await db.get('demo_accounts', ACCOUNTS - 1)) === undefined) {
      await db.transaction(async (tx) => {
        for (let id = 0; id < ACCOUNTS; id++)
          if ((await tx.get('demo_accounts', id)) === undefined)
            await tx.insert('demo_accounts', { id, owner: `owner-${id}`, balance: 1000 });
      });
    }
    if (!db.tables().includes('demo_events')) {
      await db.createTable('demo_events', {
        columns: { id: 'int64', at: 'timestamp', kind: 'string', value: 'float64' },
        primaryKey: 'id',
      });
    }
    // Continue after the events of earlier runs (before any loop starts).
    const range = { oldest: -1, next: 0 };
    for await (const b of db.scanBatches('demo_events', { columns: ['id'] })) {
      const ids = b.columns['id'] as number[];
      if (ids.length === 0) continue;
      if (range.oldest < 0) range.oldest = ids[0]!;
      range.next = ids[ids.length - 1]! + 1;
    }
    if (range.oldest < 0) range.oldest = 0;
    return new DemoWorkload(db, logger, range);
  }

  /** Stop the loops and wait for what is in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private async pause(ms: number): Promise<void> {
    if (!this.stopped) await new Promise((r) => setTimeout(r, ms));
  }

  /** Run `fn` until stopped; a conflict is retried, any other error logged and the loop ended. */
  private async loop(name: string, fn: () => Promise<void>): Promise<void> {
    while (!this.stopped) {
      try {
        await fn();
      } catch (e) {
        if (e instanceof TidemarkError && e.code === 'CONFLICT') {
          await this.pause(1); // another transfer won: try again
          continue;
        }
        if (this.stopped) return;
        this.logger.error({ err: e }, `demo workload: ${name} stopped`);
        return;
      }
    }
  }

  private transfers(worker: number): Promise<void> {
    return this.loop(`transfers ${worker}`, async () => {
      const a = Math.floor(Math.random() * ACCOUNTS);
      const b = (a + 1 + Math.floor(Math.random() * (ACCOUNTS - 1))) % ACCOUNTS;
      const amount = Math.round(Math.random() * 1000) / 100;
      await this.db.transaction(async (tx) => {
        const ra = await tx.get('demo_accounts', a);
        const rb = await tx.get('demo_accounts', b);
        await tx.update('demo_accounts', a, { balance: (ra!['balance'] as number) - amount });
        await tx.update('demo_accounts', b, { balance: (rb!['balance'] as number) + amount });
      });
      await this.pause(5);
    });
  }

  private events(): Promise<void> {
    return this.loop('events', async () => {
      const now = Date.now();
      const batch = Array.from({ length: 500 }, (_, i) => ({
        id: this.nextEvent + i,
        at: new Date(now),
        kind: ['login', 'view', 'buy', 'logout'][i % 4]!,
        value: Math.sin((this.nextEvent + i) / 1000) * 50 + 50,
      }));
      await this.db.insert('demo_events', batch);
      this.nextEvent += batch.length;
      if (this.nextEvent - this.oldestEvent > EVENTS_KEPT) {
        const upTo = this.oldestEvent + 5_000;
        await this.db.transaction(async (tx) => {
          for (let id = this.oldestEvent; id < upTo; id++) await tx.delete('demo_events', id);
        });
        this.oldestEvent = upTo;
      }
      await this.pause(100);
    });
  }

  private audits(): Promise<void> {
    return this.loop('audit', async () => {
      let total = 0;
      for await (const b of this.db.scanBatches('demo_accounts', { columns: ['balance'] }))
        for (const v of b.columns['balance'] as Float64Array) total += v;
      if (Math.abs(total - ACCOUNTS * 1000) > 1e-6 * ACCOUNTS * 1000)
        this.logger.error({ total }, 'demo workload: the bank total changed');
      await this.pause(1000);
    });
  }
}
