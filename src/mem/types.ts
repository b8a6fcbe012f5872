// The words shared by the memory manager, its pools and their buffers (manager.ts, pool.ts,
// buffer.ts): per-owner live counts and how an allocation waits.

/** Live counts for one owner tag in one pool: what a leak report lists when no stack was recorded. */
export interface OwnerStats {
  readonly owner: string;
  count: number;
  bytes: number;
}

export interface WaitOptions {
  /** How long to wait for memory before failing with MEMORY_LIMIT. Infinity waits forever. */
  timeoutMs?: number;
  signal?: AbortSignal;
}
