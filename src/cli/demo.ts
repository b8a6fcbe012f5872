import { open } from '../api/database.js';

/**
 * A short tour: open (or create) a database, write through transactions, read it back as rows and
 * as columns, print the memory pools and the WAL, and close, which proves nothing leaked.
 */
export async function runDemo(dir: string, print: (line: string) => void): Promise<void> {
  const started = performance.now();
  const db = await open(dir, { log: { level: 'warn' } });
  try {
    print(`tidemark demo in ${dir} (opened in ${Math.round(performance.now() - started)} ms)`);
    if (!db.tables().includes('readings')) {
      await db.createTable('readings', {
        columns: {
          id: 'int64',
          sensor: 'string',
          at: 'timestamp',
          value: 'float64',
          ok: { type: 'bool', nullable: true },
        },
        primaryKey: 'id',
      });
      print('created table readings');
    }
    // Continue after what earlier runs wrote.
    let next = 0;
    for await (const b of db.scanBatches('readings', { columns: ['id'] })) {
      const ids = b.columns['id'] as number[];
      if (ids.length > 0) next = ids[ids.length - 1]! + 1;
    }
    const rows = Array.from({ length: 10_000 }, (_, i) => ({
      id: next + i,
      sensor: `sensor-${i % 16}`,
      at: new Date(Date.now() - (10_000 - i) * 1000),
      value: Math.sin((next + i) / 100) * 20 + 20,
      ok: i % 97 === 0 ? null : true,
    }));
    const t0 = performance.now();
    for (let i = 0; i < rows.length; i += 1000) await db.insert('readings', rows.slice(i, i + 1000));
    print(
      `inserted ${rows.length} rows in 10 durable transactions (${Math.round(performance.now() - t0)} ms)`,
    );
    await db.transaction(async (tx) => {
      await tx.update('readings', next, { value: -1, ok: false });
      await tx.delete('readings', next + 1);
    });
    let sum = 0;
    let count = 0;
    for await (const b of db.scanBatches('readings', { columns: ['value'] })) {
      for (const v of b.columns['value'] as Float64Array) sum += v;
      count += b.length;
    }
    print(`${count} rows in the table; average value ${(sum / count).toFixed(3)}`);
    print('');
    const s = db.stats();
    print(
      `memory: ${fmt(s.memory.bytes)} in use of ${fmt(s.memory.limitBytes)}, high water ${fmt(s.memory.highWaterBytes)}`,
    );
    print('pool          bytes   high-water   handles');
    for (const [name, p] of Object.entries(s.memory.pools)) {
      print(
        `${name.padEnd(10)} ${fmt(p.bytes).padStart(8)} ${fmt(p.highWaterBytes).padStart(12)} ${String(p.handles).padStart(9)}`,
      );
    }
    print(
      `wal: ${fmt(s.wal.bytes)} in ${s.wal.segments} segment(s), durable through LSN ${s.wal.durableLsn}`,
    );
    print(`transactions: ${s.transactions.committed} committed, ${s.transactions.aborted} aborted`);
  } finally {
    await db.close();
  }
  print('');
  print('closed: every pool back at zero bytes, no file handle left open.');
}

function fmt(bytes: number): string {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
