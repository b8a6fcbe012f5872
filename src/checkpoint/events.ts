/** A checkpoint finished, or failed. */
export interface CheckpointEvent {
  /**
   * The step: a checkpoint that goes on to a global one reports its incremental step, then its
   * global step ('none': nothing had changed). For a failure, the step that failed.
   */
  kind: 'incremental' | 'global' | 'none';
  trigger: string;
  ok: boolean;
  ms: number;
  /** When it ended (ms since the epoch). */
  at: number;
  /** The failure's message. */
  error?: string;
}
