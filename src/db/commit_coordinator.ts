import type { Checkpointer } from '../checkpoint/checkpointer.js';
import type { Storage } from '../storage/storage.js';
import type { Table } from '../table/table.js';
import type { CommitPipeline } from '../txn/pipeline.js';
import type { Observers } from './events.js';

/**
 * The one implementation of the commit pipeline's outer steps, composing the layers a commit
 * touches around the transaction manager: admission waits while the WAL is past its cap (the
 * checkpointer), room is made before memory is reserved and after versions are published (the
 * storage layer's flush triggers), a published commit may start a checkpoint, and every commit's
 * outcome reaches the observers (metrics, the dashboard).
 */
export class CommitCoordinator implements CommitPipeline {
  constructor(
    private readonly storage: Storage,
    private readonly checkpointer: Checkpointer,
    private readonly observers: Observers,
  ) {}

  admit(): Promise<void> | undefined {
    return this.checkpointer.gate();
  }

  reserving(tables: readonly Table[]): void {
    this.storage.published(tables);
  }

  published(tables: readonly Table[]): void {
    this.storage.published(tables);
    this.checkpointer.afterCommit();
  }

  finished(ms: number, ok: boolean): void {
    this.observers.commit({ ms, ok });
  }
}
