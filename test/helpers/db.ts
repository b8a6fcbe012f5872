import { open, type Database, type OpenOptions } from '../../src/index.js';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import type { FileService } from '../../src/fileservice/types.js';

export const ACCOUNTS = {
  columns: { id: 'int64', owner: 'string', balance: 'float64', active: { type: 'bool', nullable: true } },
  primaryKey: 'id',
} as const;

/** Open a database on an in-memory file service (paranoid leak detection unless told otherwise). */
export async function memDb(
  options: OpenOptions = {},
  fs: FileService = new MemoryFileService(),
): Promise<{ db: Database; fs: FileService; reopen: (o?: OpenOptions) => Promise<Database> }> {
  const opts = { memory: { leakDetection: 'paranoid' as const }, ...options, fileService: fs };
  const db = await open('memdb', opts);
  return { db, fs, reopen: (o?: OpenOptions) => open('memdb', { ...opts, ...o, fileService: fs }) };
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
