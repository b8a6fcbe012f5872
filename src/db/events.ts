import type { CheckpointEvent } from '../checkpoint/events.js';
import type { Logger } from '../log.js';

/** A transaction with writes finished committing (durable), or failed to. */
export interface CommitEvent {
  /** From the commit call to its outcome. */
  ms: number;
  ok: boolean;
}

/** What `db.observe()` calls. Each method is optional; none may block (they run inline). */
export interface DatabaseObserver {
  commit?(e: CommitEvent): void;
  checkpoint?(e: CheckpointEvent): void;
}

/** The observers of one database: added and removed by their owners, all dropped at close. */
export class Observers {
  private readonly list = new Set<DatabaseObserver>();

  constructor(private readonly logger: Logger) {}

  add(o: DatabaseObserver): () => void {
    this.list.add(o);
    return () => {
      this.list.delete(o);
    };
  }

  get size(): number {
    return this.list.size;
  }

  clear(): void {
    this.list.clear();
  }

  commit(e: CommitEvent): void {
    for (const o of this.list) this.call(() => o.commit?.(e));
  }

  checkpoint(e: CheckpointEvent): void {
    for (const o of this.list) this.call(() => o.checkpoint?.(e));
  }

  /** An observer that throws is logged, never allowed to break the engine. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err }, 'a database observer threw');
    }
  }
}
