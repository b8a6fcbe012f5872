import type { Table } from '../table/table.js';
import type { HybridClock } from './clock.js';

/**
 * The steps of a commit around the transaction manager's own (stage, log, publish), given to it at
 * construction and implemented by one coordinator above (src/db/commit_coordinator.ts):
 * admit -> [reserve memory] -> stage -> log -> publish -> published -> finished.
 */
export interface CommitPipeline {
  /**
   * Before a commit or DDL statement takes its turn: a promise to wait for (the WAL past its cap
   * until a checkpoint shrinks it), or undefined to go on at once. A rejection fails the commit.
   */
  admit(): Promise<void> | undefined;
  /** Before the commit reserves memtable room in these tables: start the flushes that make room. */
  reserving(tables: readonly Table[]): void;
  /** After the commit's versions are published (durable and visible) in these tables. */
  published(tables: readonly Table[]): void;
  /** A commit with writes ended: how long it took, and whether it committed. */
  finished(ms: number, ok: boolean): void;
}

/**
 * How far commits have come, for the checkpointer: the commits and DDL statements published, DDL
 * records between their append and their effect on the catalog, and the clock. Made before the
 * transaction manager (which updates it) and the checkpointer (which reads it).
 */
export class CommitProgress {
  /** Commits with writes and DDL statements published. */
  changes = 0;
  private ddlInflight = 0;
  private readonly ddlWaiters: (() => void)[] = [];

  constructor(readonly clock: HybridClock) {}

  /** A DDL record is about to be appended. */
  ddlLogging(): void {
    this.ddlInflight++;
  }

  /** ...and has taken effect on the catalog (or failed). */
  ddlDone(): void {
    if (--this.ddlInflight === 0) for (const r of this.ddlWaiters.splice(0)) r();
  }

  /**
   * Resolves in a turn where no DDL record is between its append and its effect on the catalog: a
   * checkpoint's catalog then holds every DDL record logged so far.
   */
  async ddlSettled(): Promise<void> {
    while (this.ddlInflight > 0) await new Promise<void>((r) => this.ddlWaiters.push(r));
  }

  get isDdlSettled(): boolean {
    return this.ddlInflight === 0;
  }
}
