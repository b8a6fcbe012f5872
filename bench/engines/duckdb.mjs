// DuckDB through @duckdb/node-api: a persistent database file, loaded with the Appender; the
// default thread count (one per core) and memory limit.
import { DuckDBInstance } from '@duckdb/node-api';
import * as path from 'node:path';

export const objects = {
  settings:
    '@duckdb/node-api 1.5.6, persistent file, default threads (one per core) and memory_limit, no primary-key index, loaded with the Appender, CHECKPOINT after the load',
  supports: { gets: false, sum: true },
  async open(dir) {
    const instance = await DuckDBInstance.create(path.join(dir, 'bench.duckdb'));
    const conn = await instance.connect();
    await conn.run('CREATE TABLE IF NOT EXISTS s (id BIGINT NOT NULL, value DOUBLE NOT NULL)');
    return {
      loadSum: async (rows) => {
        const a = await conn.createAppender('s');
        for (const r of rows) {
          a.appendBigInt(BigInt(r.id));
          a.appendDouble(r.value);
          a.endRow();
        }
        a.closeSync();
      },
      settle: async () => {
        await conn.run('CHECKPOINT');
      },
      sum: async () => {
        const reader = await conn.runAndReadAll('SELECT sum(value) AS s FROM s');
        return Number(reader.getRows()[0][0]);
      },
      filtered: async (min) => {
        const reader = await conn.runAndReadAll(
          `SELECT count(*) AS c, sum(value) AS s FROM s WHERE value >= ${Number(min)}`,
        );
        const [c, s] = reader.getRows()[0];
        return { count: Number(c), sum: Number(s) };
      },
      close: async () => {
        conn.closeSync();
        instance.closeSync();
      },
      poolHighWater: () => null,
    };
  },
};
