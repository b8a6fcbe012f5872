export { MemoryManager, POOL_NAMES, DEFAULT_LIMIT_BYTES } from './manager.js';
export type { MemoryOptions, MemoryStats, PoolName } from './manager.js';
export { MemoryPool } from './pool.js';
export type { PoolStats } from './pool.js';
export type { WaitOptions, OwnerStats } from './types.js';
export { PooledBuffer, Reservation } from './buffer.js';
export { LEAK_DETECTION_LEVELS } from './leak_detector.js';
export type { LeakDetectionLevel, LeakReport } from './leak_detector.js';
