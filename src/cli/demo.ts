import { LocalFileService } from '../fileservice/local.js';
import { readFileInto } from '../fileservice/util.js';
import { MemoryManager } from '../mem/manager.js';

/**
 * A short tour of the foundation: take the directory's LOCK, write and read back a file through the
 * file service with buffers from the memory pools, print the pools' statistics, and close with the
 * proof that nothing leaked.
 */
export async function runDemo(dir: string, print: (line: string) => void): Promise<void> {
  const fs = new LocalFileService(dir);
  const lock = await fs.lock();
  const memory = new MemoryManager({ limitBytes: 64 << 20, leakDetection: 'simple' });
  try {
    print(`tidemark demo in ${fs.root}`);
    await fs.mkdir('demo');
    const rows = 10_000;
    const col = memory.pool('memtable').allocateSync(rows * 8, 'demo.column');
    const values = col.float64();
    for (let i = 0; i < rows; i++) values[i] = i * 0.5;
    await fs.writeFileAtomic('demo/column.bin', [col.bytes], 'other');
    col.release();
    const back = await readFileInto(fs, 'demo/column.bin', 'other', memory.pool('io'), 'demo.read');
    let sum = 0;
    for (const v of back.float64()) sum += v;
    print(`wrote and read back ${rows} float64 values atomically; sum = ${sum}`);
    print('');
    print('pool         bytes   high-water   handles   allocations');
    for (const [name, p] of Object.entries(memory.stats().pools)) {
      print(
        `${name.padEnd(10)} ${String(p.bytes).padStart(7)} ${String(p.highWaterBytes).padStart(12)} ${String(p.handles).padStart(9)} ${String(p.allocations).padStart(13)}`,
      );
    }
    back.release();
    await fs.delete('demo/column.bin');
  } finally {
    await lock.release();
    memory.close();
    await fs.close();
  }
  print('');
  print('closed: every pool at zero bytes, no file handle open.');
}
